#pragma once
// scimsyncctl's auditor commands, offline on a log (the data directory's, or a Kafka topic):
//   history SUBJECT              every event that touched a user or group, and who caused it
//   state --as-of WHEN           the directory as it was then, as JSON or LDIF
//   diff --from WHEN --to WHEN   what changed between two points
// WHEN is a sequence number or an RFC 3339 time ("2026-03-03" is the start of that day, UTC).
// They read the log and fold it with the same code the daemon's views use (model::directory),
// so "as it was" is exactly what the daemon showed at that point.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "scimsync/bridge/mapping.hpp"
#include "scimsync/eventlog/log.hpp"

namespace scimsync::daemon::ctl {

class audit_commands {
public:
    explicit audit_commands(CLI::App& app);
    // Runs the parsed subcommand, if it is one of these: its exit code; else nullopt.
    // `open_log` opens the log read-only; `ldap` is the [ldap] mapping for LDIF, if configured.
    std::optional<int> run(
        const std::function<eventlog::result<std::unique_ptr<eventlog::log>>()>& open_log,
        const std::optional<bridge::mapping>& ldap, bool json) const;

private:
    struct options;
    std::shared_ptr<options> o_;
};

}  // namespace scimsync::daemon::ctl
