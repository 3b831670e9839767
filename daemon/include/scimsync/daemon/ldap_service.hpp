#pragma once
// The LDAP bridge inside scimsyncd: the mirror (log -> LDAP) and, unless disabled, the
// ingester (LDAP accesslog -> log), built from the [ldap] settings, plus their admin commands
// (`ldap.status`, `ldap.reconcile`). State (checkpoint, sync cookie) lives in DATA_DIR/ldap.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/bridge/mirror.hpp"
#include "scimsync/daemon/config.hpp"
#include "scimsync/eventlog/log.hpp"

namespace scimsync::daemon {

class ldap_service {
public:
    ldap_service(eventlog::log& log, const ldap_config& config, std::filesystem::path state_dir,
                 std::function<void(const std::string&)> notice);
    ~ldap_service();

    // Compiles the mapping and starts the mirror (which first folds the log up to its
    // checkpoint) and the ingester. LDAP being down is not an error: both retry.
    eventlog::result<void> start();
    // Stops taking LDAP changes in (call before closing the log).
    void stop_ingest();
    // Stops the mirror (after the log is closed: it writes what it has, briefly).
    void stop();

    void add_commands(command_registry& commands);

    // Applies changed [ldap] settings (SIGHUP): stops the mirror and the ingester and starts
    // them again with `config`; the mirror re-folds the log from the start (on its thread) and
    // writes what differs from its checkpoint on. Entries the old mapping wrote stay as they
    // are until changed; `ldap reconcile` brings them all in line.
    eventlog::result<void> reload(const ldap_config& config);
    // The mirror's progress and counters, or nullopt when it is not running.
    std::optional<bridge::mirror_status> mirror_status() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::daemon
