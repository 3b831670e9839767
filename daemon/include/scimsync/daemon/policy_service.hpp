#pragma once
// Wires the policy projector (policies/runner.hpp) into the daemon: its events go through the
// SCIM command path (so the write model sees device changes), its state is shown by
// `scimsyncctl policy status`, and `policy preview` / `policy resume` reach it through the
// admin socket and the admin API (/admin/v1/policies/...).

#include <filesystem>
#include <memory>
#include <mutex>
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
    // SIGHUP: stops the runner, then starts one with `config` from the same checkpoint, as a
    // restart would: decisions already recorded stand, events after the checkpoint are decided
    // under the new policies. Admin commands meanwhile see the stopped runner's last state.
    // On failure no runner follows the log (the error says why); the next reload may fix it.
    eventlog::result<void> reload(policies::policy_config config);
    void add_routes(router& routes);
    void add_commands(command_registry& commands);
    // The runner's status (lag_events, decided, applied, failed, ...), or nullopt when no
    // population is configured.
    std::optional<nlohmann::json> status() const;

private:
    std::shared_ptr<policies::runner> make_runner(policies::policy_config config) const;
    // The runner now serving commands; null when no population is configured.
    std::shared_ptr<policies::runner> current() const;

    const eventlog::log& log_;
    scim_service& scim_;
    std::filesystem::path state_dir_;
    std::function<void(const std::string&)> notice_;
    std::mutex reload_mu_;   // one reload (or start/stop) at a time
    mutable std::mutex mu_;  // guards runner_ (held only to copy or swap the pointer)
    std::shared_ptr<policies::runner> runner_;
};

}  // namespace scimsync::daemon
