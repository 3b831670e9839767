// Appends forever from several threads and prints "SEQ ID" on stdout for every event once its
// append is acknowledged. The parent kills it with SIGKILL; every line it read must survive.
// Usage: crash_appender DIR THREADS ROUND

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scimsync/eventlog/file_log.hpp"

namespace el = scimsync::eventlog;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: crash_appender DIR THREADS ROUND\n");
        return 2;
    }
    el::file_log_options opt;
    opt.dir = argv[1];
    opt.mode = el::durability::batch;
    opt.segment_bytes = 64 * 1024;  // small segments so kills also land around rotations
    auto log = el::file_log::open(opt);
    if (!log) {
        std::fprintf(stderr, "open failed: %s\n", log.error().message.c_str());
        return 1;
    }
    const int threads = std::atoi(argv[2]);
    const std::string round = argv[3];
    std::mutex out_mu;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (std::uint64_t i = 0;; ++i) {
                const std::size_t n = 1 + i % 3;
                std::vector<el::event> batch(n);
                std::vector<std::string> ids(n);
                for (std::size_t k = 0; k < n; ++k) {
                    ids[k] = "r" + round + "t" + std::to_string(t) + "i" + std::to_string(i) + "k" +
                             std::to_string(k);
                    batch[k].type = "CrashProbe";
                    batch[k].source = "test";
                    batch[k].stream = "Probe/" + std::to_string(t);
                    batch[k].data = "{\"id\":\"" + ids[k] + "\",\"pad\":\"" +
                                    std::string(100 + (i * 37) % 200, 'x') + "\"}";
                }
                auto r = (*log)->append(std::move(batch));
                if (!r) {
                    std::fprintf(stderr, "append failed: %s\n", r.error().message.c_str());
                    std::_Exit(1);
                }
                std::string lines;
                for (std::size_t k = 0; k < n; ++k)
                    lines += std::to_string(r->first.value + k) + " " + ids[k] + "\n";
                std::lock_guard lk(out_mu);
                // Unbuffered: the parent must only ever see acknowledged events.
                if (::write(1, lines.data(), lines.size()) < 0) std::_Exit(1);
            }
        });
    }
    for (auto& th : pool) th.join();
}
