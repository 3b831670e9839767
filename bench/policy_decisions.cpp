// Policy decisions per second during a bulk deactivation (issue 5). --users users (10,000)
// are members of a group that is a population ("unassign": each user's one device loses its
// owner), and all of them are deactivated at once (one UserReplaced each, appended in one go).
//
// - engine: the pure decision engine alone (policies/policy.hpp), folding the 10,000
//   deactivations: decisions/s.
// - runner: the policy projector end to end on a real file log (durability `batch`, fsync per
//   group commit): for every decision PolicyDecided, the device change, PolicyApplied, each a
//   durable append, in order. From the moment the deactivations are durable until the last
//   decision is applied: decisions/s.
//
//   ./build/bench/policy_decisions [--users 10000] [--runs 3] [--dir DIR]

#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/model/events.hpp"
#include "scimsync/policies/runner.hpp"

namespace el = scimsync::eventlog;
namespace model = scimsync::model;
namespace pol = scimsync::policies;
using json = nlohmann::json;
using scimsync::bench::arg;

namespace {

el::event make(const char* type, std::string stream, const json& data) {
    el::event e;
    e.type = type;
    e.version = 1;
    e.source = "scim";
    e.actor = "token:bench";
    e.stream = std::move(stream);
    e.data = data.dump();
    return e;
}

std::string uid(std::size_t i) {
    return "user-" + std::to_string(i);
}

json user(std::size_t i, bool active) {
    return {
        {"id", uid(i)},
        {"password_hash", nullptr},
        {"resource", {{"active", active}, {"id", uid(i)}, {"userName", uid(i) + "@example.com"}}}};
}

// Users, the group with all of them, one device each.
std::vector<el::event> setup(std::size_t users) {
    std::vector<el::event> out;
    json members = json::array();
    for (std::size_t i = 0; i < users; ++i) {
        out.push_back(make("UserCreated", "User/" + uid(i), user(i, true)));
        members.push_back({{"value", uid(i)}, {"type", "User"}});
    }
    out.push_back(make("GroupCreated", "Group/staff",
                       {{"id", "staff"},
                        {"resource", {{"id", "staff"}, {"displayName", "Staff"}}},
                        {"members", members}}));
    for (std::size_t i = 0; i < users; ++i) {
        const std::string d = "dev-" + std::to_string(i);
        out.push_back(make("DeviceRegistered", "Device/" + d,
                           {{"id", d},
                            {"device",
                             {{"id", d},
                              {"name", "laptop"},
                              {"serial", "SN" + std::to_string(i)},
                              {"platform", "linux"},
                              {"owner", uid(i)},
                              {"policy", "standard"}}}}));
    }
    return out;
}

std::vector<el::event> deactivations(std::size_t users) {
    std::vector<el::event> out;
    for (std::size_t i = 0; i < users; ++i)
        out.push_back(make("UserReplaced", "User/" + uid(i), user(i, false)));
    return out;
}

pol::policy_config config() {
    pol::policy_config c;
    pol::population_def p;
    p.name = "staff";
    p.group = "Staff";
    p.on_deactivate = pol::action::unassign;
    c.populations.push_back(p);
    c.max_removals = 1'000'000;
    return c;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t users = std::stoul(arg(argc, argv, "--users", "10000"));
    const int runs = std::stoi(arg(argc, argv, "--runs", "3"));
    const std::string parent = arg(argc, argv, "--dir", "");

    std::vector<double> engine_rates, runner_rates;
    for (int run = 1; run <= runs; ++run) {
        // The engine alone.
        {
            pol::engine eng(config());
            std::uint64_t seq = 0;
            auto feed = [&](std::vector<el::event> events, std::size_t* decisions) {
                for (auto& e : events) {
                    e.seq = el::seq_no{++seq};
                    e.time = el::system_utc_now();
                    auto d = eng.apply(e);
                    if (!d) {
                        std::fprintf(stderr, "engine: %s\n", d.error().message.c_str());
                        std::exit(1);
                    }
                    if (decisions != nullptr) *decisions += d->size();
                }
            };
            feed(setup(users), nullptr);
            std::size_t decided = 0;
            auto batch = deactivations(users);
            const auto t0 = std::chrono::steady_clock::now();
            feed(std::move(batch), &decided);
            const double s = scimsync::bench::seconds_since(t0);
            engine_rates.push_back(double(decided) / s);
            std::printf("run %d: engine %zu decisions in %.3f s: %.0f/s\n", run, decided, s,
                        engine_rates.back());
        }
        // The runner on a file log.
        {
            scimsync::bench::scratch_dir dir(parent);
            el::file_log_options lo;
            lo.dir = dir.path() / "log";
            lo.mode = el::durability::batch;
            auto opened = el::file_log::open(lo);
            if (!opened) {
                std::fprintf(stderr, "log: %s\n", opened.error().message.c_str());
                return 1;
            }
            auto& log = **opened;
            std::mutex write_mu;
            model::directory write;  // the daemon's write model stands in here
            auto submit_events = [&](std::vector<el::event> events) -> el::result<void> {
                for (auto& e : events) {
                    e.time = el::system_utc_now();
                    (void)write.apply(e);
                }
                auto r = log.append(std::move(events));
                if (!r) return std::unexpected(r.error());
                return {};
            };
            if (!submit_events(setup(users))) return 1;
            pol::runner_options o;
            o.config = config();
            o.state_dir = dir.path() / "policies";
            o.submit = [&](pol::runner_options::decide_fn decide) -> el::result<void> {
                std::lock_guard lk(write_mu);
                return submit_events(decide(write));
            };
            pol::runner r(log, std::move(o));
            if (auto s = r.start(); !s) {
                std::fprintf(stderr, "runner: %s\n", s.error().message.c_str());
                return 1;
            }
            if (!r.wait_until(log.last_seq(),
                              std::chrono::steady_clock::now() + std::chrono::seconds(60)))
                return 1;
            const auto t0 = std::chrono::steady_clock::now();
            {
                std::lock_guard lk(write_mu);
                if (!submit_events(deactivations(users))) return 1;
            }
            // Every decision appends three events after its cause; wait for the last cause and
            // then for everything the runner appended to be handled too.
            bool done = false;
            while (!done) {
                done = r.wait_until(log.last_seq(),
                                    std::chrono::steady_clock::now() + std::chrono::seconds(120)) &&
                       r.status()["applied"].get<std::uint64_t>() >= users;
            }
            const double s = scimsync::bench::seconds_since(t0);
            const auto st = r.status();
            runner_rates.push_back(double(users) / s);
            std::printf(
                "run %d: runner %llu applied in %.2f s: %.0f decisions/s (log now %llu "
                "events)\n",
                run, static_cast<unsigned long long>(st["applied"].get<std::uint64_t>()), s,
                runner_rates.back(), static_cast<unsigned long long>(log.last_seq().value));
            r.stop();
            log.close();
        }
    }
    std::printf("median: engine %.0f decisions/s; runner end to end %.0f decisions/s\n",
                scimsync::bench::median(engine_rates), scimsync::bench::median(runner_rates));
}
