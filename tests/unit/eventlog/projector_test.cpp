#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "format.hpp"
#include "log_fixture.hpp"
#include "scimsync/eventlog/projector.hpp"
#include "sha256.hpp"

namespace el = scimsync::eventlog;
namespace fs = std::filesystem;
using namespace scimsync::testing;

namespace {

// Counts events per stream and remembers every seq it saw (to prove exactly-once).
class counting_projector final : public el::projector {
public:
    std::string name() const override { return "counter"; }
    std::uint32_t schema_version() const override { return schema; }
    el::seq_no checkpoint() const override { return at; }
    el::result<void> apply(const el::event& e) override {
        ++per_stream[e.stream];
        seen.push_back(e.seq.value);
        at = e.seq;
        return {};
    }
    std::optional<std::string> snapshot() const override {
        std::ostringstream out;
        for (const auto& [k, v] : per_stream) out << k << ' ' << v << '\n';
        return out.str();
    }
    el::result<void> restore(std::string_view body, el::seq_no seq) override {
        per_stream.clear();
        std::istringstream in{std::string(body)};
        std::string k;
        std::uint64_t v = 0;
        while (in >> k >> v) per_stream[k] = v;
        at = seq;
        restored_from = seq;
        return {};
    }

    std::uint64_t state_size() const override { return size; }

    std::uint32_t schema = 1;
    std::uint64_t size = 0;  // what state_size() reports
    el::seq_no at;
    std::map<std::string, std::uint64_t> per_stream;
    std::vector<std::uint64_t> seen;
    el::seq_no restored_from;
};

// A counter whose snapshot() first reads one byte from the FIFO `gate`: in a background
// snapshot that runs in the forked writer, so the test decides when the writer may finish.
class gated_projector final : public el::projector {
public:
    std::string name() const override { return inner.name(); }
    std::uint32_t schema_version() const override { return inner.schema_version(); }
    el::seq_no checkpoint() const override { return inner.checkpoint(); }
    el::result<void> apply(const el::event& e) override { return inner.apply(e); }
    std::optional<std::string> snapshot() const override {
        const int fd = ::open(gate.c_str(), O_RDONLY);
        char c = 0;
        const bool opened = fd >= 0 && ::read(fd, &c, 1) == 1;
        if (fd >= 0) ::close(fd);
        if (!opened) return std::nullopt;
        return inner.snapshot();
    }

    counting_projector inner;
    fs::path gate;
};

// Collects notices from the runner's thread.
struct notice_log {
    std::mutex mu;
    std::vector<std::string> lines;
    std::function<void(const std::string&)> sink() {
        return [this](const std::string& s) {
            std::lock_guard lk(mu);
            lines.push_back(s);
        };
    }
    std::vector<std::string> all() {
        std::lock_guard lk(mu);
        return lines;
    }
};

const auto soon = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(10); };

// A log in `dir` of `events` sample events, `opt` keeping snapshots beside it, and one snapshot
// of a counter taken after them all; its body goes to `body` when asked for.
std::unique_ptr<el::file_log> log_with_one_snapshot(const temp_dir& dir, el::runner_options& opt,
                                                    std::size_t events,
                                                    std::string* body = nullptr) {
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, events)).has_value());
    opt.snapshots.emplace(dir.path() / "snapshots");
    counting_projector p;
    el::projector_runner r(*log, p, opt);
    REQUIRE(r.run_once().has_value());
    REQUIRE(r.snapshot_now().has_value());
    if (body != nullptr) *body = *p.snapshot();
    return log;
}

}  // namespace

TEST_CASE("a projector gets every event after its checkpoint exactly once, in order",
          "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, 40)).has_value());
    counting_projector p;
    el::projector_runner runner(*log, p, {});
    REQUIRE(runner.start().has_value());
    REQUIRE(runner.applied().value == 40);
    for (std::uint64_t i = 41; i <= 100; i += 5)
        REQUIRE(log->append(sample_batch(i, 5)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{100}, soon()));
    runner.stop();
    REQUIRE(p.seen.size() == 100);
    for (std::size_t i = 0; i < p.seen.size(); ++i) REQUIRE(p.seen[i] == i + 1);
}

