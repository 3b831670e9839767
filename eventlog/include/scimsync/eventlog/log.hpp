#pragma once
// The Log interface: one durable total order of events. FileLog implements it today; a Kafka
// backend implements the same contract (issue 6), so nothing above this header knows which.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "scimsync/eventlog/event.hpp"
#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog {

struct append_result {
    seq_no first;   // sequence number given to batch[0]
    seq_no last;    // sequence number given to batch.back()
    utc_time time;  // the time stamped on every event of the batch
};

// Called exactly once per append, after the events are durable (per the durability mode) or the
// append failed: on the log's writer thread, or on the caller's thread if the append is refused
// before it is queued. It runs inline with the writer, so it must not block and must not call
// back into the log; post elsewhere (e.g. to an Asio executor) to do work.
using append_handler = std::function<void(result<append_result>)>;

// A forward cursor over durable events. Not thread-safe; one consumer per reader.
class reader {
public:
    virtual ~reader() = default;
    // Fills `out` with the next event and returns true, or returns false at the end of what is
    // durable right now (call again later to continue). Reuses `out`'s storage.
    virtual result<bool> next(event& out) = 0;
};

class log {
public:
    virtual ~log() = default;

    // Appends `batch` atomically: its events get consecutive sequence numbers and one time
    // stamp, and either all of them become durable or none. Never blocks the caller.
    virtual void async_append(std::vector<event> batch, append_handler done) = 0;

    // Blocking form of async_append, for tools, tests and threads that may block. Each call
    // costs the writer one wake-up; servers should use async_append.
    result<append_result> append(std::vector<event> batch);

    // A reader positioned at the first durable event with seq >= `first`.
    virtual result<std::unique_ptr<reader>> read_from(seq_no first) const = 0;

    // The highest durable sequence number (0 for an empty log). Only durable events are ever
    // visible to readers, so this is also the read horizon.
    virtual seq_no last_seq() const = 0;

    // Blocks until last_seq() > `after`, the deadline passes, or the log closes.
    // Returns last_seq() at wake-up.
    virtual seq_no wait_for(seq_no after, std::chrono::steady_clock::time_point deadline) const = 0;

    // The hash-chain head after event `at` (the genesis value for seq 0). Snapshots record it so
    // that a snapshot is only ever loaded onto the history it was taken from.
    virtual result<digest> chain_head_at(seq_no at) const = 0;

    // Set once a write or fdatasync failed: from then on every append fails with errc::failed
    // until the log is reopened (recovery runs again). Readiness checks report it.
    virtual std::optional<error> write_failure() const = 0;

    // Stops accepting appends, completes what is queued, and makes it durable.
    virtual void close() = 0;

    // True when this process is the log's only writer (file_log), so a writer can decide a
    // command against its own state and know that nothing else was appended in between. False
    // when several processes append to one log (kafka_log): conflicts are then decided by
    // readers in log order, and a writer learns the outcome by reading its events back.
    virtual bool single_writer() const { return true; }
};

}  // namespace scimsync::eventlog
