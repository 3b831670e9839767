#pragma once
// SHA-256 through OpenSSL's EVP interface with the algorithm fetched once per thread: the
// one-shot helpers re-fetch the provider on every call, which costs more than hashing a
// 300-byte event.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog::sha256 {

class hasher {
public:
    hasher();
    ~hasher();
    hasher(const hasher&) = delete;
    hasher& operator=(const hasher&) = delete;

    hasher& reset();
    hasher& update(const void* data, std::size_t n);
    hasher& update(std::string_view s) { return update(s.data(), s.size()); }
    digest finish();

private:
    void* ctx_;  // EVP_MD_CTX*
};

digest of(std::string_view data);

// The hash chain (LOG-DESIGN.md 5.6):
//   leaf_i = SHA-256(0x00 || event_bytes_i)            (RFC 6962 leaf hash)
//   head_i = SHA-256(head_{i-1} || u64le(seq_i) || leaf_i)
digest leaf(hasher& h, std::string_view event_bytes);
digest chain(hasher& h, const digest& previous, std::uint64_t seq, const digest& leaf);

}  // namespace scimsync::eventlog::sha256
