#pragma once
// Turning client JSON into stored resources and stored resources into responses. Pure.
//
// Stored layout: attribute names in their canonical spelling, core attributes at the top
// level, extension attributes under their schema URN, no null values, no read-only attributes
// other than `id` (meta is computed on output), no `password` (the daemon hashes it first).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "scimsync/model/scim/error.hpp"
#include "scimsync/model/scim/schema.hpp"

namespace scimsync::model::scim {

// Normalises a POST/PUT body (or a PATCH result) for storage:
// - attribute names matched case-insensitively and rewritten canonically;
// - booleans sent as the strings "True"/"False" (any case) become booleans;
// - null values and empty arrays/objects are dropped ("no value");
// - attributes the server does not store or that are read-only (`groups` on a User, `meta`,
//   `id`, extra schema URNs it does not implement) are ignored, not rejected;
// - `roles: []` and other empty multi-valued attributes vanish;
// - the enterprise `manager` sent as a bare id string becomes {"value": id};
// - `schemas` is rewritten to the core schema plus the extensions actually present;
// - `password` is removed from the result and returned separately in `password`.
// Errors: 400 invalidValue naming the attribute when a value has the wrong type (e.g. an object
// for userName) or a required attribute (userName, Group displayName) is missing or empty.
struct normalized {
    nlohmann::json resource;
    std::optional<std::string> password;  // cleartext, to be hashed by the caller, never stored
};
scim_result<normalized> normalize(const resource_type& type, const nlohmann::json& body);

// Output projection (RFC 7644 §3.4.2.5 and §3.9): `attributes` and `excludedAttributes` as
// comma-separated attribute paths; attributes returned "always" (id, schemas, meta's
// resourceType) are always present, "never" (password) never. Unknown paths in the lists are
// ignored, as RFC 7644 allows.
nlohmann::json project(const resource_type& type, const nlohmann::json& resource,
                       const std::vector<std::string>& attributes,
                       const std::vector<std::string>& excluded);

// Splits "userName, name.givenName" into trimmed paths.
std::vector<std::string> split_attribute_list(std::string_view text);

}  // namespace scimsync::model::scim
