#include "daemon_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "support/test_support.hpp"

extern char** environ;

namespace scimsync::testing {

namespace {

using clock = std::chrono::steady_clock;

std::runtime_error sys_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

exit_status decode(int raw) {
    exit_status s;
    if (WIFEXITED(raw)) s.code = WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) s.signal = WTERMSIG(raw);
    return s;
}

}  // namespace

child_process::child_process(std::vector<std::string> argv, options o) {
    if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw sys_error("pipe2");
    if (::pipe2(err, O_CLOEXEC) != 0) throw sys_error("pipe2");
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw sys_error("pipe2");

    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    ::posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (!o.cwd.empty()) ::posix_spawn_file_actions_addchdir_np(&actions, o.cwd.c_str());

    // The test runner (Catch2) handles SIGTERM and SIGINT itself; the child gets the defaults
    // and an empty mask, like a process started from a shell.
    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD}) {
        sigaddset(&defaults, sig);
    }
    ::posix_spawnattr_setsigmask(&attr, &empty);
    ::posix_spawnattr_setsigdefault(&attr, &defaults);

    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    // The test's environment, with o.env's entries added or replacing those of the same name.
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto name = entry.substr(0, entry.find('=') + 1);
        const bool replaced = std::any_of(
            o.env.begin(), o.env.end(), [&](const std::string& x) { return x.starts_with(name); });
        if (!replaced) env_text.emplace_back(entry);
    }
    env_text.insert(env_text.end(), o.env.begin(), o.env.end());
    std::vector<char*> envp;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, &attr, args.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
        ::close(out_fd_);
        ::close(err_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    capture_thread_ = std::thread([this] { capture(); });
}

child_process::~child_process() {
    if (!status_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int raw = 0;
        while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
        }
    }
    const char stop = 'x';
    (void)!::write(stop_pipe_[1], &stop, 1);
    if (capture_thread_.joinable()) capture_thread_.join();
    for (int fd : {out_fd_, err_fd_, stop_pipe_[0], stop_pipe_[1]}) {
        if (fd >= 0) ::close(fd);
    }
}

void child_process::capture() {
    bool out_open = true, err_open = true;
    char buf[8192];
    while (out_open || err_open) {
        pollfd fds[3] = {{out_open ? out_fd_ : -1, POLLIN, 0},
                         {err_open ? err_fd_ : -1, POLLIN, 0},
                         {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[2].revents != 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].revents == 0) continue;
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            std::lock_guard lock(mu_);
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
                (i == 0 ? out_closed_ : err_closed_) = true;
            } else {
                (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
            }
            cv_.notify_all();
        }
    }
    std::lock_guard lock(mu_);
    out_closed_ = err_closed_ = true;
    cv_.notify_all();
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::size_t nl = std::string::npos;
    cv_.wait_for(lock, timeout, [&] {
        nl = out_.find('\n', out_consumed_);
        return nl != std::string::npos || out_closed_;
    });
    nl = out_.find('\n', out_consumed_);
    if (nl == std::string::npos) return std::nullopt;
    std::string line = out_.substr(out_consumed_, nl - out_consumed_);
    out_consumed_ = nl + 1;
    return line;
}

std::string child_process::out() const {
    std::lock_guard lock(mu_);
    return out_;
}

std::string child_process::err() const {
    std::lock_guard lock(mu_);
    return err_;
}

bool child_process::wait_err_contains(std::string_view text, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
        return err_.find(text) != std::string::npos || err_closed_;
    }) && err_.find(text) != std::string::npos;
}

void child_process::send_signal(int sig) {
    if (!status_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<exit_status> child_process::wait(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    const auto deadline = clock::now() + timeout;
    // A pidfd becomes readable when the child exits, so the wait needs no polling interval.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    while (true) {
        int raw = 0;
        const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
        if (r == pid_) {
            status_ = decode(raw);
            break;
        }
        if (r < 0 && errno != EINTR) break;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) break;
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        } else {
            pollfd none{-1, 0, 0};
            ::poll(&none, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 10)));
        }
    }
    if (pidfd >= 0) ::close(pidfd);
    return status_;
}

