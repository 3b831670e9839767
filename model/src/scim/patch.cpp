#include "scimsync/model/scim/patch.hpp"

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "scimsync/model/ascii.hpp"
#include "scimsync/model/scim/filter.hpp"

namespace scimsync::model::scim {

namespace {

using json = nlohmann::json;
using status = scim_result<void>;

constexpr std::string_view patch_op_urn = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

enum class op_kind { add, replace, remove };

std::string in_quotes(std::string_view s) {
    return "'" + std::string(s) + "'";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0)
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0)
        s.remove_suffix(1);
    return s;
}

// Client JSON spells member names in any case (RFC 7643 §2.1).
const json* find_member(const json& obj, std::string_view name) {
    if (!obj.is_object()) return nullptr;
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (iequals(it.key(), name)) return &*it;
    return nullptr;
}

// The member of `obj` spelt `name` in any case, renamed to that (canonical) spelling; nullptr
// when absent.
json* member(json& obj, const std::string& name) {
    if (!obj.is_object()) return nullptr;
    if (auto exact = obj.find(name); exact != obj.end()) return &*exact;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (!iequals(it.key(), name)) continue;
        json v = std::move(*it);
        obj.erase(it);
        return &(obj[name] = std::move(v));
    }
    return nullptr;
}

void erase_member(json& obj, std::string_view name) {
    if (!obj.is_object()) return;
    std::vector<std::string> doomed;
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (iequals(it.key(), name)) doomed.push_back(it.key());
    for (const auto& k : doomed) obj.erase(k);
}

bool same_value(const attribute& a, const json& x, const json& y) {
    if (!a.case_exact && x.is_string() && y.is_string())
        return iequals(x.get_ref<const std::string&>(), y.get_ref<const std::string&>());
    return x == y;
}

// The comparison key of a `value` sub-attribute: case-folded unless it is caseExact.
std::string value_key(const attribute& value_sub, const json& v) {
    if (!v.is_string()) return v.dump();
    const auto& s = v.get_ref<const std::string&>();
    return value_sub.case_exact ? s : ascii::lowered(s);
}

// Members are identified by `value` (the member's id) alone: it is immutable, and two entries
// for one member would make a group list that member twice.
bool identified_by_value(const attribute& a) {
    const attribute* v = a.sub("value");
    return v != nullptr && v->mut == mutability::immutable;
}

// Two values of a multi-valued attribute are the same value when their keys are equal: members
// by `value`; other attributes by `value` and `type`, so that a work and a home entry may
// share an address. nullopt for values without a `value`, which are compared whole.
std::optional<std::string> identity(const attribute& a, const json& el) {
    if (!el.is_object()) return el.dump();
    const attribute* value_sub = a.sub("value");
    const auto v = el.find("value");
    if (value_sub == nullptr || v == el.end()) return std::nullopt;
    std::string key = value_key(*value_sub, *v);
    if (!identified_by_value(a)) {
        key += '\x1f';
        if (const auto t = el.find("type"); t != el.end() && t->is_string())
            key += ascii::lowered(t->get_ref<const std::string&>());
    }
    return key;
}

bool is_primary(const json& el) {
    if (!el.is_object()) return false;
    const auto p = el.find("primary");
    return p != el.end() && p->is_boolean() && p->get<bool>();
}

// RFC 7643 §2.4: "primary" is true on at most one value of an attribute.
void clear_other_primaries(json& list, std::size_t keep) {
    for (std::size_t i = 0; i < list.size(); ++i)
        if (i != keep && is_primary(list[i])) list[i]["primary"] = false;
}

json without_nulls(const json& obj) {
    json out = json::object();
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (!it->is_null()) out[it.key()] = *it;
    return out;
}

