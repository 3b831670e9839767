#include "scimsync/eventlog/projector.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace scimsync::eventlog {

namespace {
// How long the follower waits on the log before re-checking stop(): bounds shutdown latency.
constexpr auto follow_poll = std::chrono::milliseconds(50);
}  // namespace

projector_runner::projector_runner(const log& l, projector& p, runner_options options)
    : log_(l), projector_(p), options_(std::move(options)) {}

projector_runner::~projector_runner() {
    stop();
}

result<void> projector_runner::load_snapshot() {
    if (!options_.snapshots || projector_.checkpoint().value != 0) return {};
    auto note = [&](const std::string& s) {
        if (options_.notice) options_.notice(s);
    };
    for (const auto& info : options_.snapshots->list(projector_.name())) {
        const std::string which =
            "snapshot " + info.file.filename().string() + " of " + projector_.name();
        if (info.schema_version != projector_.schema_version()) {
            note(which + " has schema version " + std::to_string(info.schema_version) +
                 ", this build uses " + std::to_string(projector_.schema_version()) + "; skipped");
            continue;
        }
        auto head = log_.chain_head_at(info.at);
        if (!head || *head != info.chain_head) {
            note(which + " does not match this log's history at seq " +
                 std::to_string(info.at.value) + "; skipped");
            continue;
        }
        auto body = options_.snapshots->read_body(info);
        if (!body) {
            note(which + ": " + body.error().message + "; skipped");
            continue;
        }
        std::lock_guard lk(mu_);
        if (auto r = projector_.restore(*body, info.at); !r) {
            note(which + " could not be restored: " + r.error().message + "; skipped");
            continue;
        }
        applied_ = projector_.checkpoint().value;
        note("loaded " + which + " at seq " + std::to_string(info.at.value));
        return {};
    }
    return {};
}

result<std::uint64_t> projector_runner::catch_up() {
    if (!reader_) {
        auto r = log_.read_from(projector_.checkpoint().next());
        if (!r) return std::unexpected(r.error());
        reader_ = std::move(*r);
    }
    std::uint64_t applied = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
        // Read a run of events first (I/O, no lock held), then apply it in one go: the
        // projector's lock is taken once per run, not once per event.
        std::size_t n = 0;
        while (n < max_run) {
            if (run_.size() == n) run_.emplace_back();
            auto got = reader_->next(run_[n]);
            if (!got) return std::unexpected(got.error());
            if (!*got) break;
            ++n;
        }
        if (n == 0) break;
        std::unique_lock lk(mu_);
        {
            projector_.begin_run();
            struct end_run_guard {
                projector& p;
                ~end_run_guard() { p.end_run(); }
            } guard{projector_};
            for (std::size_t i = 0; i < n; ++i) {
                event& e = run_[i];
                const seq_no expected = projector_.checkpoint().next();
                if (e.seq < expected) continue;  // already applied (e.g. from a snapshot)
                if (e.seq != expected)
                    return fail(errc::corrupt,
                                projector_.name() + " expected seq " +
                                    std::to_string(expected.value) + " but the log gave " +
                                    std::to_string(e.seq.value),
                                e.seq);
                if (options_.upcast) {
                    if (auto r = options_.upcast->upcast(e); !r) return std::unexpected(r.error());
                }
                if (auto r = projector_.apply(e); !r) return std::unexpected(r.error());
                applied_.store(e.seq.value);
                ++applied;
                if (following_) ++since_snapshot_;
                if (!following_ && options_.on_progress && (applied & 0xffff) == 0)
                    options_.on_progress(e.seq);
            }
        }
        // Snapshots come between runs, outside the projector's run: a forked child must not
        // inherit a lock the run holds. While catching up at start-up they wait for the end
        // (run_once): one every N events of a long replay would re-serialise a growing state
        // again and again.
        if (following_ && options_.snapshots && snapshot_due(since_snapshot_)) {
            if (options_.snapshot_in_background) {
                // While the previous child still writes, keep counting: the next run retries.
                auto started = start_background_snapshot_locked();
                if (!started) {
                    since_snapshot_ = 0;
                    if (options_.notice)
                        options_.notice("snapshot of " + projector_.name() +
                                        " failed: " + started.error().message);
                }
            } else if (auto r = take_snapshot_locked(); !r && options_.notice) {
                options_.notice("snapshot of " + projector_.name() +
                                " failed: " + r.error().message);
            }
        }
        lk.unlock();
        applied_cv_.notify_all();
        // After each run, not at the end of the pass: under steady load a pass goes on as
        // long as events keep coming, and the writers waiting on this run need not wait too.
        if (options_.on_applied) options_.on_applied(seq_no{applied_.load()});
    }
    {
        std::lock_guard lk(mu_);
        reap_background_snapshot(false);
    }
    return applied;
}

