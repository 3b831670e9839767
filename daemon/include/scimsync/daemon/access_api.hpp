#pragma once
// The admin API's access and device endpoints (under /admin/v1, admin-scope tokens) and the
// matching admin-socket commands. Local users and groups are created and edited through the
// SCIM handlers mounted under /admin/v1/Users and /admin/v1/Groups (scim_service); this file
// adds what SCIM has no word for: the service catalogue, grants of service access and roles,
// the consolidated user and group lists with effective access, the explanation of a user's
// access, and devices. Every change is an event, decided under the SCIM command mutex.

#include <memory>
#include <mutex>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/router.hpp"
#include "scimsync/daemon/scim_service.hpp"
#include "scimsync/model/access.hpp"

namespace scimsync::daemon {

class access_api {
public:
    access_api(scim_service& scim, model::access_catalogue catalogue);

    void add_routes(router& routes);
    // "admin.http": runs any admin API request in-process as the admin socket's user
    // ({"method","path","body"} -> {"status","body"}); scimsyncctl's user, group, access and
    // device commands are built on it. `routes` must outlive the commands.
    void add_commands(command_registry& commands, const router& routes);
    // SIGHUP: the new catalogue answers from the next request on. Grants already recorded stay
    // in the log whatever the catalogue says; only new grants are checked against it.
    void set_catalogue(model::access_catalogue catalogue);
    std::shared_ptr<const model::access_catalogue> catalogue() const;

private:
    scim_service& scim_;
    mutable std::mutex mu_;  // guards the pointer, not the catalogue (immutable once made)
    std::shared_ptr<const model::access_catalogue> catalogue_;
};

}  // namespace scimsync::daemon