TEST_CASE("start-up from a snapshot plus the tail equals a full replay", "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, 500)).has_value());
    el::runner_options with_snapshots;
    with_snapshots.snapshots.emplace(dir.path() / "snapshots");
    with_snapshots.snapshot_every_events = 120;
    {
        counting_projector p;
        el::projector_runner runner(*log, p, with_snapshots);
        REQUIRE(runner.run_once().has_value());
    }
    REQUIRE(log->append(sample_batch(501, 30)).has_value());
    counting_projector from_snapshot;
    el::projector_runner r1(*log, from_snapshot, with_snapshots);
    REQUIRE(r1.run_once().has_value());
    REQUIRE(from_snapshot.restored_from.value == 500);  // the replay of 500 ended with one
    REQUIRE(from_snapshot.seen.size() == 30);           // only the tail was replayed
    counting_projector full;
    el::projector_runner r2(*log, full, {});
    REQUIRE(r2.run_once().has_value());
    REQUIRE(full.per_stream == from_snapshot.per_stream);
    REQUIRE(full.at == from_snapshot.at);
}

TEST_CASE("snapshots wait for a number of events in proportion to the state's size",
          "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, 30)).has_value());
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "snapshots");
    opt.snapshot_every_events = 5;
    opt.snapshot_growth = 0.5;

    // A start-up replay of 30 events: not enough for a state of 100 entries (50 needed) ...
    {
        counting_projector p;
        p.size = 100;
        el::projector_runner r(*log, p, opt);
        REQUIRE(r.run_once().has_value());
        REQUIRE(opt.snapshots->list("counter").empty());
    }
    // ... enough for a state of 40 (20 needed).
    {
        counting_projector p;
        p.size = 40;
        el::projector_runner r(*log, p, opt);
        REQUIRE(r.run_once().has_value());
        const auto kept = opt.snapshots->list("counter");
        REQUIRE(kept.size() == 1);
        REQUIRE(kept.front().at.value == 30);
    }

    // While following: 49 events after start are not enough for 100 entries; the 50th is.
    counting_projector p;
    p.size = 100;
    el::projector_runner runner(*log, p, opt);
    REQUIRE(runner.start().has_value());
    REQUIRE(log->append(sample_batch(31, 49)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{79}, soon()));
    REQUIRE(opt.snapshots->list("counter").size() == 1);
    REQUIRE(log->append(sample_batch(80, 1)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{80}, soon()));
    runner.stop();
    const auto kept = opt.snapshots->list("counter");
    REQUIRE(kept.size() == 2);
    REQUIRE(kept.front().at.value == 80);

    // A start-up that replays a tail too short for a snapshot counts it towards the next one:
    // 20 replayed + 30 followed make the 50.
    REQUIRE(log->append(sample_batch(81, 20)).has_value());
    counting_projector again;
    again.size = 100;
    el::projector_runner restarted(*log, again, opt);
    REQUIRE(restarted.start().has_value());
    REQUIRE(opt.snapshots->list("counter").front().at.value == 80);
    REQUIRE(log->append(sample_batch(101, 30)).has_value());
    REQUIRE(restarted.wait_until(el::seq_no{130}, soon()));
    restarted.stop();
    REQUIRE(opt.snapshots->list("counter").front().at.value == 130);
}

TEST_CASE("only the newest three snapshots are kept", "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "snapshots");
    for (std::uint64_t i = 1; i <= 50; i += 10) {
        REQUIRE(log->append(sample_batch(i, 10)).has_value());
        counting_projector p;
        el::projector_runner r(*log, p, {});
        REQUIRE(r.run_once().has_value());
        el::projector_runner writer(*log, p, opt);
        REQUIRE(writer.snapshot_now().has_value());
    }
    auto kept = opt.snapshots->list("counter");
    REQUIRE(kept.size() == 3);
    REQUIRE(kept.front().at.value == 50);
    REQUIRE(kept.back().at.value == 30);
}

