#pragma once
// Wires the policy projector (policies/runner.hpp) into the daemon: its events go through the
// SCIM command path (so the write model sees device changes), its state is shown by
// `scimsyncctl policy status`, and `policy preview` / `policy resume` reach it through the
// admin socket and the admin API (/admin/v1/policies/...).

#include <filesystem>
#include <memory>
#include <optional>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/router.hpp"
#include "scimsync/daemon/scim_service.hpp"
#include "scimsync/policies/runner.hpp"

namespace scimsync::daemon {

class policy_service {
public:
    policy_service(const eventlog::log& log, scim_service& scim, policies::policy_config config,
                   std::filesystem::path state_dir, std::function<void(const std::string&)> notice);
    ~policy_service();

    eventlog::result<void> start();
    void stop();
    void add_routes(router& routes);
    void add_commands(command_registry& commands);
    // The runner's status (lag_events, decided, applied, failed, ...), or nullopt when no
    // population is configured.
    std::optional<nlohmann::json> status() const;

private:
    scim_service& scim_;
    bool enabled_;
    std::unique_ptr<policies::runner> runner_;
};

}  // namespace scimsync::daemon
