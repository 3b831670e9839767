#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <sstream>

#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/eventlog/verify.hpp"
#include "support/test_support.hpp"

namespace el = scimsync::eventlog;
using scimsync::testing::temp_dir;

namespace {

struct child {
    pid_t pid = -1;
    int out = -1;
};

child spawn_appender(const std::string& dir, int threads, int round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
        const std::string t = std::to_string(threads), r = std::to_string(round);
        ::execl(CRASH_APPENDER, CRASH_APPENDER, dir.c_str(), t.c_str(), r.c_str(), nullptr);
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// Reads "SEQ ID" lines into `acked` until `stop_after` new ones arrived (or EOF).
void read_acks(int fd, std::map<std::uint64_t, std::string>& acked, std::string& partial,
               std::size_t stop_after) {
    std::size_t got = 0;
    char buf[65536];
    while (got < stop_after) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        partial.append(buf, std::size_t(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::istringstream line(partial.substr(0, nl));
            partial.erase(0, nl + 1);
            std::uint64_t seq = 0;
            std::string id;
            line >> seq >> id;
            acked[seq] = id;
            ++got;
        }
    }
}

}  // namespace

TEST_CASE("every acknowledged event survives SIGKILL at random moments and the chain verifies",
          "[eventlog][crash]") {
    temp_dir dir;
    const std::string logdir = (dir.path() / "log").string();
    const auto seed = std::random_device{}();
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::map<std::uint64_t, std::string> acked;  // over all rounds
    constexpr int rounds = 24;
    for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        auto c = spawn_appender(logdir, 1 + round % 4, round);
        std::string partial;
        // Kill after a random number of acknowledgements: sometimes at once, sometimes mid-run.
        const std::size_t after = std::uniform_int_distribution<std::size_t>(0, 4000)(rng);
        read_acks(c.out, acked, partial, after);
        REQUIRE(::kill(c.pid, SIGKILL) == 0);
        int status = 0;
        REQUIRE(::waitpid(c.pid, &status, 0) == c.pid);
        REQUIRE(WIFSIGNALED(status));
        // Lines already in the pipe were acknowledged before the kill: they count too.
        read_acks(c.out, acked, partial, std::size_t(-1));
        ::close(c.out);

        auto log = el::file_log::open({.dir = logdir, .mode = el::durability::batch});
        INFO((log ? std::string() : log.error().message));
        REQUIRE(log.has_value());
        if (!acked.empty()) REQUIRE((*log)->last_seq().value >= acked.rbegin()->first);
        auto r = (*log)->read_from(el::seq_no{1});
        REQUIRE(r.has_value());
        el::event e;
        std::size_t found = 0;
        while (true) {
            auto got = (*r)->next(e);
            REQUIRE(got.has_value());
            if (!*got) break;
            auto it = acked.find(e.seq.value);
            if (it != acked.end()) {
                INFO("seq " << e.seq.value);
                REQUIRE(e.data.find("\"id\":\"" + it->second + "\"") != std::string::npos);
                ++found;
            }
        }
        REQUIRE(found == acked.size());
        (*log)->close();
        log->reset();
        auto rep = el::verify_log(logdir);
        REQUIRE(rep.has_value());
        INFO((rep->problem ? rep->problem->what : std::string()));
        REQUIRE_FALSE(rep->problem.has_value());
    }
    REQUIRE(acked.size() > 1000);
}