bool projector_runner::snapshot_due(std::uint64_t events) const {
    if (events < options_.snapshot_every_events) return false;
    const double growth = std::max(options_.snapshot_growth, 0.0);
    return static_cast<double>(events) >= growth * static_cast<double>(projector_.state_size());
}

result<void> projector_runner::take_snapshot_locked() {
    since_snapshot_ = 0;
    if (!options_.snapshots) return {};
    const seq_no at = projector_.checkpoint();
    if (at.value == 0) return {};
    // Nothing applied since the newest snapshot (e.g. a clean stop right after start-up).
    if (auto existing = options_.snapshots->list(projector_.name());
        !existing.empty() && existing.front().at == at)
        return {};
    auto head = log_.chain_head_at(at);
    if (!head) return std::unexpected(head.error());
    auto w = options_.snapshots->write(projector_, at, *head, system_utc_now());
    if (!w) return std::unexpected(w.error());
    return {};
}

result<bool> projector_runner::start_background_snapshot_locked() {
    if (child_pid_ != 0) {
        reap_background_snapshot(false);
        if (child_pid_ != 0) return false;
    }
    if (std::chrono::steady_clock::now() < next_background_) return false;
    since_snapshot_ = 0;
    const seq_no at = projector_.checkpoint();
    if (at.value == 0) return false;
    // The chain head is read here: the log's locks may be held by other threads at the fork.
    auto head = log_.chain_head_at(at);
    if (!head) return std::unexpected(head.error());
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0)
        return fail(errc::io_error, std::string("cannot create a pipe: ") + std::strerror(errno));
    const auto before_fork = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::close(report[0]);
        ::close(report[1]);
        return fail(errc::io_error,
                    std::string("cannot fork the snapshot writer: ") + std::strerror(err));
    }
    if (pid == 0) {
        // The child: a copy-on-write image of the state at `at`, and this thread alone. It
        // closes what it inherited (listening sockets, the data directory's lock) so that a
        // daemon restarted while it still writes can bind and lock again.
        ::close(report[0]);
        if (report[1] > 3) ::close_range(3, unsigned(report[1]) - 1, 0);
        ::close_range(unsigned(report[1]) + 1, ~0U, 0);
        // The child keeps the daemon's priority. Every page the daemon writes while the child
        // lives is copied on first write, so a longer life costs the daemon more than the
        // cores the child takes: at a million users under PATCH load, a child at nice 10 took
        // 21-24 s and the daemon 81-91 us of CPU per request; at nice 0, 15-16 s and 76 us,
        // with more requests served and a lower p99 (bench/README.md). How often a child
        // may run is bounded by snapshot_cpu_share.
        std::string why;
        try {
            auto w = options_.snapshots->write(projector_, at, *head, system_utc_now());
            if (!w) why = w.error().message;
        } catch (const std::exception& ex) {
            why = ex.what();
        }
        for (std::size_t off = 0; off < why.size();) {
            const ssize_t n = ::write(report[1], why.data() + off, why.size() - off);
            if (n <= 0) break;
            off += std::size_t(n);
        }
        ::_exit(why.empty() ? 0 : 1);
    }
    ::close(report[1]);
    child_pid_ = pid;
    child_report_ = report[0];
    child_at_ = at;
    child_started_ = std::chrono::steady_clock::now();
    child_fork_ = child_started_ - before_fork;
    return true;
}

