#pragma once
// Secrets handling for the daemon: SCIM bearer tokens (generated, hashed, compared in constant
// time), resource ids, and password hashes for LDAP. Nothing here logs or returns a secret
// except token generation, whose caller prints it once.

#include <optional>
#include <string>
#include <string_view>

namespace scimsync::daemon::secrets {

// A random version-4 UUID, e.g. "2819c223-7f76-453a-919d-413861904646".
std::string uuid_v4();

struct issued_token {
    std::string id;     // public part, also the Token/<id> stream: 12 hex chars
    std::string token;  // "scs_<id>_<secret>": shown to the admin once, never stored
    std::string hash;   // "sha256:<hex>" of the whole token: what the log keeps
};
issued_token issue_token();

// The id embedded in a presented token, or nullopt if it is not shaped like ours.
std::optional<std::string> token_id(std::string_view presented);
// "sha256:<hex>" of a token: the form tokens are kept in.
std::string hash_token(std::string_view token);
// Compares sha256(presented) with a stored "sha256:<hex>" in constant time.
bool token_matches(std::string_view presented, std::string_view stored_hash);

// A salted SHA-512-crypt hash in the {CRYPT} form slapd verifies: "{CRYPT}$6$<salt>$<hash>".
std::string hash_password(std::string_view cleartext);

}  // namespace scimsync::daemon::secrets
