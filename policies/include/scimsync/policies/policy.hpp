#pragma once
// Deprovisioning policies: populations of users, what happens downstream when a user enters or
// leaves one, and the decisions that follows from the log. Pure (no I/O): the engine folds
// events into its own directory and says what each event means; runner.hpp carries it out.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/types.hpp"
#include "scimsync/model/directory.hpp"

namespace scimsync::policies {

// What leaving a population does.
enum class action {
    nothing,                  // recorded, no effect
    unassign,                 // the user's devices lose their owner
    change_policy,            // the user's devices move to the population's device policy
    remove_user,              // the user's account is removed downstream (HTTP connectors)
    remove_user_and_devices,  // that, and the user's devices are removed
};
std::optional<action> parse_action(std::string_view text);
std::string_view to_string(action a);
// Removal actions count against the deletion threshold.
bool is_removal(action a);

// A call template: {{user.id}}, {{user.userName}}, {{user.externalId}}, {{user.email}},
// {{role}}, {{population}}, {{decision}} are replaced (JSON-escaped in the body, percent-escaped
// in the URL).
struct http_call {
    std::string method = "POST";
    std::string url;   // http://host:port/path
    std::string body;  // "" for none
};

struct connector_def {
    std::string name;
    std::optional<http_call> create;  // on_create = create
    std::optional<http_call> remove;  // remove_user, remove_user_and_devices
    // "Header-Name: value" read from a file at start-up; a secret, never logged.
    std::string auth_header;
    // https: a PEM file of the CAs to trust instead of the system's.
    std::string ca_file;
    std::chrono::milliseconds timeout{5000};
    int report_after_attempts = 5;  // a PolicyFailed event after this many failed attempts
    std::chrono::milliseconds backoff_initial{200};
    std::chrono::milliseconds backoff_max{30'000};
};

struct population_def {
    std::string name;
    std::string group;   // a group (id or displayName); members, nested included
    std::string filter;  // or a SCIM filter over user attributes
    // On entering (created, reactivated, joined): create the downstream account with a role.
    bool create_account = false;
    std::string create_role;
    action on_deactivate = action::nothing;
    std::string device_policy;            // for change_policy
    std::vector<std::string> connectors;  // HTTP connectors this population's accounts live in
    // The LDAP directory is a connector too: remove_user* removes the user's LDAP entry (the
    // bridge's mirror deletes it on PolicyApplied with ldap_removed) until reactivation.
    bool ldap = false;
};

struct policy_config {
    std::vector<population_def> populations;
    std::map<std::string, connector_def> connectors;
    // More than `max_removals` removal actions within `window` pause removals.
    std::size_t max_removals = 50;
    std::chrono::minutes window{10};
    bool enabled() const { return !populations.empty(); }
};

// "" when the configuration is usable; else one line naming the population or connector and
// the key ("populations.mdm.filter: ...").
std::string validate(const policy_config& config);

// One decision: what an event means for one user in one population.
struct decision {
    std::string id;  // "<source seq>:<population>:<user id>", unique and stable across replays
    std::string population;
    std::string user;
    std::string user_name;
    std::string trigger;  // created, reactivated, joined | deactivated, deleted, left
    std::string action;   // "create" or one of the five deactivation actions
    std::string role;     // for create
    std::uint64_t source_seq = 0;
    std::vector<std::string> devices;  // devices the user held when decided
    nlohmann::json user_resource;      // for call templates (the stored SCIM resource)
    bool held = false;                 // removals paused: waits for `policy resume`

    bool entering() const { return action == "create"; }
    bool removal() const;
    nlohmann::json to_json() const;  // PolicyDecided data
    static decision from_json(const nlohmann::json& j);
};

class engine {
public:
    explicit engine(policy_config config);
    ~engine();
    engine(engine&&) noexcept;

    // Folds one event (upcast) and returns the decisions it implies, in population order.
    eventlog::result<std::vector<decision>> apply(const eventlog::event& e);

    const model::directory& directory() const { return dir_; }
    const policy_config& config() const { return config_; }
    const population_def* population(std::string_view name) const;
    // Is the user an active member of the population now?
    bool member(std::string_view population, std::string_view user_id) const;
    std::size_t member_count(std::string_view population) const;
    // What deactivating the user now would decide, per population the user is in (no fold).
    std::vector<decision> preview(std::string_view user_id) const;

private:
    // Is the user (whose stored resource is `resource`) in population `p`?
    bool in_population(std::size_t p, const std::string& user_id,
                       const nlohmann::json& resource) const;
    void users_under(const std::string& group_id, std::unordered_set<std::string>& out) const;
    decision make(std::size_t p, const std::string& user_id, const std::string& trigger,
                  std::uint64_t seq) const;

    policy_config config_;
    struct compiled;
    std::vector<std::unique_ptr<compiled>> compiled_;
    model::directory dir_;
    std::vector<std::unordered_set<std::string>> members_;  // per population: active members
    std::map<std::string, nlohmann::json> gone_;  // users the current event deletes, as they were
};

// Percent-encodes everything but RFC 3986 unreserved characters (and '@'): a URL path
// segment or query value.
std::string url_escape(std::string_view text);

// The first {{placeholder}} in `text` that render_template does not know, or "".
std::string unknown_placeholder(std::string_view text);

// Replaces the {{...}} placeholders of a call template for one decision.
std::string render_template(std::string_view text, const decision& d, bool url);

}  // namespace scimsync::policies
