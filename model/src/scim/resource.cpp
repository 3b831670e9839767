#include "scimsync/model/scim/resource.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

#include "scimsync/model/ascii.hpp"

// Choices beyond RFC 7643/7644 that clients observe (issue 3 lists the client behaviours):
// - "no value" is null, "", [] or {}: none of them is stored (RFC 7643 §2.5 makes null and []
//   equivalent to unassigned; "" and {} carry no more). A required attribute sent as "" is missing.
// - A number sent for a string attribute is stored as its JSON text (42 → "42"): IdP mappings
//   send employee numbers and ids either way, and rejecting them would fail whole provisioning
//   runs for no gain. Any other non-string (boolean, object, array) is invalidValue.
// - A string matching one of the attribute's canonicalValues case-insensitively is stored in the
//   canonical spelling ("Work" → "work", "user" → "User"); other values are kept as sent, except
//   for Group members, whose type must be User or Group.
// - A bare value for a complex attribute that has a `value` sub-attribute is that value: Entra's
//   manager as a bare id, and member lists given as bare ids.
// - Multi-valued attributes: a single value is a one-element list; elements without `value` are
//   dropped (a member without one is invalidValue: a membership must name its member);
//   duplicates are merged, the first kept (members by value, others by type and value, compared
//   case-insensitively unless the value is caseExact), carrying `primary` over; when several
//   elements are primary, the first stays primary and the others get "primary": false.
// - Group members sent without `type` are stored without one: which kind an id names is known
//   only to the caller, which holds the views.
// - Path keys ("name.givenName", "<urn>:department") are applied after plain keys and URN objects,
//   so they refine what those set whatever the key order of the body. Sub-attribute keys of a
//   multi-valued attribute ("emails.value") name no single element and are ignored.
// - project() keeps `meta` whole (with id and schemas) in every response, and rebuilds `schemas`
//   from the extensions present in the output.

