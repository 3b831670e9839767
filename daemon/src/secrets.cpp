#include "secrets.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <stdexcept>

namespace scimsync::daemon::secrets {

namespace {

template <std::size_t N>
std::array<unsigned char, N> random_bytes() {
    std::array<unsigned char, N> b{};
    if (RAND_bytes(b.data(), int(N)) != 1) throw std::runtime_error("no random bytes available");
    return b;
}

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 15]);
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

std::string base64url(const unsigned char* p, std::size_t n) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
    return out;
}

}  // namespace

std::string uuid_v4() {
    auto b = random_bytes<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const std::string h = hex(b.data(), b.size());
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20);
}

issued_token issue_token() {
    const auto id = random_bytes<6>();
    const auto secret = random_bytes<32>();
    issued_token t;
    t.id = hex(id.data(), id.size());
    t.token = "scs_" + t.id + "_" + base64url(secret.data(), secret.size());
    t.hash = "sha256:" + sha256_hex(t.token);
    return t;
}

std::optional<std::string> token_id(std::string_view presented) {
    if (presented.size() < 4 + 12 + 1 + 1 || presented.substr(0, 4) != "scs_" ||
        presented[16] != '_')
        return std::nullopt;
    return std::string(presented.substr(4, 12));
}

std::string hash_token(std::string_view token) {
    return "sha256:" + sha256_hex(token);
}

bool token_matches(std::string_view presented, std::string_view stored_hash) {
    const std::string computed = "sha256:" + sha256_hex(presented);
    return computed.size() == stored_hash.size() &&
           CRYPTO_memcmp(computed.data(), stored_hash.data(), computed.size()) == 0;
}

std::string hash_password(std::string_view cleartext) {
    // crypt_gensalt_rn picks a random salt for the scheme ("$6$" = SHA-512-crypt).
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$6$", 0, nullptr, 0, setting, sizeof setting) == nullptr)
        throw std::runtime_error("crypt_gensalt failed");
    crypt_data data{};
    const std::string pw(cleartext);
    const char* out = crypt_r(pw.c_str(), setting, &data);
    if (out == nullptr || out[0] == '*') throw std::runtime_error("crypt failed");
    std::string result = std::string("{CRYPT}") + out;
    OPENSSL_cleanse(&data, sizeof data);
    return result;
}

}  // namespace scimsync::daemon::secrets
