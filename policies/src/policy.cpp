#include "scimsync/policies/policy.hpp"

#include <algorithm>
#include <set>

#include "scimsync/model/events.hpp"
#include "scimsync/model/scim/filter.hpp"

namespace scimsync::policies {

namespace el = scimsync::eventlog;
namespace names = scimsync::model::event_names;
namespace scim = scimsync::model::scim;
using json = nlohmann::json;

std::optional<action> parse_action(std::string_view text) {
    for (auto a : {action::nothing, action::unassign, action::change_policy, action::remove_user,
                   action::remove_user_and_devices})
        if (to_string(a) == text) return a;
    return std::nullopt;
}

std::string_view to_string(action a) {
    switch (a) {
        case action::nothing:
            return "nothing";
        case action::unassign:
            return "unassign";
        case action::change_policy:
            return "change_policy";
        case action::remove_user:
            return "remove_user";
        case action::remove_user_and_devices:
            return "remove_user_and_devices";
    }
    return "nothing";
}

bool is_removal(action a) {
    return a == action::remove_user || a == action::remove_user_and_devices;
}

bool decision::removal() const {
    auto a = parse_action(action);
    return a && is_removal(*a);
}

json decision::to_json() const {
    json j{{"decision", id},
           {"population", population},
           {"user", user},
           {"user_name", user_name},
           {"trigger", trigger},
           {"action", action},
           {"source_seq", source_seq},
           {"devices", devices},
           {"held", held},
           {"user_resource", user_resource}};
    if (!role.empty()) j["role"] = role;
    return j;
}

decision decision::from_json(const json& j) {
    decision d;
    d.id = j.value("decision", std::string());
    d.population = j.value("population", std::string());
    d.user = j.value("user", std::string());
    d.user_name = j.value("user_name", std::string());
    d.trigger = j.value("trigger", std::string());
    d.action = j.value("action", std::string());
    d.role = j.value("role", std::string());
    d.source_seq = j.value("source_seq", std::uint64_t{0});
    if (auto it = j.find("devices"); it != j.end() && it->is_array())
        for (const auto& v : *it)
            if (v.is_string()) d.devices.push_back(v.get<std::string>());
    d.held = j.value("held", false);
    d.user_resource = j.value("user_resource", json::object());
    return d;
}

std::string validate(const policy_config& config) {
    std::set<std::string> seen;
    for (const auto& p : config.populations) {
        const std::string at = "policies.populations." + p.name;
        if (!seen.insert(p.name).second) return at + ": defined twice";
        if (p.group.empty() == p.filter.empty())
            return at +
                   ": set exactly one of group (a group's id or displayName) or filter (a "
                   "SCIM filter over users)";
        if (!p.filter.empty()) {
            auto f = scim::filter::parse(scim::user_type(), p.filter);
            if (!f) return at + ".filter: " + f.error().detail;
        }
        if (p.on_deactivate == action::change_policy && p.device_policy.empty())
            return at + ".device_policy: needed by on_deactivate = \"change_policy\"";
        for (const auto& c : p.connectors) {
            const auto it = config.connectors.find(c);
            if (it == config.connectors.end())
                return at + ".connectors: no connector \"" + c +
                       "\" (define it under [policies.connectors." + c + "])";
            if (p.create_account && !it->second.create)
                return at + ".on_create: connector \"" + c + "\" has no create call";
            if (is_removal(p.on_deactivate) && !it->second.remove)
                return at + ".on_deactivate: connector \"" + c + "\" has no remove call";
        }
        if (p.create_account && p.connectors.empty())
            return at + ".on_create: creating an account needs at least one connector";
    }
    if (config.max_removals == 0) return "policies.max_removals: must be at least 1";
    return {};
}

// ---- the engine ------------------------------------------------------------------------

struct engine::compiled {
    std::optional<scim::filter> filter;
    mutable std::optional<std::string> group_id;  // resolved lazily; reset by group events
    mutable bool resolved = false;
};

engine::engine(policy_config config) : config_(std::move(config)) {
    for (const auto& p : config_.populations) {
        auto c = std::make_unique<compiled>();
        if (!p.filter.empty()) {
            auto f = scim::filter::parse(scim::user_type(), p.filter);
            if (f) c->filter.emplace(std::move(*f));
        }
        compiled_.push_back(std::move(c));
    }
    members_.resize(config_.populations.size());
}

engine::~engine() = default;
engine::engine(engine&&) noexcept = default;

const population_def* engine::population(std::string_view name) const {
    for (const auto& p : config_.populations)
        if (p.name == name) return &p;
    return nullptr;
}

bool engine::member(std::string_view population, std::string_view user_id) const {
    for (std::size_t p = 0; p < config_.populations.size(); ++p)
        if (config_.populations[p].name == population)
            return members_[p].contains(std::string(user_id));
    return false;
}

namespace {

bool active_of(const json& resource) {
    const auto it = resource.find("active");
    return it == resource.end() || !it->is_boolean() || it->get<bool>();
}

std::string id_of(const model::resource_state& r) {
    return json::parse(r.json).value("id", std::string());
}

}  // namespace

bool engine::in_population(std::size_t p, const std::string& user_id, const json& resource) const {
    const auto& def = config_.populations[p];
    const auto& c = *compiled_[p];
    if (c.filter) return c.filter->matches(resource);
    if (!c.resolved) {
        c.resolved = true;
        c.group_id.reset();
        if (dir_.group(def.group) != nullptr)
            c.group_id = def.group;
        else if (const auto* g = dir_.group_by_name(def.group))
            c.group_id = id_of(*g);
    }
    if (!c.group_id) return false;
    // Upward from the user until the population's group is reached.
    std::unordered_set<std::string_view> seen;
    std::vector<std::string_view> todo;
    if (const auto* direct = dir_.groups_of(user_id))
        for (const auto& g : *direct)
            if (seen.insert(g).second) todo.push_back(g);
    for (std::size_t i = 0; i < todo.size(); ++i) {
        if (todo[i] == *c.group_id) return true;
        if (const auto* parents = dir_.groups_of(todo[i]))
            for (const auto& g : *parents)
                if (seen.insert(g).second) todo.push_back(g);
    }
    return false;
}

void engine::users_under(const std::string& group_id, std::unordered_set<std::string>& out) const {
    std::unordered_set<std::string> seen{group_id};
    std::vector<std::string> todo{group_id};
    while (!todo.empty()) {
        const std::string g = std::move(todo.back());
        todo.pop_back();
        if (const auto* members = dir_.members(g))
            for (const auto& [id, type] : *members) {
                if (type == "User")
                    out.insert(id);
                else if (seen.insert(id).second)
                    todo.push_back(id);
            }
    }
}

decision engine::make(std::size_t p, const std::string& user_id, const std::string& trigger,
                      std::uint64_t seq) const {
    const auto& def = config_.populations[p];
    decision d;
    d.id = std::to_string(seq) + ":" + def.name + ":" + user_id;
    d.population = def.name;
    d.user = user_id;
    d.trigger = trigger;
    d.source_seq = seq;
    const bool entering = trigger == "created" || trigger == "reactivated" || trigger == "joined";
    if (entering) {
        d.action = "create";
        d.role = def.create_role;
    } else {
        d.action = std::string(to_string(def.on_deactivate));
    }
    if (const auto* u = dir_.user(user_id)) {
        d.user_name = u->user_name;
        d.user_resource = json::parse(u->json);
    } else if (const auto it = gone_.find(user_id); it != gone_.end()) {
        d.user_resource = it->second;  // deleted by this event: as it was just before
        d.user_name = it->second.value("userName", std::string());
    }
    if (!d.user_resource.is_object()) d.user_resource = json::object();
    for (const auto* dev : dir_.access().devices_of(user_id)) d.devices.push_back(dev->id);
    return d;
}

el::result<std::vector<decision>> engine::apply(const el::event& e) {
    std::vector<decision> out;
    const auto* type = model::catalogue().find(e.type);
    const bool user_event = type != nullptr && type->stream_kind == "User";
    const bool group_event = type != nullptr && type->stream_kind == "Group";
    std::unordered_set<std::string> affected;
    bool was_active = false;
    std::string subject;
    if (user_event || group_event) {
        const auto data = json::parse(e.data, nullptr, false);
        if (data.is_object()) subject = data.value("id", std::string());
        if (user_event) {
            affected.insert(subject);
            gone_.clear();
            if (const auto* u = dir_.user(subject)) {
                auto before = json::parse(u->json);
                was_active = active_of(before);
                if (e.type == names::user_deleted) gone_[subject] = std::move(before);
            }
        } else {
            users_under(subject, affected);  // before: members the event may take away
            if (e.type == names::group_members_changed && data.is_object()) {
                for (const auto& r : data.value("removed", json::array()))
                    if (r.is_string()) {
                        const std::string m = r.get<std::string>();
                        if (dir_.user(m) != nullptr) affected.insert(m);
                        if (dir_.group(m) != nullptr) users_under(m, affected);
                    }
            }
        }
    }
    if (auto r = dir_.apply(e); !r) return std::unexpected(r.error());
    if (group_event) {
        if (e.type != names::group_members_changed)
            for (auto& c : compiled_) c->resolved = false;  // names and ids may have moved
        users_under(subject, affected);                     // after: members the event brought
    }
    if (affected.empty()) return out;
    // Each affected user's resource, parsed once for every population.
    struct affected_user {
        std::string id;
        bool exists = false;
        bool active = false;
        json resource;
    };
    std::vector<affected_user> users;
    for (const auto& id : affected) {
        affected_user a{id};
        if (const auto* state = dir_.user(id)) {
            a.exists = true;
            a.resource = json::parse(state->json);
            a.active = active_of(a.resource);
        }
        users.push_back(std::move(a));
    }
    std::sort(users.begin(), users.end(),
              [](const affected_user& a, const affected_user& b) { return a.id < b.id; });
    for (std::size_t p = 0; p < config_.populations.size(); ++p) {
        for (const auto& [u, exists, active, resource] : users) {
            const bool now = active && in_population(p, u, resource);
            const bool was = members_[p].contains(u);
            if (now == was) continue;
            if (now) {
                members_[p].insert(u);
                if (!config_.populations[p].create_account) continue;
                const std::string trigger = e.type == names::user_created ? "created"
                                            : (user_event && !was_active) ? "reactivated"
                                                                          : "joined";
                out.push_back(make(p, u, trigger, e.seq.value));
            } else {
                members_[p].erase(u);
                const std::string trigger = !exists ? "deleted" : !active ? "deactivated" : "left";
                out.push_back(make(p, u, trigger, e.seq.value));
            }
        }
    }
    return out;
}

std::size_t engine::member_count(std::string_view population) const {
    for (std::size_t p = 0; p < config_.populations.size(); ++p)
        if (config_.populations[p].name == population) return members_[p].size();
    return 0;
}

std::vector<decision> engine::preview(std::string_view user_id) const {
    std::vector<decision> out;
    const std::string id(user_id);
    for (std::size_t p = 0; p < config_.populations.size(); ++p)
        if (members_[p].contains(id)) out.push_back(make(p, id, "deactivated", 0));
    return out;
}

namespace {

std::string json_escaped(const std::string& s) {
    const std::string quoted = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
    return quoted.substr(1, quoted.size() - 2);
}

std::string primary_email(const json& user) {
    if (!user.is_object()) return {};
    const auto emails = user.find("emails");
    if (emails == user.end() || !emails->is_array() || emails->empty()) return {};
    for (const auto& e : *emails)
        if (e.is_object() && e.value("primary", false) && e.contains("value"))
            return e.value("value", "");
    return emails->front().is_object() ? emails->front().value("value", std::string()) : "";
}

}  // namespace

std::string url_escape(std::string_view text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '@') {
            out.push_back(char(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string unknown_placeholder(std::string_view text) {
    static const std::set<std::string, std::less<>> known{
        "user.id", "user.userName", "user.externalId", "user.email",
        "role",    "population",    "decision"};
    std::size_t pos = 0;
    while ((pos = text.find("{{", pos)) != std::string_view::npos) {
        const auto close = text.find("}}", pos + 2);
        if (close == std::string_view::npos) return std::string(text.substr(pos + 2));
        std::string_view key = text.substr(pos + 2, close - pos - 2);
        while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
        while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
        if (!known.contains(key)) return std::string(key);
        pos = close + 2;
    }
    return {};
}

std::string render_template(std::string_view text, const decision& d, bool url) {
    const std::map<std::string, std::string, std::less<>> values{
        {"user.id", d.user},
        {"user.userName", d.user_name},
        {"user.externalId", d.user_resource.is_object()
                                ? d.user_resource.value("externalId", std::string())
                                : std::string()},
        {"user.email", primary_email(d.user_resource)},
        {"role", d.role},
        {"population", d.population},
        {"decision", d.id}};
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto open = text.find("{{", pos);
        if (open == std::string_view::npos) break;
        const auto close = text.find("}}", open + 2);
        if (close == std::string_view::npos) break;
        out.append(text.substr(pos, open - pos));
        std::string_view key = text.substr(open + 2, close - open - 2);
        while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
        while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
        const auto it = values.find(key);
        if (it == values.end())
            out.append(text.substr(open, close + 2 - open));  // validated at start-up
        else
            out += url ? url_escape(it->second) : json_escaped(it->second);
        pos = close + 2;
    }
    out.append(text.substr(pos));
    return out;
}

}  // namespace scimsync::policies
