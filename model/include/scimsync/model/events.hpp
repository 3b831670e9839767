#pragma once
// The event catalogue: every event type scimsync writes, its current schema version, the
// stream it belongs to, the shape of its data, and the upcasters that bring older versions to
// the current one. docs/events.md is the prose form of this file; keep them in step.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/projector.hpp"

namespace scimsync::model {

struct event_type {
    std::string name;                   // e.g. "UserCreated"
    std::uint16_t version = 1;          // the schema version this build writes
    std::string stream_kind;            // streams are "<stream_kind>/<id>"... ("": any stream)
    bool singleton = false;             // ...or exactly "<stream_kind>" when there is one
    std::string summary;                // one line, for docs and `log stats`
    std::vector<std::string> required;  // top-level keys `data` must have

    std::string stream_pattern() const { return singleton ? stream_kind : stream_kind + "/<id>"; }
};

// Turns data of version v into data of version v+1 (pure; may rename or restructure fields).
using upcast_fn = std::function<nlohmann::json(nlohmann::json)>;

class event_catalogue final : public eventlog::upcaster {
public:
    void add(event_type type, std::map<std::uint16_t, upcast_fn> upcasters = {});

    const event_type* find(std::string_view name) const;
    const std::vector<event_type>& types() const { return types_; }

    // Brings `e` to the current version of its type. Unknown types and versions newer than
    // this build are errors (fail closed), never skipped.
    eventlog::result<void> upcast(eventlog::event& e) const override;

    // Checks an event about to be written: known type, current version, data an object with
    // the required keys, stream of the right kind.
    eventlog::result<void> validate(const eventlog::event& e) const;

private:
    std::vector<event_type> types_;
    std::map<std::string, std::size_t, std::less<>> by_name_;
    std::map<std::pair<std::string, std::uint16_t>, upcast_fn> upcasters_;
};

// The catalogue of this build.
const event_catalogue& catalogue();

// Event type names, so that writers never spell them by hand.
namespace event_names {
inline constexpr const char* user_created = "UserCreated";
inline constexpr const char* user_replaced = "UserReplaced";
inline constexpr const char* user_deleted = "UserDeleted";
inline constexpr const char* group_created = "GroupCreated";
inline constexpr const char* group_replaced = "GroupReplaced";
inline constexpr const char* group_members_changed = "GroupMembersChanged";
inline constexpr const char* group_deleted = "GroupDeleted";
inline constexpr const char* token_issued = "TokenIssued";
inline constexpr const char* token_revoked = "TokenRevoked";
inline constexpr const char* provisioning_disabled = "ProvisioningDisabled";
inline constexpr const char* provisioning_enabled = "ProvisioningEnabled";
inline constexpr const char* ldap_entry_changed = "LdapEntryChanged";
inline constexpr const char* access_granted = "AccessGranted";
inline constexpr const char* access_revoked = "AccessRevoked";
inline constexpr const char* device_registered = "DeviceRegistered";
inline constexpr const char* device_updated = "DeviceUpdated";
inline constexpr const char* device_removed = "DeviceRemoved";
inline constexpr const char* policy_decided = "PolicyDecided";
inline constexpr const char* policy_applied = "PolicyApplied";
inline constexpr const char* policy_failed = "PolicyFailed";
inline constexpr const char* policy_paused = "PolicyPaused";
inline constexpr const char* policy_resumed = "PolicyResumed";
}  // namespace event_names

}  // namespace scimsync::model
