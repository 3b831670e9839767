#include "scimsync/model/events.hpp"

#include "scimsync/eventlog/kafka_log.hpp"

namespace scimsync::model {

namespace el = scimsync::eventlog;

void event_catalogue::add(event_type type, std::map<std::uint16_t, upcast_fn> upcasters) {
    for (auto& [from, fn] : upcasters) upcasters_[{type.name, from}] = std::move(fn);
    by_name_[type.name] = types_.size();
    types_.push_back(std::move(type));
}

const event_type* event_catalogue::find(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &types_[it->second];
}

el::result<void> event_catalogue::upcast(el::event& e) const {
    const event_type* t = find(e.type);
    if (t == nullptr)
        return el::fail(el::errc::unknown_event,
                        "event type \"" + e.type + "\" at seq " + std::to_string(e.seq.value) +
                            " is not known to this build",
                        e.seq);
    if (e.version > t->version)
        return el::fail(el::errc::future_version,
                        e.type + " v" + std::to_string(e.version) + " at seq " +
                            std::to_string(e.seq.value) + " is newer than this build (v" +
                            std::to_string(t->version) + "); upgrade scimsync",
                        e.seq);
    if (e.version == t->version) return {};
    auto data = nlohmann::json::parse(e.data, nullptr, false);
    if (data.is_discarded())
        return el::fail(el::errc::corrupt,
                        "event data at seq " + std::to_string(e.seq.value) + " is not JSON", e.seq);
    while (e.version < t->version) {
        auto it = upcasters_.find({e.type, e.version});
        if (it == upcasters_.end())
            return el::fail(el::errc::unknown_event,
                            "no upcaster for " + e.type + " v" + std::to_string(e.version), e.seq);
        data = it->second(std::move(data));
        ++e.version;
    }
    e.data = data.dump();
    return {};
}

el::result<void> event_catalogue::validate(const el::event& e) const {
    const event_type* t = find(e.type);
    if (t == nullptr)
        return el::fail(el::errc::unknown_event, "event type \"" + e.type + "\" is not known");
    if (e.version != t->version)
        return el::fail(el::errc::invalid_argument,
                        e.type + " must be written at v" + std::to_string(t->version));
    const bool stream_ok = t->singleton ? e.stream == t->stream_kind
                                        : e.stream.size() > t->stream_kind.size() + 1 &&
                                              e.stream.starts_with(t->stream_kind + "/");
    if (!t->stream_kind.empty() && !stream_ok)  // an empty kind stands in for any stream
        return el::fail(el::errc::invalid_argument, e.type + " belongs on a \"" +
                                                        t->stream_pattern() + "\" stream, not \"" +
                                                        e.stream + "\"");
    auto data = nlohmann::json::parse(e.data, nullptr, false);
    if (!data.is_object())
        return el::fail(el::errc::invalid_argument, e.type + " data must be a JSON object");
    for (const auto& key : t->required)
        if (!data.contains(key))
            return el::fail(el::errc::invalid_argument,
                            e.type + " data lacks the required field \"" + key + "\"");
    return {};
}

const event_catalogue& catalogue() {
    static const event_catalogue standard = [] {
        event_catalogue c;
        c.add({"UserCreated",
               1,
               "User",
               false,
               "a user was created; data holds its full resulting SCIM resource",
               {"id", "resource"}});
        c.add({"UserReplaced",
               1,
               "User",
               false,
               "a user's attributes changed (PUT or PATCH); data holds the full resulting resource",
               {"id", "resource"}});
        c.add({"UserDeleted", 1, "User", false, "a user was deleted", {"id"}});
        c.add({"GroupCreated",
               1,
               "Group",
               false,
               "a group was created; data holds its resource and initial members",
               {"id", "resource", "members"}});
        c.add({"GroupReplaced",
               1,
               "Group",
               false,
               "a group's own attributes changed (not its members); data holds the resulting "
               "resource",
               {"id", "resource"}});
        c.add({"GroupMembersChanged",
               1,
               "Group",
               false,
               "members were added to and/or removed from a group (a deterministic delta)",
               {"id", "added", "removed"}});
        c.add({"GroupDeleted", 1, "Group", false, "a group was deleted", {"id"}});
        c.add({"TokenIssued",
               1,
               "Token",
               false,
               "a SCIM bearer token was issued; only its hash is recorded",
               {"id", "name", "hash", "expires"}});
        c.add({"TokenRevoked", 1, "Token", false, "a SCIM bearer token was revoked", {"id"}});
        c.add({"ProvisioningDisabled",
               1,
               "Provisioning",
               true,
               "SCIM provisioning was switched off; SCIM requests are refused until enabled",
               {}});
        c.add({"LdapEntryChanged",
               1,
               "LdapEntry",
               false,
               "an entry was changed in LDAP by someone other than the bridge (from the "
               "accesslog); data holds the diff, its author and the drift decision",
               {"dn", "change", "attributes", "modifier", "csn", "accesslog_entry"}});
        c.add({"ProvisioningEnabled",
               1,
               "Provisioning",
               true,
               "SCIM provisioning was switched back on",
               {}});
        c.add({"AccessGranted",
               1,
               "Access",
               false,
               "access to a service, or one of its roles, was granted to a user or a group",
               {"subject", "service", "role"}});
        c.add({"AccessRevoked",
               1,
               "Access",
               false,
               "a grant of service access or a role was taken back from a user or a group",
               {"subject", "service", "role"}});
        c.add({"DeviceRegistered",
               1,
               "Device",
               false,
               "a device was registered; data holds its resulting state",
               {"id", "device"}});
        c.add({"DeviceUpdated",
               1,
               "Device",
               false,
               "a device changed (name, owner, policy, ...); data holds its resulting state",
               {"id", "device"}});
        c.add({"DeviceRemoved", 1, "Device", false, "a device was removed", {"id"}});
        c.add({"PolicyDecided",
               1,
               "Policy",
               false,
               "a deprovisioning policy decided what a user's change means downstream (before "
               "doing it); held when removals are paused",
               {"decision", "population", "user", "trigger", "action", "source_seq"}});
        c.add({"PolicyApplied",
               1,
               "Policy",
               false,
               "a policy decision was carried out; data lists its effects",
               {"decision", "population", "user", "action", "effects"}});
        c.add({"PolicyFailed",
               1,
               "Policy",
               false,
               "carrying out a policy decision failed (it is retried until it succeeds)",
               {"decision", "population", "user", "action", "error", "attempts"}});
        c.add({"PolicyPaused",
               1,
               "Policy",
               false,
               "removal actions were paused: more removals than the threshold within the window",
               {"reason", "removals", "threshold", "window_minutes"}});
        c.add({"PolicyResumed",
               1,
               "Policy",
               false,
               "an operator resumed removal actions; held decisions are carried out",
               {}});
        // Written or handed out by the Kafka backend of the log (eventlog/kafka_log.hpp);
        // nothing folds them.
        c.add({std::string(eventlog::log_checkpoint_type),
               1,
               "Log",
               true,
               "the hash-chain head a daemon computed after seq; readers check it",
               {"head", "seq"}});
        c.add({std::string(eventlog::log_void_type),
               1,
               "",
               false,
               "stands in for an event of an append that is not whole in the log; no effect",
               {"reason", "type"}});
        return c;
    }();
    return standard;
}

}  // namespace scimsync::model
