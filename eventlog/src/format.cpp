#include "format.hpp"

#include <charconv>
#include <cstdio>

#include "crc32c.hpp"

namespace scimsync::eventlog::format {

std::string encode_segment_header(const segment_header& h) {
    std::string out(segment_header_size, '\0');
    std::memcpy(out.data(), segment_magic, 8);
    put_u16(out.data() + 8, h.version);
    put_u16(out.data() + 10, h.min_compatible);
    put_u64(out.data() + 16, h.base.value);
    put_u64(out.data() + 24, std::uint64_t(h.created.time_since_epoch().count()));
    std::memcpy(out.data() + 32, h.chain_head_before.data(), 32);
    put_u32(out.data() + 12, crc::mask(crc::value(out.data(), out.size())));
    return out;
}

std::optional<segment_header> decode_segment_header(std::string_view bytes, std::string& why) {
    if (bytes.size() < segment_header_size) {
        why = "segment header is short (" + std::to_string(bytes.size()) + " bytes)";
        return std::nullopt;
    }
    if (std::memcmp(bytes.data(), segment_magic, 8) != 0) {
        why = "not a scimsync log segment (bad magic)";
        return std::nullopt;
    }
    std::string copy(bytes.substr(0, segment_header_size));
    const std::uint32_t stored = get_u32(copy.data() + 12);
    put_u32(copy.data() + 12, 0);
    if (crc::mask(crc::value(copy.data(), copy.size())) != stored) {
        why = "segment header CRC mismatch";
        return std::nullopt;
    }
    segment_header h;
    h.version = get_u16(copy.data() + 8);
    h.min_compatible = get_u16(copy.data() + 10);
    if (h.min_compatible > format_version) {
        why = "segment needs format version " + std::to_string(h.min_compatible) +
              " but this build reads up to " + std::to_string(format_version);
        return std::nullopt;
    }
    h.base.value = get_u64(copy.data() + 16);
    h.created = utc_time(std::chrono::microseconds(std::int64_t(get_u64(copy.data() + 24))));
    std::memcpy(h.chain_head_before.data(), copy.data() + 32, 32);
    return h;
}

void write_frame_header(char* out, const frame_header& h) {
    put_u32(out, h.frame_len);
    put_u32(out + 4, h.masked_crc);
    out[8] = char(h.magic);
    out[9] = char(h.type);
    put_u16(out + 10, h.flags);
    put_u64(out + 12, h.first_seq.value);
    put_u32(out + 20, h.event_count);
    put_u64(out + 24, std::uint64_t(h.recorded_at.time_since_epoch().count()));
    std::memcpy(out + 32, h.chain_head_after.data(), 32);
}

frame_header read_frame_header(const char* in) {
    frame_header h;
    h.frame_len = get_u32(in);
    h.masked_crc = get_u32(in + 4);
    h.magic = std::uint8_t(in[8]);
    h.type = frame_type(std::uint8_t(in[9]));
    h.flags = get_u16(in + 10);
    h.first_seq.value = get_u64(in + 12);
    h.event_count = get_u32(in + 20);
    h.recorded_at = utc_time(std::chrono::microseconds(std::int64_t(get_u64(in + 24))));
    std::memcpy(h.chain_head_after.data(), in + 32, 32);
    return h;
}

std::uint32_t frame_crc(std::string_view bytes) {
    const std::uint32_t len = get_u32(bytes.data());
    return crc::mask(crc::value(bytes.data() + 8, len));
}

std::string check_frame(std::string_view bytes, const frame_header& h) {
    if (bytes.size() != h.total_size()) return "frame length does not match the bytes available";
    if (frame_crc(bytes) != h.masked_crc) return "CRC mismatch";
    // Only trusted after the CRC: these bytes are covered by it.
    if (h.magic != frame_magic) return "unknown frame format version " + std::to_string(h.magic);
    if (h.type != frame_type::events && h.type != frame_type::seal)
        return "unknown frame type " + std::to_string(unsigned(h.type));
    if (h.flags != 0) return "unsupported frame flags";
    if (get_u32(bytes.data() + bytes.size() - frame_suffix_size) != h.frame_len)
        return "length suffix does not match the header";
    return {};
}

void append_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(char((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(char(v));
}

std::optional<std::uint64_t> read_varint(std::string_view in, std::size_t& pos) {
    std::uint64_t v = 0;
    for (int shift = 0; shift <= 63 && pos < in.size(); shift += 7) {
        const auto b = std::uint8_t(in[pos++]);
        v |= std::uint64_t(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    return std::nullopt;
}

namespace {

void append_string(std::string& out, std::string_view s) {
    append_varint(out, s.size());
    out.append(s);
}

bool read_string(std::string_view in, std::size_t& pos, std::string& out) {
    auto len = read_varint(in, pos);
    if (!len || *len > in.size() - pos) return false;
    out.assign(in.data() + pos, *len);
    pos += *len;
    return true;
}

}  // namespace

std::size_t encoded_size_bound(const event& e) {
    return 1 + 8 + 2 + 6 * 10 + e.type.size() + e.source.size() + e.actor.size() +
           e.request_id.size() + e.stream.size() + e.data.size();
}

void encode_event(std::string& out, const event& e) {
    out.push_back(char(event_encoding));
    char fixed[10];
    put_u64(fixed, std::uint64_t(e.time.time_since_epoch().count()));
    put_u16(fixed + 8, e.version);
    out.append(fixed, sizeof fixed);
    append_string(out, e.type);
    append_string(out, e.source);
    append_string(out, e.actor);
    append_string(out, e.request_id);
    append_string(out, e.stream);
    append_string(out, e.data);
}

namespace {

// What both decoders read first: the encoding byte, time, version and type; `pos` ends after
// the type.
std::string decode_fixed_and_type(std::string_view in, event& out, std::size_t& pos) {
    if (in.size() < 11) return "event record is short";
    if (std::uint8_t(in[0]) != event_encoding)
        return "unknown event encoding " + std::to_string(std::uint8_t(in[0]));
    out.time = utc_time(std::chrono::microseconds(std::int64_t(get_u64(in.data() + 1))));
    out.version = get_u16(in.data() + 9);
    pos = 11;
    if (!read_string(in, pos, out.type)) return "event record field overruns its length";
    return {};
}

}  // namespace

std::string decode_event(std::string_view in, event& out) {
    std::size_t pos = 0;
    if (auto why = decode_fixed_and_type(in, out, pos); !why.empty()) return why;
    if (!read_string(in, pos, out.source) || !read_string(in, pos, out.actor) ||
        !read_string(in, pos, out.request_id) || !read_string(in, pos, out.stream) ||
        !read_string(in, pos, out.data))
        return "event record field overruns its length";
    if (pos != in.size()) return "event record has trailing bytes";
    return {};
}

std::string decode_event_head(std::string_view in, event& out) {
    std::size_t pos = 0;
    if (auto why = decode_fixed_and_type(in, out, pos); !why.empty()) return why;
    for (int field = 0; field < 5; ++field) {
        auto len = read_varint(in, pos);
        if (!len || *len > in.size() - pos) return "event record field overruns its length";
        pos += *len;
    }
    if (pos != in.size()) return "event record has trailing bytes";
    out.source.clear();
    out.actor.clear();
    out.request_id.clear();
    out.stream.clear();
    out.data.clear();
    return {};
}

std::string segment_file_name(seq_no base) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.log", static_cast<unsigned long long>(base.value));
    return buf;
}

std::string index_file_name(seq_no base) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.idx", static_cast<unsigned long long>(base.value));
    return buf;
}

std::optional<seq_no> parse_segment_file_name(std::string_view name) {
    if (name.size() != 24 || name.substr(20) != ".log") return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + 20, v);
    if (ec != std::errc() || p != name.data() + 20) return std::nullopt;
    return seq_no{v};
}

}  // namespace scimsync::eventlog::format
