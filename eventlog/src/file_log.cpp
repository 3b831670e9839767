#include "scimsync/eventlog/file_log.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "crc32c.hpp"
#include "format.hpp"
#include "io.hpp"
#include "scan.hpp"
#include "sha256.hpp"

namespace scimsync::eventlog {

namespace fs = std::filesystem;
using format::frame_header_size;
using format::segment_header_size;

result<durability> parse_durability(std::string_view text) {
    if (text == "always") return durability::always;
    if (text == "batch") return durability::batch;
    if (text == "none") return durability::none;
    return fail(errc::invalid_argument,
                "durability must be always, batch or none (got \"" + std::string(text) + "\")");
}

const char* to_string(durability d) {
    switch (d) {
        case durability::always:
            return "always";
        case durability::batch:
            return "batch";
        case durability::none:
            return "none";
    }
    return "?";
}

namespace {

constexpr std::uint64_t index_interval_bytes = 4096;
constexpr auto commit_hint_interval = std::chrono::milliseconds(100);
constexpr const char* commit_hint_name = "commit.chk";

struct index_entry {
    seq_no seq;
    std::uint64_t pos = 0;
};

struct segment_meta {
    seq_no base;
    fs::path path;
    digest head_before{};
    utc_time created{};
    bool sealed = false;
    std::uint64_t end = 0;  // durable bytes: readers never look past this
    utc_time last_time{};   // time of the newest frame in it (for time lookups)
    std::vector<index_entry> index;
    bool index_loaded = false;
};

// What the writer publishes and readers consume. Shared so that a reader that outlives its
// log sees a closed log rather than freed memory.
struct log_state {
    fs::path dir;
    bool read_only = false;
    mutable std::mutex mu;
    mutable std::condition_variable durable_cv;
    std::vector<segment_meta> segments;  // ordered by base
    seq_no durable;                      // highest seq that is durable (per the mode)
    bool closed = false;
    std::optional<error> failure;  // the writer's sticky failure, for readiness checks
};

std::unexpected<error> corrupt(const fs::path& segment, std::uint64_t offset, seq_no seq,
                               const std::string& what) {
    return fail(errc::corrupt, what + " at " + scan::where(segment, offset, seq), seq);
}

std::string encode_commit_hint(seq_no durable) {
    std::string out(16, '\0');
    format::put_u64(out.data(), durable.value);
    format::put_u32(out.data() + 8, crc::mask(crc::value(out.data(), 8)));
    return out;
}

std::optional<seq_no> read_commit_hint(const fs::path& dir) {
    auto f = io::file::open_read(dir / commit_hint_name);
    if (!f) return std::nullopt;
    char buf[16];
    auto n = f->pread(buf, sizeof buf, 0);
    if (!n || *n != sizeof buf) return std::nullopt;
    if (format::get_u32(buf + 8) != crc::mask(crc::value(buf, 8))) return std::nullopt;
    return seq_no{format::get_u64(buf)};
}

// The frame position to start from for `seq` within a segment, from its sparse index.
index_entry index_floor(const std::vector<index_entry>& index, seq_no seq) {
    auto it = std::upper_bound(index.begin(), index.end(), seq,
                               [](seq_no s, const index_entry& e) { return s < e.seq; });
    if (it == index.begin()) return {};
    return *std::prev(it);
}

// Reads the frame that ends at `pos` (using the length suffix) and returns its chain head.
result<digest> head_before_frame(scan::segment_reader& sr, const segment_meta& seg,
                                 std::uint64_t pos, seq_no seq) {
    if (pos == segment_header_size) return seg.head_before;
    auto suffix = sr.bytes(pos - 4, 4, pos);
    if (!suffix) return std::unexpected(suffix.error());
    const std::uint64_t len = format::get_u32(suffix->data());
    if (len + 12 > pos - segment_header_size)
        return corrupt(seg.path, pos, seq, "length suffix before the frame is implausible");
    auto prev = sr.read_at(pos - 12 - len, pos);
    if (!prev) return std::unexpected(prev.error());
    if (prev->st != scan::status::frame)
        return corrupt(seg.path, pos - 12 - len, seq, "frame before the seek point: " + prev->why);
    return prev->h.chain_head_after;
}

// Rebuilds a segment's sparse index by walking its frames (headers and CRCs only).
result<std::vector<index_entry>> build_index(const segment_meta& seg) {
    auto f = io::file::open_read(seg.path);
    if (!f) return std::unexpected(f.error());
    scan::segment_reader sr(std::move(*f));
    std::vector<index_entry> index;
    std::uint64_t pos = segment_header_size;
    std::uint64_t last_indexed = 0;
    while (pos < seg.end) {
        auto r = sr.read_at(pos, seg.end);
        if (!r) return std::unexpected(r.error());
        if (r->st != scan::status::frame) break;
        if (index.empty() || pos - last_indexed >= index_interval_bytes) {
            index.push_back({r->h.first_seq, pos});
            last_indexed = pos;
        }
        pos += r->h.total_size();
    }
    return index;
}

std::string encode_index(const segment_meta& seg) {
    std::string out;
    out.reserve(seg.index.size() * 8);
    for (const auto& e : seg.index) {
        char buf[8];
        format::put_u32(buf, std::uint32_t(e.seq.value - seg.base.value));
        format::put_u32(buf + 4, std::uint32_t(e.pos));
        out.append(buf, 8);
    }
    return out;
}

// The .idx file is a hint: it is only used if every entry is plausible.
std::optional<std::vector<index_entry>> load_index_file(const fs::path& dir,
                                                        const segment_meta& seg) {
    auto f = io::file::open_read(dir / format::index_file_name(seg.base));
    if (!f) return std::nullopt;
    auto size = f->size();
    if (!size || *size % 8 != 0 || *size == 0) return std::nullopt;
    std::string buf(*size, '\0');
    auto n = f->pread(buf.data(), buf.size(), 0);
    if (!n || *n != buf.size()) return std::nullopt;
    std::vector<index_entry> index;
    for (std::size_t i = 0; i < buf.size(); i += 8) {
        index_entry e{seq_no{seg.base.value + format::get_u32(buf.data() + i)},
                      format::get_u32(buf.data() + i + 4)};
        if (e.pos < segment_header_size || e.pos >= seg.end) return std::nullopt;
        if (!index.empty() && (e.seq <= index.back().seq || e.pos <= index.back().pos))
            return std::nullopt;
        index.push_back(e);
    }
    if (index.front().seq != seg.base || index.front().pos != segment_header_size)
        return std::nullopt;
    return index;
}

// Makes sure segment `i`'s index is in memory, loading or rebuilding it outside the lock.
result<void> ensure_index(log_state& st, std::size_t i) {
    segment_meta copy;
    {
        std::lock_guard lk(st.mu);
        if (st.segments[i].index_loaded) return {};
        copy = st.segments[i];
    }
    auto index = load_index_file(st.dir, copy);
    if (!index) {
        auto built = build_index(copy);
        if (!built) return std::unexpected(built.error());
        index = std::move(*built);
        copy.index = *index;
        if (!st.read_only && copy.sealed)
            (void)io::write_atomically(st.dir / format::index_file_name(copy.base),
                                       encode_index(copy), false);
    }
    std::lock_guard lk(st.mu);
    st.segments[i].index = std::move(*index);
    st.segments[i].index_loaded = true;
    return {};
}

// ---------------------------------------------------------------------------------------
// Reader

class file_reader final : public reader {
public:
    file_reader(std::shared_ptr<log_state> st, seq_no first) : st_(std::move(st)), first_(first) {}

