#include "scimsync/bridge/entry.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include "scimsync/bridge/dn.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/scim/filter.hpp"
#include "scimsync/model/scim/schema.hpp"

namespace scimsync::bridge {

using model::lower;

namespace scim = model::scim;
using nlohmann::json;

namespace {

// LDAP's string form of a scalar JSON value; nullopt for null, objects and arrays.
std::optional<std::string> ldap_string(const json& v) {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (s.empty()) return std::nullopt;  // LDAP has no empty directory strings
        return s;
    }
    if (v.is_boolean()) return v.get<bool>() ? "TRUE" : "FALSE";
    if (v.is_number()) return v.dump();
    return std::nullopt;
}

bool is_primary(const json& element) {
    if (!element.is_object()) return false;
    const auto it = element.find("primary");
    return it != element.end() && it->is_boolean() && it->get<bool>();
}

bool resource_active(const json& resource) {
    const auto it = resource.find("active");
    return it == resource.end() || !it->is_boolean() || it->get<bool>();
}

bool has_class(const std::vector<std::string>& classes, std::string_view name) {
    return std::any_of(classes.begin(), classes.end(),
                       [&](const std::string& c) { return lower(c) == lower(name); });
}

}  // namespace

bool ci_less::operator()(std::string_view a, std::string_view b) const {
    const auto n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        const auto ca = std::tolower(static_cast<unsigned char>(a[i]));
        const auto cb = std::tolower(static_cast<unsigned char>(b[i]));
        if (ca != cb) return ca < cb;
    }
    return a.size() < b.size();
}

struct entry_builder::compiled_rule {
    attribute_rule rule;
    scim::attr_ref ref;                  // the top-level attribute (and sub, if named)
    std::optional<scim::filter> select;  // value filter on a multi-valued attribute
};

entry_builder::entry_builder(entry_builder&&) noexcept = default;
entry_builder& entry_builder::operator=(entry_builder&&) noexcept = default;
entry_builder::~entry_builder() = default;

std::expected<entry_builder, std::string> entry_builder::compile(mapping m) {
    entry_builder b;
    const auto& type = scim::user_type();
    for (const auto& r : m.user_attributes) {
        auto cr = std::make_unique<compiled_rule>();
        cr->rule = r;
        const std::string key = "attributes." + r.ldap;
        const auto open = r.scim_path.find('[');
        std::string path = r.scim_path;
        if (open != std::string::npos) {
            const auto close = r.scim_path.find(']', open);
            if (close == std::string::npos)
                return std::unexpected(key + ": \"" + r.scim_path + "\" has no closing ']'");
            const std::string base = r.scim_path.substr(0, open);
            const auto parent = scim::resolve(type, base);
            if (!parent || parent->sub != nullptr || !parent->attr->multi_valued ||
                parent->attr->type != scim::attr_type::complex) {
                return std::unexpected(key + ": \"" + base +
                                       "\" is not a multi-valued complex attribute of User");
            }
            auto f = scim::filter::parse_value_filter(
                type, *parent, std::string_view(r.scim_path).substr(open + 1, close - open - 1));
            if (!f) {
                return std::unexpected(key + ": bad value filter in \"" + r.scim_path +
                                       "\": " + f.error().detail);
            }
            cr->select.emplace(std::move(*f));
            path = base + r.scim_path.substr(close + 1);
        }
        const auto ref = scim::resolve(type, path);
        if (!ref) return std::unexpected(key + ": unknown SCIM path \"" + r.scim_path + "\"");
        if (ref->target().type == scim::attr_type::complex) {
            return std::unexpected(key + ": \"" + r.scim_path +
                                   "\" is a complex attribute; name one of its sub-attributes");
        }
        if (ref->target().mut == scim::mutability::write_only) {
            return std::unexpected(key + ": \"" + r.scim_path +
                                   "\" is write-only (passwords go through ldap.passwords)");
        }
        cr->ref = *ref;
        b.user_managed_.insert(lower(r.ldap));
        if (lower(r.ldap) == lower(m.user_rdn)) b.rdn_rule_ = cr.get();
        b.rules_.push_back(std::move(cr));
    }
    if (b.rdn_rule_ == nullptr)
        return std::unexpected("users.rdn: no rule in [ldap.attributes] maps \"" + m.user_rdn +
                               "\"");
    b.user_managed_.insert("objectclass");
    if (has_class(m.user_object_classes, "person") ||
        has_class(m.user_object_classes, "inetOrgPerson")) {
        b.user_managed_.insert("cn");
        b.user_managed_.insert("sn");
    }
    if (m.passwords) b.user_managed_.insert("userpassword");
    if (m.on_deactivate == deactivate_mode::attribute)
        b.user_managed_.insert(lower(m.deactivate_attribute));
    b.group_managed_ = {"objectclass", "cn", lower(m.member_attribute())};
    b.device_managed_ = {"objectclass", "cn", "description", "serialnumber", "owner", "ou"};
    b.config_ = std::move(m);
    return b;
}

