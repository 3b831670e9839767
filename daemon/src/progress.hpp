#pragma once
// A one-line progress indicator on stderr for long offline commands (log verify/stats/dump).

#include <chrono>
#include <cstdint>
#include <string>

#include "scimsync/eventlog/verify.hpp"

namespace scimsync::daemon {

// Draws "LABEL  42% (12.0 MiB of 28.6 MiB)" in place, at most ten times a second, and erases it
// when done. Disabled (draws nothing) unless `enabled`; callers pass isatty(stderr) so that
// logs and pipes never get carriage returns. Not thread-safe: one producer.
class progress_meter {
public:
    enum class unit { bytes, events };

    progress_meter(std::string label, bool enabled, unit u = unit::bytes);
    ~progress_meter();
    progress_meter(const progress_meter&) = delete;
    progress_meter& operator=(const progress_meter&) = delete;

    void update(std::uint64_t done, std::uint64_t total);
    // Erases the line; safe to call more than once.
    void finish();
    // A progress_fn that forwards to update(); valid while this meter lives.
    eventlog::progress_fn callback();

private:
    std::string label_;
    bool enabled_;
    unit unit_;
    bool drawn_ = false;
    int last_percent_ = -1;
    std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace scimsync::daemon
