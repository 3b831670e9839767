#pragma once
// SCIM schemas as data (RFC 7643 §4 User, §4.3 enterprise extension, §4.2 Group, §3.1 common
// attributes): the one description that the filter engine (case-exactness, types), the PATCH
// engine (mutability, multi-valued), input normalisation, output projection and the /Schemas
// discovery endpoint all read. Describes exactly what scimsync stores and serves.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scimsync::model::scim {

inline constexpr std::string_view user_schema_id = "urn:ietf:params:scim:schemas:core:2.0:User";
inline constexpr std::string_view group_schema_id = "urn:ietf:params:scim:schemas:core:2.0:Group";
inline constexpr std::string_view enterprise_user_schema_id =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

enum class attr_type { string, boolean, decimal, integer, date_time, reference, complex, binary };
enum class mutability { read_only, read_write, immutable, write_only };
enum class returned { always, never, by_default, request };
enum class uniqueness { none, server, global };

struct attribute {
    std::string name;  // canonical spelling, e.g. "userName"
    attr_type type = attr_type::string;
    bool multi_valued = false;
    bool required = false;
    bool case_exact = false;
    mutability mut = mutability::read_write;
    returned ret = returned::by_default;
    uniqueness uniq = uniqueness::none;
    std::string description;
    std::vector<std::string> canonical_values;
    std::vector<std::string> reference_types;
    std::vector<attribute> sub_attributes;

    // Case-insensitive lookup of a sub-attribute (RFC 7643 §2.1: names are case-insensitive).
    const attribute* sub(std::string_view name) const;
};

struct schema {
    std::string id;  // URN
    std::string name;
    std::string description;
    std::vector<attribute> attributes;

    const attribute* find(std::string_view name) const;  // case-insensitive
};

struct resource_type {
    std::string name;      // "User"
    std::string endpoint;  // "/Users"
    std::string description;
    const schema* core = nullptr;
    std::vector<const schema*> extensions;

    // The schema (core or extension) whose URN `urn` names, case-insensitively.
    const schema* schema_by_urn(std::string_view urn) const;
};

// Attributes every resource has (id, externalId, meta), RFC 7643 §3.1.
const std::vector<attribute>& common_attributes();
const schema& user_schema();
const schema& enterprise_user_schema();
const schema& group_schema();
const resource_type& user_type();
const resource_type& group_type();
const std::vector<const resource_type*>& resource_types();

// An attribute path resolved against a resource type, e.g. "name.givenName",
// "emails.value", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
// or "meta.lastModified". Names are matched case-insensitively.
struct attr_ref {
    const schema* in = nullptr;        // nullptr for the common attributes (id, externalId, meta)
    const attribute* attr = nullptr;   // the top-level attribute
    const attribute* sub = nullptr;    // the sub-attribute, if the path names one

    // The attribute the path finally designates (sub if present).
    const attribute& target() const { return sub != nullptr ? *sub : *attr; }
    // True when the attribute lives under the extension's URN key in a resource.
    bool in_extension() const;
    // Canonical spelling: "name.givenName", "<urn>:manager.value".
    std::string canonical() const;
};

// Resolves "attr", "attr.sub", "<urn>:attr" or "<urn>:attr.sub". nullopt when the path names
// no attribute of the type (the caller reports invalidPath / invalidFilter with the path).
std::optional<attr_ref> resolve(const resource_type& type, std::string_view path);

// The JSON representations served by the discovery endpoints.
nlohmann::json to_json(const schema& s);
nlohmann::json to_json(const resource_type& t);

bool iequals(std::string_view a, std::string_view b);

}  // namespace scimsync::model::scim
