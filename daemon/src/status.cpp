#include "scimsync/daemon/status.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scimsync::daemon {

namespace {

// Why the daemon cannot take writes right now, or "" when it can.
std::string not_ready_reason(const eventlog::log& log, const daemon_status& status) {
    if (!status.log_open.load()) return "the log is closed";
    if (const auto failure = log.write_failure()) return failure->message;
    // Catches a read-only remount or lost permissions before a SCIM write would fail.
    if (::access(status.log_dir.c_str(), W_OK) != 0) {
        return "log directory " + status.log_dir.string() +
               " is not writable: " + std::strerror(errno);
    }
    if (status.lags) {
        for (const auto& l : status.lags()) {
            if (l.max > 0 && l.events > l.max)
                return "the " + l.name + " projector is " + std::to_string(l.events) +
                       " events behind the log (health." + l.name + "_max_lag is " +
                       std::to_string(l.max) + ")";
        }
    }
    return {};
}

nlohmann::ordered_json lag_json(const daemon_status& status) {
    nlohmann::ordered_json lag = nlohmann::ordered_json::object();
    if (status.lags)
        for (const auto& l : status.lags()) lag[l.name] = l.events;
    return lag;
}

}  // namespace

void add_health_routes(router& routes, const eventlog::log& log, const daemon_status& status) {
    routes.add("GET", "/healthz",
               [](const http_request&) { return json_response(200, R"({"status":"ok"})"); });
    routes.add("GET", "/readyz", [&log, &status](const http_request&) {
        if (const auto reason = not_ready_reason(log, status); !reason.empty()) {
            nlohmann::ordered_json body;
            body["status"] = "not ready";
            body["reason"] = reason;
            body["lag"] = lag_json(status);
            return json_response(503, body.dump());
        }
        nlohmann::ordered_json body;
        body["status"] = "ready";
        body["last_seq"] = log.last_seq().value;
        body["lag"] = lag_json(status);
        return json_response(200, body.dump());
    });
}

void add_status_command(command_registry& commands, const eventlog::log& log,
                        const daemon_status& status) {
    commands.add("status", [&log, &status](const nlohmann::json&) -> command_result {
        const auto uptime = std::chrono::steady_clock::now() - status.started;
        return nlohmann::json{
            {"version", status.version},
            {"last_seq", log.last_seq().value},
            {"log", status.log},
            {"durability", eventlog::to_string(status.durability)},
            {"data_dir", status.data_dir.string()},
            {"listen", status.listen_url},
            {"lag", lag_json(status)},
            {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(uptime).count()},
        };
    });
}

}  // namespace scimsync::daemon
