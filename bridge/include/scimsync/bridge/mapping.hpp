#pragma once
// How SCIM resources become LDAP entries: base DNs, RDNs, objectClasses, the attribute map,
// the treatment of deactivated users, passwords and the drift policy per attribute. Built from
// defaults plus the operator's [ldap] settings (daemon/config.cpp reads the TOML), compiled
// once, then used for every event. Pure: no I/O.

#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace scimsync::bridge {

enum class group_class { group_of_names, group_of_unique_names };
// What happens in LDAP when a user becomes inactive (active=false).
enum class deactivate_mode {
    leave,      // nothing: the entry stays as it is
    attribute,  // set `deactivate_attribute: deactivate_value` while inactive
    move,       // move the entry under `disabled_base` while inactive
    remove,     // delete the entry while inactive (re-created on reactivation)
};
// What to do when an attribute is changed in LDAP by someone other than the bridge.
enum class drift_policy {
    repair,  // re-assert the SCIM value (and record that it did)
    report,  // record the drift, keep LDAP's value
    accept,  // LDAP owns this attribute: record it, never overwrite it
};

std::string_view to_string(deactivate_mode m);
std::string_view to_string(drift_policy p);
std::expected<deactivate_mode, std::string> parse_deactivate_mode(std::string_view s);
std::expected<drift_policy, std::string> parse_drift_policy(std::string_view s);

// One LDAP attribute fed from one SCIM path. Paths: "userName", "name.givenName",
// "phoneNumbers.value", `emails[type eq "work"].value` (a value filter picks elements),
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department". Values of
// multi-valued attributes come primary first. `as_user_dn` turns user ids into the DNs of
// those users (the enterprise manager).
struct attribute_rule {
    std::string ldap;
    std::string scim_path;
    bool as_user_dn = false;
};

struct mapping {
    std::string people_base;
    std::string groups_base;
    // Effective access as groups: one entry per grant ("dashboard/admin", or "dashboard" for
    // access without a role) whose members are every user holding it, directly or through
    // groups; "" turns it off. The OU must exist.
    std::string roles_base;
    // Devices (the admin API's device view) as RFC 4519 `device` entries, cn=<device id>;
    // "" turns device mirroring off. The OU must exist, like the people and group OUs.
    std::string devices_base;
    // The user RDN attribute; its value comes from the rule that maps this attribute.
    std::string user_rdn = "uid";
    std::vector<std::string> user_object_classes{"top", "person", "organizationalPerson",
                                                 "inetOrgPerson"};
    group_class group_kind = group_class::group_of_names;
    // groupOfNames/groupOfUniqueNames require at least one member. An empty group gets this
    // value instead; empty means "the group's own DN" (harmless: no user ever matches it).
    std::string empty_group_member;
    std::vector<attribute_rule> user_attributes;
    deactivate_mode on_deactivate = deactivate_mode::leave;
    std::string deactivate_attribute = "employeeType";
    std::string deactivate_value = "inactive";
    std::string disabled_base;  // for deactivate_mode::move
    bool passwords = false;     // mirror the {CRYPT} hash as userPassword
    drift_policy default_drift = drift_policy::repair;
    std::map<std::string, drift_policy> drift;  // by LDAP attribute, lower-cased

    std::string member_attribute() const {
        return group_kind == group_class::group_of_names ? "member" : "uniqueMember";
    }
    std::string group_object_class() const {
        return group_kind == group_class::group_of_names ? "groupOfNames" : "groupOfUniqueNames";
    }
    drift_policy policy_for(std::string_view ldap_attribute) const;
};

// The default mapping under `suffix` (e.g. "dc=example,dc=com"): people under ou=people,
// groups under ou=groups, roles under ou=roles, disabled users under ou=disabled, and the
// attribute map documented in bridge/README.md.
mapping default_mapping(std::string_view suffix);
std::vector<attribute_rule> default_user_attributes();

// Checks a mapping: valid DNs, known SCIM paths, one rule per LDAP attribute, an RDN rule, a
// deactivation attribute that the map does not also own. The error names the setting, e.g.
// "attributes.mail: unknown SCIM path \"emails[tpye eq \\\"work\\\"].value\"".
std::expected<void, std::string> validate(const mapping& m);

}  // namespace scimsync::bridge