// The value an Add through `attr[a eq "x" and b eq true].sub` creates when no value matches:
// {"a": "x", "b": true}. nullopt unless the filter is such a conjunction of eq comparisons of
// sub-attributes, the only filters that say what the new value is.
std::optional<json> element_from_filter(const attribute& a, std::string_view text) {
    json out = json::object();
    std::size_t i = 0;
    const auto skip_space = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
    };
    const auto word = [&] {
        const std::size_t begin = i;
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0 &&
               text[i] != '"')
            ++i;
        return text.substr(begin, i - begin);
    };
    for (;;) {
        skip_space();
        const attribute* sub = a.sub(word());
        skip_space();
        if (sub == nullptr || !iequals(word(), "eq")) return std::nullopt;
        skip_space();
        const std::size_t begin = i;
        if (i < text.size() && text[i] == '"') {
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            if (i >= text.size()) return std::nullopt;
            ++i;
        } else {
            word();
        }
        json literal = json::parse(std::string(text.substr(begin, i - begin)), nullptr, false);
        if (literal.is_discarded() || literal.is_null() || literal.is_structured())
            return std::nullopt;
        if ((sub->type == attr_type::boolean) != literal.is_boolean()) return std::nullopt;
        out[sub->name] = std::move(literal);
        skip_space();
        if (i == text.size()) return out;
        if (!iequals(word(), "and")) return std::nullopt;
    }
}

// A PATCH path resolved against the resource type (RFC 7644 §3.5.2 and the ABNF of §3.10).
struct target {
    std::string text;             // as the client wrote it, for error details
    attr_ref ref;                 // ref.sub: after "attr." or after "attr[...]."
    std::optional<filter> where;  // the value filter of "attr[...]"
    std::string filter_text;
    const schema* extension = nullptr;  // the path is an extension's URN alone
};

// nullopt (not an error) when the path names no attribute: a PATCH path reports that as
// invalidPath, a path-less value ignores it like any attribute the server does not store.
scim_result<std::optional<target>> parse_path(const resource_type& type, std::string_view text) {
    target t;
    t.text = std::string(text);
    for (const schema* e : type.extensions) {
        if (iequals(text, e->id)) {
            t.extension = e;
            return t;
        }
    }
    const std::size_t open = text.find('[');
    const auto ref = resolve(type, text.substr(0, open));
    if (!ref) return std::optional<target>{};
    t.ref = *ref;
    if (open == std::string_view::npos) return t;

    std::size_t close = open + 1;
    for (bool in_string = false; close < text.size(); ++close) {
        const char c = text[close];
        if (in_string) {
            if (c == '\\')
                ++close;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ']') {
            break;
        }
    }
    if (close >= text.size())
        return scim_fail(400, "invalidPath",
                         "the value filter in path " + in_quotes(text) + " has no closing ']'");
    if (ref->sub != nullptr || ref->attr->type != attr_type::complex)
        return scim_fail(400, "invalidPath",
                         "a value filter applies to a complex attribute, not to " +
                             in_quotes(ref->canonical()) + ", in path " + in_quotes(text));
    t.filter_text = std::string(text.substr(open + 1, close - open - 1));
    auto f = filter::parse_value_filter(type, *ref, t.filter_text);
    if (!f)
        return scim_fail(
            400, "invalidPath",
            "invalid value filter in path " + in_quotes(text) + ": " + f.error().detail);
    t.where.emplace(std::move(*f));
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return t;
    if (rest.size() < 2 || rest.front() != '.')
        return scim_fail(400, "invalidPath",
                         "only '.subAttribute' may follow ']' in path " + in_quotes(text));
    t.ref.sub = ref->attr->sub(rest.substr(1));
    if (t.ref.sub == nullptr) return std::optional<target>{};
    return t;
}

bool is_read_only(const attr_ref& ref) {
    return ref.attr->mut == mutability::read_only ||
           (ref.sub != nullptr && ref.sub->mut == mutability::read_only);
}

bool is_password(const attr_ref& ref) {
    return ref.attr->mut == mutability::write_only && ref.attr->name == "password";
}

// Applies the operations of one PATCH request, in order, to a copy of the stored resource.
// On an error the copy is discarded, so a request is applied whole or not at all.
class patcher {
public:
    patcher(const resource_type& type, json doc) : type_(type), doc_(std::move(doc)) {}