TEST_CASE("a snapshot from a different history is not loaded", "[eventlog][projector]") {
    temp_dir dir;
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "snapshots");
    {
        auto other = open_log(log_options(dir.path() / "other"));
        REQUIRE(other->append(sample_batch(1, 10)).has_value());
        counting_projector p;
        el::projector_runner r(*other, p, opt);
        REQUIRE(r.run_once().has_value());
        REQUIRE(r.snapshot_now().has_value());
    }
    auto log = open_log(log_options(dir.path() / "log"));  // new genesis: another history
    REQUIRE(log->append(sample_batch(1, 10)).has_value());
    std::vector<std::string> notices;
    opt.notice = [&](const std::string& s) { notices.push_back(s); };
    counting_projector p;
    el::projector_runner r(*log, p, opt);
    REQUIRE(r.run_once().has_value());
    REQUIRE(p.restored_from.value == 0);
    REQUIRE(p.seen.size() == 10);
    REQUIRE_FALSE(notices.empty());
    REQUIRE_THAT(notices[0], Catch::Contains("does not match this log's history"));
}

TEST_CASE("a snapshot of another schema version or with a damaged body is skipped",
          "[eventlog][projector]") {
    temp_dir dir;
    el::runner_options opt;
    auto log = log_with_one_snapshot(dir, opt, 20);
    SECTION("schema version bumped") {
        counting_projector p;
        p.schema = 2;
        el::projector_runner r(*log, p, opt);
        REQUIRE(r.run_once().has_value());
        REQUIRE(p.restored_from.value == 0);
        REQUIRE(p.seen.size() == 20);
    }
    SECTION("body damaged") {
        const auto file = opt.snapshots->list("counter").front().file;
        flip_byte(file, fs::file_size(file) - 41);  // the body's last byte
        counting_projector p;
        el::projector_runner r(*log, p, opt);
        REQUIRE(r.run_once().has_value());
        REQUIRE(p.restored_from.value == 0);
        REQUIRE(p.seen.size() == 20);
    }
}

