#pragma once
// The access model: what users may do (service access and roles, granted to users directly or
// to groups they belong to, nested groups included) and the devices they hold. Folded from
// AccessGranted / AccessRevoked / Device* events as part of the directory (directory.hpp owns
// one access_state and feeds it); the effective-access query walks the directory's
// membership upward. Pure: no I/O.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/types.hpp"

namespace scimsync::model {

class directory;

// Access to a service, optionally with one of its roles ("" = access without a role).
struct grant {
    std::string service;
    std::string role;
    auto operator<=>(const grant&) const = default;
    bool operator==(const grant&) const = default;
    // "dashboard" or "dashboard/admin".
    std::string label() const { return role.empty() ? service : service + "/" + role; }
};

// The services users can be given access to, and each one's roles (from configuration).
struct service_def {
    std::string description;
    std::set<std::string> roles;
};

struct access_catalogue {
    std::map<std::string, service_def> services;
    // "" when `g` names a known service and, if it has a role, one of that service's roles;
    // else a one-line reason naming what is unknown.
    std::string check(const grant& g) const;
    nlohmann::json to_json() const;
};

// Who a grant is attached to: "User/<id>" or "Group/<id>".
struct subject_ref {
    std::string type;  // "User" or "Group"
    std::string id;
    std::string key() const { return type + "/" + id; }
};

struct device_state {
    std::string id;
    std::string name;
    std::string serial;
    std::string platform;
    std::string owner;   // user id, "" when unassigned
    std::string policy;  // device policy name, "" for none
    eventlog::utc_time created{};
    eventlog::utc_time last_modified{};
    std::uint64_t version = 0;
    bool operator==(const device_state&) const = default;
};

// The device as JSON (event data and admin API): id, name, serial, platform, owner, policy;
// owner and policy are null when empty.
nlohmann::json device_json(const device_state& d);

class access_state {
public:
    // Folds an Access* or Device* event; other types are ignored. Malformed data is an error.
    eventlog::result<void> apply(const eventlog::event& e);
    // A user or group was deleted: its grants go with it (devices keep their owner field;
    // deprovisioning policies act on devices explicitly).
    void forget_subject(const std::string& key);

    // Grants attached directly to a subject ("User/<id>" or "Group/<id>"); nullptr for none.
    const std::set<grant>* grants_of(std::string_view subject_key) const;
    const std::set<grant>* user_grants(std::string_view user_id) const;
    const std::set<grant>* group_grants(std::string_view group_id) const;

    const device_state* device(std::string_view id) const;
    std::vector<const device_state*> devices() const;                             // sorted by id
    std::vector<const device_state*> devices_of(std::string_view user_id) const;  // by id
    // A serial number identifies one device: the id holding it, if any (case-insensitive).
    const device_state* device_by_serial(std::string_view serial) const;

    nlohmann::json to_json() const;  // for the directory's snapshot
    static eventlog::result<access_state> from_json(const nlohmann::json& j);
    bool operator==(const access_state& o) const;

private:
    struct view_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    using grant_map = std::unordered_map<std::string, std::set<grant>, view_hash, std::equal_to<>>;
    grant_map user_grants_;   // user id -> grants
    grant_map group_grants_;  // group id -> grants
    std::map<std::string, device_state> devices_;
    std::unordered_map<std::string, std::set<std::string>> devices_by_owner_;
    std::unordered_map<std::string, std::string> device_by_serial_;  // lower(serial) -> id
    void index_device(const device_state& d);
    void unindex_device(const device_state& d);
};

// One reason a user has a grant: directly (empty path), or through a group, with the chain of
// groups from one the user is a direct member of up to the group holding the grant.
struct access_reason {
    std::vector<std::string> path;  // group ids; the last holds the grant
    bool direct() const { return path.empty(); }
};

struct effective_grant {
    model::grant grant;
    std::vector<access_reason> reasons;  // direct first, then by path length
};

// Everything `user_id` may do, with why: direct grants, and the grants of every group reachable
// upward through membership (shortest path to each group; cycles are harmless). Sorted by
// grant. Empty for an unknown user.
std::vector<effective_grant> effective_access(const directory& d, std::string_view user_id);

// Every group `user_id` belongs to, directly or through nested groups (sorted ids).
std::vector<std::string> all_groups_of(const directory& d, std::string_view user_id);

}  // namespace scimsync::model