namespace scimsync::model::scim {

namespace {

using nlohmann::json;

// nullopt is "no value": the attribute is left out of the result.
using value_result = scim_result<std::optional<json>>;

value_result some(json v) {
    return std::optional<json>(std::move(v));
}
value_result none() {
    return std::optional<json>();
}

std::unexpected<scim_error> invalid_value(std::string detail) {
    return scim_fail(400, "invalidValue", std::move(detail));
}

bool is_group_members(const attribute& a) {
    return &a == group_schema().find("members");
}

bool is_meta(const attribute& a) {
    for (const auto& c : common_attributes())
        if (&c == &a) return c.name == "meta";
    return false;
}

// id, schemas and (by our choice, whole) meta are in every response and survive exclusion.
bool always_returned(const attribute& a) {
    return a.ret == returned::always || is_meta(a);
}

bool is_primary(const json& e) {
    if (!e.is_object()) return false;
    const auto it = e.find("primary");
    return it != e.end() && it->is_boolean() && it->get<bool>();
}

// The schemas of `type` whose attributes live in `resource` (core always), core first.
json schemas_present(const resource_type& type, const json& resource) {
    json out = json::array({type.core->id});
    for (const auto* e : type.extensions)
        if (resource.contains(e->id)) out.push_back(e->id);
    return out;
}

// A value of a non-complex attribute (or sub-attribute).
value_result simple_value(const attribute& a, const json& v, const std::string& path) {
    if (v.is_null()) return none();
    switch (a.type) {
        case attr_type::boolean:
            if (v.is_boolean()) return some(v);
            if (v.is_string()) {
                const auto& s = v.get_ref<const std::string&>();
                if (iequals(s, "true")) return some(true);
                if (iequals(s, "false")) return some(false);
            }
            return invalid_value(path + " must be a boolean");
        case attr_type::integer:
            if (v.is_number_integer()) return some(v);
            return invalid_value(path + " must be an integer");
        case attr_type::decimal:
            if (v.is_number()) return some(v);
            return invalid_value(path + " must be a number");
        case attr_type::complex:
            return invalid_value(path + " must be an object");
        case attr_type::string:
        case attr_type::reference:
        case attr_type::date_time:
        case attr_type::binary:
            break;
    }
    if (v.is_number()) return some(v.dump());
    if (!v.is_string()) return invalid_value(path + " must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty()) return none();
    for (const auto& c : a.canonical_values)
        if (iequals(c, s)) return some(c);
    return some(v);
}

// One value of a complex attribute: the singular value, or one element of a multi-valued one.
value_result complex_value(const attribute& a, const json& v, const std::string& path) {
    if (v.is_null()) return none();
    if (!v.is_object()) {
        const attribute* value = a.sub("value");
        if (value == nullptr || v.is_array()) return invalid_value(path + " must be an object");
        auto r = simple_value(*value, v, path + ".value");
        if (!r || !*r) return r;
        return some(json{{"value", std::move(**r)}});
    }
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
        const attribute* sub = a.sub(it.key());
        if (sub == nullptr || sub->mut == mutability::read_only) continue;
        auto r = simple_value(*sub, it.value(), path + "." + sub->name);
        if (!r) return r;
        if (*r)
            out[sub->name] = std::move(**r);
        else
            out.erase(sub->name);
    }
    if (out.empty()) return none();
    return some(std::move(out));
}

// What makes two elements of a multi-valued attribute the same element.
std::string identity(const attribute& a, const json& e) {
    const auto value = e.find("value");
    if (value == e.end()) return e.dump();
    std::string key = value->is_string() ? value->get<std::string>() : value->dump();
    const attribute* value_attr = a.sub("value");
    if (value_attr != nullptr && !value_attr->case_exact) key = ascii::lowered(key);
    if (is_group_members(a)) return key;
    const auto type = e.find("type");
    const std::string type_key =
        type != e.end() && type->is_string() ? ascii::lowered(type->get<std::string>()) : std::string();
    return type_key + '\n' + key;
}

void merge_duplicates(const attribute& a, json& list) {
    json out = json::array();
    std::map<std::string, std::size_t> seen;
    for (auto& e : list) {
        const auto [at, fresh] = seen.emplace(identity(a, e), out.size());
        if (fresh)
            out.push_back(std::move(e));
        else if (is_primary(e))
            out[at->second]["primary"] = true;
    }
    list = std::move(out);
}

// RFC 7643 §2.4: "primary": true appears at most once per attribute.
void single_primary(json& list) {
    bool seen = false;
    for (auto& e : list) {
        if (!is_primary(e)) continue;
        if (seen) e["primary"] = false;
        seen = true;
    }
}

value_result multi_value(const attribute& a, const json& v, const std::string& path) {
    if (v.is_null()) return none();
    json wrapped;
    if (!v.is_array()) wrapped = json::array({v});
    const json& items = v.is_array() ? v : wrapped;
    const bool complex = a.type == attr_type::complex;
    const bool has_value = a.sub("value") != nullptr;
    const bool members = is_group_members(a);
    json out = json::array();
    for (const auto& item : items) {
        auto r = complex ? complex_value(a, item, path) : simple_value(a, item, path);
        if (!r) return r;
        if (!*r) continue;
        json& e = **r;
        if (complex && has_value && !e.contains("value")) {
            if (members) return invalid_value(path + ".value is required");
            continue;
        }
        if (members && e.contains("type")) {
            const auto& t = e["type"].get_ref<const std::string&>();
            if (t != "User" && t != "Group")
                return invalid_value(path + ".type must be User or Group");
        }
        out.push_back(std::move(e));
    }
    if (complex) {
        merge_duplicates(a, out);
        single_primary(out);
    }
    if (out.empty()) return none();
    return some(std::move(out));
}

// Collects the attributes of one body into the stored layout.
class body_walker {
public:
    explicit body_walker(const resource_type& type) : type_(type) {}

    scim_result<void> put(const schema* in, const attribute& a, const json& v) {
        if (a.mut == mutability::read_only) return {};
        const std::string path = path_of(in, a);
        if (a.ret == returned::never) return put_password(a, v, path);
        auto r = a.multi_valued                 ? multi_value(a, v, path)
                 : a.type == attr_type::complex ? complex_value(a, v, path)
                                                : simple_value(a, v, path);
        if (!r) return std::unexpected(r.error());
        json& c = container(in);
        if (*r)
            c[a.name] = std::move(**r);
        else
            c.erase(a.name);
        return {};
    }

    scim_result<void> put_sub(const schema* in, const attribute& a, const attribute& sub,
                              const json& v) {
        if (a.mut == mutability::read_only || sub.mut == mutability::read_only || a.multi_valued)
            return {};
        auto r = simple_value(sub, v, path_of(in, a) + "." + sub.name);
        if (!r) return std::unexpected(r.error());
        json& c = container(in);
        if (*r) {
            c[a.name][sub.name] = std::move(**r);
        } else if (c.contains(a.name)) {
            c[a.name].erase(sub.name);
            if (c[a.name].empty()) c.erase(a.name);
        }
        return {};
    }

