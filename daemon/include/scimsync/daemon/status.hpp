#pragma once
// The daemon's self-description: GET /healthz, GET /readyz and the `status` admin command.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/router.hpp"
#include "scimsync/eventlog/file_log.hpp"

namespace scimsync::daemon {

// Filled by the composition root before the server runs; afterwards only `log_open` changes
// (it is cleared when the drain starts, so /readyz turns 503 while the daemon shuts down).
// How far one projector is behind the log, and the most /readyz tolerates (0: not checked).
struct projector_lag {
    std::string name;  // "views", "ldap", "policies"
    std::uint64_t events = 0;
    std::uint64_t max = 0;
};

struct daemon_status {
    std::string version;
    std::filesystem::path data_dir;
    std::filesystem::path log_dir;  // must stay writable (the data dir for a Kafka log)
    std::string log;                // "file <dir>" or "kafka topic <topic> at <brokers>"
    eventlog::durability durability = eventlog::durability::batch;
    std::string listen_url;  // "http://HOST:PORT" as bound
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::atomic<bool> log_open{false};
    // The projectors' lags, read by /readyz, `status` and /metrics (any thread).
    std::function<std::vector<projector_lag>()> lags;
};

// GET /healthz -> 200 {"status":"ok"} while the process serves at all.
// GET /readyz  -> 200 {"status":"ready","last_seq":N,"lag":{...}} while the log is open, its
//                 directory writable and every projector within its bound, else 503
//                 {"status":"not ready","reason":...,"lag":{...}}.
void add_health_routes(router& routes, const eventlog::log& log, const daemon_status& status);

// status -> {"version","last_seq","log","durability","data_dir","listen","uptime_s"}.
void add_status_command(command_registry& commands, const eventlog::log& log,
                        const daemon_status& status);

}  // namespace scimsync::daemon
