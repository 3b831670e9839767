#include "secrets.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace scimsync::daemon::secrets {

namespace {

template <std::size_t N>
std::array<unsigned char, N> random_bytes() {
    std::array<unsigned char, N> b{};
    if (RAND_bytes(b.data(), int(N)) != 1) throw std::runtime_error("no random bytes available");
    return b;
}

// Random bytes for resource ids, drawn from OpenSSL's generator a block at a time: a draw per
// id cost about 4 us (the generator's locking and fork check), a twentieth of a SCIM write.
// Secrets (tokens) still draw their own bytes. A forked child (the background snapshot)
// discards what its parent had buffered, so two processes never hand out the same bytes.
std::atomic<std::uint64_t> fork_generation{0};

void discard_buffers_after_fork() {
    fork_generation.fetch_add(1, std::memory_order_relaxed);
}

class buffered_random {
public:
    void fill(unsigned char* out, std::size_t n) {
        static const int registered = pthread_atfork(nullptr, nullptr, &discard_buffers_after_fork);
        (void)registered;
        const auto gen = fork_generation.load(std::memory_order_relaxed);
        if (gen != generation_) {
            generation_ = gen;
            used_ = block_.size();
        }
        if (used_ + n > block_.size()) {
            if (RAND_bytes(block_.data(), int(block_.size())) != 1)
                throw std::runtime_error("no random bytes available");
            used_ = 0;
        }
        std::memcpy(out, block_.data() + used_, n);
        used_ += n;
    }

private:
    std::array<unsigned char, 1024> block_{};
    std::size_t used_ = block_.size();
    std::uint64_t generation_ = 0;
};

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
    // Fetched once: EVP_sha256() makes EVP_Digest look the algorithm up on every call.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (sha256 == nullptr || EVP_Digest(data.data(), data.size(), md, &len, sha256, nullptr) != 1)
        throw std::runtime_error("SHA-256 is not available");
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
    thread_local buffered_random pool;
    std::array<unsigned char, 16> b{};
    pool.fill(b.data(), b.size());
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

namespace {

bool same_secret(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

bool token_matches(std::string_view presented, std::string_view stored_hash) {
    // An identity provider sends the same token with every request: each thread remembers the
    // last token that matched and its hash, so a repeat is one constant-time comparison
    // instead of a SHA-256 (twice per request: the request log names the token too).
    thread_local std::string last_presented;
    thread_local std::string last_hash;
    if (!last_hash.empty() && same_secret(last_hash, stored_hash) &&
        same_secret(last_presented, presented))
        return true;
    const std::string computed = "sha256:" + sha256_hex(presented);
    if (!same_secret(computed, stored_hash)) return false;
    last_presented.assign(presented);
    last_hash.assign(stored_hash);
    return true;
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
