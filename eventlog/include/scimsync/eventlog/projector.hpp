#pragma once
// Projectors fold the log into state (views, the LDAP mirror, policy timers). The runner
// feeds each projector every event after its checkpoint, in order, exactly once per run, and
// takes snapshots so that start-up is "newest valid snapshot + tail", not a full replay.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scimsync/eventlog/log.hpp"

namespace scimsync::eventlog {

class projector {
public:
    virtual ~projector() = default;
    // Stable name; also the snapshot directory name.
    virtual std::string name() const = 0;
    // Bumped whenever the state's meaning or serialisation changes: older snapshots are ignored.
    virtual std::uint32_t schema_version() const = 0;
    // The last sequence number whose effects are in the state (0 for none).
    virtual seq_no checkpoint() const = 0;
    // Applies one event; called in seq order with seq == checkpoint()+1 and must advance the
    // checkpoint to e.seq. An error stops the runner (fail closed: no event is skipped).
    virtual result<void> apply(const event& e) = 0;
    // Bracket a run of apply() calls the runner makes back to back: what the log had ready,
    // at most projector_runner::max_run events, already read. A projector that readers share
    // may take its lock once per run here instead of once per event: the runner makes every
    // apply() inside such a bracket. end_run() follows every begin_run(), also when an apply
    // fails; no snapshot is taken between them.
    virtual void begin_run() {}
    virtual void end_run() {}
    // Roughly how many entries the state holds (a directory: users, groups and memberships).
    // Sets how far apart periodic snapshots are (runner_options::snapshot_growth); 0 leaves
    // only snapshot_every_events. Called on the runner's thread, between runs.
    virtual std::uint64_t state_size() const { return 0; }
    // Serialises the state as of checkpoint(). Projectors without snapshots return nullopt.
    virtual std::optional<std::string> snapshot() const { return std::nullopt; }
    // Serialises the state as of checkpoint() through `out`, piece by piece, in order; false
    // for a projector without snapshots. The snapshot store hashes and writes each piece as
    // it comes, so a large state never exists twice in memory as one string. The default
    // hands over snapshot() whole; a projector with a large state writes pieces instead.
    virtual bool write_snapshot(const std::function<void(std::string_view)>& out) const {
        auto body = snapshot();
        if (!body) return false;
        out(*body);
        return true;
    }
    // Replaces the state with a snapshot body taken at `at`.
    virtual result<void> restore(std::string_view body, seq_no at) {
        (void)body;
        (void)at;
        return fail(errc::invalid_argument, name() + " does not take snapshots");
    }
};

// Maps events of old schema versions to the current one before a projector sees them.
// Unknown types and future versions are errors (fail closed), never skipped.
class upcaster {
public:
    virtual ~upcaster() = default;
    virtual result<void> upcast(event& e) const = 0;
};

struct snapshot_info {
    std::string projector;
    std::uint32_t schema_version = 0;
    seq_no at;
    digest chain_head{};
    utc_time created{};
    std::filesystem::path file;
};

// Snapshot files: <dir>/<projector>/<seq:020>.snap, written to a temp file, fsynced, renamed,
// directory fsynced. The header carries the chain head at `at` and the SHA-256 of the body.
class snapshot_store {
public:
    explicit snapshot_store(std::filesystem::path dir, std::size_t keep = 3);
    // Writes p's snapshot (projector::write_snapshot) as of `at`; nullopt when p takes none.
    result<std::optional<snapshot_info>> write(const projector& p, seq_no at,
                                               const digest& chain_head, utc_time now) const;
    // Newest first; unreadable or damaged files are skipped (and reported through `notice`).
    std::vector<snapshot_info> list(const std::string& projector) const;
    result<std::string> read_body(const snapshot_info& info) const;

private:
    std::filesystem::path dir_;
    std::size_t keep_;
};

struct runner_options {
    std::optional<snapshot_store> snapshots;  // none: always replay from the start
    // While following the log, take a snapshot after at least this many applied events; a
    // start-up replay of at least this many ends with one. Both also wait for snapshot_growth.
    std::uint64_t snapshot_every_events = 50'000;
    // A snapshot also waits until the events since the last one reach this share of the
    // projector's state_size(). Writing a snapshot takes time in proportion to the state (a
    // million users: 5-15 s of a core, half a gigabyte written, and a copy-on-write fault for
    // every page the daemon changes meanwhile), so the interval grows with the state and the
    // cost per event stays flat; a start-up then loads the snapshot and replays at most this
    // share of the state again. 1.0: a snapshot once as many events arrived as the state has
    // entries (Redis rewrites its append-only file on the same rule by default).
    double snapshot_growth = 1.0;
    // On: snapshots (periodic, and the one ending a long start-up replay) are written by a
    // forked child from its copy-on-write image of the state, so the runner keeps applying
    // events; the pause is the fork itself, milliseconds even at a million users. Off: the
    // runner serialises and writes in place. snapshot_now() always writes in place. With it
    // on, the projector's snapshot() and write_snapshot() must only read its own state: the
    // child has no other threads, so it must not wait for a lock another thread may have
    // held at the fork.
    bool snapshot_in_background = false;
    // Background snapshots busy at most about this share of one core over time: after a
    // child that took d, the next one starts no sooner than d * (1 / share - 1) after it
    // ended. Writing a million users' snapshot takes a few seconds of a core (2.6 s alone,
    // 4-5 s next to a loaded daemon, bench/README.md); during a bulk import at thousands of
    // writes per second, "every N events" alone would keep a child writing much of the time
    // on a two-core machine. Start-up replays longer only by what arrived meanwhile.
    double snapshot_cpu_share = 0.1;
    const upcaster* upcast = nullptr;
    std::function<void(const std::string&)> notice;
    // Called on the runner's thread after it applied events up to and including the given seq
    // (once per run of events, see projector::begin_run). Must not block: post elsewhere.
    std::function<void(seq_no)> on_applied;
    // During start()'s catch-up only: every 65,536 events applied, with the seq reached (for
    // progress reports while a long log is replayed). On the calling thread.
    std::function<void(seq_no)> on_progress;
};

// Drives one projector from the log on its own thread. Thread-safety: start/stop/wait_until
// may be called from any thread; the projector itself is only touched by the runner thread,
// except before start() and after stop().
class projector_runner {
public:
    // The most events applied in one run (see projector::begin_run): bounds how long a run
    // keeps a projector's readers out (a few hundred microseconds for the directory).
    static constexpr std::size_t max_run = 64;