    // A key that names a whole schema: its value holds that schema's attributes.
    scim_result<void> put_schema(const schema& s, const json& v) {
        if (v.is_null()) return {};
        if (!v.is_object()) return invalid_value(s.id + " must be an object");
        for (auto it = v.begin(); it != v.end(); ++it) {
            const attribute* a = s.find(it.key());
            if (a == nullptr) continue;
            if (auto r = put(&s, *a, it.value()); !r) return r;
        }
        return {};
    }

    // A key that is an attribute path: "userName", "name.givenName", "<urn>:department".
    scim_result<void> put_path(std::string_view key, const json& v) {
        const auto ref = resolve(type_, key);
        if (!ref) return {};
        if (ref->sub != nullptr) return put_sub(ref->in, *ref->attr, *ref->sub, v);
        return put(ref->in, *ref->attr, v);
    }

    scim_result<normalized> finish() && {
        for (const auto* e : type_.extensions) {
            const auto it = out_.find(e->id);
            if (it != out_.end() && it->empty()) out_.erase(it);
        }
        for (const auto& a : type_.core->attributes)
            if (a.required && !out_.contains(a.name)) return invalid_value(a.name + " is required");
        out_["schemas"] = schemas_present(type_, out_);
        return normalized{std::move(out_), std::move(password_)};
    }

private:
    // Write-only attributes never enter the resource; the one scimsync has is `password`.
    scim_result<void> put_password(const attribute& a, const json& v, const std::string& path) {
        if (!iequals(a.name, "password") || v.is_null()) return {};
        if (!v.is_string()) return invalid_value(path + " must be a string");
        if (v.get_ref<const std::string&>().empty()) return {};
        password_ = v.get<std::string>();
        return {};
    }

    bool is_extension(const schema* in) const { return in != nullptr && in != type_.core; }

    std::string path_of(const schema* in, const attribute& a) const {
        return is_extension(in) ? in->id + ":" + a.name : a.name;
    }

    json& container(const schema* in) {
        if (!is_extension(in)) return out_;
        json& c = out_[in->id];
        if (!c.is_object()) c = json::object();
        return c;
    }

