#pragma once
// Distinguished names and filter values, built safely. Every value that reaches a DN or a
// search filter goes through these functions, so a userName such as `Smith, John`, `a+b=c`,
// `#hash`, `"quoted"`, ` padded `, `Zoë` or `*)(uid=*` stays one value and can never add an
// RDN, leave the managed subtree, or change a filter's meaning.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scimsync::bridge {

// RFC 4514 §2.4: escapes an attribute value for use in an RDN. `,` `+` `"` `\` `<` `>` `;`
// and `=` get a backslash; a leading `#` or space and a trailing space are escaped; NUL and
// other control characters become \XX. UTF-8 passes through unchanged.
std::string escape_dn_value(std::string_view value);

// RFC 4515 §3: escapes an assertion value for a search filter (`*` `(` `)` `\` NUL as \XX).
std::string escape_filter_value(std::string_view value);

// A DN in a canonical form for comparisons (libldap's ldap_dn_normalize, attribute types
// lower-cased, then the whole string lower-cased: the attributes we place in RDNs match
// case-insensitively). nullopt if `dn` is not a valid DN.
std::optional<std::string> normalize_dn(std::string_view dn);

// The RDNs of `dn`, outermost last, each as written ("uid=a\,b"); nullopt if invalid.
std::optional<std::vector<std::string>> split_dn(std::string_view dn);

// True when `dn` lies strictly below `base` (any depth), comparing normalised forms.
bool is_below(std::string_view dn, std::string_view base);
// True when `dn` is exactly one RDN below `base`.
bool is_child_of(std::string_view dn, std::string_view base);

// The attribute type and the (unescaped) value of the first RDN's first AVA; nullopt if the
// DN is invalid or the value is not a string.
std::optional<std::pair<std::string, std::string>> first_ava(std::string_view dn);

// The parent of a DN as written (everything after the first unescaped comma), "" for a
// single-RDN DN.
std::string parent_dn(std::string_view dn);
// The first RDN as written.
std::string first_rdn(std::string_view dn);

}  // namespace scimsync::bridge
