#include "scimsync/bridge/dn.hpp"

#include <ldap.h>

#include <cctype>
#include <cstdio>

#include "scimsync/model/directory.hpp"

namespace scimsync::bridge {

namespace {

void hex_escape(std::string& out, unsigned char c) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "\\%02x", c);
    out += buf;
}

// Owns what ldap_str2dn returns.
struct parsed_dn {
    LDAPDN dn = nullptr;
    ~parsed_dn() {
        if (dn != nullptr) ldap_dnfree(dn);
    }
};

}  // namespace

std::string escape_dn_value(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 8);
    for (std::size_t i = 0; i < value.size(); ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        const bool first = i == 0;
        const bool last = i + 1 == value.size();
        if (c < 0x20 || c == 0x7f) {
            hex_escape(out, c);
        } else if (c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' ||
                   c == ';' || c == '=' || (first && (c == '#' || c == ' ')) ||
                   (last && c == ' ')) {
            out += '\\';
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string escape_filter_value(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 8);
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
            hex_escape(out, c);
        } else {
            out += ch;
        }
    }
    return out;
}

std::optional<std::string> normalize_dn(std::string_view dn) {
    const std::string in(dn);
    char* out = nullptr;
    if (ldap_dn_normalize(in.c_str(), LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) !=
        LDAP_SUCCESS) {
        return std::nullopt;
    }
    std::string result = model::lower(out != nullptr ? out : "");
    ldap_memfree(out);
    return result;
}

std::optional<std::vector<std::string>> split_dn(std::string_view dn) {
    const std::string in(dn);
    parsed_dn parsed;
    if (ldap_str2dn(in.c_str(), &parsed.dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return std::nullopt;
    std::vector<std::string> rdns;
    for (int i = 0; parsed.dn != nullptr && parsed.dn[i] != nullptr; ++i) {
        char* s = nullptr;
        if (ldap_rdn2str(parsed.dn[i], &s, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
            return std::nullopt;
        rdns.emplace_back(s);
        ldap_memfree(s);
    }
    return rdns;
}

std::optional<std::pair<std::string, std::string>> first_ava(std::string_view dn) {
    const std::string in(dn);
    parsed_dn parsed;
    if (ldap_str2dn(in.c_str(), &parsed.dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
        parsed.dn == nullptr || parsed.dn[0] == nullptr || parsed.dn[0][0] == nullptr)
        return std::nullopt;
    const LDAPAVA* ava = parsed.dn[0][0];
    if ((ava->la_flags & LDAP_AVA_BINARY) != 0) return std::nullopt;
    return std::pair<std::string, std::string>{
        std::string(ava->la_attr.bv_val, ava->la_attr.bv_len),
        std::string(ava->la_value.bv_val, ava->la_value.bv_len)};
}

bool is_below(std::string_view dn, std::string_view base) {
    const auto d = split_dn(dn);
    const auto b = split_dn(base);
    if (!d || !b || d->size() <= b->size()) return false;
    const auto nd = normalize_dn(dn);
    const auto nb = normalize_dn(base);
    if (!nd || !nb) return false;
    // Compare RDN by RDN from the end, on normalised forms of each suffix.
    std::string suffix;
    for (std::size_t i = d->size() - b->size(); i < d->size(); ++i) {
        suffix += (suffix.empty() ? "" : ",") + (*d)[i];
    }
    const auto ns = normalize_dn(suffix);
    return ns && *ns == *nb;
}

bool is_child_of(std::string_view dn, std::string_view base) {
    const auto d = split_dn(dn);
    const auto b = split_dn(base);
    return d && b && d->size() == b->size() + 1 && is_below(dn, base);
}

std::string parent_dn(std::string_view dn) {
    for (std::size_t i = 0; i < dn.size(); ++i) {
        if (dn[i] == '\\') {
            ++i;
            continue;
        }
        if (dn[i] == ',') return std::string(dn.substr(i + 1));
    }
    return "";
}

std::string first_rdn(std::string_view dn) {
    for (std::size_t i = 0; i < dn.size(); ++i) {
        if (dn[i] == '\\') {
            ++i;
            continue;
        }
        if (dn[i] == ',') return std::string(dn.substr(0, i));
    }
    return std::string(dn);
}

}  // namespace scimsync::bridge
