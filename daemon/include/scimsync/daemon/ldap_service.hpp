#pragma once
// The LDAP bridge inside scimsyncd: the mirror (log -> LDAP) and, unless disabled, the
// ingester (LDAP accesslog -> log), built from the [ldap] settings, plus their admin commands
// (`ldap.status`, `ldap.reconcile`). State (checkpoint, sync cookie) lives in DATA_DIR/ldap.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "scimsync/daemon/admin_commands.hpp"
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

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::daemon
