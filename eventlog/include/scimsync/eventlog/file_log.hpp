#pragma once
// FileLog: the log as segment files in one directory. The on-disk format is specified in
// eventlog/FORMAT.md; eventlog/README.md explains the design choices.

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "scimsync/eventlog/log.hpp"

namespace scimsync::eventlog {

enum class durability {
    always,  // one fdatasync per append request; nothing is grouped
    batch,   // group commit: one fdatasync per batch of queued requests, ack after it (default)
    none,    // no fdatasync at all; acknowledged writes can be lost on power failure. Tests only.
};
result<durability> parse_durability(std::string_view text);
const char* to_string(durability d);

struct file_log_options {
    std::filesystem::path dir;
    durability mode = durability::batch;
    std::uint64_t segment_bytes = 128ull << 20;  // roll when a segment would grow past this
    std::chrono::seconds segment_max_age{24 * 3600};
    std::size_t max_batch_bytes =
        1u << 20;  // group-commit batch cap (a bigger request still goes alone)
    // Zero-fill the active segment this far ahead of the data. Overwriting blocks that are
    // already allocated and durable lets fdatasync skip the metadata journal commit, which
    // halves its latency on ext4 (bench/README.md). A housekeeper thread keeps one to two of
    // these ahead of the data; the zeros are trimmed on seal and close.
    std::size_t preallocate_bytes = 1u << 20;
    clock_fn clock = &system_utc_now;
    bool read_only = false;  // tools: never truncate, never write; sees what is durable on disk
    // Copying a log (scimsyncctl log copy): a new log starts from this genesis value instead
    // of a random one, and appended events keep their own times (clamped so that they never
    // decrease) instead of the clock's, so the copy has the original's bytes and chain heads.
    std::optional<digest> genesis;
    bool keep_event_times = false;
    // Receives one-line notices (e.g. "dropped a torn tail of 37 bytes ..."), from the thread
    // calling open() during recovery and later from the writer and housekeeper threads.
    std::function<void(const std::string&)> notice;
    // Called once, on the writer thread, when a write or fdatasync fails and the log stops
    // accepting appends. A daemon should exit non-zero so that a restart runs recovery.
    std::function<void(const error&)> on_fatal;
};

// fdatasync latencies so far (metrics): counts per upper bound (cumulative), sum and count.
struct sync_stats {
    static constexpr std::array<double, 14> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                      0.005,  0.01,    0.025,  0.05,  0.1,
                                                      0.25,   0.5,     1,      10};
    std::array<std::uint64_t, 14> at_or_below{};
    double seconds = 0;
    std::uint64_t count = 0;
};

// What open() found and did.
struct recovery_report {
    std::size_t segments = 0;
    seq_no last_seq;
    std::uint64_t truncated_bytes = 0;  // bytes of torn tail dropped (0 if the tail was clean)
    std::string truncated_reason;       // why the tail was considered torn
};

class file_log final : public log {
public:
    // Opens (creating if needed) the log in options.dir. A torn tail of the newest segment is
    // truncated and reported; any other damage is errc::corrupt naming segment, offset and seq.
    // A writable open holds an exclusive lock (options.dir/LOCK) for the log's lifetime: a
    // second writer gets errc::locked. Read-only opens take no lock.
    static result<std::unique_ptr<file_log>> open(file_log_options options);
    ~file_log() override;

    void async_append(std::vector<event> batch, append_handler done) override;
    result<std::unique_ptr<reader>> read_from(seq_no first) const override;
    seq_no last_seq() const override;
    seq_no wait_for(seq_no after, std::chrono::steady_clock::time_point deadline) const override;
    result<digest> chain_head_at(seq_no at) const override;
    std::optional<error> write_failure() const override;
    void close() override;

    const recovery_report& recovery() const;
    // The first sequence number whose time is >= t (last_seq()+1 if none), for time ranges.
    result<seq_no> first_at_or_after(utc_time t) const;
    // fdatasync calls issued by the writer so far (for benchmarks and metrics).
    std::uint64_t sync_count() const;
    sync_stats syncs() const;

    struct impl;

private:
    explicit file_log(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::eventlog
