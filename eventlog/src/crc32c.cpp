#include "crc32c.hpp"

#include <boost/crc.hpp>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace scimsync::eventlog::crc {
namespace {

using castagnoli = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t hardware_extend(std::uint32_t crc, const void* data,
                                                                std::size_t n) {
    auto p = static_cast<const unsigned char*>(data);
    std::uint64_t c = ~crc;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

bool cpu_has_sse42() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

std::uint32_t portable_extend(std::uint32_t crc, const void* data, std::size_t n) {
    // boost::crc_optimal's remainder is the pre-final-xor register; "extend" semantics match
    // LevelDB's crc32c::Extend (continue a finished CRC over more bytes).
    castagnoli c(crc ^ 0xFFFFFFFFu);
    c.process_bytes(data, n);
    return c.checksum();
}

std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t n) {
#if defined(__x86_64__)
    static const bool hw = cpu_has_sse42();
    if (hw) return hardware_extend(crc, data, n);
#endif
    return portable_extend(crc, data, n);
}

}  // namespace scimsync::eventlog::crc
