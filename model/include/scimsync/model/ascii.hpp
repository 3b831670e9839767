#pragma once
// ASCII case folding, the one place it is spelled. SCIM's case-insensitive attributes
// (userName, attribute names, filter operators) and HTTP header names fold A-Z only, as the C
// locale's tolower does; inline, because lookups fold every character of every key and a call
// into the C library per character showed in the write path's profile.

#include <string>
#include <string_view>

namespace scimsync::model::ascii {

constexpr char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

}  // namespace scimsync::model::ascii