    projector_runner(const log& l, projector& p, runner_options options);
    ~projector_runner();

    // Loads the newest snapshot that matches this log's history and schema, then catches up
    // with the log synchronously (so the state is current when this returns), then follows
    // the log on a background thread.
    result<void> start();
    // Catches up synchronously on the calling thread and returns; no background thread.
    // For tools and tests that want a one-shot replay.
    result<void> run_once();
    void stop();

    // Blocks until the projector has applied `seq` or the deadline passes; false on timeout
    // or if the runner failed. Used for read-your-writes after an append.
    bool wait_until(seq_no seq, std::chrono::steady_clock::time_point deadline) const;
    seq_no applied() const;
    // The error that stopped the runner, if any.
    std::optional<error> failure() const;
    // Writes a snapshot now (e.g. at clean shutdown), from the runner's consistent state;
    // first waits for a background snapshot still being written.
    result<void> snapshot_now();
    // Background snapshots finished (written or failed) since start; for tests and status.
    std::uint64_t background_snapshots_done() const;

private:
    result<void> load_snapshot();
    // Whether `events` applied since the last snapshot make the next one due.
    bool snapshot_due(std::uint64_t events) const;
    result<std::uint64_t> catch_up();
    result<void> take_snapshot_locked();
    // Forks the child that writes the snapshot; false when none was started (one still runs).
    result<bool> start_background_snapshot_locked();
    // Collects a finished child (block: wait for it); reports its error through `notice`.
    void reap_background_snapshot(bool block);
    void follow();

    const log& log_;
    projector& projector_;
    runner_options options_;
    std::unique_ptr<reader> reader_;  // kept across catch-ups: the follower resumes it
    std::vector<event> run_;          // the run being applied; storage reused (runner thread)
    std::uint64_t since_snapshot_ = 0;
    bool following_ = false;  // set by start(): periodic snapshots only when live
    mutable std::mutex mu_;   // guards projector_ state against snapshot_now()
    mutable std::condition_variable applied_cv_;
    std::atomic<std::uint64_t> applied_{0};
    std::optional<error> failure_;
    std::atomic<bool> stop_{false};
    int child_pid_ = 0;      // the background snapshot's writer, 0 for none (runner thread)
    int child_report_ = -1;  // read end of the pipe its error message comes through
    seq_no child_at_;
    std::chrono::steady_clock::time_point child_started_;
    std::chrono::steady_clock::duration child_fork_{};
    std::chrono::steady_clock::time_point next_background_{};  // snapshot_cpu_share's gate
    std::atomic<std::uint64_t> background_done_{0};
    std::thread thread_;
};

}  // namespace scimsync::eventlog