TEST_CASE(
    "a snapshot is written with its length after the body, and one with the length first is "
    "still loaded",
    "[eventlog][projector]") {
    temp_dir dir;
    el::runner_options opt;
    std::string body;
    auto log = log_with_one_snapshot(dir, opt, 20, &body);
    const auto file = opt.snapshots->list("counter").front().file;
    std::string bytes;
    {
        std::ifstream in(file, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    // Format 2: header (66 bytes and the name) | body | u64 length | SHA-256.
    const std::size_t head = 66 + std::string("counter").size();
    REQUIRE(scimsync::eventlog::format::get_u32(bytes.data() + 8) == 2);
    REQUIRE(bytes.size() == head + body.size() + 8 + 32);
    REQUIRE(bytes.substr(head, body.size()) == body);
    REQUIRE(scimsync::eventlog::format::get_u64(bytes.data() + head + body.size()) == body.size());

    // The same snapshot in format 1: header | u64 length | body | SHA-256.
    std::string old = bytes.substr(0, head);
    scimsync::eventlog::format::put_u32(old.data() + 8, 1);
    char len[8];
    scimsync::eventlog::format::put_u64(len, body.size());
    old.append(len, 8);
    old += body;
    const el::digest sum = scimsync::eventlog::sha256::of(old);
    old.append(reinterpret_cast<const char*>(sum.data()), sum.size());
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << old;
    }
    counting_projector p;
    el::projector_runner r(*log, p, opt);
    REQUIRE(r.run_once().has_value());
    REQUIRE(p.restored_from.value == 20);
    REQUIRE(p.seen.empty());
    REQUIRE(*p.snapshot() == body);
}

TEST_CASE("events are applied in runs that the projector brackets, closed even when an apply fails",
          "[eventlog][projector]") {
    // Records where each apply fell: inside a run or not, and how long each run was.
    struct bracketed final : el::projector {
        std::string name() const override { return "bracketed"; }
        std::uint32_t schema_version() const override { return 1; }
        el::seq_no checkpoint() const override { return at; }
        void begin_run() override {
            if (open) ++nested;
            open = true;
            runs.push_back(0);
        }
        void end_run() override {
            if (!open) ++unmatched_ends;
            open = false;
        }
        el::result<void> apply(const el::event& e) override {
            if (!open) ++outside;
            if (e.seq.value == fail_at)
                return el::fail(el::errc::corrupt, "refused for the test", e.seq);
            ++runs.back();
            at = e.seq;
            return {};
        }
        el::seq_no at;
        std::uint64_t fail_at = 0;
        bool open = false;
        int nested = 0, unmatched_ends = 0, outside = 0;
        std::vector<std::size_t> runs;
    };
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    const std::size_t total = 3 * el::projector_runner::max_run + 7;
    REQUIRE(log->append(sample_batch(1, total)).has_value());
    SECTION("a long catch-up is cut into runs of at most max_run") {
        bracketed p;
        el::projector_runner r(*log, p, {});
        REQUIRE(r.run_once().has_value());
        REQUIRE(p.at.value == total);
        REQUIRE(p.runs == std::vector<std::size_t>{el::projector_runner::max_run,
                                                   el::projector_runner::max_run,
                                                   el::projector_runner::max_run, 7});
        REQUIRE(p.outside == 0);
        REQUIRE(p.nested == 0);
        REQUIRE_FALSE(p.open);
    }
    SECTION("a failing apply ends its run and stops the runner there") {
        bracketed p;
        p.fail_at = el::projector_runner::max_run + 3;
        el::projector_runner r(*log, p, {});
        REQUIRE_FALSE(r.run_once().has_value());
        REQUIRE(p.at.value == el::projector_runner::max_run + 2);
        REQUIRE_FALSE(p.open);
        REQUIRE(p.unmatched_ends == 0);
        REQUIRE(p.outside == 0);
    }
}

TEST_CASE("an upcaster error stops the projector instead of skipping the event",
          "[eventlog][projector]") {
    struct refuse_all final : el::upcaster {
        el::result<void> upcast(el::event& e) const override {
            return el::fail(el::errc::unknown_event, "unknown event type " + e.type, e.seq);
        }
    } refuse;
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, 3)).has_value());
    counting_projector p;
    el::runner_options opt;
    opt.upcast = &refuse;
    el::projector_runner r(*log, p, opt);
    auto res = r.run_once();
    REQUIRE_FALSE(res.has_value());
    REQUIRE(res.error().code == el::errc::unknown_event);
    REQUIRE(p.seen.empty());
    REQUIRE(r.failure().has_value());
    REQUIRE_FALSE(r.wait_until(el::seq_no{1}, soon()));
}

TEST_CASE("a background snapshot is written by a child while the runner keeps applying events",
          "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    REQUIRE(log->append(sample_batch(1, 10)).has_value());
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "snapshots");
    opt.snapshot_every_events = 20;
    opt.snapshot_in_background = true;
    notice_log notices;
    opt.notice = notices.sink();
    gated_projector p;
    p.gate = dir.path() / "gate";
    REQUIRE(::mkfifo(p.gate.c_str(), 0600) == 0);
    el::projector_runner runner(*log, p, opt);
    REQUIRE(runner.start().has_value());
    // The 20th event after start-up (seq 30) forks the writer, which then waits on the gate.
    REQUIRE(log->append(sample_batch(11, 20)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{30}, soon()));
    // Had the runner serialised in place it would be stuck in snapshot() now.
    REQUIRE(log->append(sample_batch(31, 30)).has_value());
    const bool went_on = runner.wait_until(el::seq_no{60}, soon());
    {
        std::ofstream release(p.gate);  // before any failure, so stop() cannot hang
        release << 'x';
    }
    REQUIRE(went_on);
    runner.stop();  // waits for the writer
    REQUIRE(runner.background_snapshots_done() == 1);
    const auto seen = notices.all();
    REQUIRE(seen.size() == 1);
    REQUIRE_THAT(seen[0], Catch::StartsWith("snapshot of counter at seq 30 written in "));
    const auto kept = opt.snapshots->list("counter");
    REQUIRE(kept.size() == 1);
    REQUIRE(kept.front().at.value == 30);
    REQUIRE(p.inner.seen.size() == 60);

    // The snapshot holds the state as of seq 30, not what the parent applied meanwhile:
    // snapshot plus tail equals a full replay.
    el::runner_options load;
    load.snapshots = opt.snapshots;
    counting_projector from_snapshot;
    el::projector_runner r1(*log, from_snapshot, load);
    REQUIRE(r1.run_once().has_value());
    REQUIRE(from_snapshot.restored_from.value == 30);
    REQUIRE(from_snapshot.seen.size() == 30);
    REQUIRE(from_snapshot.per_stream == p.inner.per_stream);
}

