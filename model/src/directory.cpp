#include "scimsync/model/directory.hpp"

#include <algorithm>
#include <charconv>

#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/ascii.hpp"
#include "scimsync/model/events.hpp"
#include "scimsync/model/json_text.hpp"

namespace scimsync::model {

namespace el = scimsync::eventlog;
namespace names = event_names;
using nlohmann::json;

std::string lower(std::string_view s) {
    return ascii::lowered(s);
}

namespace {

std::unexpected<el::error> malformed(const el::event& e, const std::string& what) {
    return el::fail(el::errc::corrupt,
                    e.type + " at seq " + std::to_string(e.seq.value) + ": " + what, e.seq);
}

std::string string_at(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <class Map>
auto find_ptr(const Map& m, std::string_view key) -> const typename Map::mapped_type* {
    typename Map::const_iterator it;
    if constexpr (requires { typename Map::hasher::is_transparent; })
        it = m.find(key);
    else
        it = m.find(std::string(key));
    return it == m.end() ? nullptr : &it->second;
}

}  // namespace

// What a user event says, however it was read.
struct directory::user_fact {
    std::string id;
    std::string resource;  // compact JSON text of the resource ("" for UserDeleted)
    std::string user_name;
    std::string external_id;
    bool password_given = false;  // password_hash present (string or null)
    std::optional<std::string> password_hash;
    std::optional<nlohmann::json> expect;  // preconditions (multi-writer logs only)
};

namespace {

// The fast path: canonical data taken apart as text. nullopt sends the event to nlohmann.
std::optional<std::string> canonical_string(std::string_view token) {
    if (token.empty() || token.front() != '"') return std::string();  // not a string: no value
    return json_text::string_value(token);
}

}  // namespace

el::result<void> directory::apply(const el::event& e) {
    last_void_ = {};
    auto r = apply_event(e);
    previous_voided_ = r.has_value() && last_void_.kind != void_kind::none;
    return r;
}

el::result<void> directory::apply_event(const el::event& e) {
    const auto* type = catalogue().find(e.type);
    if (type == nullptr) return malformed(e, "unknown event type");
    if (type->stream_kind == "User") {
        user_fact f;
        bool fast = false;
        if (auto members = json_text::canonical_members(e.data)) {
            fast = true;
            std::string_view resource;
            for (const auto& m : *members) {
                if (m.key == "id") {
                    auto v = canonical_string(m.value);
                    fast = fast && v.has_value();
                    if (v) f.id = std::move(*v);
                } else if (m.key == "resource") {
                    resource = m.value;
                } else if (m.key == "password_hash") {
                    f.password_given = true;
                    if (m.value.front() == '"') f.password_hash = json_text::string_value(m.value);
                } else if (m.key == "expect") {
                    f.expect = json::parse(m.value, nullptr, false);
                }
            }
            if (fast && e.type != names::user_deleted) {
                // A non-object resource is malformed; the slow path says so.
                auto fields = json_text::canonical_members(resource);
                fast = fields.has_value();
                if (fast) {
                    f.resource = std::string(resource);
                    for (const auto& m : *fields) {
                        if (m.key != "userName" && m.key != "externalId") continue;
                        auto v = canonical_string(m.value);
                        if (!v) fast = false;
                        (m.key == "userName" ? f.user_name : f.external_id) = v ? *v : "";
                    }
                }
            }
        }
        if (!fast) {
            f = user_fact{};
            auto data = json::parse(e.data, nullptr, false);
            if (!data.is_object() || string_at(data, "id").empty())
                return malformed(e, "data is not an object with an id");
            f.id = string_at(data, "id");
            if (e.type != names::user_deleted) {
                auto res = data.find("resource");
                if (res == data.end() || !res->is_object())
                    return malformed(e, "resource is not an object");
                f.resource = res->dump();
                f.user_name = string_at(*res, "userName");
                f.external_id = string_at(*res, "externalId");
            }
            if (auto ph = data.find("password_hash"); ph != data.end()) {
                f.password_given = true;
                if (ph->is_string()) f.password_hash = ph->get<std::string>();
            }
            if (auto ex = data.find("expect"); ex != data.end()) f.expect = *ex;
        }
        if (f.id.empty()) return malformed(e, "data is not an object with an id");
        return apply_user(e, std::move(f));
    }
    if (type->stream_kind == "Access" || type->stream_kind == "Device") return access_.apply(e);
    if (type->stream_kind == "Group" || type->stream_kind == "Token") {
        auto data = json::parse(e.data, nullptr, false);
        if (!data.is_object() || string_at(data, "id").empty())
            return malformed(e, "data is not an object with an id");
        if (type->stream_kind == "Group") return apply_group(e, data);
        const std::string id = data["id"];
        if (e.type == names::token_issued) {
            token_state t;
            t.id = id;
            t.name = string_at(data, "name");
            t.hash = string_at(data, "hash");
            t.scope = data.value("scope", std::string("scim"));
            auto created = el::parse_time(string_at(data, "created"));
            t.created = created ? *created : e.time;
            if (data.contains("expires") && data["expires"].is_string()) {
                auto exp = el::parse_time(data["expires"].get<std::string>());
                if (!exp) return malformed(e, "expires is not a time");
                t.expires = *exp;
            }
            tokens_[id] = std::move(t);
        } else if (e.type == names::token_revoked) {
            auto it = tokens_.find(id);
            if (it != tokens_.end()) it->second.revoked = true;
        }
        return {};
    }
    if (e.type == names::provisioning_disabled) provisioning_enabled_ = false;
    if (e.type == names::provisioning_enabled) provisioning_enabled_ = true;
    if (e.type == names::ldap_entry_changed) return apply_ldap_change(e);
    return {};
}

// A change made in LDAP: the attributes recorded as `accept` (LDAP owns them) become part of
// the user's view. Only modifications of an entry the event ties to a user (`user_name`).
el::result<void> directory::apply_ldap_change(const el::event& e) {
    const auto data = json::parse(e.data, nullptr, false);
    if (!data.is_object()) return malformed(e, "data is not an object");
    const auto name = data.find("user_name");
    if (name == data.end() || !name->is_string() || data.value("change", "") != "modify") return {};
    const auto by_name = user_by_name_.find(lower(name->get<std::string>()));
    if (by_name == user_by_name_.end()) return {};
    const std::string uid = by_name->second;
    const auto drift = data.find("drift");
    const auto attrs = data.find("attributes");
    if (drift == data.end() || !drift->is_object() || attrs == data.end() || !attrs->is_array())
        return {};
    auto& owned = ldap_owned_[uid];
    for (const auto& a : *attrs) {
        if (!a.is_object() || !a.contains("name") || !a["name"].is_string()) continue;
        const std::string attr = a["name"];
        const auto policy = drift->find(attr);
        if (policy == drift->end() || *policy != "accept" || a.value("redacted", false)) continue;
        std::vector<std::string> values;
        if (const auto v = a.find("values"); v != a.end() && v->is_array())
            for (const auto& x : *v)
                if (x.is_string()) values.push_back(x.get<std::string>());
        const std::string op = a.value("op", "");
        auto& current = owned[attr];
        if (op == "replace") {
            current = std::move(values);
        } else if (op == "add") {
            for (auto& v : values)
                if (std::find(current.begin(), current.end(), v) == current.end())
                    current.push_back(std::move(v));
        } else if (op == "delete") {
            if (values.empty()) current.clear();
            for (const auto& v : values) std::erase(current, v);
        }
        if (current.empty()) owned.erase(attr);
    }
    if (owned.empty()) ldap_owned_.erase(uid);
    return {};
}

const std::map<std::string, std::vector<std::string>>* directory::ldap_attributes(
    std::string_view user_id) const {
    const auto it = ldap_owned_.find(std::string(user_id));
    return it == ldap_owned_.end() ? nullptr : &it->second;
}

namespace {

// An event's "expect" member: the state it was decided against. Written only on logs with
// several writers (DESIGN.md invariant 4: order decides conflicts); events without it are
// applied as they are, because a single writer decided them before appending.
struct expectation {
    bool present = false;
    std::optional<std::uint64_t> version;  // the resource's version; 0 = it does not exist
    // Void if the event just before this one voided: set on every event of an append after
    // the first, whose events are consecutive in the log, so that an append is all or nothing.
    bool with_previous = false;
};

std::optional<expectation> read_expect(const std::optional<json>& ex) {
    expectation out;
    if (!ex) return out;
    if (!ex->is_object()) return std::nullopt;
    out.present = true;
    if (auto v = ex->find("version"); v != ex->end()) {
        if (!v->is_number_unsigned()) return std::nullopt;
        out.version = v->get<std::uint64_t>();
    }
    if (auto w = ex->find("with_previous"); w != ex->end()) {
        if (!w->is_boolean()) return std::nullopt;
        out.with_previous = w->get<bool>();
    }
    return out;
}

// Why a resource's current version (0: none) does not meet the expectation.
directory::void_verdict version_mismatch(const expectation& x, bool creating, std::uint64_t current,
                                         const std::string& what, bool previous_voided) {
    using kind = directory::void_kind;
    if (!x.present) return {};
    if (x.with_previous && previous_voided)
        return {kind::with_previous, "an earlier event of the same request had no effect"};
    if (x.version) {
        if (*x.version == current) return {};
        if (current == 0) return {kind::gone, what + " no longer exists"};
        if (*x.version == 0) return {kind::taken, what + " already exists"};
        return {kind::stale, what + " is at version " + std::to_string(current) + ", not " +
                                 std::to_string(*x.version)};
    }
    if (creating && current != 0) return {kind::taken, what + " already exists"};
    if (!creating && current == 0) return {kind::gone, what + " does not exist"};
    return {};
}

}  // namespace

el::result<void> directory::apply_user(const el::event& e, user_fact f) {
    const std::string& id = f.id;
    const auto x = read_expect(f.expect);
    if (!x) return malformed(e, "expect is not an object with an unsigned version");
    if (x->present) {
        const auto* current = user(id);
        const bool creating = e.type == names::user_created;
        void_verdict why = version_mismatch(*x, creating, current ? current->version : 0,
                                            "User " + id, previous_voided_);
        if (why.kind == void_kind::none && e.type != names::user_deleted) {
            const std::string& client = current ? owner(*current) : e.actor;
            if (const auto* other = user_by_name(f.user_name); other != nullptr && other != current)
                why = {void_kind::taken, "userName \"" + f.user_name + "\" is already taken"};
            else if (const auto* o = f.external_id.empty()
                                         ? nullptr
                                         : user_by_external_id(client, f.external_id);
                     o != nullptr && o != current)
                why = {void_kind::taken, "externalId \"" + f.external_id +
                                             "\" is already used by another User of this client"};
        }
        if (why.kind != void_kind::none) {
            last_void_ = std::move(why);
            return {};
        }
    }
    if (e.type == names::user_deleted) {
        auto it = users_.find(id);
        if (it == users_.end()) return {};
        unindex_user(id, it->second);
        users_.erase(it);
        ldap_owned_.erase(id);
        access_.forget_subject("User/" + id);
        drop_memberships_of(id, e.time);
        return {};
    }
    auto [it, created] = users_.try_emplace(id);
    user_state& u = it->second;
    // Most replacements (a PATCH of `active`, a department) keep the userName and externalId:
    // their index entries stay, which spares four lookups that miss the cache on a big
    // directory.
    const bool reindex = created || u.user_name != f.user_name || u.external_id != f.external_id;
    if (created) {
        u.created = e.time;
        u.owner = intern_owner(e.actor);
        u.local = e.source == "admin";
    } else if (reindex) {
        unindex_user(id, u);
    }
    u.json = std::move(f.resource);
    u.user_name = std::move(f.user_name);
    u.external_id = std::move(f.external_id);
    u.last_modified = e.time;
    ++u.version;
    if (f.password_given) u.password_hash = std::move(f.password_hash);
    if (reindex) index_user(id, u);
    return {};
}

std::uint32_t directory::intern_owner(const std::string& actor) {
    auto [it, added] = owner_index_.try_emplace(actor, std::uint32_t(owners_.size()));
    if (added) owners_.push_back(actor);
    return it->second;
}

el::result<void> directory::apply_group(const el::event& e, const json& data) {
    const std::string id = data["id"];
    const auto x =
        read_expect(data.contains("expect") ? std::optional<json>(data["expect"]) : std::nullopt);
    if (!x) return malformed(e, "expect is not an object with an unsigned version");
    if (x->present) {
        const auto* current = group(id);
        void_verdict why =
            version_mismatch(*x, e.type == names::group_created, current ? current->version : 0,
                             "Group " + id, previous_voided_);
        const auto res = data.find("resource");
        if (why.kind == void_kind::none && res != data.end() && res->is_object()) {
            const std::string name = string_at(*res, "displayName");
            const std::string ext = string_at(*res, "externalId");
            const std::string& client = current ? owner(*current) : e.actor;
            if (const auto* other = group_by_name(name); other != nullptr && other != current)
                why = {void_kind::taken, "displayName \"" + name + "\" is already taken"};
            else if (const auto* o = ext.empty() ? nullptr : group_by_external_id(client, ext);
                     o != nullptr && o != current)
                why = {void_kind::taken, "externalId \"" + ext +
                                             "\" is already used by another Group of this client"};
        }
        if (why.kind != void_kind::none) {
            last_void_ = std::move(why);
            return {};
        }
    }
    if (e.type == names::group_deleted) {
        auto it = groups_.find(id);
        if (it == groups_.end()) return {};
        unindex_group(id, it->second);
        groups_.erase(it);
        if (auto m = members_.find(id); m != members_.end()) {
            for (const auto& [member, type] : m->second) {
                auto back = member_of_.find(member);
                if (back != member_of_.end()) {
                    back->second.erase(id);
                    if (back->second.empty()) member_of_.erase(back);
                }
            }
            members_.erase(m);
        }
        drop_memberships_of(id, e.time);  // as a member of other groups
        access_.forget_subject("Group/" + id);
        return {};
    }
    auto it = groups_.find(id);
    if (e.type == names::group_members_changed) {
        if (it == groups_.end()) return {};
        const auto& added = data.value("added", json::array());
        const auto& removed = data.value("removed", json::array());
        if (!added.is_array() || !removed.is_array())
            return malformed(e, "added and removed must be arrays");
        for (const auto& r : removed)
            if (r.is_string()) remove_member(id, r.get<std::string>());
        for (const auto& a : added) {
            if (!a.is_object() || !a.contains("value")) continue;
            member_ref m{string_at(a, "value"), a.value("type", std::string("User"))};
            // Another writer may have deleted the member since this change was decided.
            if (x->present && !member_exists(m)) continue;
            add_member(id, m);
        }
        ++it->second.version;
        it->second.last_modified = e.time;
        return {};
    }
    auto res = data.find("resource");
    if (res == data.end() || !res->is_object()) return malformed(e, "resource is not an object");
    group_state g;
    if (it != groups_.end()) {
        g = it->second;
        unindex_group(id, it->second);
    } else {
        g.created = e.time;
        g.owner = intern_owner(e.actor);
        g.local = e.source == "admin";
    }
    g.json = res->dump();
    g.display_name = string_at(*res, "displayName");
    g.external_id = string_at(*res, "externalId");
    g.last_modified = e.time;
    ++g.version;
    index_group(id, g);
    groups_[id] = std::move(g);
    if (e.type == names::group_created) {
        members_.try_emplace(id);
        for (const auto& m : data.value("members", json::array())) {
            if (!m.is_object() || !m.contains("value")) continue;
            member_ref ref{string_at(m, "value"), m.value("type", std::string("User"))};
            if (x->present && !member_exists(ref)) continue;
            add_member(id, ref);
        }
    }
    return {};
}

namespace {
void unindex_external(string_multi_index& index, const std::string& external_id,
                      const std::string& id) {
    if (external_id.empty()) return;
    auto [first, last] = index.equal_range(external_id);
    for (auto it = first; it != last; ++it) {
        if (it->second == id) {
            index.erase(it);
            return;
        }
    }
}
}  // namespace

void directory::index_user(const std::string& id, const user_state& u) {
    user_by_name_[lower(u.user_name)] = id;
    if (!u.external_id.empty()) user_by_external_.emplace(u.external_id, id);
}

void directory::unindex_user(const std::string& id, const user_state& u) {
    if (auto it = user_by_name_.find(lower(u.user_name));
        it != user_by_name_.end() && it->second == id)
        user_by_name_.erase(it);
    unindex_external(user_by_external_, u.external_id, id);
}

void directory::index_group(const std::string& id, const group_state& g) {
    group_by_name_[lower(g.display_name)] = id;
    if (!g.external_id.empty()) group_by_external_.emplace(g.external_id, id);
}

void directory::unindex_group(const std::string& id, const group_state& g) {
    if (auto it = group_by_name_.find(lower(g.display_name));
        it != group_by_name_.end() && it->second == id)
        group_by_name_.erase(it);
    unindex_external(group_by_external_, g.external_id, id);
}

bool group_set::contains(std::string_view id) const {
    return std::binary_search(ids_.begin(), ids_.end(), id, std::less<>());
}

bool group_set::insert(std::string_view id) {
    const auto at = std::lower_bound(ids_.begin(), ids_.end(), id, std::less<>());
    if (at != ids_.end() && *at == id) return false;
    ids_.emplace(at, id);
    return true;
}

bool group_set::erase(std::string_view id) {
    const auto at = std::lower_bound(ids_.begin(), ids_.end(), id, std::less<>());
    if (at == ids_.end() || *at != id) return false;
    ids_.erase(at);
    return true;
}

bool directory::member_exists(const member_ref& m) const {
    return m.type == "Group" ? group(m.value) != nullptr : user(m.value) != nullptr;
}

void directory::add_member(const std::string& group_id, const member_ref& m) {
    if (m.value.empty()) return;
    members_[group_id][m.value] = m.type;
    member_of_[m.value].insert(group_id);
}

void directory::remove_member(const std::string& group_id, const std::string& member_id) {
    if (auto g = members_.find(group_id); g != members_.end()) g->second.erase(member_id);
    if (auto back = member_of_.find(member_id); back != member_of_.end()) {
        back->second.erase(group_id);
        if (back->second.empty()) member_of_.erase(back);
    }
}

void directory::drop_memberships_of(const std::string& member_id, el::utc_time when) {
    auto back = member_of_.find(member_id);
    if (back == member_of_.end()) return;
    // The groups' member lists change, so their versions (ETags) change too.
    for (const auto& g : back->second) {
        if (auto m = members_.find(g); m != members_.end()) m->second.erase(member_id);
        if (auto it = groups_.find(g); it != groups_.end()) {
            ++it->second.version;
            it->second.last_modified = when;
        }
    }
    member_of_.erase(back);
}

const user_state* directory::user(std::string_view id) const {
    return find_ptr(users_, id);
}

const user_state* directory::user_by_name(std::string_view user_name) const {
    auto id = find_ptr(user_by_name_, lower(user_name));
    return id == nullptr ? nullptr : user(*id);
}

namespace {
std::vector<std::string_view> external_ids(const string_multi_index& index,
                                           std::string_view external_id) {
    std::vector<std::string_view> out;
    auto [first, last] = index.equal_range(std::string(external_id));
    for (auto it = first; it != last; ++it) out.push_back(it->second);
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

std::vector<std::string_view> directory::user_ids_by_external_id(
    std::string_view external_id) const {
    return external_ids(user_by_external_, external_id);
}

std::vector<std::string_view> directory::group_ids_by_external_id(
    std::string_view external_id) const {
    return external_ids(group_by_external_, external_id);
}

const user_state* directory::user_by_external_id(std::string_view external_id) const {
    auto ids = user_ids_by_external_id(external_id);
    return ids.empty() ? nullptr : user(ids.front());
}

const user_state* directory::user_by_external_id(std::string_view client,
                                                 std::string_view external_id) const {
    auto [first, last] = user_by_external_.equal_range(std::string(external_id));
    for (auto it = first; it != last; ++it)
        if (const auto* u = user(it->second); u != nullptr && owner(*u) == client) return u;
    return nullptr;
}

const group_state* directory::group(std::string_view id) const {
    return find_ptr(groups_, id);
}

const group_state* directory::group_by_name(std::string_view display_name) const {
    auto id = find_ptr(group_by_name_, lower(display_name));
    return id == nullptr ? nullptr : group(*id);
}

const group_state* directory::group_by_external_id(std::string_view external_id) const {
    auto ids = group_ids_by_external_id(external_id);
    return ids.empty() ? nullptr : group(ids.front());
}

const group_state* directory::group_by_external_id(std::string_view client,
                                                   std::string_view external_id) const {
    auto [first, last] = group_by_external_.equal_range(std::string(external_id));
    for (auto it = first; it != last; ++it)
        if (const auto* g = group(it->second); g != nullptr && owner(*g) == client) return g;
    return nullptr;
}

const member_map* directory::members(std::string_view group_id) const {
    return find_ptr(members_, group_id);
}

const group_set* directory::groups_of(std::string_view member_id) const {
    return find_ptr(member_of_, member_id);
}

namespace {
template <class Map>
std::vector<std::string_view> sorted_keys(const Map& m) {
    std::vector<std::string_view> out;
    out.reserve(m.size());
    for (const auto& [k, v] : m) out.push_back(k);
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

std::vector<std::string_view> directory::user_ids() const {
    return sorted_keys(users_);
}
std::vector<std::string_view> directory::group_ids() const {
    return sorted_keys(groups_);
}

const token_state* directory::token(std::string_view id) const {
    auto it = tokens_.find(std::string(id));
    return it == tokens_.end() ? nullptr : &it->second;
}

std::vector<const token_state*> directory::tokens() const {
    std::vector<const token_state*> out;
    for (const auto& [id, t] : tokens_) out.push_back(&t);
    return out;
}

namespace {

// A user or group line of a snapshot, written as text: what json{{kind, {...}}}.dump() prints
// (keys in order, compact, the same escaping) without building a tree per resource. A daemon's
// snapshot child runs this over the whole directory, and the parent pays a copy-on-write fault
// for every page it changes while the child lives, so the child's time is everybody's.
// `ldap_attributes`: the attributes LDAP owns as canonical JSON text, or empty for none.
void append_resource_line(std::string& out, std::string_view kind, std::string_view id,
                          const resource_state& r, std::string_view owner,
                          const std::optional<std::string>* password_hash,
                          std::string_view ldap_attributes) {
    out += "{\"";
    out += kind;
    out += "\":{\"created\":";
    json_text::append_quoted(out, el::format_time(r.created));
    out += ",\"id\":";
    json_text::append_quoted(out, id);
    out += ",\"last_modified\":";
    json_text::append_quoted(out, el::format_time(r.last_modified));
    if (!ldap_attributes.empty()) {
        out += ",\"ldap_attributes\":";
        out += ldap_attributes;
    }
    if (r.local) out += ",\"local\":true";
    out += ",\"owner\":";
    json_text::append_quoted(out, owner);
    if (password_hash != nullptr && password_hash->has_value()) {
        out += ",\"password_hash\":";
        json_text::append_quoted(out, **password_hash);
    }
    out += ",\"resource\":";
    json_text::append_quoted(out, r.json);
    out += ",\"version\":";
    out += std::to_string(r.version);
    out += "}}\n";
}

}  // namespace

// Snapshot body: JSON lines, one entry per line ({"user":…}, {"group":…}, {"token":…}, then
// {"provisioning_enabled":…}), written and read one line at a time: no document-sized tree, so
// a million users cost one pass and no memory spike. Users, groups and member lists are
// written as text (append_resource_line); the unit tests check every line is canonical JSON.
void directory::serialize_to(const std::function<void(std::string_view)>& out) const {
    std::string line;
    line.reserve(4096);
    auto emit = [&] {
        out(line);
        line.clear();
    };
    for (const auto& [id, u] : users_) {
        const auto l = ldap_owned_.find(id);
        append_resource_line(line, "user", id, u, owner(u), &u.password_hash,
                             l == ldap_owned_.end() ? std::string() : json(l->second).dump());
        emit();
    }
    for (const auto& [id, g] : groups_) {
        append_resource_line(line, "group", id, g, owner(g), nullptr, {});
        emit();
        // Members in chunks, so one huge group is not one huge line.
        auto m = members_.find(id);
        if (m == members_.end()) continue;
        std::size_t in_chunk = 0;
        for (const auto& [member, type] : m->second) {
            if (in_chunk == 0) {
                line += "{\"members\":{\"group\":";
                json_text::append_quoted(line, id);
                line += ",\"list\":[";
            } else {
                line += ',';
            }
            line += '[';
            json_text::append_quoted(line, member);
            line += ',';
            json_text::append_quoted(line, type);
            line += ']';
            if (++in_chunk == 10'000) {
                line += "]}}\n";
                emit();
                in_chunk = 0;
            }
        }
        if (in_chunk != 0) {
            line += "]}}\n";
            emit();
        }
    }
    for (const auto& [id, t] : tokens_) {
        json j{{"id", id},
               {"name", t.name},
               {"hash", t.hash},
               {"created", el::format_time(t.created)},
               {"revoked", t.revoked},
               {"scope", t.scope}};
        j["expires"] = t.expires ? json(el::format_time(*t.expires)) : json(nullptr);
        line = json{{"token", std::move(j)}}.dump() + "\n";
        emit();
    }
    line = json{{"access", access_.to_json()}}.dump() + "\n";
    emit();
    if (previous_voided_) {
        line = json{{"previous_voided", true}}.dump() + "\n";
        emit();
    }
    line = json{{"provisioning_enabled", provisioning_enabled_}}.dump() + "\n";
    emit();
}

std::string directory::serialize() const {
    std::string text;
    serialize_to([&](std::string_view line) { text.append(line); });
    return text;
}

el::result<directory> directory::deserialize(std::string_view text) {
    auto bad = [](const std::string& what) {
        return el::fail(el::errc::corrupt, "directory snapshot: " + what);
    };
    directory d;
    // A user or group line as append_resource_line writes it, read as canonical text: no tree
    // for the line, none for the resource. `other` for any other line and for text that is
    // not canonical (the loop below canonicalises a user or group line through nlohmann and
    // reads it here again); `malformed` for a user or group line that lacks what it needs.
    enum class line_read { done, other, malformed };
    auto read_resource_line = [&d](std::string_view line_text) {
        const auto outer = json_text::canonical_members(line_text);
        if (!outer || outer->size() != 1) return line_read::other;
        const bool is_user = (*outer)[0].key == "user";
        if (!is_user && (*outer)[0].key != "group") return line_read::other;
        const auto fields = json_text::canonical_members((*outer)[0].value);
        if (!fields) return line_read::other;
        std::optional<std::string> id, created, modified, owner, resource, password_hash;
        std::optional<std::uint64_t> version;
        std::string_view ldap_attributes;
        bool local = false;
        for (const auto& [key, value] : *fields) {
            if (key == "id") {
                id = json_text::string_value(value);
            } else if (key == "created") {
                created = json_text::string_value(value);
            } else if (key == "last_modified") {
                modified = json_text::string_value(value);
            } else if (key == "owner") {
                owner = json_text::string_value(value);
            } else if (key == "resource") {
                resource = json_text::string_value(value);
            } else if (key == "password_hash" && is_user) {
                password_hash = json_text::string_value(value);
                if (!password_hash) return line_read::malformed;
            } else if (key == "ldap_attributes" && is_user) {
                ldap_attributes = value;
            } else if (key == "local") {
                if (value != "true" && value != "false") return line_read::malformed;
                local = value == "true";
            } else if (key == "version") {
                std::uint64_t v = 0;
                const auto [end, ec] =
                    std::from_chars(value.data(), value.data() + value.size(), v);
                if (ec != std::errc() || end != value.data() + value.size())
                    return line_read::malformed;
                version = v;
            }
        }
        if (!id || !created || !modified || !owner || !resource || !version)
            return line_read::malformed;
        auto c = el::parse_time(*created);
        auto m = el::parse_time(*modified);
        if (!c || !m) return line_read::malformed;
        // The resource's names: from its canonical text, or through a tree if it is not.
        std::string name, external_id;
        const char* name_key = is_user ? "userName" : "displayName";
        if (const auto members = json_text::canonical_members(*resource)) {
            for (const auto& mem : *members) {
                if (mem.key == name_key)
                    name = json_text::string_value(mem.value).value_or(std::string());
                else if (mem.key == "externalId")
                    external_id = json_text::string_value(mem.value).value_or(std::string());
            }
        } else {
            const json tree = json::parse(*resource);
            name = string_at(tree, name_key);
            external_id = string_at(tree, "externalId");
        }
        auto fill = [&](resource_state& r) {
            r.created = *c;
            r.last_modified = *m;
            r.version = *version;
            r.local = local;
            r.owner = d.intern_owner(*owner);
            r.json = std::move(*resource);
        };
        if (is_user) {
            user_state u;
            fill(u);
            u.user_name = std::move(name);
            u.external_id = std::move(external_id);
            u.password_hash = std::move(password_hash);
            if (!ldap_attributes.empty())
                d.ldap_owned_[*id] = json::parse(ldap_attributes)
                                         .get<std::map<std::string, std::vector<std::string>>>();
            d.index_user(*id, u);
            d.users_[*id] = std::move(u);
        } else {
            group_state g;
            fill(g);
            g.display_name = std::move(name);
            g.external_id = std::move(external_id);
            d.index_group(*id, g);
            d.groups_[*id] = std::move(g);
            d.members_.try_emplace(*id);
        }
        return line_read::done;
    };
    bool complete = false;
    try {
        while (!text.empty()) {
            const auto nl = text.find('\n');
            if (nl == std::string_view::npos) return bad("last line is not terminated");
            const std::string_view line_text = text.substr(0, nl);
            text.remove_prefix(nl + 1);
            const auto read = read_resource_line(line_text);
            if (read == line_read::done) continue;
            if (read == line_read::malformed) return bad("user or group line");
            const json line = json::parse(line_text);
            if (line.contains("user") || line.contains("group")) {
                // Not canonical text: read as what a tree prints.
                if (read_resource_line(line.dump()) != line_read::done)
                    return bad("user or group line");
            } else if (auto m = line.find("members"); m != line.end()) {
                const std::string id = m->at("group");
                for (const auto& pair : m->at("list"))
                    d.add_member(id,
                                 {pair.at(0).get<std::string>(), pair.at(1).get<std::string>()});
            } else if (auto t = line.find("token"); t != line.end()) {
                token_state s;
                s.id = t->at("id");
                s.name = t->at("name").get<std::string>();
                s.hash = t->at("hash").get<std::string>();
                auto created = el::parse_time(t->at("created").get<std::string>());
                if (!created) return bad("token " + s.id);
                s.created = *created;
                if (t->at("expires").is_string()) {
                    auto exp = el::parse_time((*t)["expires"].get<std::string>());
                    if (!exp) return bad("token " + s.id);
                    s.expires = *exp;
                }
                s.revoked = t->at("revoked").get<bool>();
                s.scope = t->value("scope", std::string("scim"));
                d.tokens_[s.id] = std::move(s);
            } else if (auto a = line.find("access"); a != line.end()) {
                auto access = access_state::from_json(*a);
                if (!access) return std::unexpected(access.error());
                d.access_ = std::move(*access);
            } else if (auto v = line.find("previous_voided"); v != line.end()) {
                d.previous_voided_ = v->get<bool>();
            } else if (auto p = line.find("provisioning_enabled"); p != line.end()) {
                d.provisioning_enabled_ = p->get<bool>();
                complete = true;
            } else {
                return bad("unknown line");
            }
        }
    } catch (const json::exception& e) {
        return bad(e.what());
    }
    if (!complete) return bad("truncated (no final line)");
    return d;
}

namespace {
bool same(const resource_state& a, const resource_state& b) {
    return a.json == b.json && a.created == b.created && a.last_modified == b.last_modified &&
           a.version == b.version && a.local == b.local;
}
}  // namespace

void directory::reserve_headroom(std::size_t users, std::size_t groups) {
    users_.reserve(users_.size() + users);
    user_by_name_.reserve(user_by_name_.size() + users);
    user_by_external_.reserve(user_by_external_.size() + users);
    groups_.reserve(groups_.size() + groups);
    group_by_name_.reserve(group_by_name_.size() + groups);
    group_by_external_.reserve(group_by_external_.size() + groups);
}

bool directory::operator==(const directory& o) const {
    if (users_.size() != o.users_.size() || groups_.size() != o.groups_.size() ||
        provisioning_enabled_ != o.provisioning_enabled_ || members_ != o.members_ ||
        previous_voided_ != o.previous_voided_ || ldap_owned_ != o.ldap_owned_ ||
        tokens_.size() != o.tokens_.size() || !(access_ == o.access_))
        return false;
    for (const auto& [id, u] : users_) {
        auto it = o.users_.find(id);
        if (it == o.users_.end() || !same(u, it->second) ||
            u.password_hash != it->second.password_hash || owner(u) != o.owner(it->second))
            return false;
    }
    for (const auto& [id, g] : groups_) {
        auto it = o.groups_.find(id);
        if (it == o.groups_.end() || !same(g, it->second) || owner(g) != o.owner(it->second))
            return false;
    }
    for (const auto& [id, t] : tokens_) {
        auto it = o.tokens_.find(id);
        if (it == o.tokens_.end() || t.name != it->second.name || t.hash != it->second.hash ||
            t.created != it->second.created || t.expires != it->second.expires ||
            t.revoked != it->second.revoked || t.scope != it->second.scope)
            return false;
    }
    return true;
}

}  // namespace scimsync::model
