#pragma once
// The directory: users, groups, SCIM tokens and the provisioning switch, folded from the event
// log. A pure function of the events applied to it (DESIGN.md invariant 2): replaying the log
// from the start yields an equal directory. Pure: no I/O.
//
// Indexed for what identity providers ask constantly: id, userName (case-insensitive),
// externalId, group displayName (case-insensitive), and membership in both directions. Adding
// or removing one member costs the same whatever the group's size.
//
// Resources are kept as compact JSON text (their stored layout, see scim/resource.hpp) rather
// than as nlohmann trees: about a fifth of the memory, which is what lets a million users fit.
// User events in canonical form (json_text.hpp; what every writer's dump() produces) are folded
// without a tree: the stored text is the resource's slice of the event data, byte for byte.
//
// Each user and group remembers the client that created it (the actor of its creating event):
// externalId is unique per client and resource type (DESIGN.md invariant 4), and several
// clients may use the same externalId.
//
// Thread-safety: none; the owner serialises access.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/types.hpp"
#include "scimsync/model/access.hpp"
#include "scimsync/model/probe_map.hpp"
#include "scimsync/model/sharded_map.hpp"

namespace scimsync::model {

struct resource_state {
    std::string json;  // the stored resource, compact (includes "id")
    eventlog::utc_time created{};
    eventlog::utc_time last_modified{};
    std::uint64_t version = 0;  // events applied to this resource so far: the ETag W/"<version>"
    std::uint32_t owner = 0;    // the creating client, see directory::owner()
    // Created by an admin (event source "admin"), not by an identity provider over SCIM:
    // only the admin interface may change it.
    bool local = false;
};

struct user_state : resource_state {
    std::string user_name;    // as stored
    std::string external_id;  // "" when none
    std::optional<std::string> password_hash;
};

struct group_state : resource_state {
    std::string display_name;
    std::string external_id;
};

struct member_ref {
    std::string value;  // member id
    std::string type;   // "User" or "Group"
};

struct token_state {
    std::string id;
    std::string name;
    std::string hash;  // "sha256:<hex>" of the secret
    eventlog::utc_time created{};
    std::optional<eventlog::utc_time> expires;
    bool revoked = false;
    std::string scope = "scim";  // "scim" (identity providers) or "admin" (the admin API)
};

// The directory's indexes, which grow with the directory: open-addressing maps that reach an
// absent key in one memory access (probe_map.hpp), sharded, so that no insert rehashes a whole
// index (sharded_map.hpp).
template <class T>
using string_index = sharded_map<probe_map<T>>;
using string_multi_index = sharded_map<std::unordered_multimap<std::string, std::string>>;
// A group's members: member id -> "User" or "Group".
using member_map = sharded_map<probe_map<std::string>>;

// The groups one member is in directly, sorted. Every member of any group has one, and most
// are in a few groups: a sorted vector holds one group in one allocation of 32 bytes, where a
// hash set took three allocations (bucket array, node, and about 200 bytes in all). Iteration
// is in id order, so walks over a member's groups are the same in every replay.
class group_set {
public:
    using const_iterator = std::vector<std::string>::const_iterator;
    const_iterator begin() const { return ids_.begin(); }
    const_iterator end() const { return ids_.end(); }
    std::size_t size() const { return ids_.size(); }
    bool empty() const { return ids_.empty(); }
    bool contains(std::string_view id) const;
    std::size_t count(std::string_view id) const { return contains(id) ? 1 : 0; }
    // False when `id` was already there (or, for erase, was not).
    bool insert(std::string_view id);
    bool erase(std::string_view id);
    bool operator==(const group_set&) const = default;

private:
    std::vector<std::string> ids_;
};

class directory {
public:
    // Applies one event of the current schema version (upcast first). Unknown types are an
    // error; events of types the directory does not fold are ignored. Malformed data is an
    // error naming the seq (fail closed: the projector stops rather than skip it).
    eventlog::result<void> apply(const eventlog::event& e);

    // Whether the last apply() took effect. An event voids when the preconditions it carries
    // ("expect", written on logs with several writers; docs/events.md) do not hold at its
    // position in the log: the resource's version or existence, uniqueness of userName,
    // displayName and externalId per client, or an earlier event of the same append that
    // voided. Every reader of the log reaches the same verdict; a void event changes nothing.
    enum class void_kind {
        none,           // it took effect
        taken,          // a unique name or the id is taken by another resource (SCIM 409)
        stale,          // the resource is at another version than expected (SCIM 412)
        gone,           // the resource does not exist (any more) (SCIM 404)
        with_previous,  // an earlier event of the same append voided
    };
    struct void_verdict {
        void_kind kind = void_kind::none;
        std::string detail;
    };
    const void_verdict& last_void() const { return last_void_; }