    status apply(const json& operation, std::size_t index);
    json finish(const json& original);
    std::optional<std::string> take_password() { return std::move(password_); }

private:
    std::unexpected<scim_error> fail(std::string_view scim_type, const std::string& detail) const {
        return scim_fail(400, std::string(scim_type), where_ + detail);
    }
    std::unexpected<scim_error> fail(const scim_error& e) const {
        return scim_fail(e.status, e.scim_type, where_ + e.detail);
    }

    status apply_path_less(op_kind kind, const json& value);
    status apply_extension(op_kind kind, const schema& ext, const json& value);
    status set(op_kind kind, const target& t, const json& value, bool upsert);
    status set_filtered(op_kind kind, json& list, const target& t, const json& value, bool upsert);
    status remove(const target& t, const json* value);
    status keep_read_only(const target& t, const json* value);

    scim_result<json> coerce_simple(const attribute& a, const json& v,
                                    const std::string& name) const;
    scim_result<json> coerce_complex(const attribute& a, const json& v) const;
    scim_result<json> coerce_elements(const attribute& a, const json& v) const;
    status merge_into(const attribute& a, json& existing, const json& incoming) const;
    status replace_element(const attribute& a, json& existing, const json& incoming) const;
    status add_elements(const attribute& a, json& list, const json& incoming) const;
    status check_immutable(const attribute& parent, const attribute& sub, const json& el,
                           const json* next) const;

    json* container(const attr_ref& ref, bool create);
    template <class F>
    status with_values(json& box, const attribute& a, F&& f);

    const resource_type& type_;
    json doc_;
    std::optional<std::string> password_;
    std::string where_;  // "operation N: ", the prefix of every error detail
};

status patcher::apply(const json& operation, std::size_t index) {
    where_ = "operation " + std::to_string(index) + ": ";
    if (!operation.is_object()) return fail("invalidSyntax", "an operation must be a JSON object");
    const json* op = find_member(operation, "op");
    if (op == nullptr || !op->is_string())
        return fail("invalidSyntax", "an operation needs \"op\": add, replace or remove");
    const auto& name = op->get_ref<const std::string&>();
    op_kind kind;
    if (iequals(name, "add"))
        kind = op_kind::add;
    else if (iequals(name, "replace"))
        kind = op_kind::replace;
    else if (iequals(name, "remove"))
        kind = op_kind::remove;
    else
        return fail("invalidSyntax",
                    "unknown op " + in_quotes(name) + "; expected add, replace or remove");

    std::string_view path_text;
    if (const json* path = find_member(operation, "path"); path != nullptr && !path->is_null()) {
        if (!path->is_string()) return fail("invalidSyntax", "\"path\" must be a string");
        path_text = trim(path->get_ref<const std::string&>());
    }
    const json* value = find_member(operation, "value");
    if (kind != op_kind::remove && value == nullptr)
        return fail("invalidValue", ascii::lowered(name) + " needs a \"value\"");

    if (path_text.empty()) {
        if (kind == op_kind::remove)
            return fail("noTarget", "a remove operation needs a \"path\" (RFC 7644 §3.5.2.2)");
        return apply_path_less(kind, *value);
    }
    auto t = parse_path(type_, path_text);
    if (!t) return fail(t.error());
    if (!*t)
        return fail("invalidPath",
                    "path " + in_quotes(path_text) + " names no attribute of " + type_.name);
    if (kind == op_kind::remove) return remove(**t, value);
    return set(kind, **t, *value, kind == op_kind::add);
}

// RFC 7644 §3.5.2.1/§3.5.2.3 without "path": the value holds attributes. Entra also writes
// paths as keys ("name.givenName", "<urn>:department", `emails[type eq "work"].value`).
status patcher::apply_path_less(op_kind kind, const json& value) {
    if (!value.is_object())
        return fail("invalidValue",
                    "without a \"path\", \"value\" must be an object of attributes");
    for (auto it = value.begin(); it != value.end(); ++it) {
        if (iequals(it.key(), "schemas")) continue;
        auto t = parse_path(type_, it.key());
        if (!t) return fail(t.error());
        if (!*t) continue;  // an attribute the server does not store is ignored, not rejected
        // A filtered key is no RFC form; creating the value it describes (as Add does) is
        // what the client means when no value matches yet.
        if (auto s = set(kind, **t, *it, true); !s) return s;
    }
    return {};
}

