#include "scimsync/bridge/mapping.hpp"

#include <algorithm>
#include <cctype>

#include "scimsync/bridge/dn.hpp"
#include "scimsync/bridge/entry.hpp"
#include "scimsync/model/directory.hpp"

namespace scimsync::bridge {

using model::lower;

namespace {

bool valid_attribute_name(std::string_view name) {
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name.front()))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
}

}  // namespace

std::string_view to_string(deactivate_mode m) {
    switch (m) {
        case deactivate_mode::leave:
            return "leave";
        case deactivate_mode::attribute:
            return "attribute";
        case deactivate_mode::move:
            return "move";
        case deactivate_mode::remove:
            return "delete";
    }
    return "leave";
}

std::string_view to_string(drift_policy p) {
    switch (p) {
        case drift_policy::repair:
            return "repair";
        case drift_policy::report:
            return "report";
        case drift_policy::accept:
            return "accept";
    }
    return "repair";
}

std::expected<deactivate_mode, std::string> parse_deactivate_mode(std::string_view s) {
    if (s == "leave") return deactivate_mode::leave;
    if (s == "attribute") return deactivate_mode::attribute;
    if (s == "move") return deactivate_mode::move;
    if (s == "delete") return deactivate_mode::remove;
    return std::unexpected("expected leave, attribute, move or delete, got \"" + std::string(s) +
                           "\"");
}

std::expected<drift_policy, std::string> parse_drift_policy(std::string_view s) {
    if (s == "repair") return drift_policy::repair;
    if (s == "report") return drift_policy::report;
    if (s == "accept") return drift_policy::accept;
    return std::unexpected("expected repair, report or accept, got \"" + std::string(s) + "\"");
}

drift_policy mapping::policy_for(std::string_view ldap_attribute) const {
    const auto it = drift.find(lower(ldap_attribute));
    return it == drift.end() ? default_drift : it->second;
}

std::vector<attribute_rule> default_user_attributes() {
    const std::string ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";
    return {
        {"uid", "userName", false},
        {"cn", "displayName", false},
        {"displayName", "displayName", false},
        {"givenName", "name.givenName", false},
        {"sn", "name.familyName", false},
        {"mail", "emails[type eq \"work\"].value", false},
        {"telephoneNumber", "phoneNumbers[type eq \"work\"].value", false},
        {"mobile", "phoneNumbers[type eq \"mobile\"].value", false},
        {"title", "title", false},
        {"preferredLanguage", "preferredLanguage", false},
        {"employeeNumber", ent + "employeeNumber", false},
        {"departmentNumber", ent + "department", false},
        {"o", ent + "organization", false},
        {"manager", ent + "manager.value", true},
    };
}

mapping default_mapping(std::string_view suffix) {
    mapping m;
    const std::string s(suffix);
    m.people_base = "ou=people," + s;
    m.groups_base = "ou=groups," + s;
    m.roles_base = "ou=roles," + s;
    m.devices_base = "ou=devices," + s;
    m.disabled_base = "ou=disabled," + s;
    m.user_attributes = default_user_attributes();
    return m;
}

std::expected<void, std::string> validate(const mapping& m) {
    const auto check_dn = [](std::string_view key,
                             const std::string& dn) -> std::expected<void, std::string> {
        if (dn.empty()) return std::unexpected(std::string(key) + ": must not be empty");
        if (!normalize_dn(dn))
            return std::unexpected(std::string(key) + ": \"" + dn + "\" is not a valid DN");
        return {};
    };
    if (auto r = check_dn("users.base", m.people_base); !r) return r;
    if (auto r = check_dn("groups.base", m.groups_base); !r) return r;
    if (is_below(m.people_base, m.groups_base) || is_below(m.groups_base, m.people_base) ||
        normalize_dn(m.people_base) == normalize_dn(m.groups_base)) {
        return std::unexpected("groups.base: must not overlap users.base");
    }
    if (m.on_deactivate == deactivate_mode::move) {
        if (auto r = check_dn("deactivate.base", m.disabled_base); !r) return r;
        if (!m.devices_base.empty())
            if (auto r = check_dn("devices.base", m.devices_base); !r) return r;
        if (!m.roles_base.empty())
            if (auto r = check_dn("roles.base", m.roles_base); !r) return r;
        if (normalize_dn(m.disabled_base) == normalize_dn(m.people_base))
            return std::unexpected("deactivate.base: must differ from users.base");
    }
    if (!m.empty_group_member.empty() && !normalize_dn(m.empty_group_member)) {
        return std::unexpected("groups.empty_member: \"" + m.empty_group_member +
                               "\" is not a valid DN");
    }
    if (!valid_attribute_name(m.user_rdn))
        return std::unexpected("users.rdn: \"" + m.user_rdn + "\" is not an attribute name");
    if (m.user_object_classes.empty())
        return std::unexpected("users.object_classes: must name at least one class");
    for (const auto& oc : m.user_object_classes) {
        if (!valid_attribute_name(oc))
            return std::unexpected("users.object_classes: \"" + oc + "\" is not a class name");
    }
    std::set<std::string> seen;
    for (const auto& r : m.user_attributes) {
        if (!valid_attribute_name(r.ldap))
            return std::unexpected("attributes: \"" + r.ldap + "\" is not an attribute name");
        if (!seen.insert(lower(r.ldap)).second)
            return std::unexpected("attributes." + r.ldap + ": mapped twice");
        const auto l = lower(r.ldap);
        if (l == "objectclass" || l == "userpassword" || l == lower(m.member_attribute())) {
            return std::unexpected("attributes." + r.ldap +
                                   ": is written by the bridge itself and cannot be mapped");
        }
    }
    if (!seen.contains(lower(m.user_rdn))) {
        return std::unexpected("users.rdn: no rule in [ldap.attributes] maps \"" + m.user_rdn +
                               "\"");
    }
    if (m.on_deactivate == deactivate_mode::attribute) {
        if (!valid_attribute_name(m.deactivate_attribute))
            return std::unexpected("deactivate.attribute: \"" + m.deactivate_attribute +
                                   "\" is not an attribute name");
        if (m.deactivate_value.empty())
            return std::unexpected("deactivate.value: must not be empty");
        if (seen.contains(lower(m.deactivate_attribute)))
            return std::unexpected("deactivate.attribute: \"" + m.deactivate_attribute +
                                   "\" is also mapped in [ldap.attributes]");
    }
    // Paths and filters: compiling resolves them and names the bad one.
    auto compiled = entry_builder::compile(m);
    if (!compiled) return std::unexpected(compiled.error());
    return {};
}

}  // namespace scimsync::bridge