std::vector<std::string> entry_builder::values(const compiled_rule& r, const json& res) const {
    std::vector<std::string> out;
    const json* container = &res;
    if (r.ref.in_extension()) {
        const auto ext = res.find(r.ref.in->id);
        if (ext == res.end() || !ext->is_object()) return out;
        container = &*ext;
    }
    const auto top = container->find(r.ref.attr->name);
    if (top == container->end() || top->is_null()) return out;
    const auto take = [&](const json& element) {
        const json* v = &element;
        if (r.ref.sub != nullptr) {
            if (!element.is_object()) return;
            const auto s = element.find(r.ref.sub->name);
            if (s == element.end()) return;
            v = &*s;
        }
        if (auto s = ldap_string(*v); s && std::find(out.begin(), out.end(), *s) == out.end()) {
            out.push_back(std::move(*s));
        }
    };
    if (r.ref.attr->multi_valued && top->is_array()) {
        // Primary first, then the others in their order.
        for (const bool primary_pass : {true, false}) {
            for (const auto& element : *top) {
                if (is_primary(element) != primary_pass) continue;
                if (r.select && !r.select->matches_element(element)) continue;
                take(element);
            }
        }
    } else {
        take(*top);
    }
    return out;
}

std::optional<std::string> entry_builder::user_dn(const json& resource) const {
    const bool active = resource_active(resource);
    if (!active && config_.on_deactivate == deactivate_mode::remove) return std::nullopt;
    const auto rdn_values = values(*rdn_rule_, resource);
    if (rdn_values.empty()) return std::nullopt;  // userName is required, so never in practice
    const std::string& base = !active && config_.on_deactivate == deactivate_mode::move
                                  ? config_.disabled_base
                                  : config_.people_base;
    return config_.user_rdn + "=" + escape_dn_value(rdn_values.front()) + "," + base;
}

std::optional<ldap_entry> entry_builder::user_entry(const json& resource,
                                                    const std::optional<std::string>& password_hash,
                                                    const user_dn_fn& dn_of) const {
    auto dn = user_dn(resource);
    if (!dn) return std::nullopt;
    ldap_entry e;
    e.dn = std::move(*dn);
    e.attrs["objectClass"] = config_.user_object_classes;
    for (const auto& r : rules_) {
        auto v = values(*r, resource);
        if (r->rule.as_user_dn) {
            std::vector<std::string> dns;
            for (const auto& id : v) {
                if (auto d = dn_of(id)) dns.push_back(std::move(*d));
            }
            v = std::move(dns);
        }
        if (r.get() == rdn_rule_ && v.size() > 1) v.resize(1);  // the RDN value, and only it
        if (!v.empty()) e.attrs[r->rule.ldap] = std::move(v);
    }
    // person requires cn and sn: fall back to what the user certainly has.
    if (user_managed_.contains("sn")) {
        const std::string user_name = values(*rdn_rule_, resource).front();
        if (!e.attrs.contains("cn")) {
            const auto dn_it = resource.find("displayName");
            auto name = dn_it != resource.end() ? ldap_string(*dn_it) : std::nullopt;
            e.attrs["cn"] = {name ? *name : user_name};
        }
        if (!e.attrs.contains("sn")) e.attrs["sn"] = {user_name};
    }
    if (config_.passwords && password_hash && !password_hash->empty())
        e.attrs["userPassword"] = {*password_hash};
    if (config_.on_deactivate == deactivate_mode::attribute && !resource_active(resource))
        e.attrs[config_.deactivate_attribute] = {config_.deactivate_value};
    return e;
}