    result<bool> next(event& out) override {
        while (true) {
            if (idx_ < events_.size()) {
                const seq_no seq{frame_first_.value + idx_};
                const std::string_view bytes = events_[idx_++];
                if (seq < first_) continue;
                if (auto why = format::decode_event(bytes, out); !why.empty())
                    return corrupt(path_, frame_pos_, seq, why);
                out.seq = seq;
                return true;
            }
            auto more = next_frame();
            if (!more) return std::unexpected(more.error());
            if (!*more) return false;
        }
    }

    // Positions the reader: finds the frame holding first_ through the sparse index.
    result<void> seek() {
        std::size_t i = 0;
        {
            std::lock_guard lk(st_->mu);
            if (st_->segments.empty()) return fail(errc::not_found, "log has no segments");
            auto it = std::upper_bound(st_->segments.begin(), st_->segments.end(), first_,
                                       [](seq_no s, const segment_meta& m) { return s < m.base; });
            i = it == st_->segments.begin() ? 0 : std::size_t(it - st_->segments.begin() - 1);
        }
        if (auto r = ensure_index(*st_, i); !r) return r;
        segment_meta seg;
        {
            std::lock_guard lk(st_->mu);
            seg = st_->segments[i];
        }
        if (auto r = open_segment(seg); !r) return r;
        const index_entry at = index_floor(seg.index, first_);
        if (at.pos == 0) {
            pos_ = segment_header_size;
            chain_ = {seg.base, seg.head_before};
            return {};
        }
        auto head = head_before_frame(*sr_, seg, at.pos, at.seq);
        if (!head) return std::unexpected(head.error());
        pos_ = at.pos;
        chain_ = {at.seq, *head};
        return {};
    }

    // The chain head after `seq`, which must be in the frame last returned from.
    digest head_at(seq_no seq) {
        digest h = frame_head_before_;
        for (std::uint64_t s = frame_first_.value; s <= seq.value; ++s)
            h = sha256::chain(hasher_, h, s,
                              sha256::leaf(hasher_, events_[s - frame_first_.value]));
        return h;
    }

private:
    result<void> open_segment(const segment_meta& seg) {
        auto f = io::file::open_read(seg.path);
        if (!f) return std::unexpected(f.error());
        sr_.emplace(std::move(*f));
        path_ = seg.path;
        base_ = seg.base;
        limit_ = seg.end;
        return {};
    }

    // Loads the next frame's events into events_; false when nothing more is durable yet.
    result<bool> next_frame() {
        while (true) {
            if (pos_ >= limit_) {
                auto moved = refresh_limit();
                if (!moved) return std::unexpected(moved.error());
                if (pos_ >= limit_) return false;
            }
            auto r = sr_->read_at(pos_, limit_);
            if (!r) return std::unexpected(r.error());
            if (r->st != scan::status::frame)
                return corrupt(path_, pos_, chain_.next,
                               r->st == scan::status::end ? "unexpected end of data" : r->why);
            frame_head_before_ = chain_.head;
            if (auto why = scan::check_content(*r, chain_, hasher_, events_); !why.empty())
                return corrupt(path_, pos_, chain_.next, why);
            frame_pos_ = pos_;
            pos_ += r->h.total_size();
            if (r->h.type == format::frame_type::seal) {
                events_.clear();
                seal_seen_ = true;
                continue;
            }
            frame_first_ = r->h.first_seq;
            idx_ = 0;
            return true;
        }
    }

