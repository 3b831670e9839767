#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "log_fixture.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace el = scimsync::eventlog;
using namespace scimsync::testing;

// Catch2 v2 assertions are not thread-safe: worker threads record problems, the test thread
// asserts on them.

TEST_CASE("many threads appending get one total order with nothing lost or duplicated",
          "[eventlog][concurrency]") {
    temp_dir dir;
    auto opt = log_options(dir.path(), el::durability::batch);
    opt.segment_bytes = 64 * 1024;
    auto log = open_log(opt);
    constexpr int threads = 16;
    constexpr int per_thread = 250;
    std::mutex mu;
    std::map<std::uint64_t, std::string> sent;  // seq -> data we sent
    std::vector<std::string> problems;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::uint64_t last = 0;
            for (int i = 0; i < per_thread; ++i) {
                auto batch = sample_batch(1, 1 + (i % 3));
                for (std::size_t k = 0; k < batch.size(); ++k)
                    batch[k].data = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) +
                                    ",\"k\":" + std::to_string(k) + "}";
                auto r = log->append(batch);
                std::lock_guard lk(mu);
                if (!r) {
                    problems.push_back(r.error().message);
                    return;
                }
                if (r->first.value <= last) problems.push_back("a thread's appends reordered");
                last = r->last.value;
                for (std::size_t k = 0; k < batch.size(); ++k)
                    if (!sent.emplace(r->first.value + k, batch[k].data).second)
                        problems.push_back("seq handed out twice");
            }
        });
    }
    for (auto& th : pool) th.join();
    REQUIRE(problems.empty());
    const auto all = read_all(*log);
    REQUIRE(all.size() == sent.size());
    REQUIRE(log->last_seq().value == sent.size());
    for (const auto& e : all) REQUIRE(sent.at(e.seq.value) == e.data);
    REQUIRE(log->sync_count() < sent.size());  // group commit actually grouped
    log->close();
    REQUIRE_FALSE(el::verify_log(dir.path())->problem.has_value());
}

TEST_CASE("async appends complete in submission order with their own sequence numbers",
          "[eventlog][concurrency]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path(), el::durability::batch));
    constexpr std::uint64_t n = 2000;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::uint64_t> completed;
    std::vector<std::string> problems;
    for (std::uint64_t i = 0; i < n; ++i) {
        log->async_append(sample_batch(i + 1, 1), [&, i](el::result<el::append_result> r) {
            std::lock_guard lk(mu);
            if (!r)
                problems.push_back(r.error().message);
            else if (r->first.value != i + 1)
                problems.push_back("out of submission order");
            else
                completed.push_back(r->first.value);
            cv.notify_all();
        });
    }
    std::unique_lock lk(mu);
    REQUIRE(cv.wait_for(lk, std::chrono::seconds(60),
                        [&] { return completed.size() + problems.size() == n; }));
    REQUIRE(problems.empty());
    REQUIRE(std::is_sorted(completed.begin(), completed.end()));
}
