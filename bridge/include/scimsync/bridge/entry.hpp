#pragma once
// SCIM resources → LDAP entries, per a compiled mapping. Pure: the mirror, reconcile and the
// tests all build entries here, so "what the entry should be" has one definition.

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "scimsync/bridge/mapping.hpp"
#include "scimsync/model/access.hpp"

namespace scimsync::bridge {

// LDAP attribute descriptions compare case-insensitively.
struct ci_less {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
};

using attribute_values = std::map<std::string, std::vector<std::string>, ci_less>;

struct ldap_entry {
    std::string dn;
    attribute_values attrs;  // objectClass included; no empty value lists
    bool operator==(const ldap_entry&) const = default;
};

// Looks up the DN of a user by id (nullopt when that user has no entry).
using user_dn_fn = std::function<std::optional<std::string>(std::string_view user_id)>;

class entry_builder {
public:
    // Compiles `m` (resolving SCIM paths and value filters once). The error names the setting.
    static std::expected<entry_builder, std::string> compile(mapping m);

    const mapping& config() const { return config_; }

    // The DN a user resource gets, or nullopt when it gets no entry (inactive under
    // deactivate_mode::remove).
    std::optional<std::string> user_dn(const nlohmann::json& resource) const;
    // The whole entry for a user; nullopt as for user_dn.
    std::optional<ldap_entry> user_entry(const nlohmann::json& resource,
                                         const std::optional<std::string>& password_hash,
                                         const user_dn_fn& dn_of) const;
    std::string group_dn(const nlohmann::json& group_resource) const;
    // A group's entry with these member DNs (the empty-group member when there are none).
    ldap_entry group_entry(const nlohmann::json& group_resource,
                           std::vector<std::string> member_dns) const;
    std::string empty_member_for(const std::string& group_dn) const;

    // A device's entry: objectClass device, cn = id, description = name, serialNumber, owner
    // (the owner's DN, when the owner has an entry), ou = device policy. nullopt when devices
    // are not mirrored.
    std::optional<ldap_entry> device_entry(const model::device_state& d,
                                           const std::optional<std::string>& owner_dn) const;
    const std::set<std::string>& managed_device_attributes() const { return device_managed_; }

    // A role's group: cn = the grant's label ("dashboard/admin"), the mapping's group class,
    // these member DNs. nullopt when roles are not mirrored.
    std::optional<ldap_entry> role_entry(const std::string& label,
                                         std::vector<std::string> member_dns) const;
    std::string role_dn(const std::string& label) const;

    // The user ids a resource refers to through as_user_dn rules (its manager).
    std::vector<std::string> referenced_users(const nlohmann::json& resource) const;

    // Attributes the bridge writes on user / group entries (lower-cased): reconcile compares
    // these, ingestion decides drift on these.
    const std::set<std::string>& managed_user_attributes() const { return user_managed_; }
    const std::set<std::string>& managed_group_attributes() const { return group_managed_; }

    struct compiled_rule;
    entry_builder(entry_builder&&) noexcept;
    entry_builder& operator=(entry_builder&&) noexcept;
    ~entry_builder();

private:
    entry_builder() = default;
    std::vector<std::string> values(const compiled_rule& r, const nlohmann::json& res) const;

    mapping config_;
    std::vector<std::unique_ptr<compiled_rule>> rules_;
    const compiled_rule* rdn_rule_ = nullptr;
    std::set<std::string> user_managed_;
    std::set<std::string> group_managed_;
    std::set<std::string> device_managed_;
};

// The modifications that turn `from` into `to` (same DN assumed): one replace per attribute
// whose values differ, a delete per attribute that disappeared. Empty when equal.
struct modification {
    enum kind { add, remove, replace } op = replace;
    std::string attribute;
    std::vector<std::string> values;  // for remove: empty means the whole attribute
    bool operator==(const modification&) const = default;
};
std::vector<modification> diff(const attribute_values& from, const attribute_values& to);

}  // namespace scimsync::bridge