status patcher::apply_extension(op_kind kind, const schema& ext, const json& value) {
    if (value.is_null()) {
        erase_member(doc_, ext.id);
        return {};
    }
    if (!value.is_object())
        return fail("invalidValue", in_quotes(ext.id) + " must be an object of its attributes");
    for (auto it = value.begin(); it != value.end(); ++it) {
        auto t = parse_path(type_, ext.id + ":" + it.key());
        if (!t) return fail(t.error());
        if (!*t || (*t)->extension != nullptr) continue;
        if (auto s = set(kind, **t, *it, true); !s) return s;
    }
    return {};
}

status patcher::keep_read_only(const target& t, const json* value) {
    if (t.ref.in == nullptr && t.ref.attr->name == "id" && t.ref.sub == nullptr) {
        const json* current = find_member(doc_, "id");
        if (value != nullptr && current != nullptr && *value == *current) return {};
        return fail("mutability", "'id' is assigned by the service provider and cannot change");
    }
    // Clients send read-only attributes back as they read them (meta, groups, members.display).
    return {};
}

json* patcher::container(const attr_ref& ref, bool create) {
    if (!ref.in_extension()) return &doc_;
    json* ext = member(doc_, ref.in->id);
    if (ext != nullptr && ext->is_object()) return ext;
    if (!create) return nullptr;
    return &(doc_[ref.in->id] = json::object());
}

// Runs `f` on the values of `a` in `box` as a list: the array of a multi-valued attribute, or
// a list of zero or one holding a complex value. Writes the list back canonically, without
// empty values, and without the attribute when no value remains.
template <class F>
status patcher::with_values(json& box, const attribute& a, F&& f) {
    json list = json::array();
    if (json* current = member(box, a.name); current != nullptr) {
        if (current->is_array())
            list = std::move(*current);
        else if (!current->is_null())
            list.push_back(std::move(*current));
    }
    status s = f(list);
    if (!s) return s;
    auto& values = list.get_ref<json::array_t&>();
    std::erase_if(values,
                  [](const json& v) { return v.is_null() || (v.is_object() && v.empty()); });
    if (values.empty())
        erase_member(box, a.name);
    else if (a.multi_valued)
        box[a.name] = std::move(list);
    else
        box[a.name] = std::move(values.front());
    return {};
}

scim_result<json> patcher::coerce_simple(const attribute& a, const json& v,
                                         const std::string& name) const {
    switch (a.type) {
        case attr_type::boolean:
            if (v.is_boolean()) return v;
            if (v.is_string()) {
                // Entra sends "True"/"False" (its SCIM compatibility notes).
                const auto& s = v.get_ref<const std::string&>();
                if (iequals(s, "true")) return json(true);
                if (iequals(s, "false")) return json(false);
            }
            return fail("invalidValue", in_quotes(name) + " must be a boolean");
        case attr_type::integer:
            if (v.is_number_integer()) return v;
            return fail("invalidValue", in_quotes(name) + " must be an integer");
        case attr_type::decimal:
            if (v.is_number()) return v;
            return fail("invalidValue", in_quotes(name) + " must be a number");
        case attr_type::complex:
            return fail("invalidValue", in_quotes(name) + " must be an object");
        case attr_type::string:
        case attr_type::reference:
        case attr_type::date_time:
        case attr_type::binary:
            break;
    }
    if (!v.is_string()) return fail("invalidValue", in_quotes(name) + " must be a string");
    if (a.required && v.get_ref<const std::string&>().empty())
        return fail("invalidValue", in_quotes(name) + " is required and must not be empty");
    return v;
}

