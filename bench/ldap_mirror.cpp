// ldap_mirror: how fast the LDAP mirror writes, next to what slapd itself takes, in the same run.
//
//   ldap_mirror [--users 10000] [--runs 3] [--sync] [--rate 500] [--lag-seconds 10]
//
// Per run (raw first in odd runs, mirror first in even ones: the second writer meets a bigger
// database), against one throwaway slapd (dbnosync unless --sync; syncprov + accesslog, as the
// bridge needs them):
//   raw     10,000 inetOrgPerson adds pipelined on one libldap connection, 64 outstanding: the
//           physical limit of this slapd on this machine;
//   mirror  the same number of UserCreated events already in a file log, mirrored by the real
//           bridge::mirror (its entries are built from SCIM resources, as in the daemon);
//   lag     UserCreated events appended durably (group commit) at --rate per second while the
//           mirror runs: the time from the append's acknowledgement (when scimsyncd answers
//           the SCIM request) to the mirror's confirmation from slapd (visible in LDAP).
// Prints the median of --runs runs and the mirror/raw ratio.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench_util.hpp"
#include "scimsync/bridge/mirror.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "slapd_fixture.hpp"

namespace el = scimsync::eventlog;
namespace sb = scimsync::bench;
namespace br = scimsync::bridge;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

json resource(std::size_t i, const std::string& prefix) {
    const std::string n = prefix + std::to_string(i);
    return json{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                {"userName", n + "@example.com"},
                {"displayName", "User " + n},
                {"name", {{"givenName", "User"}, {"familyName", n}}},
                {"emails", {{{"value", n + "@example.com"}, {"type", "work"}, {"primary", true}}}},
                {"title", "Engineer"},
                {"active", true}};
}

el::event user_created(std::size_t i, const std::string& prefix) {
    el::event e;
    e.type = "UserCreated";
    e.source = "scim";
    e.actor = "bench";
    const std::string id = prefix + "-" + std::to_string(i);
    e.stream = "User/" + id;
    auto r = resource(i, prefix);
    r["id"] = id;
    e.data = json{{"id", id}, {"resource", r}, {"password_hash", nullptr}}.dump();
    return e;
}

std::unique_ptr<el::file_log> open_log(const std::filesystem::path& dir, el::durability mode) {
    el::file_log_options o;
    o.dir = dir;
    o.mode = mode;
    auto l = el::file_log::open(o);
    if (!l) {
        std::fprintf(stderr, "log: %s\n", l.error().message.c_str());
        std::exit(1);
    }
    return std::move(*l);
}

br::entry_builder builder(const std::string& people_base) {
    auto m = br::default_mapping("dc=example,dc=com");
    m.people_base = people_base;
    auto b = br::entry_builder::compile(m);
    if (!b) std::exit(1);
    return std::move(*b);
}

double raw_adds(scimsync::testing::slapd_server& slapd, std::size_t users, int run) {
    const std::string base = "ou=raw" + std::to_string(run) + ",dc=example,dc=com";
    slapd.add(
        {base, {{"objectClass", {"organizationalUnit"}}, {"ou", {"raw" + std::to_string(run)}}}});
    auto b = builder(base);
    std::vector<br::ldap_entry> entries;
    for (std::size_t i = 0; i < users; ++i) {
        entries.push_back(*b.user_entry(resource(i, "r"), std::nullopt,
                                        [](std::string_view) { return std::nullopt; }));
    }
    auto c = br::ldap_connection::open(slapd.admin_settings());
    if (!c) std::exit(1);
    const std::size_t window = 64;
    std::size_t sent = 0, done = 0, errors = 0;
    const auto t0 = clock_type::now();
    while (done < users) {
        while (sent < users && sent - done < window) {
            if (!(*c)->add(entries[sent++])) std::exit(1);
        }
        auto r = (*c)->next_result(std::chrono::seconds(10));
        if (!r || !*r) std::exit(1);
        errors += (**r).code != 0 ? 1 : 0;
        ++done;
    }
    const double s = sb::seconds_since(t0);
    if (errors > 0) std::fprintf(stderr, "raw: %zu errors\n", errors);
    return static_cast<double>(users) / s;
}

double mirror_adds(scimsync::testing::slapd_server& slapd, const std::filesystem::path& dir,
                   std::size_t users, int run) {
    auto log = open_log(dir / ("log-m" + std::to_string(run)), el::durability::none);
    std::vector<el::event> batch;
    for (std::size_t i = 0; i < users; ++i) {
        batch.push_back(user_created(i, "m" + std::to_string(run)));
        if (batch.size() == 500 || i + 1 == users) {
            if (!log->append(std::move(batch))) std::exit(1);
            batch.clear();
        }
    }
    br::mirror_options o;
    o.ldap = slapd.admin_settings();
    o.state_dir = dir / ("state-m" + std::to_string(run));
    br::mirror m(*log, builder("ou=people,dc=example,dc=com"), o);
    const auto t0 = clock_type::now();
    if (auto r = m.start(); !r) std::exit(1);
    if (!m.wait_for(users, clock_type::now() + std::chrono::minutes(10))) {
        std::fprintf(stderr, "mirror did not finish: %s\n", m.status().to_json().dump().c_str());
        std::exit(1);
    }
    const double s = sb::seconds_since(t0);
    if (m.status().failed > 0)
        std::fprintf(stderr, "mirror: %llu failed writes\n",
                     static_cast<unsigned long long>(m.status().failed));
    m.stop();
    return static_cast<double>(users) / s;
}