    const user_state* user(std::string_view id) const;
    const user_state* user_by_name(std::string_view user_name) const;  // case-insensitive
    // externalId is case-exact. Without a client: the match with the smallest id, any client.
    const user_state* user_by_external_id(std::string_view external_id) const;
    const user_state* user_by_external_id(std::string_view client,
                                          std::string_view external_id) const;
    const group_state* group(std::string_view id) const;
    const group_state* group_by_name(std::string_view display_name) const;  // case-insensitive
    const group_state* group_by_external_id(std::string_view external_id) const;
    const group_state* group_by_external_id(std::string_view client,
                                            std::string_view external_id) const;
    // Every user (group) with this externalId, whichever client created it; sorted.
    std::vector<std::string_view> user_ids_by_external_id(std::string_view external_id) const;
    std::vector<std::string_view> group_ids_by_external_id(std::string_view external_id) const;
    // The client that created the resource: the actor of its creating event.
    const std::string& owner(const resource_state& r) const { return owners_[r.owner]; }

    // A group's members (member id -> "User" or "Group"); membership tests and counts are O(1).
    const member_map* members(std::string_view group_id) const;
    // Groups that list `member_id` directly.
    const group_set* groups_of(std::string_view member_id) const;

    std::size_t user_count() const { return users_.size(); }
    std::size_t group_count() const { return groups_.size(); }
    // Users, groups and everything that is a member of some group: roughly the size of a
    // snapshot in entries (directory_projector::state_size).
    std::size_t entry_count() const { return users_.size() + groups_.size() + member_of_.size(); }
    // Sizes the user and group indexes for this many more of each than they hold now, so that
    // the next that many creations rehash nothing. The indexes are sharded (sharded_map.hpp),
    // so growing past this costs stops of milliseconds, not one of the whole index; a daemon
    // calls this once it has rebuilt its views, to spare even those during a bulk import.
    void reserve_headroom(std::size_t users, std::size_t groups);
    // Ids in a stable order (sorted), for paging.
    std::vector<std::string_view> user_ids() const;
    std::vector<std::string_view> group_ids() const;

    const token_state* token(std::string_view id) const;
    std::vector<const token_state*> tokens() const;
    bool provisioning_enabled() const { return provisioning_enabled_; }

    // Attributes LDAP owns for a user (the bridge's drift policy `accept`), as last changed in
    // LDAP: attribute -> values. nullptr when there are none. Folded from LdapEntryChanged
    // events that name the user; read-only in the SCIM view.
    const std::map<std::string, std::vector<std::string>>* ldap_attributes(
        std::string_view user_id) const;

    // Grants and devices (access.hpp).
    const access_state& access() const { return access_; }

    // Snapshots (eventlog::projector): the whole state as JSON text, and back. serialize_to
    // hands the text to `out` a line at a time (the line's buffer is reused, so `out` must
    // copy what it keeps); serialize() gathers it into one string.
    void serialize_to(const std::function<void(std::string_view)>& out) const;
    std::string serialize() const;
    static eventlog::result<directory> deserialize(std::string_view text);

    bool operator==(const directory& other) const;

private:
    struct user_fact;
    eventlog::result<void> apply_user(const eventlog::event& e, user_fact f);
    eventlog::result<void> apply_group(const eventlog::event& e, const nlohmann::json& data);
    void index_user(const std::string& id, const user_state& u);
    void unindex_user(const std::string& id, const user_state& u);
    void index_group(const std::string& id, const group_state& g);
    void unindex_group(const std::string& id, const group_state& g);
    void add_member(const std::string& group_id, const member_ref& m);
    bool member_exists(const member_ref& m) const;
    void remove_member(const std::string& group_id, const std::string& member_id);
    void drop_memberships_of(const std::string& member_id, eventlog::utc_time when);

    string_index<user_state> users_;
    string_index<group_state> groups_;
    string_index<std::string> user_by_name_;  // lower-cased userName -> id
    // externalId -> id; one externalId may belong to resources of several clients.
    string_multi_index user_by_external_;
    string_index<std::string> group_by_name_;  // lower-cased -> id
    string_multi_index group_by_external_;
    std::uint32_t intern_owner(const std::string& actor);
    std::vector<std::string> owners_{std::string()};  // resource_state::owner -> actor
    std::unordered_map<std::string, std::uint32_t> owner_index_;
    // group id -> (member id -> member type)
    string_index<member_map> members_;
    // member id -> ids of groups listing it
    string_index<group_set> member_of_;
    std::map<std::string, token_state> tokens_;
    eventlog::result<void> apply_ldap_change(const eventlog::event& e);
    std::unordered_map<std::string, std::map<std::string, std::vector<std::string>>> ldap_owned_;
    bool provisioning_enabled_ = true;
    access_state access_;
    eventlog::result<void> apply_event(const eventlog::event& e);
    void_verdict last_void_;  // describes the last apply() only
    // Whether the last event voided: part of the state (snapshots keep it), since the next
    // event's verdict may depend on it (expect.with_previous).
    bool previous_voided_ = false;
};

std::string lower(std::string_view s);

}  // namespace scimsync::model
