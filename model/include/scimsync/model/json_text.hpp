#pragma once
// Reading and writing canonical JSON text without building an nlohmann tree. Pure.
//
// "Canonical" is exactly what nlohmann::json::dump() prints (no indent, ensure_ascii off): no
// whitespace, object keys unique and in ascending byte order, strings escaped only where dump
// escapes them (\" \\ \b \f \n \r \t, other control characters as lower-case \u00xx), numbers
// only as integers that fit 64 bits. Event data and stored resources are canonical because
// they are dumped, so the write and read paths can take them apart and put them together as
// text; anything else (hand-written JSON, floats, other escapes) makes these functions answer
// "not canonical" and the caller falls back to nlohmann, which also reports malformed input.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scimsync::model::json_text {

struct member {
    std::string_view key;    // as it appears between the quotes (canonical keys are plain)
    std::string_view value;  // the value's text, a view into the scanned object
};

// Whether `text` is one valid JSON value (RFC 8259, UTF-8) in canonical form.
bool is_canonical(std::string_view text);

// The top-level members of `object` when it is a canonical JSON object; nullopt otherwise
// (not an object, malformed, or not canonical).
std::optional<std::vector<member>> canonical_members(std::string_view object);

// The value of a string token (with its quotes) taken from canonical text; nullopt when the
// token is not a string.
std::optional<std::string> string_value(std::string_view token);

// Appends `s` as a JSON string, escaped as dump() escapes it. `s` must be valid UTF-8.
void append_quoted(std::string& out, std::string_view s);

// `object` (canonical, non-empty text of an object) with `key: value_text` added at its end,
// e.g. meta spliced into a stored resource. The key must not be in the object already; the
// result is valid JSON but not canonical when `key` sorts before the last key.
std::string with_member(std::string_view object, std::string_view key, std::string_view value_text);

}  // namespace scimsync::model::json_text