// The sub-attributes `v` gives complex attribute `a`, canonically named, without unknown and
// read-only ones; null stays null ("remove this sub-attribute"). A bare string stands for
// {"value": string} (Entra's manager) and an empty `value` for no value.
scim_result<json> patcher::coerce_complex(const attribute& a, const json& v) const {
    const attribute* value_sub = a.sub("value");
    json given = v;
    if (v.is_string() && value_sub != nullptr) given = json{{"value", v}};
    if (!given.is_object()) return fail("invalidValue", in_quotes(a.name) + " must be an object");
    json out = json::object();
    for (auto it = given.begin(); it != given.end(); ++it) {
        const attribute* sub = a.sub(it.key());
        if (sub == nullptr || sub->mut == mutability::read_only) continue;
        if (it->is_null() ||
            (sub == value_sub && it->is_string() && it->get_ref<const std::string&>().empty())) {
            out[sub->name] = nullptr;
            continue;
        }
        auto c = coerce_simple(*sub, *it, a.name + "." + sub->name);
        if (!c) return std::unexpected(c.error());
        out[sub->name] = std::move(*c);
    }
    return out;
}

// The values `v` gives multi-valued attribute `a`: an array, a single value, or the array
// wrapped in an object under the attribute's own name (Salesforce's documented Add shape).
// Null sub-attributes ("$ref": null, as Entra sends) mean "not given".
scim_result<json> patcher::coerce_elements(const attribute& a, const json& v) const {
    json items = v;
    if (v.is_object() && v.size() == 1 && iequals(v.begin().key(), a.name)) items = v.front();
    if (!items.is_array()) {
        json one = std::move(items);
        items = json::array();
        items.push_back(std::move(one));
    }
    json out = json::array();
    for (const auto& item : items) {
        if (item.is_null()) continue;
        if (a.type != attr_type::complex) {
            auto c = coerce_simple(a, item, a.name);
            if (!c) return std::unexpected(c.error());
            out.push_back(std::move(*c));
            continue;
        }
        auto c = coerce_complex(a, item);
        if (!c) return std::unexpected(c.error());
        json el = without_nulls(*c);
        if (identified_by_value(a) && !el.contains("value"))
            return fail("invalidValue",
                        "each value of " + in_quotes(a.name) + " needs a \"value\"");
        if (!el.empty()) out.push_back(std::move(el));
    }
    return out;
}

// RFC 7644 §3.5.2: an immutable sub-attribute may be given a value when it has none, never
// changed or removed. `next` is the new value (nullptr: removed).
status patcher::check_immutable(const attribute& parent, const attribute& sub, const json& el,
                                const json* next) const {
    if (sub.mut != mutability::immutable || !el.is_object()) return {};
    const auto current = el.find(sub.name);
    if (current == el.end() || (next != nullptr && same_value(sub, *current, *next))) return {};
    return fail("mutability",
                in_quotes(parent.name + "." + sub.name) + " is immutable and cannot be changed");
}

status patcher::merge_into(const attribute& a, json& existing, const json& incoming) const {
    if (!existing.is_object()) existing = json::object();
    for (auto it = incoming.begin(); it != incoming.end(); ++it) {
        const attribute* sub = a.sub(it.key());
        const json* next = it->is_null() ? nullptr : &*it;
        if (auto s = check_immutable(a, *sub, existing, next); !s) return s;
        if (next == nullptr)
            erase_member(existing, sub->name);
        else if (sub->mut != mutability::immutable || !existing.contains(sub->name))
            existing[sub->name] = *next;
    }
    return {};
}

// Replaces one value whole (RFC 7644 §3.5.2.3, "all matching record values will be
// replaced"), keeping its immutable sub-attributes.
status patcher::replace_element(const attribute& a, json& existing, const json& incoming) const {
    json next = without_nulls(incoming);
    for (const auto& sub : a.sub_attributes) {
        if (sub.mut != mutability::immutable || !existing.is_object()) continue;
        const auto old = existing.find(sub.name);
        if (old == existing.end()) continue;
        const auto given = next.find(sub.name);
        if (given == next.end())
            next[sub.name] = *old;
        else if (auto s = check_immutable(a, sub, existing, &*given); !s)
            return s;
        else
            *given = *old;
    }
    existing = std::move(next);
    return {};
}

