// scimsyncd as a systemd service: the unit file passes `systemd-analyze verify` and rates at most
// 2.0 in `systemd-analyze security`, and the daemon speaks the notify protocol to a socket the
// test holds the way systemd would (NOTIFY_SOCKET, WATCHDOG_USEC).

#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;

namespace {

const std::filesystem::path unit_file =
    std::filesystem::path(SCIMSYNC_SOURCE_DIR) / "systemd" / "scimsyncd.service";

// The unit with ExecStart pointing at the built binary (verify checks that it exists).
std::filesystem::path unit_for_this_build(const temp_dir& dir) {
    std::string text = read_file(unit_file);
    const std::string installed = "/usr/bin/scimsyncd";
    text.replace(text.find(installed), installed.size(), built_binary("scimsyncd").string());
    const auto copy = dir.path() / "scimsyncd.service";
    write_file(copy, text);
    return copy;
}

// A datagram socket standing in for systemd's notify socket.
class notify_socket {
public:
    explicit notify_socket(const std::filesystem::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~notify_socket() { ::close(fd_); }

    // Messages until one contains `what` (true), or the timeout (false). All are kept.
    bool wait_for(const std::string& what, std::chrono::milliseconds timeout) {
        for (std::size_t i = seen_; i < messages_.size(); ++i)
            if (messages_[i].find(what) != std::string::npos) {
                seen_ = i + 1;
                return true;
            }
        seen_ = messages_.size();
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (::poll(&p, 1, int(std::max<long long>(left.count(), 0))) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            messages_.emplace_back(buf, std::size_t(n));
            seen_ = messages_.size();
            if (messages_.back().find(what) != std::string::npos) return true;
        }
        return false;
    }
    const std::vector<std::string>& messages() const { return messages_; }

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::vector<std::string> messages_;
    std::size_t seen_ = 0;
};

}  // namespace

TEST_CASE("the systemd unit passes systemd-analyze verify", "[integration][systemd]") {
    temp_dir dir;
    const auto unit = unit_for_this_build(dir);
    // --man=no: the man pages are checked by the packaging test, installed.
    const auto r = run_process({"/usr/bin/systemd-analyze", "verify", "--man=no", unit.string()});
    INFO(r.out + r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.empty());
    REQUIRE(r.err.empty());
}

TEST_CASE("the systemd unit's exposure in systemd-analyze security is at most 2.0",
          "[integration][systemd]") {
    const auto r = run_process(
        {"/usr/bin/systemd-analyze", "security", "--offline=true", unit_file.string()});
    INFO(r.out + r.err);
    std::smatch m;
    const std::regex overall("Overall exposure level for scimsyncd.service: ([0-9.]+)");
    REQUIRE(std::regex_search(r.out, m, overall));
    const double exposure = std::stod(m[1]);
    CAPTURE(exposure);
    REQUIRE(exposure <= 2.0);
}

TEST_CASE("scimsyncd tells systemd it is ready, feeds the watchdog from its event loop, and "
          "reports reloads and stopping",
          "[integration][systemd]") {
    temp_dir dir;
    notify_socket systemd(dir.path() / "notify");
    daemon_options o;
    o.dir = dir.path();
    o.env = {"NOTIFY_SOCKET=" + (dir.path() / "notify").string(), "WATCHDOG_USEC=300000"};
    daemon_process d(o);
    REQUIRE(systemd.wait_for("READY=1", std::chrono::seconds(10)));
    // READY comes after the views were rebuilt and the listener is up; the status says where.
    REQUIRE_THAT(systemd.messages().back(), Catch::Contains("STATUS=serving on " + d.url()));
    // Twice, so it is a beat and not a single message (tick: half the watchdog interval).
    REQUIRE(systemd.wait_for("WATCHDOG=1", std::chrono::seconds(5)));
    REQUIRE(systemd.wait_for("WATCHDOG=1", std::chrono::seconds(5)));
    d.process().send_signal(SIGHUP);
    REQUIRE(systemd.wait_for("RELOADING=1", std::chrono::seconds(10)));
    REQUIRE(systemd.wait_for("READY=1", std::chrono::seconds(10)));
    REQUIRE_THAT(systemd.messages().back(), Catch::Contains("reload: applied"));
    d.process().send_signal(SIGTERM);
    REQUIRE(systemd.wait_for("STOPPING=1", std::chrono::seconds(10)));
    const auto status = d.process().wait(std::chrono::seconds(20));
    REQUIRE(status);
    REQUIRE(status->code == 0);
}
