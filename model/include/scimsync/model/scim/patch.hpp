#pragma once
// The PATCH engine (RFC 7644 §3.5.2) with the request shapes Okta and Microsoft Entra send.
// Pure: takes the stored resource and a PatchOp body, returns the resulting resource.
//
// Accepted (see issue 3 and docs): op names in any case; paths with and without value filters
// (`members[value eq "id"]`, `emails[type eq "work"].value`), extension paths
// (`urn:...:enterprise:2.0:User:department`); path-less add/replace whose value keys are
// themselves paths (`"name.givenName"`, `"urn:...:User:department"`); booleans as "True"/"False";
// null meaning "remove the value"; remove with a value array on `members` removing only those
// listed; Add on a filtered path updating the matching element or creating it; "primary": true
// on one element clearing it on the others; read-only attributes sent with their current value
// (Okta's group rename with its own `id`) ignored.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "scimsync/model/scim/error.hpp"
#include "scimsync/model/scim/schema.hpp"

namespace scimsync::model::scim {

struct patch_result {
    nlohmann::json resource;  // the resulting resource (same layout as stored)
    bool changed = false;     // false when the operations left the resource as it was
    // The cleartext password an operation set (the last one wins), taken out of `resource` and
    // never stored there: the caller hashes it. Setting a password is a change of its own, so
    // the caller must act on it even when `changed` is false.
    std::optional<std::string> password;
};

// `request` is the whole PATCH body ({"schemas":[PatchOp], "Operations":[...]}). `resource`
// is the stored resource. Errors: invalidSyntax (body shape), invalidPath, noTarget (remove
// without path, or a filter matching nothing where RFC requires a target), invalidValue,
// mutability (changing id or an immutable attribute).
scim_result<patch_result> apply_patch(const resource_type& type, const nlohmann::json& resource,
                                      const nlohmann::json& request);

}  // namespace scimsync::model::scim