// Adds values to a multi-valued attribute (RFC 7644 §3.5.2.1): a value already present is
// updated rather than added twice; a value sent with "primary": true becomes the only primary.
status patcher::add_elements(const attribute& a, json& list, const json& incoming) const {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < list.size(); ++i)
        if (auto key = identity(a, list[i])) index.emplace(std::move(*key), i);
    std::optional<std::size_t> primary;
    for (const auto& el : incoming) {
        std::optional<std::size_t> at;
        if (auto key = identity(a, el)) {
            const auto [found, inserted] = index.emplace(std::move(*key), list.size());
            if (!inserted) at = found->second;
        } else {
            for (std::size_t i = 0; i < list.size() && !at; ++i)
                if (list[i] == el) at = i;
        }
        if (at) {
            // What identified the value stays as stored: equal under the attribute's case
            // rules, it "is already there" (RFC 7644 §3.5.2.1).
            json update = el;
            update.erase("value");
            if (!identified_by_value(a)) update.erase("type");
            if (auto s = merge_into(a, list[*at], update); !s) return s;
        } else {
            at = list.size();
            list.push_back(el);
        }
        if (is_primary(el)) primary = *at;
    }
    if (primary) clear_other_primaries(list, *primary);
    return {};
}

status patcher::set(op_kind kind, const target& t, const json& value, bool upsert) {
    if (t.extension != nullptr) return apply_extension(kind, *t.extension, value);
    if (is_password(t.ref)) {
        if (value.is_null()) return {};
        auto c = coerce_simple(*t.ref.attr, value, t.ref.attr->name);
        if (!c) return std::unexpected(c.error());
        password_ = c->get<std::string>();
        return {};
    }
    if (is_read_only(t.ref)) return keep_read_only(t, &value);
    const attribute& a = *t.ref.attr;
    // null means "no value" (RFC 7643 §2.5); so does an empty manager.value (Entra clearing it).
    const bool empty_value = t.ref.sub != nullptr && t.ref.sub->name == "value" &&
                             !a.multi_valued && value.is_string() &&
                             value.get_ref<const std::string&>().empty();
    // Adding "no value" to a list adds nothing; it never empties the list.
    if (value.is_null() && kind == op_kind::add && a.multi_valued && !t.where &&
        t.ref.sub == nullptr)
        return {};
    if (value.is_null() || empty_value) return remove(t, nullptr);

    json& box = *container(t.ref, true);
    if (a.type != attr_type::complex && !a.multi_valued) {
        auto c = coerce_simple(a, value, t.ref.canonical());
        if (!c) return std::unexpected(c.error());
        if (json* current = member(box, a.name);
            current != nullptr && a.mut == mutability::immutable && !same_value(a, *current, *c))
            return fail("mutability", in_quotes(a.name) + " is immutable and cannot be changed");
        box[a.name] = std::move(*c);
        return {};
    }
    if (t.where) {
        return with_values(box, a,
                           [&](json& list) { return set_filtered(kind, list, t, value, upsert); });
    }
    if (t.ref.sub != nullptr) {
        const attribute& sub = *t.ref.sub;
        auto c = coerce_simple(sub, value, t.ref.canonical());
        if (!c) return std::unexpected(c.error());
        return with_values(box, a, [&](json& list) -> status {
            if (list.empty()) list.push_back(json::object());
            if (sub.name == "primary" && *c == true && list.size() > 1)
                return fail("invalidValue", "only one value of " + in_quotes(a.name) +
                                                " can be primary; select it with a value filter");
            for (auto& el : list) {
                if (auto s = check_immutable(a, sub, el, &*c); !s) return s;
                if (!el.is_object()) el = json::object();
                el[sub.name] = *c;
            }
            return {};
        });
    }
    if (!a.multi_valued) {
        // RFC 7644 §3.5.2.1 and §3.5.2.3 alike: the given sub-attributes replace or add to the
        // current ones; the others stay.
        auto c = coerce_complex(a, value);
        if (!c) return std::unexpected(c.error());
        return with_values(box, a, [&](json& list) {
            if (list.empty()) list.push_back(json::object());
            return merge_into(a, list.front(), *c);
        });
    }
    auto incoming = coerce_elements(a, value);
    if (!incoming) return std::unexpected(incoming.error());
    return with_values(box, a, [&](json& list) -> status {
        if (kind == op_kind::add) return add_elements(a, list, *incoming);
        // Replace sets the whole list (RFC 7644 §3.5.2.3). Values that stay keep the
        // immutable sub-attributes the client did not repeat (a member's type).
        json previous = std::move(list);
        list = json::array();
        if (auto s = add_elements(a, list, *incoming); !s) return s;
        if (!identified_by_value(a)) return {};
        std::unordered_map<std::string, const json*> before;
        for (const auto& el : previous)
            if (auto key = identity(a, el)) before.emplace(std::move(*key), &el);
        for (auto& el : list) {
            const auto key = identity(a, el);
            const auto old = key ? before.find(*key) : before.end();
            if (old == before.end()) continue;
            for (const auto& sub : a.sub_attributes)
                if (sub.mut == mutability::immutable && !el.contains(sub.name) &&
                    old->second->contains(sub.name))
                    el[sub.name] = (*old->second)[sub.name];
        }
        return {};
    });
}