TEST_CASE(
    "after a background snapshot the next one waits so that snapshots stay within their share of a "
    "core",
    "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "snapshots");
    opt.snapshot_every_events = 5;
    opt.snapshot_in_background = true;
    opt.snapshot_cpu_share = 0.001;  // a child that took d holds the next back for 999 d
    gated_projector p;
    p.gate = dir.path() / "gate";
    REQUIRE(::mkfifo(p.gate.c_str(), 0600) == 0);
    el::projector_runner runner(*log, p, opt);
    REQUIRE(runner.start().has_value());
    REQUIRE(log->append(sample_batch(1, 5)).has_value());  // the 5th event forks the writer
    REQUIRE(runner.wait_until(el::seq_no{5}, soon()));
    // The child waits on the gate; while it does, some wall time passes by construction:
    // releasing it only after more events were applied makes d at least that long.
    REQUIRE(log->append(sample_batch(6, 5)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{10}, soon()));
    {
        std::ofstream release(p.gate);
        release << 'x';
    }
    fs::remove(p.gate);  // a later child would not wait: snapshot() gives nullopt at once
    // The runner collects the child when an event arrives after it exited.
    std::uint64_t next = 11;
    const auto deadline = soon();
    while (runner.background_snapshots_done() == 0 && std::chrono::steady_clock::now() < deadline) {
        REQUIRE(log->append(sample_batch(next, 1)).has_value());
        REQUIRE(runner.wait_until(el::seq_no{next}, soon()));
        ++next;
    }
    REQUIRE(runner.background_snapshots_done() == 1);
    // Far more than snapshot_every_events later, still no second snapshot.
    REQUIRE(log->append(sample_batch(next, 30)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{next + 29}, soon()));
    runner.stop();  // would wait for, and count, a second child
    REQUIRE(runner.background_snapshots_done() == 1);
}

TEST_CASE("a background snapshot that cannot be written is reported and the runner goes on",
          "[eventlog][projector]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path() / "log"));
    {
        std::ofstream blocker(dir.path() / "not-a-directory");
        blocker << "x";
    }
    el::runner_options opt;
    opt.snapshots.emplace(dir.path() / "not-a-directory");
    opt.snapshot_every_events = 5;
    opt.snapshot_in_background = true;
    notice_log notices;
    opt.notice = notices.sink();
    counting_projector p;
    el::projector_runner runner(*log, p, opt);
    REQUIRE(runner.start().has_value());
    REQUIRE(log->append(sample_batch(1, 5)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{5}, soon()));
    REQUIRE(log->append(sample_batch(6, 5)).has_value());
    REQUIRE(runner.wait_until(el::seq_no{10}, soon()));
    runner.stop();
    REQUIRE_FALSE(runner.failure().has_value());
    REQUIRE(runner.background_snapshots_done() >= 1);
    const auto seen = notices.all();
    REQUIRE_FALSE(seen.empty());
    REQUIRE_THAT(seen.front(), Catch::Contains("snapshot of counter failed: cannot create"));
}
