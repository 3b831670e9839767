// log_append: durable append throughput of FileLog for 300-byte events.
//
//   log_append [--seconds 2] [--runs 3] [--dir PARENT]
//
// For each configuration it prints events/s and fdatasyncs/s (median of --runs runs):
//   threads  N appender threads, each doing a blocking append() of one event, then the next;
//   async    N appends outstanding at once, each completion submitting the next one (the way
//            the daemon's HTTP handlers use the log: no thread per request).
// Modes: batch (group commit, one fdatasync per batch, ack after it) and always (one
// fdatasync per append).

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "bench_util.hpp"
#include "scimsync/eventlog/file_log.hpp"

namespace el = scimsync::eventlog;
namespace sb = scimsync::bench;

namespace {

struct figures {
    double events_per_s = 0;
    double syncs_per_s = 0;
};

std::unique_ptr<el::file_log> open(const std::filesystem::path& dir, el::durability mode) {
    el::file_log_options o;
    o.dir = dir;
    o.mode = mode;
    auto l = el::file_log::open(o);
    if (!l) {
        std::fprintf(stderr, "open: %s\n", l.error().message.c_str());
        std::exit(1);
    }
    return std::move(*l);
}

figures run_threads(const std::filesystem::path& dir, el::durability mode, int appenders,
                    double seconds) {
    auto log = open(dir, mode);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done{0};
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < appenders; ++t) {
        pool.emplace_back([&, t] {
            std::uint64_t i = std::uint64_t(t) << 32;
            while (!stop.load(std::memory_order_relaxed)) {
                if (!log->append({sb::make_event(i++)})) std::exit(1);
                done.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    // The benchmark's own run time: this thread only decides when to stop.
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    const double elapsed = sb::seconds_since(t0);
    return {double(done.load()) / elapsed, double(log->sync_count()) / elapsed};
}

figures run_async(const std::filesystem::path& dir, el::durability mode, int outstanding,
                  double seconds) {
    auto log = open(dir, mode);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0;
    std::function<void(std::uint64_t)> submit = [&](std::uint64_t i) {
        log->async_append({sb::make_event(i)}, [&, i](el::result<el::append_result> r) {
            if (!r) std::exit(1);
            done.fetch_add(1, std::memory_order_relaxed);
            if (!stop.load(std::memory_order_relaxed)) {
                submit(i + 1);
            } else {
                std::lock_guard lk(mu);
                if (--in_flight == 0) cv.notify_all();
            }
        });
    };
    const auto t0 = std::chrono::steady_clock::now();
    in_flight = outstanding;
    for (int k = 0; k < outstanding; ++k) submit(std::uint64_t(k) << 32);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return in_flight == 0; });
    const double elapsed = sb::seconds_since(t0);
    return {double(done.load()) / elapsed, double(log->sync_count()) / elapsed};
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = std::stod(sb::arg(argc, argv, "--seconds", "2"));
    const int runs = std::stoi(sb::arg(argc, argv, "--runs", "3"));
    const std::string parent = sb::arg(argc, argv, "--dir", "");
    std::printf("log_append: 300-byte events, %.1f s per run, median of %d runs\n", seconds, runs);
    std::printf("%-8s %-7s %10s %14s %14s\n", "mode", "style", "appenders", "events/s",
                "fdatasyncs/s");
    struct config {
        el::durability mode;
        bool async;
        int n;
    };
    const config configs[] = {
        {el::durability::batch, false, 1},   {el::durability::batch, false, 16},
        {el::durability::batch, false, 64},  {el::durability::batch, true, 64},
        {el::durability::batch, true, 256},  {el::durability::always, false, 1},
        {el::durability::always, false, 16}, {el::durability::always, false, 64},
    };
    for (const auto& c : configs) {
        std::vector<double> ev, sy;
        for (int r = 0; r < runs; ++r) {
            sb::scratch_dir dir(parent);
            auto f = c.async ? run_async(dir.path(), c.mode, c.n, seconds)
                             : run_threads(dir.path(), c.mode, c.n, seconds);
            ev.push_back(f.events_per_s);
            sy.push_back(f.syncs_per_s);
        }
        std::printf("%-8s %-7s %10d %14.0f %14.0f\n", el::to_string(c.mode),
                    c.async ? "async" : "threads", c.n, sb::median(ev), sb::median(sy));
        std::fflush(stdout);
    }
}
