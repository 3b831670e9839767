#pragma once
// Child processes for integration tests: run the real scimsyncd and scimsyncctl the way a user
// does, capture what they print, wait for them with deadlines, and never leave one behind.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace scimsync::testing {

struct exit_status {
    int code = -1;   // exit code when the process exited normally
    int signal = 0;  // the signal that killed it, else 0
    bool exited() const { return signal == 0; }
};

// A child with stdin from /dev/null and stdout/stderr captured through pipes. A background
// thread drains both pipes, so the child never blocks on a full pipe. The destructor kills
// (SIGKILL) and reaps a child that is still running. Not thread-safe except that the capture
// thread and the caller share the buffers under a lock.
class child_process {
public:
    struct options {
        std::filesystem::path cwd;  // empty: the test's working directory
        std::vector<std::string> env;  // "NAME=value" added to (or replacing in) the test's own
    };

    // argv[0] is a path to the executable (no PATH search). Throws std::runtime_error if the
    // process cannot be started.
    explicit child_process(std::vector<std::string> argv, options o = {});
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const { return pid_; }

    // The next complete line of stdout (without '\n'), or nullopt if none arrives before the
    // timeout or stdout closes first.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);

    // Everything captured so far (stdout includes lines already returned by read_line).
    std::string out() const;
    std::string err() const;
    // Waits until stderr contains `text`. The two pipes are read independently, so what the
    // child wrote to stderr before a stdout line may still be in flight when that line arrives.
    bool wait_err_contains(std::string_view text, std::chrono::milliseconds timeout);

    void send_signal(int sig);

    // Waits until the child exits; nullopt if it is still running at the timeout.
    std::optional<exit_status> wait(std::chrono::milliseconds timeout);
    bool running();

    // After the child has exited: waits until both pipes reached end of file (anything the
    // child wrote is captured), up to the timeout.
    bool wait_output_closed(std::chrono::milliseconds timeout);

private:
    void capture();

    pid_t pid_ = -1;
    std::optional<exit_status> status_;
    int out_fd_ = -1;
    int err_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::thread capture_thread_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::string out_;
    std::string err_;
    std::size_t out_consumed_ = 0;
    bool out_closed_ = false;
    bool err_closed_ = false;
};

struct process_output {
    exit_status status;
    bool timed_out = false;  // it was killed after the timeout
    std::string out;
    std::string err;

    int code() const { return status.code; }
};

// Runs argv to completion (killing it after `timeout`) and returns what it printed.
process_output run_process(std::vector<std::string> argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20));

// run_process() on a built binary ("scimsyncd", "scimsyncctl") with these arguments.
process_output run_binary(const std::string& name, std::vector<std::string> args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(20));

// How to start scimsyncd. Everything lives under `dir` (a temp dir) unless set explicitly, and
// an empty config file is passed by default so that /etc/scimsync never leaks into a test.
struct daemon_options {
    std::filesystem::path dir;           // required
    std::filesystem::path data_dir;      // default: dir/data
    std::filesystem::path admin_socket;  // default: dir/admin.sock
    std::filesystem::path config;        // default: dir/scimsyncd.toml, created empty if missing
    std::string listen = "127.0.0.1:0";
    std::string durability = "none";  // "" passes no --durability flag
    std::vector<std::string> extra_args;
    std::vector<std::string> env;  // "NAME=value" for the daemon's environment

    // The command line these options give (argv[0] is the built scimsyncd).
    std::vector<std::string> argv() const;
    daemon_options resolved() const;  // with every default filled in
};

// A running scimsyncd: the constructor returns once the daemon printed its
// "listening on http://HOST:PORT" line. The destructor kills it if it is still running.
class daemon_process {
public:
    // Throws std::runtime_error (with the daemon's stderr) if the daemon exits or stays silent
    // past the timeout.
    explicit daemon_process(daemon_options o,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));

    const daemon_options& options() const { return options_; }
    const std::string& url() const { return url_; }  // "http://HOST:PORT"
    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    child_process& process() { return process_; }

    // SIGTERM, then waits for the exit; nullopt if it did not exit within the timeout.
    std::optional<exit_status> stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));

    // Runs `scimsyncctl --socket <admin socket> --data-dir <data dir> ARGS...` to completion:
    // commands for the running daemon and the offline log commands alike.
    process_output ctl(std::vector<std::string> args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

private:
    daemon_options options_;
    child_process process_;
    std::string url_;
    std::string host_;
    std::uint16_t port_ = 0;
};

}  // namespace scimsync::testing
