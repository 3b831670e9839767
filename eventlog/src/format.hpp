#pragma once
// The on-disk format of FileLog, shared by the writer, the reader, recovery and verify.
// eventlog/FORMAT.md is the prose specification of the same layout; keep them in step.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog::format {

inline constexpr char segment_magic[8] = {'S', 'C', 'I', 'M', 'L', 'O', 'G', '\0'};
inline constexpr std::uint16_t format_version = 1;
inline constexpr std::size_t segment_header_size = 64;
inline constexpr std::size_t frame_header_size = 64;
inline constexpr std::size_t frame_suffix_size = 4;
inline constexpr std::size_t frame_overhead = frame_header_size + frame_suffix_size;
inline constexpr std::uint8_t frame_magic = 1;
inline constexpr std::uint8_t event_encoding = 1;

enum class frame_type : std::uint8_t { invalid = 0, events = 1, checkpoint = 2, seal = 3 };

// Little-endian helpers: the format is little-endian regardless of the host.
inline void put_u16(char* p, std::uint16_t v) {
    for (int i = 0; i < 2; ++i) p[i] = char(v >> (8 * i));
}
inline void put_u32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = char(v >> (8 * i));
}
inline void put_u64(char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = char(v >> (8 * i));
}
inline std::uint16_t get_u16(const char* p) {
    return std::uint16_t(std::uint8_t(p[0]) | std::uint8_t(p[1]) << 8);
}
inline std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | std::uint8_t(p[i]);
    return v;
}
inline std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::uint8_t(p[i]);
    return v;
}

struct segment_header {
    std::uint16_t version = format_version;
    std::uint16_t min_compatible = format_version;
    seq_no base;  // the first sequence number this segment holds
    utc_time created{};
    digest chain_head_before{};  // head after base-1; for the first segment, the genesis value
};

std::string encode_segment_header(const segment_header& h);
// nullopt with `why` filled when the bytes are not a valid header of a version we read.
std::optional<segment_header> decode_segment_header(std::string_view bytes, std::string& why);

struct frame_header {
    std::uint32_t frame_len = 0;  // bytes from offset 8 to the end of the payload
    std::uint32_t masked_crc = 0;
    std::uint8_t magic = frame_magic;
    frame_type type = frame_type::events;
    std::uint16_t flags = 0;
    seq_no first_seq;  // seq of the first event; for SEAL, the next seq to be written
    std::uint32_t event_count = 0;
    utc_time recorded_at{};
    digest chain_head_after{};  // head after the frame's last event (SEAL: the final head)

    std::size_t payload_size() const { return frame_len - (frame_header_size - 8); }
    std::size_t total_size() const { return 8 + std::size_t(frame_len) + frame_suffix_size; }
};

void write_frame_header(char* out, const frame_header& h);  // writes 64 bytes, crc as given
frame_header read_frame_header(const char* in);             // reads 64 bytes, no checks

// Checks a whole frame held in `bytes` (header + payload + suffix). Returns "" when the CRC,
// magic, type, flags and suffix are all right, or a short description of what is wrong.
std::string check_frame(std::string_view bytes, const frame_header& h);
std::uint32_t frame_crc(std::string_view bytes);  // masked CRC over [8, 8+frame_len)

// Events inside a frame: varint(len) + encoded event. The encoded bytes are what the chain
// hashes; seq is not in them (it is positional and covered by the chain).
void append_varint(std::string& out, std::uint64_t v);
// Reads a varint at in[pos]; advances pos. nullopt on overrun or over-long encoding.
std::optional<std::uint64_t> read_varint(std::string_view in, std::size_t& pos);

void encode_event(std::string& out, const event& e);
std::size_t encoded_size_bound(const event& e);
// Decodes `bytes` into `out` (seq is left to the caller). Returns "" or what is wrong.
std::string decode_event(std::string_view bytes, event& out);
// The same checks, but only time, version and type are kept (the other fields are cleared):
// for readers that follow the log's position rather than its contents.
std::string decode_event_head(std::string_view bytes, event& out);

// Segment file names: 20-digit zero-padded first sequence number, as Kafka does.
std::string segment_file_name(seq_no base);
std::string index_file_name(seq_no base);
std::optional<seq_no> parse_segment_file_name(std::string_view name);

}  // namespace scimsync::eventlog::format
