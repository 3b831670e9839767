#include "scimsync/model/json_text.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace scimsync::model::json_text {

namespace {

// A recursive-descent validator that accepts only canonical text. Any "no" (malformed or
// merely not canonical) ends the scan; callers fall back to nlohmann for the diagnosis.
class scanner {
public:
    explicit scanner(std::string_view text) : s_(text) {}

    bool at_end() const { return pos_ == s_.size(); }
    std::size_t pos() const { return pos_; }

    bool value(int depth) {
        if (depth > max_depth || at_end()) return false;
        switch (s_[pos_]) {
            case '{':
                return object(depth, nullptr);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                return literal("true");
            case 'f':
                return literal("false");
            case 'n':
                return literal("null");
            default:
                return number();
        }
    }

    // `out`, when given, receives the members of this (outermost) object.
    bool object(int depth, std::vector<member>* out) {
        ++pos_;  // '{'
        if (peek() == '}') {
            ++pos_;
            return true;
        }
        std::string_view previous;
        bool first = true;
        for (;;) {
            const std::size_t key_start = pos_;
            if (peek() != '"' || !string()) return false;
            const std::string_view key = s_.substr(key_start + 1, pos_ - key_start - 2);
            // Escaped keys compare differently raw and decoded: leave them to nlohmann.
            if (key.find('\\') != std::string_view::npos) return false;
            if (!first && !(previous < key)) return false;  // unsorted or duplicate
            previous = key;
            first = false;
            if (peek() != ':') return false;
            ++pos_;
            const std::size_t value_start = pos_;
            if (!value(depth + 1)) return false;
            if (out != nullptr) out->push_back({key, s_.substr(value_start, pos_ - value_start)});
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                return true;
            }
            return false;
        }
    }

private:
    static constexpr int max_depth = 256;

    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    bool array(int depth) {
        ++pos_;  // '['
        if (peek() == ']') {
            ++pos_;
            return true;
        }
        for (;;) {
            if (!value(depth + 1)) return false;
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                return true;
            }
            return false;
        }
    }

    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    // Integers only: -?(0|[1-9][0-9]*), no "-0", at most 18 digits (surely within int64).
    bool number() {
        const std::size_t start = pos_;
        if (peek() == '-') ++pos_;
        const std::size_t digits = pos_;
        while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        const std::size_t n = pos_ - digits;
        if (n == 0 || n > 18) return false;
        if (s_[digits] == '0' && (n > 1 || digits != start)) return false;
        const char next = peek();
        return next != '.' && next != 'e' && next != 'E';
    }

    static bool hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

    bool string() {
        ++pos_;  // '"'
        while (!at_end()) {
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                if (pos_ + 1 >= s_.size()) return false;
                const char e = s_[pos_ + 1];
                if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                    e == 't') {
                    pos_ += 2;
                    continue;
                }
                // dump() writes \u00xx only for the control characters without a short form.
                if (e != 'u' || pos_ + 6 > s_.size() || s_.substr(pos_ + 2, 2) != "00" ||
                    !hex_lower(s_[pos_ + 4]) || !hex_lower(s_[pos_ + 5]))
                    return false;
                const int v = (s_[pos_ + 4] - '0') * 16 +
                              (s_[pos_ + 5] <= '9' ? s_[pos_ + 5] - '0' : s_[pos_ + 5] - 'a' + 10);
                if (v >= 0x20 || v == 0x08 || v == 0x09 || v == 0x0a || v == 0x0c || v == 0x0d)
                    return false;
                pos_ += 6;
                continue;
            }
            if (c < 0x80) {
                ++pos_;
                continue;
            }
            if (!utf8_sequence()) return false;
        }
        return false;
    }

    // One multi-byte UTF-8 sequence (RFC 3629 table: no overlongs, surrogates or > U+10FFFF).
    bool utf8_sequence() {
        const auto b = [&](std::size_t i) {
            return pos_ + i < s_.size() ? static_cast<unsigned char>(s_[pos_ + i]) : 0u;
        };
        const unsigned c = b(0);
        auto in = [](unsigned v, unsigned lo, unsigned hi) { return v >= lo && v <= hi; };
        std::size_t len = 0;
        if (in(c, 0xC2, 0xDF)) {
            len = in(b(1), 0x80, 0xBF) ? 2 : 0;
        } else if (c == 0xE0) {
            len = in(b(1), 0xA0, 0xBF) && in(b(2), 0x80, 0xBF) ? 3 : 0;
        } else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) {
            len = in(b(1), 0x80, 0xBF) && in(b(2), 0x80, 0xBF) ? 3 : 0;
        } else if (c == 0xED) {
            len = in(b(1), 0x80, 0x9F) && in(b(2), 0x80, 0xBF) ? 3 : 0;
        } else if (c == 0xF0) {
            len = in(b(1), 0x90, 0xBF) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
        } else if (in(c, 0xF1, 0xF3)) {
            len = in(b(1), 0x80, 0xBF) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
        } else if (c == 0xF4) {
            len = in(b(1), 0x80, 0x8F) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
        }
        pos_ += len;
        return len != 0;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

}  // namespace