std::vector<std::string> entry_builder::referenced_users(const json& resource) const {
    std::vector<std::string> out;
    for (const auto& r : rules_) {
        if (!r->rule.as_user_dn) continue;
        for (auto& v : values(*r, resource)) out.push_back(std::move(v));
    }
    return out;
}

std::string entry_builder::group_dn(const json& group_resource) const {
    std::string name;
    if (const auto it = group_resource.find("displayName");
        it != group_resource.end() && it->is_string()) {
        name = it->get<std::string>();
    }
    if (name.empty() && group_resource.contains("id"))
        name = group_resource["id"].get<std::string>();
    return "cn=" + escape_dn_value(name) + "," + config_.groups_base;
}

std::string entry_builder::empty_member_for(const std::string& group_dn_value) const {
    return config_.empty_group_member.empty() ? group_dn_value : config_.empty_group_member;
}

ldap_entry entry_builder::group_entry(const json& group_resource,
                                      std::vector<std::string> member_dns) const {
    ldap_entry e;
    e.dn = group_dn(group_resource);
    e.attrs["objectClass"] = {"top", config_.group_object_class()};
    std::string name;
    if (const auto it = group_resource.find("displayName");
        it != group_resource.end() && it->is_string()) {
        name = it->get<std::string>();
    }
    e.attrs["cn"] = {name.empty() ? group_resource.value("id", std::string("group")) : name};
    std::sort(member_dns.begin(), member_dns.end());
    member_dns.erase(std::unique(member_dns.begin(), member_dns.end()), member_dns.end());
    if (member_dns.empty()) member_dns.push_back(empty_member_for(e.dn));
    e.attrs[config_.member_attribute()] = std::move(member_dns);
    return e;
}

std::optional<ldap_entry> entry_builder::device_entry(
    const model::device_state& d, const std::optional<std::string>& owner_dn) const {
    if (config_.devices_base.empty()) return std::nullopt;
    ldap_entry e;
    e.dn = "cn=" + escape_dn_value(d.id) + "," + config_.devices_base;
    e.attrs["objectClass"] = {"top", "device"};
    e.attrs["cn"] = {d.id};
    if (!d.name.empty()) e.attrs["description"] = {d.name};
    if (!d.serial.empty()) e.attrs["serialNumber"] = {d.serial};
    if (owner_dn) e.attrs["owner"] = {*owner_dn};
    if (!d.policy.empty()) e.attrs["ou"] = {d.policy};
    return e;
}

std::string entry_builder::role_dn(const std::string& label) const {
    return "cn=" + escape_dn_value(label) + "," + config_.roles_base;
}

std::optional<ldap_entry> entry_builder::role_entry(const std::string& label,
                                                    std::vector<std::string> member_dns) const {
    if (config_.roles_base.empty()) return std::nullopt;
    ldap_entry e;
    e.dn = role_dn(label);
    e.attrs["objectClass"] = {"top", config_.group_object_class()};
    e.attrs["cn"] = {label};
    std::sort(member_dns.begin(), member_dns.end());
    member_dns.erase(std::unique(member_dns.begin(), member_dns.end()), member_dns.end());
    if (member_dns.empty()) member_dns.push_back(empty_member_for(e.dn));
    e.attrs[config_.member_attribute()] = std::move(member_dns);
    return e;
}

std::vector<modification> diff(const attribute_values& from, const attribute_values& to) {
    std::vector<modification> mods;
    for (const auto& [name, values] : to) {
        const auto it = from.find(name);
        if (it == from.end()) {
            mods.push_back({modification::replace, name, values});
            continue;
        }
        auto a = it->second;
        auto b = values;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b) mods.push_back({modification::replace, name, values});
    }
    for (const auto& [name, values] : from) {
        if (!to.contains(name)) mods.push_back({modification::remove, name, {}});
    }
    return mods;
}

}  // namespace scimsync::bridge
