#pragma once
// CRC32C (Castagnoli), as used by LevelDB, ext4 and iSCSI. Debian ships no C/C++ CRC32C
// library, so: the SSE4.2 `crc32` instruction when the CPU has it, Boost.CRC otherwise
// (and as the reference the tests compare against).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace scimsync::eventlog::crc {

std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t n);
inline std::uint32_t value(const void* data, std::size_t n) {
    return extend(0, data, n);
}
// The portable implementation, exposed for tests.
std::uint32_t portable_extend(std::uint32_t crc, const void* data, std::size_t n);

// Stored CRCs are masked (LevelDB): a CRC of data that itself embeds CRCs is not a CRC of CRCs.
inline constexpr std::uint32_t mask_delta = 0xa282ead8u;
inline std::uint32_t mask(std::uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + mask_delta;
}
inline std::uint32_t unmask(std::uint32_t masked) {
    std::uint32_t rot = masked - mask_delta;
    return (rot >> 17) | (rot << 15);
}

}  // namespace scimsync::eventlog::crc