struct lag_figures {
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    std::size_t samples = 0;
};

lag_figures lag(scimsync::testing::slapd_server& slapd, const std::filesystem::path& dir,
                double rate, double seconds, int run) {
    auto log = open_log(dir / ("log-l" + std::to_string(run)), el::durability::batch);
    br::mirror_options o;
    o.ldap = slapd.admin_settings();
    o.state_dir = dir / ("state-l" + std::to_string(run));
    o.notice = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    br::mirror m(*log, builder("ou=lag" + std::to_string(run) + ",dc=example,dc=com"), o);
    slapd.add({"ou=lag" + std::to_string(run) + ",dc=example,dc=com",
               {{"objectClass", {"organizationalUnit"}}, {"ou", {"lag" + std::to_string(run)}}}});
    if (auto r = m.start(); !r) std::exit(1);
    const auto total = static_cast<std::size_t>(rate * seconds);
    std::vector<clock_type::time_point> acked(total + 1), visible(total + 1);
    std::atomic<std::uint64_t> last_acked{0};
    std::thread watcher([&] {
        std::uint64_t seen = 0;
        while (seen < total) {
            if (!m.wait_for(seen + 1, clock_type::now() + std::chrono::seconds(30))) std::exit(1);
            const auto now = clock_type::now();
            const auto cp = std::min<std::uint64_t>(m.status().checkpoint, total);
            for (auto s = seen + 1; s <= cp; ++s) visible[s] = now;
            seen = cp;
        }
    });
    const auto t0 = clock_type::now();
    std::mutex mu;
    for (std::size_t i = 0; i < total; ++i) {
        // Pacing is the load generator's schedule, not synchronisation.
        std::this_thread::sleep_until(t0 + std::chrono::duration_cast<clock_type::duration>(
                                               std::chrono::duration<double>(i / rate)));
        log->async_append({user_created(i, "l" + std::to_string(run))},
                          [&](el::result<el::append_result> r) {
                              if (!r) std::exit(1);
                              std::lock_guard lk(mu);
                              acked[r->first.value] = clock_type::now();
                              last_acked = r->first.value;
                          });
    }
    watcher.join();
    m.stop();
    std::vector<double> ms;
    for (std::size_t s = 1; s <= total; ++s) {
        ms.push_back(std::max(
            0.0, std::chrono::duration<double, std::milli>(visible[s] - acked[s]).count()));
    }
    std::sort(ms.begin(), ms.end());
    lag_figures f;
    f.samples = ms.size();
    f.p50_ms = ms[ms.size() / 2];
    f.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    f.max_ms = ms.back();
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    const auto users =
        static_cast<std::size_t>(std::stoul(sb::arg(argc, argv, "--users", "10000")));
    const int runs = std::stoi(sb::arg(argc, argv, "--runs", "3"));
    const double rate = std::stod(sb::arg(argc, argv, "--rate", "500"));
    const double lag_seconds = std::stod(sb::arg(argc, argv, "--lag-seconds", "10"));
    bool sync = false;
    for (int i = 1; i < argc; ++i) sync = sync || std::string(argv[i]) == "--sync";

    std::vector<double> raw, mirrored, ratio, p50, p99;
    for (int run = 0; run < runs; ++run) {
        sb::scratch_dir dir(sb::arg(argc, argv, "--dir", ""));
        scimsync::testing::slapd_options so;
        so.nosync = !sync;
        scimsync::testing::slapd_server slapd(so);
        // Alternate which goes first: the second writer meets a bigger database.
        double r = 0, m = 0;
        if (run % 2 == 0) {
            r = raw_adds(slapd, users, run);
            m = mirror_adds(slapd, dir.path(), users, run);
        } else {
            m = mirror_adds(slapd, dir.path(), users, run);
            r = raw_adds(slapd, users, run);
        }
        const auto l = lag(slapd, dir.path(), rate, lag_seconds, run);
        std::printf(
            "run %d: raw %.0f adds/s, mirror %.0f entries/s (%.0f%%), lag p50 %.1f ms "
            "p99 %.1f ms max %.1f ms (%zu changes at %.0f/s)\n",
            run + 1, r, m, 100.0 * m / r, l.p50_ms, l.p99_ms, l.max_ms, l.samples, rate);
        std::fflush(stdout);
        raw.push_back(r);
        mirrored.push_back(m);
        ratio.push_back(m / r);
        p50.push_back(l.p50_ms);
        p99.push_back(l.p99_ms);
    }
    std::printf(
        "median of %d runs (%zu users, slapd %s, syncprov+accesslog): raw pipelined %.0f "
        "adds/s, mirror %.0f entries/s = %.0f%% of raw; lag at %.0f changes/s p50 %.1f ms, "
        "p99 %.1f ms\n",
        runs, users, sync ? "with fsync" : "dbnosync", sb::median(raw), sb::median(mirrored),
        100.0 * sb::median(ratio), rate, sb::median(p50), sb::median(p99));
    return 0;
}
