#include "scimsync/daemon/admin_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scimsync::daemon {

namespace {

using clock = std::chrono::steady_clock;

class fd_guard {
public:
    explicit fd_guard(int fd) : fd_(fd) {}
    ~fd_guard() {
        if (fd_ >= 0) ::close(fd_);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

std::unexpected<admin_error> fail(admin_error::kind k, std::string message) {
    return std::unexpected(admin_error{k, std::move(message)});
}

// Waits until `fd` is ready for `events` or the deadline passes; false on timeout or error.
bool wait_ready(int fd, short events, clock::time_point deadline) {
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

}  // namespace

std::expected<nlohmann::json, admin_error> admin_call(const std::filesystem::path& socket,
                                                      std::string_view cmd,
                                                      const nlohmann::json& args,
                                                      std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    const std::string path = socket.string();
    const auto cannot_connect = [&](const std::string& reason) {
        return fail(admin_error::kind::connect, "cannot connect to admin socket " + path + ": " +
                                                    reason + " (is scimsyncd running?)");
    };

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return cannot_connect("path is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

    fd_guard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return cannot_connect(std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return cannot_connect(std::strerror(errno));
    }

    const nlohmann::json request{{"cmd", cmd}, {"args", args}};
    const std::string line = request.dump() + "\n";
    for (std::size_t sent = 0; sent < line.size();) {
        if (!wait_ready(fd.get(), POLLOUT, deadline)) {
            return fail(admin_error::kind::io, "timed out sending to admin socket " + path);
        }
        const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            return fail(admin_error::kind::io,
                        "cannot send to admin socket " + path + ": " + std::strerror(errno));
        }
        sent += static_cast<std::size_t>(n);
    }

    std::string reply;
    while (reply.find('\n') == std::string::npos) {
        if (!wait_ready(fd.get(), POLLIN, deadline)) {
            return fail(admin_error::kind::io, "timed out waiting for scimsyncd on " + path);
        }
        char buf[4096];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            return fail(admin_error::kind::io,
                        "cannot read from admin socket " + path + ": " + std::strerror(errno));
        }
        if (n == 0) {
            return fail(admin_error::kind::io,
                        "scimsyncd closed the admin connection on " + path + " without answering");
        }
        reply.append(buf, static_cast<std::size_t>(n));
    }
    reply.resize(reply.find('\n'));

    auto response = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
    if (response.is_discarded() || !response.is_object() || !response.contains("ok") ||
        !response["ok"].is_boolean()) {
        return fail(admin_error::kind::protocol, "scimsyncd sent an invalid admin response");
    }
    if (!response["ok"].get<bool>()) {
        const auto& e = response["error"];
        return fail(admin_error::kind::command,
                    e.is_string() ? e.get<std::string>() : std::string("command failed"));
    }
    return response.value("result", nlohmann::json::object());
}

}  // namespace scimsync::daemon