    const resource_type& type_;
    json out_ = json::object();
    std::optional<std::string> password_;
};

// Where attributes of `in` live in a resource; nullptr when that part is absent.
const json* find_container(const resource_type& type, const json& resource, const schema* in) {
    if (in == nullptr || in == type.core) return &resource;
    const auto it = resource.find(in->id);
    return it != resource.end() && it->is_object() ? &*it : nullptr;
}

json* find_container(const resource_type& type, json& resource, const schema* in) {
    if (in == nullptr || in == type.core) return &resource;
    const auto it = resource.find(in->id);
    return it != resource.end() && it->is_object() ? &*it : nullptr;
}

std::vector<const schema*> schemas_of(const resource_type& type) {
    std::vector<const schema*> out{type.core};
    out.insert(out.end(), type.extensions.begin(), type.extensions.end());
    return out;
}

// Keeps only the listed sub-attributes of a complex value (or of every element of a list).
json only_subs(const json& v, const std::vector<std::string>& subs) {
    const auto pick = [&](const json& e) {
        json out = json::object();
        if (!e.is_object()) return out;
        for (const auto& s : subs)
            if (const auto it = e.find(s); it != e.end()) out[s] = *it;
        return out;
    };
    if (!v.is_array()) return pick(v);
    json out = json::array();
    for (const auto& e : v)
        if (json p = pick(e); !p.empty()) out.push_back(std::move(p));
    return out;
}

// Removes a sub-attribute from a complex value (or from every element of a list); elements
// left empty go with it.
void erase_sub(json& v, const std::string& sub) {
    if (v.is_object()) {
        v.erase(sub);
        return;
    }
    if (!v.is_array()) return;
    json out = json::array();
    for (auto& e : v) {
        if (e.is_object()) e.erase(sub);
        if (!e.empty()) out.push_back(std::move(e));
    }
    v = std::move(out);
}

json with_requested(const resource_type& type, const json& resource,
                    const std::vector<std::string>& attributes) {
    struct pick {
        const schema* in = nullptr;
        const attribute* attr = nullptr;
        bool whole = false;
        std::vector<std::string> subs;
    };
    std::map<std::string, pick> picks;  // by canonical attribute path
    const auto add = [&](const schema* in, const attribute& a, const attribute* sub) {
        if (always_returned(a) || a.ret == returned::never) return;
        if (sub != nullptr && sub->ret == returned::never) return;
        const bool ext = in != nullptr && in != type.core;
        auto& p = picks[(ext ? in->id + ":" : std::string()) + a.name];
        p.in = in;
        p.attr = &a;
        if (sub == nullptr)
            p.whole = true;
        else
            p.subs.push_back(sub->name);
    };
    for (const auto& path : attributes) {
        if (const schema* s = type.schema_by_urn(path)) {
            for (const auto& a : s->attributes) add(s, a, nullptr);
            continue;
        }
        if (const auto ref = resolve(type, path)) add(ref->in, *ref->attr, ref->sub);
    }

    json out = json::object();
    for (const auto* key : {"id", "meta"})
        if (const auto it = resource.find(key); it != resource.end()) out[key] = *it;
    for (const auto& [path, p] : picks) {
        const json* from = find_container(type, resource, p.in);
        if (from == nullptr) continue;
        const auto it = from->find(p.attr->name);
        if (it == from->end()) continue;
        json value = p.whole ? *it : only_subs(*it, p.subs);
        if (value.empty()) continue;
        const bool ext = p.in != nullptr && p.in != type.core;
        (ext ? out[p.in->id] : out)[p.attr->name] = std::move(value);
    }
    return out;
}

json without_excluded(const resource_type& type, const json& resource,
                      const std::vector<std::string>& excluded) {
    json out = resource;
    // Not part of a default response: "never" ever, "request" unless listed in `attributes`.
    for (const auto* s : schemas_of(type)) {
        json* c = find_container(type, out, s);
        if (c == nullptr) continue;
        for (const auto& a : s->attributes)
            if (a.ret == returned::never || a.ret == returned::request) c->erase(a.name);
    }
    for (const auto& path : excluded) {
        if (const schema* s = type.schema_by_urn(path)) {
            if (s != type.core) out.erase(s->id);
            continue;
        }
        const auto ref = resolve(type, path);
        if (!ref || always_returned(*ref->attr)) continue;
        json* c = find_container(type, out, ref->in);
        if (c == nullptr) continue;
        if (ref->sub == nullptr) {
            c->erase(ref->attr->name);
        } else if (const auto it = c->find(ref->attr->name); it != c->end()) {
            erase_sub(*it, ref->sub->name);
            if (it->empty()) c->erase(it);
        }
    }
    for (const auto* e : type.extensions)
        if (const auto it = out.find(e->id); it != out.end() && it->empty()) out.erase(it);
    return out;
}

}  // namespace

scim_result<normalized> normalize(const resource_type& type, const nlohmann::json& body) {
    if (!body.is_object())
        return scim_fail(400, "invalidSyntax", "the request body must be a JSON object");
    body_walker walker(type);
    for (const bool path_keys : {false, true}) {
        for (auto it = body.begin(); it != body.end(); ++it) {
            const std::string& key = it.key();
            if (iequals(key, "schemas")) continue;
            const schema* whole = type.schema_by_urn(key);
            const bool is_path = whole == nullptr && key.find_first_of(".:") != std::string::npos;
            if (is_path != path_keys) continue;
            auto r = whole != nullptr ? walker.put_schema(*whole, it.value())
                                      : walker.put_path(key, it.value());
            if (!r) return std::unexpected(r.error());
        }
    }
    return std::move(walker).finish();
}

nlohmann::json project(const resource_type& type, const nlohmann::json& resource,
                       const std::vector<std::string>& attributes,
                       const std::vector<std::string>& excluded) {
    if (!resource.is_object()) return resource;
    json out = attributes.empty() ? without_excluded(type, resource, excluded)
                                  : with_requested(type, resource, attributes);
    out["schemas"] = schemas_present(type, out);
    return out;
}

std::vector<std::string> split_attribute_list(std::string_view text) {
    const auto trim = [](std::string_view s) {
        const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
        while (!s.empty() && blank(s.front())) s.remove_prefix(1);
        while (!s.empty() && blank(s.back())) s.remove_suffix(1);
        return s;
    };
    std::vector<std::string> out;
    for (;;) {
        const auto comma = text.find(',');
        if (const auto part = trim(text.substr(0, comma)); !part.empty()) out.emplace_back(part);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

}  // namespace scimsync::model::scim