void projector_runner::reap_background_snapshot(bool block) {
    if (child_pid_ == 0) return;
    int status = 0;
    pid_t got;
    do {
        got = ::waitpid(child_pid_, &status, block ? 0 : WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return;  // still writing
    std::string why;
    char buf[512];
    for (;;) {
        const ssize_t n = ::read(child_report_, buf, sizeof buf);
        if (n > 0) {
            why.append(buf, std::size_t(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    ::close(child_report_);
    child_report_ = -1;
    child_pid_ = 0;
    if (got < 0)
        why = std::string("cannot collect the snapshot writer: ") + std::strerror(errno);
    else if (why.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        why = WIFSIGNALED(status)
                  ? "the snapshot writer was killed by signal " + std::to_string(WTERMSIG(status))
                  : "the snapshot writer failed";
    background_done_.fetch_add(1);
    {
        const auto now = std::chrono::steady_clock::now();
        const double share = std::clamp(options_.snapshot_cpu_share, 0.01, 1.0);
        next_background_ =
            now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      (now - child_started_) * (1.0 / share - 1.0));
    }
    if (!options_.notice) return;
    if (!why.empty()) {
        options_.notice("snapshot of " + projector_.name() + " failed: " + why);
        return;
    }
    using ms = std::chrono::duration<double, std::milli>;
    char took[96];
    std::snprintf(took, sizeof took, " in %.1f s in the background (the fork took %.1f ms)",
                  ms(std::chrono::steady_clock::now() - child_started_).count() / 1000,
                  ms(child_fork_).count());
    options_.notice("snapshot of " + projector_.name() + " at seq " +
                    std::to_string(child_at_.value) + " written" + took);
}

std::uint64_t projector_runner::background_snapshots_done() const {
    return background_done_.load();
}

result<void> projector_runner::snapshot_now() {
    std::lock_guard lk(mu_);
    reap_background_snapshot(true);
    return take_snapshot_locked();
}

result<void> projector_runner::run_once() {
    if (auto r = load_snapshot(); !r) return r;
    auto n = catch_up();
    if (!n) {
        std::lock_guard lk(mu_);
        failure_ = n.error();
        applied_cv_.notify_all();
        return std::unexpected(n.error());
    }
    // The replayed tail counts towards the next snapshot, so that the events a later start-up
    // replays stay within the rule. A long replay is worth keeping: the next start-up begins
    // here.
    since_snapshot_ = *n;
    if (options_.snapshots && snapshot_due(*n)) {
        std::lock_guard lk(mu_);
        result<void> r;
        if (options_.snapshot_in_background) {
            if (auto started = start_background_snapshot_locked(); !started)
                r = std::unexpected(started.error());
        } else {
            r = take_snapshot_locked();
        }
        if (!r && options_.notice)
            options_.notice("snapshot of " + projector_.name() + " failed: " + r.error().message);
    }
    return {};
}

result<void> projector_runner::start() {
    if (auto r = run_once(); !r) return r;
    following_ = true;
    thread_ = std::thread([this] { follow(); });
    return {};
}

void projector_runner::follow() {
    while (!stop_.load()) {
        log_.wait_for(seq_no{applied_.load()}, std::chrono::steady_clock::now() + follow_poll);
        auto n = catch_up();
        if (!n) {
            std::lock_guard lk(mu_);
            failure_ = n.error();
            if (options_.notice)
                options_.notice(projector_.name() + " stopped: " + n.error().message);
            applied_cv_.notify_all();
            return;
        }
    }
}

void projector_runner::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lk(mu_);
    reap_background_snapshot(true);
}

bool projector_runner::wait_until(seq_no seq,
                                  std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lk(mu_);
    return applied_cv_.wait_until(lk, deadline, [&] {
        return applied_.load() >= seq.value || failure_.has_value();
    }) && applied_.load() >= seq.value;
}

seq_no projector_runner::applied() const {
    return seq_no{applied_.load()};
}

std::optional<error> projector_runner::failure() const {
    std::lock_guard lk(mu_);
    return failure_;
}

}  // namespace scimsync::eventlog
