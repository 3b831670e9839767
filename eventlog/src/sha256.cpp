#include "sha256.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace scimsync::eventlog::sha256 {
namespace {

const EVP_MD* algorithm() {
    // Fetched once; EVP_MD objects from EVP_MD_fetch are thread-safe to share.
    static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (md == nullptr) throw std::runtime_error("OpenSSL has no SHA256 implementation");
    return md;
}

EVP_MD_CTX* as_ctx(void* p) {
    return static_cast<EVP_MD_CTX*>(p);
}

}  // namespace

hasher::hasher() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) throw std::bad_alloc();
    reset();
}

hasher::~hasher() {
    EVP_MD_CTX_free(as_ctx(ctx_));
}

hasher& hasher::reset() {
    EVP_DigestInit_ex2(as_ctx(ctx_), algorithm(), nullptr);
    return *this;
}

hasher& hasher::update(const void* data, std::size_t n) {
    EVP_DigestUpdate(as_ctx(ctx_), data, n);
    return *this;
}

digest hasher::finish() {
    digest d{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(as_ctx(ctx_), d.data(), &len);
    reset();
    return d;
}

digest of(std::string_view data) {
    hasher h;
    return h.update(data).finish();
}

digest leaf(hasher& h, std::string_view event_bytes) {
    const std::uint8_t prefix = 0x00;
    return h.update(&prefix, 1).update(event_bytes).finish();
}

digest chain(hasher& h, const digest& previous, std::uint64_t seq, const digest& leaf_hash) {
    std::uint8_t seq_le[8];
    for (int i = 0; i < 8; ++i) seq_le[i] = static_cast<std::uint8_t>(seq >> (8 * i));
    return h.update(previous.data(), previous.size())
        .update(seq_le, 8)
        .update(leaf_hash.data(), leaf_hash.size())
        .finish();
}

}  // namespace scimsync::eventlog::sha256
