#pragma once
// Vocabulary types of the event log: sequence numbers, times, digests, errors.

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <expected>
#include <string>

namespace scimsync::eventlog {

// Position of an event in the log's one total order. 1-based; 0 means "before the first event".
struct seq_no {
    std::uint64_t value = 0;

    constexpr auto operator<=>(const seq_no&) const = default;
    constexpr seq_no next() const { return {value + 1}; }
};

// UTC time with microsecond resolution, as stored in the log.
using utc_time = std::chrono::sys_time<std::chrono::microseconds>;
using clock_fn = utc_time (*)();
utc_time system_utc_now();

// A SHA-256 digest (hash chain heads, snapshot body hashes).
using digest = std::array<std::uint8_t, 32>;
std::string to_hex(const digest& d);

enum class errc {
    io_error,          // a system call failed; message names the file and errno text
    corrupt,           // data that was durable fails a check; message names segment, offset, seq
    too_large,         // an event or a batch exceeds the format's limits
    invalid_argument,  // caller error (empty batch, bad range, malformed option)
    failed,            // the log hit a fatal write error earlier and refuses writes until reopened
    closed,            // the log is shutting down
    unknown_event,     // upcasting met an event type it does not know (fail closed)
    future_version,    // upcasting met a schema version newer than this build understands
    not_found,         // nothing at that position / no such snapshot
    locked,            // another process holds the log open for writing
};
const char* to_string(errc c);

struct error {
    errc code;
    std::string message;  // one line, names the file / offset / sequence number where it applies
    seq_no seq{};         // the first affected sequence number, when known
};

template <class T>
using result = std::expected<T, error>;

inline std::unexpected<error> fail(errc code, std::string message, seq_no seq = {}) {
    return std::unexpected(error{code, std::move(message), seq});
}

}  // namespace scimsync::eventlog
