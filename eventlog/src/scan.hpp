#pragma once
// Reading and checking frames: the one place that decides whether bytes on disk are a valid
// frame. Recovery, readers and verify all go through here, so they cannot disagree.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "format.hpp"
#include "io.hpp"
#include "sha256.hpp"

namespace scimsync::eventlog::scan {

enum class status {
    frame,  // a frame whose CRC, framing and suffix are right (content not yet checked)
    end,    // clean end: no bytes left, or a zeroed header (preallocated / zero-filled tail)
    bad,    // bytes that are not a valid frame; `why` says what
};

struct frame_read {
    status st = status::end;
    format::frame_header h;
    std::string_view bytes;  // the whole frame; valid until the next read_at()
    std::string why;
};

// Reads frames of one segment file through a buffer of at least 1 MiB.
class segment_reader {
public:
    explicit segment_reader(io::file f) : file_(std::move(f)) {}
    const io::file& file() const { return file_; }
    // The frame at `pos`, looking only at bytes below `limit` (the file size, or the durable
    // end of an active segment).
    result<frame_read> read_at(std::uint64_t pos, std::uint64_t limit);
    // Bytes [pos, pos+n) clipped to `limit`; valid until the next call.
    result<std::string_view> bytes(std::uint64_t pos, std::size_t n, std::uint64_t limit);

private:
    io::file file_;
    std::string buf_;
    std::uint64_t buf_off_ = 0;
    std::size_t buf_len_ = 0;
};

// Where the chain stands before a frame: the next expected seq and the head after seq-1.
struct chain_state {
    seq_no next;
    digest head{};
};

// Checks a frame's content against the chain state and advances it: first_seq continuity,
// event framing and count, and the recomputed hash chain against chain_head_after. For an
// EVENTS frame the encoded events are put in `events` (views into frame.bytes). Returns "" or
// what is wrong; on error the state is left unchanged.
std::string check_content(const frame_read& frame, chain_state& state, sha256::hasher& hasher,
                          std::vector<std::string_view>& events);

// True if `tail` holds a valid frame starting at any offset > 0 whose first_seq >= `from`:
// the test that tells a torn tail (nothing valid after the damage) from mid-log corruption.
bool valid_frame_follows(std::string_view tail, seq_no from);

struct segment_file {
    seq_no base;
    std::filesystem::path path;
};
// The segment files in `dir`, ordered by base sequence number.
result<std::vector<segment_file>> list_segments(const std::filesystem::path& dir);
// Reads and checks a segment's header, including that its base matches the file name.
result<format::segment_header> read_segment_header(const io::file& f, seq_no expected_base);

// "segment 00000000000000000001.log offset 4242 (seq 17)"
std::string where(const std::filesystem::path& segment, std::uint64_t offset, seq_no seq);

}  // namespace scimsync::eventlog::scan
