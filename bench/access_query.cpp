// Effective-access queries per second (issue 5): a directory of --users users (default
// 1,000,000) and --groups groups (10,000) folded from real events, groups nested three levels
// deep, one grant per group; --probes users (1,000) are each in --per-user groups (50). Each run
// asks model::effective_access for every probe user in turn for --seconds; prints each run's
// rate and the median, and, for scale, the same walk without the grants (all_groups_of).
//
//   ./build/bench/access_query [--users 1000000] [--groups 10000] [--per-user 50] [--runs 5]

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "scimsync/model/access.hpp"
#include "scimsync/model/directory.hpp"

namespace el = scimsync::eventlog;
namespace model = scimsync::model;
using json = nlohmann::json;
using scimsync::bench::arg;

namespace {

std::uint64_t seq = 0;

void apply(model::directory& d, const char* type, std::string stream, const std::string& data) {
    const el::event e = scimsync::bench::scim_event(++seq, type, std::move(stream), data);
    if (auto r = d.apply(e); !r) {
        std::fprintf(stderr, "apply failed: %s\n", r.error().message.c_str());
        std::exit(1);
    }
}

std::string uid(std::size_t i) {
    return "u" + std::to_string(i);
}
std::string gid(std::size_t i) {
    return "g" + std::to_string(i);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t users = std::stoul(arg(argc, argv, "--users", "1000000"));
    const std::size_t groups = std::stoul(arg(argc, argv, "--groups", "10000"));
    const std::size_t per_user = std::stoul(arg(argc, argv, "--per-user", "50"));
    const std::size_t probes = std::stoul(arg(argc, argv, "--probes", "1000"));
    const int runs = std::stoi(arg(argc, argv, "--runs", "5"));
    const double seconds = std::stod(arg(argc, argv, "--seconds", "2"));

    const auto t0 = std::chrono::steady_clock::now();
    model::directory d;
    for (std::size_t i = 0; i < users; ++i) {
        const std::string id = uid(i);
        apply(d, "UserCreated", "User/" + id,
              "{\"id\":\"" + id +
                  "\",\"password_hash\":null,\"resource\":{\"active\":true,\"id\":\"" + id +
                  "\",\"userName\":\"" + id + "@example.com\"}}");
    }
    // Groups: 1% top level, 9% second level (each in a top group), 90% third level (each in a
    // second-level group). Every user but the probes is in one third-level group.
    const std::size_t top = std::max<std::size_t>(1, groups / 100);
    const std::size_t mid = std::max<std::size_t>(1, groups / 10);
    for (std::size_t g = 0; g < groups; ++g)
        apply(d, "GroupCreated", "Group/" + gid(g),
              json{{"id", gid(g)},
                   {"resource", {{"id", gid(g)}, {"displayName", "group " + std::to_string(g)}}},
                   {"members", json::array()}}
                  .dump());
    auto add = [&](std::size_t group, const std::string& member, const char* type) {
        apply(d, "GroupMembersChanged", "Group/" + gid(group),
              json{{"id", gid(group)},
                   {"added", json::array({{{"value", member}, {"type", type}}})},
                   {"removed", json::array()}}
                  .dump());
    };
    for (std::size_t g = top; g < groups; ++g)
        add(g < mid ? g % top : top + g % (mid - top), gid(g), "Group");
    std::mt19937_64 rng(42);
    for (std::size_t i = probes; i < users; ++i) add(mid + i % (groups - mid), uid(i), "User");
    for (std::size_t i = 0; i < probes; ++i) {
        std::vector<std::size_t> picked;
        while (picked.size() < per_user) {
            const std::size_t g = mid + rng() % (groups - mid);
            if (std::find(picked.begin(), picked.end(), g) == picked.end()) picked.push_back(g);
        }
        for (auto g : picked) add(g, uid(i), "User");
    }
    for (std::size_t g = 0; g < groups; ++g)
        apply(d, "AccessGranted", "Access/Group/" + gid(g),
              json{{"subject", {{"type", "Group"}, {"id", gid(g)}}},
                   {"service", "svc" + std::to_string(g % 20)},
                   {"role", "r" + std::to_string(g % 3)}}
                  .dump());
    std::printf(
        "directory: %zu users, %zu groups (3 levels), %zu probe users in %zu groups each; "
        "built in %.1f s\n",
        users, groups, probes, per_user, scimsync::bench::seconds_since(t0));
    const auto sample = model::effective_access(d, uid(0));
    std::printf("a probe user: %zu groups, %zu effective grants\n",
                model::all_groups_of(d, uid(0)).size(), sample.size());

    auto measure = [&](auto query) {
        std::vector<double> rates;
        std::size_t sink = 0;
        for (int r = 0; r < runs; ++r) {
            std::size_t n = 0;
            const auto start = std::chrono::steady_clock::now();
            while (scimsync::bench::seconds_since(start) < seconds)
                for (std::size_t i = 0; i < 100; ++i, ++n) sink += query(uid(n % probes));
            rates.push_back(double(n) / scimsync::bench::seconds_since(start));
            std::printf("  run %d: %.0f/s\n", r + 1, rates.back());
        }
        if (sink == 42) std::printf(" ");
        return scimsync::bench::median(rates);
    };
    std::printf("effective_access (groups walked, grants collected, reasons built):\n");
    const double access =
        measure([&](const std::string& u) { return model::effective_access(d, u).size(); });
    std::printf("all_groups_of (the walk alone):\n");
    const double walk =
        measure([&](const std::string& u) { return model::all_groups_of(d, u).size(); });
    std::printf("median: effective_access %.0f queries/s (%.1f us each); the walk alone %.0f/s\n",
                access, 1e6 / access, walk);
}