// Add or replace through `attr[filter]` or `attr[filter].sub`. Replace needs a matching value
// (RFC 7644 §3.5.2.3: noTarget otherwise); Add creates the value the filter describes, so
// that repeating it updates that value instead of adding a second one.
status patcher::set_filtered(op_kind kind, json& list, const target& t, const json& value,
                             bool upsert) {
    const attribute& a = *t.ref.attr;
    const attribute* sub = t.ref.sub;
    json sub_value;
    json complex_value;
    if (sub != nullptr) {
        auto c = coerce_simple(*sub, value, t.ref.canonical());
        if (!c) return std::unexpected(c.error());
        sub_value = std::move(*c);
    } else {
        auto c = coerce_complex(a, value);
        if (!c) return std::unexpected(c.error());
        complex_value = std::move(*c);
    }

    std::vector<std::size_t> hits;
    for (std::size_t i = 0; i < list.size(); ++i)
        if (t.where->matches_element(list[i])) hits.push_back(i);
    if (hits.empty()) {
        const std::string none =
            "no value of " + in_quotes(a.name) + " matches path " + in_quotes(t.text);
        if (!upsert) return fail("noTarget", none);
        if (!a.multi_valued && !list.empty()) return fail("noTarget", none);
        auto created = element_from_filter(a, t.filter_text);
        if (!created)
            return fail("noTarget", none +
                                        ", and only eq comparisons joined by 'and' say what "
                                        "value to add");
        if (sub != nullptr)
            (*created)[sub->name] = sub_value;
        else if (auto s = merge_into(a, *created, complex_value); !s)
            return s;
        list.push_back(std::move(*created));
        if (is_primary(list.back())) clear_other_primaries(list, list.size() - 1);
        return {};
    }

    std::optional<std::size_t> primary;
    for (const std::size_t i : hits) {
        json& el = list[i];
        if (sub != nullptr) {
            if (auto s = check_immutable(a, *sub, el, &sub_value); !s) return s;
            if (!el.is_object()) el = json::object();
            el[sub->name] = sub_value;
        } else if (kind == op_kind::add) {
            if (auto s = merge_into(a, el, complex_value); !s) return s;
        } else if (auto s = replace_element(a, el, complex_value); !s) {
            return s;
        }
        if (is_primary(el) &&
            (sub != nullptr ? sub->name == "primary" : complex_value.contains("primary")))
            primary = i;
    }
    if (primary) clear_other_primaries(list, *primary);
    return {};
}

