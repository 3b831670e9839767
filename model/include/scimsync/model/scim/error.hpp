#pragma once
// A SCIM protocol error (RFC 7644 §3.12): what the daemon turns into an error response. The
// protocol engines return these as values; `detail` is one sentence naming the offending
// attribute, path or character position, and never contains a secret.

#include <expected>
#include <string>

namespace scimsync::model::scim {

struct scim_error {
    int status = 400;
    std::string scim_type;  // invalidFilter, invalidPath, invalidValue, noTarget, mutability,
                            // uniqueness, tooMany, invalidSyntax, invalidVers, sensitive; or ""
    std::string detail;
};

template <class T>
using scim_result = std::expected<T, scim_error>;

inline std::unexpected<scim_error> scim_fail(int status, std::string scim_type, std::string detail) {
    return std::unexpected(scim_error{status, std::move(scim_type), std::move(detail)});
}

}  // namespace scimsync::model::scim