bool is_canonical(std::string_view text) {
    scanner sc(text);
    return sc.value(0) && sc.at_end();
}

std::optional<std::vector<member>> canonical_members(std::string_view object) {
    if (object.empty() || object.front() != '{') return std::nullopt;
    std::vector<member> out;
    out.reserve(8);
    scanner sc(object);
    if (!sc.object(0, &out) || !sc.at_end()) return std::nullopt;
    return out;
}

std::optional<std::string> string_value(std::string_view token) {
    if (token.size() < 2 || token.front() != '"' || token.back() != '"') return std::nullopt;
    token = token.substr(1, token.size() - 2);
    std::string out;
    out.reserve(token.size());
    for (std::size_t i = 0; i < token.size(); ++i) {
        if (token[i] != '\\' || i + 1 >= token.size()) {
            out.push_back(token[i]);
            continue;
        }
        const char e = token[++i];
        switch (e) {
            case 'b':
                out.push_back('\b');
                break;
            case 'f':
                out.push_back('\f');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'u':
                // Canonical text escapes only control characters this way: \u00xx.
                if (i + 4 >= token.size()) return std::nullopt;
                {
                    int v = 0;
                    for (const char h : token.substr(i + 1, 4)) {
                        const int d = h >= '0' && h <= '9'   ? h - '0'
                                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                             : -1;
                        if (d < 0) return std::nullopt;
                        v = v * 16 + d;
                    }
                    if (v >= 0x80) return std::nullopt;  // not from canonical text
                    out.push_back(static_cast<char>(v));
                }
                i += 4;
                break;
            default:
                out.push_back(e);
                break;  // \" and \\ (and \/)
        }
    }
    return out;
}

namespace {

// How many bytes each byte grows by when dump() escapes it: 1 for the two-character escapes,
// 5 for the other control characters (\u00XX), 0 for the rest.
constexpr std::array<std::uint8_t, 256> escape_growth = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[std::size_t(c)] = 5;
    for (const unsigned char c : {'"', '\\', '\b', '\f', '\n', '\r', '\t'}) t[c] = 1;
    return t;
}();

}  // namespace

void append_quoted(std::string& out, std::string_view s) {
    // Sized first, then written in place: a snapshot quotes every stored resource through
    // here, and a resource's text has dozens of quotes, each of which would otherwise be an
    // append of its own.
    std::size_t grows = 0;
    for (const char c : s) grows += escape_growth[static_cast<unsigned char>(c)];
    const std::size_t at = out.size();
    // resize, not resize_and_overwrite: when GCC 12's reallocates, it hands the operation
    // the new capacity (up to twice the old) instead of the size asked for.
    out.resize(at + s.size() + grows + 2);
    {
        char* p = out.data() + at;
        *p++ = '"';
        if (grows == 0) {
            std::memcpy(p, s.data(), s.size());
            p += s.size();
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            for (const char ch : s) {
                const auto c = static_cast<unsigned char>(ch);
                if (escape_growth[c] == 0) {
                    *p++ = ch;
                    continue;
                }
                *p++ = '\\';
                switch (c) {
                    case '"':
                        *p++ = '"';
                        break;
                    case '\\':
                        *p++ = '\\';
                        break;
                    case '\b':
                        *p++ = 'b';
                        break;
                    case '\f':
                        *p++ = 'f';
                        break;
                    case '\n':
                        *p++ = 'n';
                        break;
                    case '\r':
                        *p++ = 'r';
                        break;
                    case '\t':
                        *p++ = 't';
                        break;
                    default:
                        *p++ = 'u';
                        *p++ = '0';
                        *p++ = '0';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 0xf];
                }
            }
        }
        *p = '"';
    }
}

std::string with_member(std::string_view object, std::string_view key,
                        std::string_view value_text) {
    std::string out;
    out.reserve(object.size() + key.size() + value_text.size() + 4);
    out.append(object.substr(0, object.size() - 1));  // without the closing brace
    if (object.size() > 2) out.push_back(',');
    append_quoted(out, key);
    out.push_back(':');
    out.append(value_text);
    out.push_back('}');
    return out;
}

}  // namespace scimsync::model::json_text