    // At the end of what we knew: see whether the segment grew or was sealed and succeeded.
    result<void> refresh_limit() {
        std::optional<segment_meta> following;
        {
            std::lock_guard lk(st_->mu);
            auto it = std::find_if(st_->segments.begin(), st_->segments.end(),
                                   [&](const segment_meta& m) { return m.base == base_; });
            if (it == st_->segments.end()) return {};
            limit_ = it->end;
            if (pos_ < limit_ || !it->sealed || !seal_seen_) return {};
            if (std::next(it) != st_->segments.end()) {
                following = *std::next(it);
                following->index.clear();
            }
        }
        if (!following) return {};
        if (following->base != chain_.next || following->head_before != chain_.head)
            return corrupt(following->path, 0, chain_.next,
                           "segment does not continue the previous segment's chain");
        if (auto r = open_segment(*following); !r) return r;
        pos_ = segment_header_size;
        seal_seen_ = false;
        return {};
    }

    std::shared_ptr<log_state> st_;
    seq_no first_;
    std::optional<scan::segment_reader> sr_;
    fs::path path_;
    seq_no base_;
    std::uint64_t pos_ = 0;
    std::uint64_t limit_ = 0;
    bool seal_seen_ = false;
    scan::chain_state chain_;
    sha256::hasher hasher_;
    std::vector<std::string_view> events_;
    std::size_t idx_ = 0;
    seq_no frame_first_;
    digest frame_head_before_{};
    std::uint64_t frame_pos_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// The log

struct file_log::impl {
    file_log_options opt;
    std::shared_ptr<log_state> st = std::make_shared<log_state>();
    recovery_report report;

    // Writer-owned (only the writer thread touches these once it runs).
    io::file active;
    std::uint64_t active_end = 0;
    std::uint64_t last_indexed = 0;
    seq_no next_seq{1};
    digest head{};
    utc_time last_time{};
    utc_time active_created{};
    std::optional<error> fatal;  // writer-owned; copied to st->failure under st->mu
    std::string frame;           // reused frame buffer
    std::string scratch;         // reused event encoding buffer
    sha256::hasher hasher;
    io::file lock;  // holds the flock on LOCK while the log is open for writing

    // Housekeeping, off the append path (its own thread): the commit hint, and zero-filling
    // the active segment ahead of the data. Both used to run on the writer between batches,
    // where each cost an fdatasync that every request queued behind it waited for; on a
    // virtual disk an fdatasync now and then takes 20-150 ms (bench/README.md).
    //
    // The zero-filling is shared with the writer under hk_mu: `allocated` is how far the file
    // holds zeros or data. The housekeeper claims [allocated, zeroing_to) under the lock,
    // writes the zeros outside it, and publishes `allocated = zeroing_to` under it again; the
    // writer only writes data below `allocated`, so the two never write the same bytes. When
    // the housekeeper is behind, the writer fills what it needs itself (as before).
    std::mutex hk_mu;
    std::condition_variable hk_cv;
    std::uint64_t allocated = 0;   // bytes in the active file: data up to active_end, then zeros
    std::uint64_t zeroing_to = 0;  // non-zero while the housekeeper writes zeros up to here
    std::uint64_t data_end = 0;    // where the writer's data ends (the housekeeper fills ahead)
    fs::path zero_path;            // the active segment; empty: nothing to fill
    std::uint64_t zero_generation = 0;  // bumped when the active segment changes
    bool hk_stopping = false;
    bool hk_idle = false;  // the housekeeper sleeps until told: nothing became durable
    bool zero_fill_failed = false;
    std::thread housekeeper;
    // Housekeeper-owned while it runs (the writer writes the last hint after joining it).
    io::file hint;
    std::chrono::steady_clock::time_point last_hint{};
    seq_no hinted;

    struct pending {
        std::vector<event> events;
        append_handler done;
        result<append_result> outcome = fail(errc::failed, "not written");
    };
    std::mutex qmu;
    std::condition_variable qcv;
    std::deque<pending> queue;
    bool stopping = false;
    std::atomic<std::uint64_t> syncs{0};
    mutable std::mutex sync_stats_mu;  // the writer adds, metrics read
    sync_stats sync_latency;
    void note_sync(double seconds) {
        std::lock_guard lk(sync_stats_mu);
        for (std::size_t i = 0; i < sync_stats::bounds.size(); ++i)
            if (seconds <= sync_stats::bounds[i]) ++sync_latency.at_or_below[i];
        sync_latency.seconds += seconds;
        ++sync_latency.count;
    }
    std::thread writer;

    void notice(const std::string& s) const {
        if (opt.notice) opt.notice(s);
    }