bool child_process::running() {
    return !wait(std::chrono::milliseconds(0)).has_value();
}

bool child_process::wait_output_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return out_closed_ && err_closed_; });
}

process_output run_process(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
    child_process child(std::move(argv));
    process_output result;
    auto status = child.wait(timeout);
    if (!status) {
        result.timed_out = true;
        child.send_signal(SIGKILL);
        status = child.wait(std::chrono::seconds(10));
    }
    child.wait_output_closed(std::chrono::seconds(5));
    result.status = status.value_or(exit_status{});
    result.out = child.out();
    result.err = child.err();
    return result;
}

process_output run_binary(const std::string& name, std::vector<std::string> args,
                          std::chrono::milliseconds timeout) {
    args.insert(args.begin(), built_binary(name).string());
    return run_process(std::move(args), timeout);
}

daemon_options daemon_options::resolved() const {
    if (dir.empty()) throw std::invalid_argument("daemon_options: dir is required");
    daemon_options o = *this;
    if (o.data_dir.empty()) o.data_dir = dir / "data";
    if (o.admin_socket.empty()) o.admin_socket = dir / "admin.sock";
    if (o.config.empty()) o.config = dir / "scimsyncd.toml";
    return o;
}

std::vector<std::string> daemon_options::argv() const {
    const auto o = resolved();
    std::vector<std::string> a{built_binary("scimsyncd").string(),
                               "--config",
                               o.config.string(),
                               "--data-dir",
                               o.data_dir.string(),
                               "--listen",
                               o.listen,
                               "--admin-socket",
                               o.admin_socket.string()};
    if (!o.durability.empty()) {
        a.push_back("--durability");
        a.push_back(o.durability);
    }
    a.insert(a.end(), o.extra_args.begin(), o.extra_args.end());
    return a;
}

namespace {

std::vector<std::string> prepare(const daemon_options& o) {
    if (!std::filesystem::exists(o.config)) write_file(o.config, "");
    return o.argv();
}

}  // namespace

daemon_process::daemon_process(daemon_options o, std::chrono::milliseconds timeout)
    : options_(o.resolved()),
      process_(prepare(options_), child_process::options{.cwd = {}, .env = options_.env}) {
    const auto line = process_.read_line(timeout);
    const std::string tls_prefix = "listening on https://";
    const std::string prefix =
        line && line->starts_with(tls_prefix) ? tls_prefix : "listening on http://";
    if (!line || !line->starts_with(prefix)) {
        process_.send_signal(SIGKILL);
        process_.wait(std::chrono::seconds(10));
        process_.wait_output_closed(std::chrono::seconds(5));
        throw std::runtime_error("scimsyncd did not report listening (got \"" +
                                 line.value_or("<nothing>") + "\"); stderr: " + process_.err());
    }
    url_ = line->substr(std::string("listening on ").size());
    const std::string hostport = line->substr(prefix.size());
    const auto colon = hostport.rfind(':');
    host_ = hostport.substr(0, colon);
    if (host_.size() >= 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    port_ = static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1)));
}

std::optional<exit_status> daemon_process::stop(std::chrono::milliseconds timeout) {
    process_.send_signal(SIGTERM);
    auto status = process_.wait(timeout);
    if (status) process_.wait_output_closed(std::chrono::seconds(5));
    return status;
}

process_output daemon_process::ctl(std::vector<std::string> args,
                                   std::chrono::milliseconds timeout) const {
    args.insert(args.begin(), {"--socket", options_.admin_socket.string(), "--data-dir",
                               options_.data_dir.string()});
    return run_binary("scimsyncctl", std::move(args), timeout);
}

}  // namespace scimsync::testing
