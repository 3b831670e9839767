#pragma once
// Offline checks of a log directory: the auditor's `scimsyncctl log verify` and `log stats`.
// They open nothing for writing and never repair; they work with no daemon running.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "scimsync/eventlog/log.hpp"
#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog {

struct verify_problem {
    seq_no seq;                     // the first sequence number that cannot be trusted
    std::filesystem::path segment;  // the segment file it is in
    std::uint64_t offset = 0;       // byte offset of the bad frame (or header) in that file
    std::string what;               // what failed: "CRC mismatch", "hash chain break", ...
};

struct verify_report {
    std::size_t segments = 0;
    std::uint64_t frames = 0;
    std::uint64_t events = 0;
    std::uint64_t bytes = 0;
    seq_no last_good;                       // every event up to here checked out
    digest chain_head{};                    // head after last_good
    std::optional<verify_problem> problem;  // the first problem found; none means clean
};

// Called now and then with (bytes checked, total bytes) so a CLI can draw progress.
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Checks every segment header, frame CRC, length suffix, sequence continuity, the hash chain
// across all records and segments, and each SEAL record. Stops at the first problem.
result<verify_report> verify_log(const std::filesystem::path& dir,
                                 const progress_fn& progress = {});

struct log_stats {
    std::size_t segments = 0;
    std::uint64_t bytes = 0;
    std::uint64_t events = 0;
    seq_no first_seq, last_seq;
    utc_time first_time{}, last_time{};
    std::map<std::string, std::uint64_t> by_type;
    std::map<std::string, std::uint64_t> by_source;
    std::size_t streams = 0;
};

result<log_stats> compute_stats(const std::filesystem::path& dir, const progress_fn& progress = {});
// The same from any log (segments and bytes stay 0), e.g. a Kafka topic.
result<log_stats> compute_stats(const log& l, const progress_fn& progress = {});

}  // namespace scimsync::eventlog