    result<void> recover();
    result<void> take_lock();
    result<void> check_sealed(std::size_t i, scan::chain_state& chain);
    result<void> scan_active(segment_meta& seg, scan::chain_state& chain);
    result<void> create_segment(seq_no base, const digest& head_before, utc_time now);
    result<void> roll(utc_time now);
    result<void> ensure_allocated(std::uint64_t end);
    result<void> trim_preallocation(std::uint64_t end);
    void writer_loop();
    void write_batch(std::vector<pending>& batch);
    void housekeeper_loop();
    void set_zero_fill_target(const fs::path& segment, std::uint64_t end);
    void detach_zero_fill(std::unique_lock<std::mutex>& lk);
    void note_data_end(std::uint64_t end);
    void write_commit_hint(seq_no durable, bool force);
};

result<void> file_log::impl::create_segment(seq_no base, const digest& head_before, utc_time now) {
    const fs::path path = opt.dir / format::segment_file_name(base);
    format::segment_header h;
    h.base = base;
    h.created = now;
    h.chain_head_before = head_before;
    const bool sync = opt.mode != durability::none;
    if (auto r = io::write_atomically(path, format::encode_segment_header(h), sync); !r) return r;
    auto f = io::file::open_write(path, false);
    if (!f) return std::unexpected(f.error());
    active = std::move(*f);
    active_end = segment_header_size;
    set_zero_fill_target(path, segment_header_size);
    active_created = now;
    last_indexed = 0;
    segment_meta meta;
    meta.base = base;
    meta.path = path;
    meta.head_before = head_before;
    meta.created = now;
    meta.end = segment_header_size;
    meta.last_time = now;
    meta.index_loaded = true;
    std::lock_guard lk(st->mu);
    st->segments.push_back(std::move(meta));
    return {};
}

result<void> file_log::impl::check_sealed(std::size_t i, scan::chain_state& chain) {
    segment_meta& seg = st->segments[i];
    auto f = io::file::open_read(seg.path);
    if (!f) return std::unexpected(f.error());
    auto h = scan::read_segment_header(*f, seg.base);
    if (!h) return std::unexpected(h.error());
    seg.head_before = h->chain_head_before;
    seg.created = h->created;
    if (i > 0 && (seg.head_before != chain.head || seg.base != chain.next))
        return corrupt(seg.path, 0, seg.base,
                       "segment does not continue the previous segment's chain");
    auto size = f->size();
    if (!size) return std::unexpected(size.error());
    scan::segment_reader sr(std::move(*f));
    const seq_no bad_seq = seg.base;
    if (*size < segment_header_size + format::frame_overhead)
        return corrupt(seg.path, *size, bad_seq, "sealed segment has no SEAL record");
    auto suffix = sr.bytes(*size - 4, 4, *size);
    if (!suffix) return std::unexpected(suffix.error());
    const std::uint64_t len = format::get_u32(suffix->data());
    if (len + 12 > *size - segment_header_size)
        return corrupt(seg.path, *size - 4, bad_seq,
                       "sealed segment's last length suffix is implausible");
    const std::uint64_t at = *size - 12 - len;
    auto r = sr.read_at(at, *size);
    if (!r) return std::unexpected(r.error());
    if (r->st != scan::status::frame || r->h.type != format::frame_type::seal)
        return corrupt(seg.path, at, bad_seq,
                       "sealed segment does not end with a valid SEAL record" +
                           (r->why.empty() ? std::string() : ": " + r->why));
    seg.sealed = true;
    seg.end = *size;
    seg.last_time = r->h.recorded_at;
    chain = {r->h.first_seq, r->h.chain_head_after};
    return {};
}

// Scans the newest segment frame by frame. The first bad frame is a torn tail (truncated,
// reported) unless it holds data known to be durable or valid frames follow it: then the log
// is corrupt and we refuse to open (LOG-DESIGN.md 5.5).
result<void> file_log::impl::scan_active(segment_meta& seg, scan::chain_state& chain) {
    auto f = opt.read_only ? io::file::open_read(seg.path) : io::file::open_write(seg.path, false);
    if (!f) return std::unexpected(f.error());
    auto size = f->size();
    if (!size) return std::unexpected(size.error());
    auto h = scan::read_segment_header(*f, seg.base);
    if (!h) return std::unexpected(h.error());
    seg.head_before = h->chain_head_before;
    seg.created = h->created;
    seg.last_time = h->created;
    if (st->segments.size() > 1 && (seg.base != chain.next || seg.head_before != chain.head))
        return corrupt(seg.path, 0, seg.base,
                       "segment does not continue the previous segment's chain");
    chain = {seg.base, seg.head_before};
    io::file writable = std::move(*f);
    auto rf = io::file::open_read(seg.path);
    if (!rf) return std::unexpected(rf.error());
    scan::segment_reader sr(std::move(*rf));
    std::vector<std::string_view> events;
    std::uint64_t pos = segment_header_size;
    std::uint64_t indexed_at = 0;
    std::string why;
    while (true) {
        auto r = sr.read_at(pos, *size);
        if (!r) return std::unexpected(r.error());
        if (r->st == scan::status::end) break;
        if (r->st == scan::status::bad) {
            why = r->why;
            break;
        }
        if (why = scan::check_content(*r, chain, hasher, events); !why.empty()) break;
        if (seg.index.empty() || pos - indexed_at >= index_interval_bytes) {
            seg.index.push_back({r->h.first_seq, pos});
            indexed_at = pos;
        }
        seg.last_time = r->h.recorded_at;
        pos += r->h.total_size();
        if (r->h.type == format::frame_type::seal) {
            seg.sealed = true;
            break;
        }
    }
    seg.index_loaded = true;
    seg.end = pos;
    if (pos < *size) {
        // Anything after the good data: zeros are fine, anything else needs a verdict.
        auto tail = sr.bytes(pos, std::size_t(*size - pos), *size);
        if (!tail) return std::unexpected(tail.error());
        std::string tail_copy(*tail);
        const bool zeros =
            std::all_of(tail_copy.begin(), tail_copy.end(), [](char c) { return c == 0; });
        const auto durable_hint = read_commit_hint(opt.dir);
        if (!zeros) {
            if (durable_hint && chain.next <= *durable_hint)
                return corrupt(seg.path, pos, chain.next,
                               (why.empty() ? "unexpected data" : why) +
                                   " in a record that was acknowledged as durable (commit.chk: " +
                                   std::to_string(durable_hint->value) + ")");
            if (scan::valid_frame_follows(tail_copy, chain.next))
                return corrupt(
                    seg.path, pos, chain.next,
                    (why.empty() ? "unexpected data" : why) + ", and valid records follow it");
            if (seg.sealed) return corrupt(seg.path, pos, chain.next, "data after the SEAL record");
        }
        if (!opt.read_only) {
            if (auto r = writable.truncate(pos); !r) return r;
            if (auto r = writable.datasync(); !r) return r;
        }
        // A zero tail is preallocated space left by a crash: nothing was lost, nothing to say.
        if (!zeros) {
            report.truncated_bytes = *size - pos;
            report.truncated_reason = why.empty() ? "unexpected data" : why;
            notice((opt.read_only ? "found" : "dropped") + std::string(" a torn tail of ") +
                   std::to_string(*size - pos) + " bytes at " +
                   scan::where(seg.path, pos, chain.next) + ": " + report.truncated_reason +
                   "; it was never acknowledged, every record before it is intact");
        }
    }
    if (!opt.read_only && !seg.sealed) active = std::move(writable);
    return {};
}

result<void> file_log::impl::take_lock() {
    const fs::path path = opt.dir / "LOCK";
    auto f = io::file::open_write(path, false);
    if (!f) f = io::file::open_write(path, true);
    if (!f) f = io::file::open_write(path, false);  // lost a creation race: it exists now
    if (!f) return std::unexpected(f.error());
    if (::flock(f->fd(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK)
            return fail(errc::locked, "the log in " + opt.dir.string() +
                                          " is open for writing in another process (" +
                                          path.string() + " is locked)");
        return fail(errc::io_error, "cannot lock " + path.string() + ": " + std::strerror(err));
    }
    lock = std::move(*f);
    return {};
}

result<void> file_log::impl::recover() {
    const fs::path& dir = opt.dir;
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        if (opt.read_only) return fail(errc::not_found, "no log at " + dir.string());
        fs::create_directories(dir, ec);
        if (ec) return fail(errc::io_error, "cannot create " + dir.string() + ": " + ec.message());
    }
    if (!opt.read_only) {
        if (auto r = take_lock(); !r) return r;
    }
    auto on_disk = scan::list_segments(dir);
    if (!on_disk) return std::unexpected(on_disk.error());
    if (on_disk->empty()) {
        if (opt.read_only) return fail(errc::not_found, "no log segments in " + dir.string());
        digest genesis{};
        if (opt.genesis)
            genesis = *opt.genesis;
        else if (RAND_bytes(genesis.data(), int(genesis.size())) != 1)
            return fail(errc::io_error, "cannot draw random bytes for the genesis hash");
        const utc_time now = opt.clock();
        if (auto r = create_segment(seq_no{1}, genesis, now); !r) return r;
        head = genesis;
        last_time = opt.keep_event_times ? utc_time{} : now;
        report.segments = 1;
        return {};
    }
    for (const auto& s : *on_disk) {
        segment_meta m;
        m.base = s.base;
        m.path = s.path;
        st->segments.push_back(std::move(m));
    }
    scan::chain_state chain{st->segments.front().base, {}};
    for (std::size_t i = 0; i + 1 < st->segments.size(); ++i) {
        if (auto r = check_sealed(i, chain); !r) return r;
    }
    segment_meta& last = st->segments.back();
    if (auto r = scan_active(last, chain); !r) return r;
    next_seq = chain.next;
    head = chain.head;
    last_time = last.last_time;
    st->durable = seq_no{chain.next.value - 1};
    report.segments = st->segments.size();
    if (last.sealed && !opt.read_only) {
        // A crash between sealing a segment and creating its successor.
        if (auto r = create_segment(next_seq, head, std::max(opt.clock(), last_time)); !r) return r;
        report.segments = st->segments.size();
    } else if (!opt.read_only) {
        active_end = last.end;
        set_zero_fill_target(last.path, last.end);
        active_created = last.created;
        last_indexed = last.index.empty() ? 0 : last.index.back().pos;
    }
    return {};
}

// `durable`: what is durable now (the writer's own count, or st->durable on the housekeeper,
// which must not read the writer's state).
void file_log::impl::write_commit_hint(seq_no durable, bool force) {
    if (opt.read_only || opt.mode == durability::none) return;
    const auto now = std::chrono::steady_clock::now();
    if (durable == hinted || (!force && now - last_hint < commit_hint_interval)) return;
    last_hint = now;  // also after a failure: the next attempt waits its interval
    if (!hint.is_open()) {
        auto f = io::file::open_write(opt.dir / commit_hint_name, false);
        if (!f) f = io::file::open_write(opt.dir / commit_hint_name, true);
        if (!f) {
            notice("cannot write commit hint: " + f.error().message);
            return;
        }
        hint = std::move(*f);
    }
    // A hint only: recovery uses it to refuse to drop acknowledged data, so a stale (lower)
    // value is always safe; it is never written ahead of what is durable.
    if (hint.pwrite_all(encode_commit_hint(durable), 0) && hint.datasync()) hinted = durable;
}

result<void> file_log::impl::roll(utc_time now) {
    segment_meta& seg = st->segments.back();
    format::frame_header h;
    h.type = format::frame_type::seal;
    h.first_seq = next_seq;
    h.event_count = 0;
    h.recorded_at = last_time;
    h.chain_head_after = head;
    h.frame_len = std::uint32_t(frame_header_size - 8);
    std::string seal(format::frame_overhead, '\0');
    format::write_frame_header(seal.data(), h);
    format::put_u32(seal.data() + frame_header_size, h.frame_len);
    format::put_u32(seal.data() + 4, format::frame_crc(seal));
    {
        // The housekeeper lets go of this segment before it is sealed and trimmed.
        std::unique_lock lk(hk_mu);
        detach_zero_fill(lk);
        if (auto r = active.pwrite_all(seal, active_end); !r) return r;
        if (allocated > active_end + seal.size()) {
            if (auto r = active.truncate(active_end + seal.size()); !r) return r;
        }
    }
    if (opt.mode != durability::none) {
        if (auto r = active.datasync(); !r) return r;
    }
    ::fchmod(active.fd(), 0440);
    active.close();
    {
        std::lock_guard lk(st->mu);
        seg.end = active_end + seal.size();
        seg.sealed = true;
    }
    if (auto r = io::write_atomically(opt.dir / format::index_file_name(seg.base),
                                      encode_index(seg), false);
        !r)
        notice("cannot write segment index (it will be rebuilt): " + r.error().message);
    return create_segment(next_seq, head, now);
}

void file_log::impl::writer_loop() {
    std::vector<pending> batch;
    while (true) {
        {
            std::unique_lock lk(qmu);
            qcv.wait(lk, [&] { return !queue.empty() || stopping; });
            if (queue.empty()) break;
            // Group commit: everything queued, up to max_batch_bytes (at least one request).
            // `always` writes and syncs each request on its own.
            std::size_t bytes = 0;
            while (!queue.empty()) {
                std::size_t size = 0;
                for (const auto& e : queue.front().events) size += format::encoded_size_bound(e);
                if (!batch.empty() &&
                    (opt.mode == durability::always || bytes + size > opt.max_batch_bytes))
                    break;
                bytes += size;
                batch.push_back(std::move(queue.front()));
                queue.pop_front();
            }
        }
        write_batch(batch);
        // Inline, by contract non-blocking: a callback that only posts to an executor costs
        // far less than handing the batch to another thread would (bench/README.md).
        for (auto& p : batch) p.done(std::move(p.outcome));
        batch.clear();
        note_data_end(active_end);
    }
    {
        std::lock_guard lk(hk_mu);
        hk_stopping = true;
    }
    hk_cv.notify_all();
    if (housekeeper.joinable()) housekeeper.join();
    if (!fatal && active.is_open()) {
        if (auto r = trim_preallocation(active_end); !r) notice(r.error().message);
    }
    write_commit_hint(seq_no{next_seq.value - 1}, true);
}

void file_log::impl::set_zero_fill_target(const fs::path& segment, std::uint64_t end) {
    std::unique_lock lk(hk_mu);
    detach_zero_fill(lk);
    zero_path = segment;
    allocated = end;
    data_end = end;
}

// Waits for zeros being written to the active segment, then makes the housekeeper let go of
// it (the caller seals, trims or replaces it).
void file_log::impl::detach_zero_fill(std::unique_lock<std::mutex>& lk) {
    hk_cv.wait(lk, [&] { return zeroing_to == 0; });
    zero_path.clear();
    ++zero_generation;
}

// After a batch: where the data ends now, and a nudge for the housekeeper when it has zeros
// to write or a hint became due.
void file_log::impl::note_data_end(std::uint64_t end) {
    bool wake = false;
    {
        std::lock_guard lk(hk_mu);
        data_end = end;
        wake = hk_idle || (opt.preallocate_bytes > 0 && !zero_fill_failed && !zero_path.empty() &&
                           zeroing_to == 0 && allocated < end + opt.preallocate_bytes);
        if (wake) hk_idle = false;
    }
    if (wake) hk_cv.notify_all();
}

namespace {

// Zeros over [from, to) of `f`, a MiB at a time (the housekeeper's and the writer's fill).
result<void> write_zeros(const io::file& f, std::uint64_t from, std::uint64_t to) {
    static const std::string zeros(1u << 20, '\0');
    for (std::uint64_t at = from; at < to;) {
        const auto n = std::size_t(std::min<std::uint64_t>(zeros.size(), to - at));
        if (auto r = f.pwrite_all(std::string_view(zeros).substr(0, n), at); !r) return r;
        at += n;
    }
    return {};
}

}  // namespace

void file_log::impl::housekeeper_loop() {
    io::file target;  // the segment being zero-filled, opened by path
    std::uint64_t target_generation = 0;
    // Under hk_mu: zeros are wanted when fewer than one preallocation is left ahead.
    const auto zeros_wanted = [&] {
        return opt.preallocate_bytes > 0 && !zero_fill_failed && !zero_path.empty() &&
               allocated < data_end + opt.preallocate_bytes;
    };
    const bool hints = opt.mode != durability::none;
    std::unique_lock lk(hk_mu);
    while (!hk_stopping) {
        // Zeros: keep between one and two preallocate_bytes of them ahead of the data.
        if (zeros_wanted()) {
            if (!target.is_open() || target_generation != zero_generation) {
                auto f = io::file::open_write(zero_path, false);
                if (!f) {
                    zero_fill_failed = true;
                    notice("cannot zero-fill ahead (the writer will): " + f.error().message);
                    continue;
                }
                target = std::move(*f);
                target_generation = zero_generation;
            }
            const std::uint64_t from = allocated;
            zeroing_to = std::max(allocated, data_end) + 2 * opt.preallocate_bytes;
            const std::uint64_t to = zeroing_to;
            lk.unlock();
            result<void> r = write_zeros(target, from, to);
            lk.lock();
            if (r) allocated = to;
            zeroing_to = 0;
            hk_cv.notify_all();
            if (r && opt.mode != durability::none) {
                // Durable zeros let the writer's fdatasync skip the block allocation. The
                // writer may already write data into them: syncing this file flushes that
                // too, which only does early what its own fdatasync would do.
                lk.unlock();
                r = target.datasync();
                lk.lock();
            }
            if (!r) {
                zero_fill_failed = true;
                notice("cannot zero-fill ahead (the writer will): " + r.error().message);
            }
            continue;
        }
        // The commit hint: at most every commit_hint_interval, never ahead of what is durable.
        if (hints) {
            lk.unlock();
            seq_no durable;
            {
                std::lock_guard slk(st->mu);
                durable = st->durable;
            }
            const auto due = last_hint + commit_hint_interval;
            if (durable != hinted && std::chrono::steady_clock::now() >= due)
                write_commit_hint(durable, false);
            lk.lock();
            if (durable != hinted || hk_stopping) {
                hk_cv.wait_until(lk, std::max(due, last_hint + commit_hint_interval));
                continue;
            }
        }
        // Nothing to do until the writer says more became durable (hk_idle) or the data
        // nears the end of the zeros.
        hk_idle = hints;
        hk_cv.wait(lk, [&] { return hk_stopping || zeros_wanted() || (hints && !hk_idle); });
    }
}

result<void> file_log::impl::ensure_allocated(std::uint64_t end) {
    if (opt.preallocate_bytes == 0) return {};
    std::unique_lock lk(hk_mu);
    if (end <= allocated) return {};
    // The housekeeper is behind: wait for the zeros it is writing, or write them here.
    hk_cv.wait(lk, [&] { return zeroing_to == 0; });
    if (end <= allocated) return {};
    const std::uint64_t target = std::max<std::uint64_t>(end, allocated + opt.preallocate_bytes);
    if (auto r = write_zeros(active, allocated, target); !r) return r;
    allocated = target;
    return {};
}

result<void> file_log::impl::trim_preallocation(std::uint64_t end) {
    if (allocated <= end) return {};
    if (auto r = active.truncate(end); !r) return r;
    allocated = end;
    if (opt.mode != durability::none) return active.datasync();
    return {};
}

void file_log::impl::write_batch(std::vector<pending>& batch) {
    if (fatal) {
        for (auto& p : batch) p.outcome = std::unexpected(*fatal);
        return;
    }
    // One time for the whole frame, or (copying a log) each event's own, never decreasing.
    const utc_time now = opt.keep_event_times ? last_time : std::max(opt.clock(), last_time);
    utc_time stamp = now;
    const seq_no first_in_frame = next_seq;
    const digest head_before = head;
    frame.assign(frame_header_size, '\0');
    std::uint32_t count = 0;
    std::vector<pending*> accepted;
    for (auto& p : batch) {
        const std::size_t frame_mark = frame.size();
        seq_no seq{first_in_frame.value + count};
        digest h = head;
        std::string problem;
        for (auto& e : p.events) {
            e.seq = seq;
            if (opt.keep_event_times) stamp = std::max(stamp, e.time);
            e.time = stamp;
            scratch.clear();
            format::encode_event(scratch, e);
            if (scratch.size() > max_event_bytes) {
                problem = "an event of type " + e.type + " encodes to " +
                          std::to_string(scratch.size()) + " bytes; the limit is " +
                          std::to_string(max_event_bytes);
                break;
            }
            format::append_varint(frame, scratch.size());
            frame.append(scratch);
            h = sha256::chain(hasher, h, seq.value, sha256::leaf(hasher, scratch));
            seq = seq.next();
        }
        if (problem.empty() && frame.size() + format::frame_suffix_size > max_frame_bytes)
            problem =
                "the batch encodes to more than " + std::to_string(max_frame_bytes) + " bytes";
        if (!problem.empty()) {
            frame.resize(frame_mark);
            p.outcome = fail(errc::too_large, problem);
            continue;
        }
        p.outcome =
            append_result{seq_no{first_in_frame.value + count}, seq_no{seq.value - 1}, stamp};
        count += std::uint32_t(p.events.size());
        head = h;
        accepted.push_back(&p);
    }
    if (count == 0) return;
    const utc_time frame_time = stamp;

    format::frame_header fh;
    fh.type = format::frame_type::events;
    fh.first_seq = first_in_frame;
    fh.event_count = count;
    fh.recorded_at = frame_time;
    fh.chain_head_after = head;
    fh.frame_len = std::uint32_t(frame.size() - 8);
    format::write_frame_header(frame.data(), fh);
    frame.append(4, '\0');
    format::put_u32(frame.data() + frame.size() - 4, fh.frame_len);
    format::put_u32(frame.data() + 4, format::frame_crc(frame));

    auto give_up = [&](const error& e) {
        // Sticky: after a failed write or fsync the file's state is unknown, so nothing more
        // is written until the log is reopened (and recovery runs again).
        fatal = error{errc::failed, "the log stopped accepting writes after: " + e.message};
        notice(fatal->message);
        head = head_before;
        for (auto* p : accepted) p->outcome = std::unexpected(*fatal);
        {
            std::lock_guard lk(st->mu);
            st->failure = fatal;
        }
        if (opt.on_fatal) opt.on_fatal(*fatal);
    };

    const bool age_due = frame_time - active_created >= opt.segment_max_age;
    if (active_end > segment_header_size &&
        (active_end + frame.size() > opt.segment_bytes || age_due)) {
        const digest new_head = head;
        head = head_before;
        if (auto r = roll(frame_time); !r) return give_up(r.error());
        head = new_head;
    }
    const std::uint64_t pos = active_end;
    if (auto r = ensure_allocated(pos + frame.size()); !r) return give_up(r.error());
    if (auto r = active.pwrite_all(frame, pos); !r) return give_up(r.error());
    if (opt.mode != durability::none) {
        const auto sync_started = std::chrono::steady_clock::now();
        if (auto r = active.datasync(); !r) return give_up(r.error());
        syncs.fetch_add(1, std::memory_order_relaxed);
        note_sync(std::chrono::duration<double>(std::chrono::steady_clock::now() - sync_started)
                      .count());
    }
    active_end = pos + frame.size();
    next_seq = seq_no{first_in_frame.value + count};
    last_time = frame_time;
    {
        std::lock_guard lk(st->mu);
        segment_meta& seg = st->segments.back();
        if (seg.index.empty() || pos - last_indexed >= index_interval_bytes) {
            seg.index.push_back({first_in_frame, pos});
            last_indexed = pos;
        }
        seg.end = active_end;
        seg.last_time = frame_time;
        st->durable = seq_no{next_seq.value - 1};
    }
    st->durable_cv.notify_all();
}

// ---------------------------------------------------------------------------------------

file_log::file_log(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

file_log::~file_log() {
    close();
}

result<std::unique_ptr<file_log>> file_log::open(file_log_options options) {
    if (options.segment_bytes < 256)
        return fail(errc::invalid_argument, "segment size must be at least 256 bytes");
    auto p = std::make_unique<impl>();
    p->opt = std::move(options);
    if (!p->opt.clock) p->opt.clock = &system_utc_now;
    p->st->dir = p->opt.dir;
    p->st->read_only = p->opt.read_only;
    if (auto r = p->recover(); !r) return std::unexpected(r.error());
    p->report.last_seq = p->st->durable;
    if (!p->opt.read_only) {
        impl* raw = p.get();
        // The housekeeper first: the writer joins it when it stops.
        p->housekeeper = std::thread([raw] { raw->housekeeper_loop(); });
        p->writer = std::thread([raw] { raw->writer_loop(); });
    }
    return std::unique_ptr<file_log>(new file_log(std::move(p)));
}

void file_log::async_append(std::vector<event> batch, append_handler done) {
    if (impl_->opt.read_only) {
        done(fail(errc::invalid_argument, "the log was opened read-only"));
        return;
    }
    if (batch.empty()) {
        done(fail(errc::invalid_argument, "an append needs at least one event"));
        return;
    }
    for (const auto& e : batch) {
        if (e.type.empty()) {
            done(fail(errc::invalid_argument, "every event needs a type"));
            return;
        }
    }
    {
        std::lock_guard lk(impl_->qmu);
        if (!impl_->stopping) {
            impl_->queue.push_back({std::move(batch), std::move(done)});
            impl_->qcv.notify_one();
            return;
        }
    }
    done(fail(errc::closed, "the log is closed"));
}

result<std::unique_ptr<reader>> file_log::read_from(seq_no first) const {
    if (first.value == 0) first = seq_no{1};
    auto r = std::make_unique<file_reader>(impl_->st, first);
    if (auto s = r->seek(); !s) return std::unexpected(s.error());
    return std::unique_ptr<reader>(std::move(r));
}

seq_no file_log::last_seq() const {
    std::lock_guard lk(impl_->st->mu);
    return impl_->st->durable;
}

seq_no file_log::wait_for(seq_no after, std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lk(impl_->st->mu);
    impl_->st->durable_cv.wait_until(
        lk, deadline, [&] { return impl_->st->durable > after || impl_->st->closed; });
    return impl_->st->durable;
}

result<digest> file_log::chain_head_at(seq_no at) const {
    {
        std::lock_guard lk(impl_->st->mu);
        if (at > impl_->st->durable)
            return fail(errc::not_found,
                        "seq " + std::to_string(at.value) + " is past the end of the log");
        if (at.value == 0 || at.value + 1 == impl_->st->segments.front().base.value)
            return impl_->st->segments.front().head_before;
    }
    // Replay the frame holding `at` from the head before it; the reader checks the chain.
    auto r = read_from(at);
    if (!r) return std::unexpected(r.error());
    auto& fr = static_cast<file_reader&>(**r);
    event e;
    auto got = fr.next(e);
    if (!got) return std::unexpected(got.error());
    if (!*got || e.seq != at) return fail(errc::not_found, "seq not found", at);
    // Recompute the head up to `at` from the frame start; check_content verified the frame.
    return fr.head_at(at);
}

void file_log::close() {
    {
        std::lock_guard lk(impl_->qmu);
        if (impl_->stopping) return;
        impl_->stopping = true;
    }
    impl_->qcv.notify_all();
    if (impl_->writer.joinable()) impl_->writer.join();
    {
        std::lock_guard lk(impl_->st->mu);
        impl_->st->closed = true;
    }
    impl_->st->durable_cv.notify_all();
}

result<seq_no> file_log::first_at_or_after(utc_time t) const {
    std::vector<segment_meta> segments;
    seq_no durable;
    {
        std::lock_guard lk(impl_->st->mu);
        segments = impl_->st->segments;
        durable = impl_->st->durable;
    }
    // Frame times never decrease, so the first segment whose newest frame is late enough
    // holds the answer; within it, walk the frames.
    for (const auto& seg : segments) {
        if (seg.last_time < t) continue;
        auto f = io::file::open_read(seg.path);
        if (!f) return std::unexpected(f.error());
        scan::segment_reader sr(std::move(*f));
        std::uint64_t pos = segment_header_size;
        while (pos < seg.end) {
            auto r = sr.read_at(pos, seg.end);
            if (!r) return std::unexpected(r.error());
            if (r->st != scan::status::frame)
                return corrupt(seg.path, pos, seg.base, r->why.empty() ? "unexpected end" : r->why);
            if (r->h.recorded_at >= t && r->h.type == format::frame_type::events)
                return r->h.first_seq;
            pos += r->h.total_size();
        }
    }
    return durable.next();
}

std::optional<error> file_log::write_failure() const {
    std::lock_guard lk(impl_->st->mu);
    return impl_->st->failure;
}

const recovery_report& file_log::recovery() const {
    return impl_->report;
}

std::uint64_t file_log::sync_count() const {
    return impl_->syncs.load();
}

sync_stats file_log::syncs() const {
    std::lock_guard lk(impl_->sync_stats_mu);
    return impl_->sync_latency;
}

}  // namespace scimsync::eventlog
