#include "scan.hpp"

#include <algorithm>

namespace scimsync::eventlog::scan {

using format::frame_header_size;
using format::frame_overhead;

result<std::string_view> segment_reader::bytes(std::uint64_t pos, std::size_t n,
                                               std::uint64_t limit) {
    if (pos >= limit) return std::string_view{};
    n = std::size_t(std::min<std::uint64_t>(n, limit - pos));
    if (pos >= buf_off_ && pos + n <= buf_off_ + buf_len_)
        return std::string_view(buf_.data() + (pos - buf_off_), n);
    // Never buffer past `limit`: bytes beyond it may still change (preallocated zeros, a write
    // in progress), while everything below it is durable and immutable.
    const std::size_t want =
        std::size_t(std::min<std::uint64_t>(std::max<std::size_t>(n, 1u << 20), limit - pos));
    if (buf_.size() < want) buf_.resize(want);
    auto got = file_.pread(buf_.data(), want, pos);
    if (!got) return std::unexpected(got.error());
    buf_off_ = pos;
    buf_len_ = *got;
    return std::string_view(buf_.data(), std::min(n, buf_len_));
}

result<frame_read> segment_reader::read_at(std::uint64_t pos, std::uint64_t limit) {
    frame_read out;
    auto head = bytes(pos, frame_header_size, limit);
    if (!head) return std::unexpected(head.error());
    const bool all_zero = std::all_of(head->begin(), head->end(), [](char c) { return c == 0; });
    if (head->empty() || all_zero) return out;  // status::end
    if (head->size() < frame_header_size) {
        out.st = status::bad;
        out.why = "truncated frame header";
        return out;
    }
    out.h = format::read_frame_header(head->data());
    if (out.h.frame_len < frame_header_size - 8 ||
        out.h.total_size() > max_frame_bytes + frame_overhead) {
        out.st = status::bad;
        out.why = "implausible frame length " + std::to_string(out.h.frame_len);
        return out;
    }
    auto whole = bytes(pos, out.h.total_size(), limit);
    if (!whole) return std::unexpected(whole.error());
    if (whole->size() < out.h.total_size()) {
        out.st = status::bad;
        out.why = "frame extends past the end of the data (torn write?)";
        return out;
    }
    out.bytes = *whole;
    out.why = format::check_frame(out.bytes, out.h);
    out.st = out.why.empty() ? status::frame : status::bad;
    return out;
}

std::string check_content(const frame_read& frame, chain_state& state, sha256::hasher& hasher,
                          std::vector<std::string_view>& events) {
    const auto& h = frame.h;
    if (h.first_seq != state.next)
        return "sequence gap: frame starts at " + std::to_string(h.first_seq.value) +
               ", expected " + std::to_string(state.next.value);
    const std::string_view payload = frame.bytes.substr(frame_header_size, h.payload_size());
    if (h.type == format::frame_type::seal) {
        if (h.event_count != 0 || !payload.empty()) return "SEAL frame carries events";
        if (h.chain_head_after != state.head) return "SEAL frame's chain head does not match";
        return {};
    }
    if (h.event_count == 0) return "EVENTS frame with no events";
    events.clear();
    std::size_t pos = 0;
    digest head = state.head;
    for (std::uint32_t i = 0; i < h.event_count; ++i) {
        auto len = format::read_varint(payload, pos);
        if (!len || *len > payload.size() - pos) return "event length overruns the frame";
        const std::string_view ev = payload.substr(pos, *len);
        pos += *len;
        head = sha256::chain(hasher, head, state.next.value + i, sha256::leaf(hasher, ev));
        events.push_back(ev);
    }
    if (pos != payload.size()) return "frame has bytes after its last event";
    if (head != h.chain_head_after) return "hash chain break";
    state.head = head;
    state.next = seq_no{state.next.value + h.event_count};
    return {};
}

bool valid_frame_follows(std::string_view tail, seq_no from) {
    if (tail.size() < frame_overhead) return false;
    for (std::size_t q = 1; q + frame_overhead <= tail.size(); ++q) {
        const char* p = tail.data() + q;
        if (std::uint8_t(p[8]) != format::frame_magic) continue;
        const auto h = format::read_frame_header(p);
        if (h.type != format::frame_type::events && h.type != format::frame_type::seal) continue;
        if (h.frame_len < frame_header_size - 8 || q + h.total_size() > tail.size()) continue;
        if (h.first_seq < from) continue;
        if (format::check_frame(tail.substr(q, h.total_size()), h).empty()) return true;
    }
    return false;
}

result<std::vector<segment_file>> list_segments(const std::filesystem::path& dir) {
    std::vector<segment_file> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        auto base = format::parse_segment_file_name(entry.path().filename().string());
        if (base) out.push_back({*base, entry.path()});
    }
    if (ec) return fail(errc::io_error, "cannot list " + dir.string() + ": " + ec.message());
    std::sort(out.begin(), out.end(),
              [](const segment_file& a, const segment_file& b) { return a.base < b.base; });
    return out;
}

std::string where(const std::filesystem::path& segment, std::uint64_t offset, seq_no seq) {
    return "segment " + segment.filename().string() + " offset " + std::to_string(offset) +
           " (seq " + std::to_string(seq.value) + ")";
}

result<format::segment_header> read_segment_header(const io::file& f, seq_no expected_base) {
    char buf[format::segment_header_size];
    auto n = f.pread(buf, sizeof buf, 0);
    if (!n) return std::unexpected(n.error());
    std::string why;
    auto h = format::decode_segment_header(std::string_view(buf, *n), why);
    auto bad = [&](const std::string& what) {
        return fail(errc::corrupt, what + " at " + where(f.path(), 0, expected_base),
                    expected_base);
    };
    if (!h) return bad(why);
    if (h->base != expected_base)
        return bad("segment header says base " + std::to_string(h->base.value) +
                   " but the file name says " + std::to_string(expected_base.value));
    return *h;
}

}  // namespace scimsync::eventlog::scan