// RFC 7644 §3.5.2.2. A remove whose filter matches nothing succeeds, so that removing a member
// twice (or one the group never had) is not an error.
status patcher::remove(const target& t, const json* value) {
    if (t.extension != nullptr) {
        erase_member(doc_, t.extension->id);
        return {};
    }
    if (is_password(t.ref)) return {};
    if (is_read_only(t.ref)) return keep_read_only(t, nullptr);
    const attribute& a = *t.ref.attr;
    if (a.required && t.ref.sub == nullptr && !t.where)
        return fail("invalidValue", in_quotes(t.ref.canonical()) +
                                        " is required; it can be "
                                        "replaced, not removed");
    json* box = container(t.ref, false);
    if (box == nullptr) return {};
    if (t.ref.sub == nullptr && !t.where) {
        if (value == nullptr || value->is_null() || !a.multi_valued) {
            erase_member(*box, a.name);
            return {};
        }
        // Entra's member removal: path "members" with the members to remove as the value.
        // Only those listed go, whatever the list holds; never the whole attribute.
        auto listed = coerce_elements(a, *value);
        if (!listed) return std::unexpected(listed.error());
        const attribute* value_sub = a.sub("value");
        std::unordered_set<std::string> doomed;
        for (const auto& el : *listed) {
            const auto v = el.find("value");
            if (value_sub == nullptr || v == el.end())
                return fail("invalidValue", "each value to remove from " + in_quotes(a.name) +
                                                " needs a \"value\"");
            doomed.insert(value_key(*value_sub, *v));
        }
        return with_values(*box, a, [&](json& list) -> status {
            std::erase_if(list.get_ref<json::array_t&>(), [&](const json& el) {
                const auto v = el.is_object() ? el.find("value") : el.end();
                return v != el.end() && doomed.contains(value_key(*value_sub, *v));
            });
            return {};
        });
    }
    return with_values(*box, a, [&](json& list) -> status {
        for (std::size_t i = list.size(); i-- > 0;) {
            json& el = list[i];
            if (t.where && !t.where->matches_element(el)) continue;
            if (t.ref.sub == nullptr) {
                list.erase(i);
                continue;
            }
            if (auto s = check_immutable(a, *t.ref.sub, el, nullptr); !s) return s;
            erase_member(el, t.ref.sub->name);
        }
        return {};
    });
}

json patcher::finish(const json& original) {
    erase_member(doc_, "password");
    for (const schema* ext : type_.extensions) {
        const json* now = find_member(doc_, ext->id);
        if (now != nullptr && now->is_object() && now->empty()) erase_member(doc_, ext->id);
    }
    // `schemas` lists the extensions present (RFC 7643 §3): keep it so when one comes or goes.
    json* schemas = member(doc_, "schemas");
    if (schemas != nullptr && schemas->is_array()) {
        for (const schema* ext : type_.extensions) {
            const bool before = find_member(original, ext->id) != nullptr;
            const bool after = find_member(doc_, ext->id) != nullptr;
            if (before == after) continue;
            auto& ids = schemas->get_ref<json::array_t&>();
            std::erase_if(ids, [&](const json& id) {
                return id.is_string() && iequals(id.get_ref<const std::string&>(), ext->id);
            });
            if (after) ids.emplace_back(ext->id);
        }
    }
    return std::move(doc_);
}

}  // namespace

scim_result<patch_result> apply_patch(const resource_type& type, const nlohmann::json& resource,
                                      const nlohmann::json& request) {
    if (!resource.is_object())
        return scim_fail(500, "", "the stored resource is not a JSON object");
    if (!request.is_object())
        return scim_fail(400, "invalidSyntax",
                         "a PATCH body is a JSON object with an \"Operations\" array");
    if (const json* schemas = find_member(request, "schemas"); schemas != nullptr) {
        bool listed = false;
        if (schemas->is_array())
            for (const auto& s : *schemas)
                listed = listed ||
                         (s.is_string() && iequals(s.get_ref<const std::string&>(), patch_op_urn));
        if (!listed)
            return scim_fail(400, "invalidSyntax",
                             "\"schemas\" must be [\"" + std::string(patch_op_urn) + "\"]");
    }
    const json* operations = find_member(request, "Operations");
    if (operations == nullptr || !operations->is_array() || operations->empty())
        return scim_fail(400, "invalidSyntax",
                         "a PATCH body needs an \"Operations\" array of one or more operations");

    patcher p(type, resource);
    for (std::size_t i = 0; i < operations->size(); ++i)
        if (auto s = p.apply((*operations)[i], i + 1); !s) return std::unexpected(s.error());
    patch_result out;
    out.resource = p.finish(resource);
    out.changed = out.resource != resource;
    out.password = p.take_password();
    return out;
}

}  // namespace scimsync::model::scim
