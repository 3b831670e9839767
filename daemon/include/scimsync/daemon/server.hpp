#pragma once
// The daemon's network front: the HTTP listener, the admin socket and signal handling on one
// io_context. server.cpp is the only TU that includes Boost.Asio or Beast (they are slow to
// compile); this header includes neither.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/router.hpp"

namespace scimsync::daemon {

struct server_options {
    std::string host = "127.0.0.1";           // an IP address literal (v4 or v6), not a name
    std::uint16_t port = 8080;                // 0: the kernel picks a free port (http_port())
    std::size_t body_limit_bytes = 1u << 20;  // larger request bodies get 413
    std::chrono::seconds read_timeout{30};    // per read (and per write) on a connection
    unsigned threads = 2;                     // io threads
    std::filesystem::path admin_socket;       // empty: no admin socket
    std::chrono::seconds drain_timeout{10};   // on shutdown, how long in-flight work may take
    std::string server_header = "scimsync";   // value of the Server response header
    // HTTPS when set (PEM files: the certificate chain and its private key); TLS 1.2 and up.
    std::filesystem::path tls_cert_file;
    std::filesystem::path tls_key_file;
    // One-line diagnostics (stale socket removed, accept errors, forced shutdown); called from
    // the thread calling open() or from io threads.
    std::function<void(const std::string&)> notice;
    // Called once, on an io thread, when the drain starts (e.g. to make /readyz answer 503).
    std::function<void()> on_drain;
    // SIGHUP: called on an io thread (must not block; hand the work to another thread).
    // Without it SIGHUP is not caught.
    std::function<void()> on_reload;
    // Called every `tick_interval` on an io thread while serving (e.g. the watchdog keep-alive:
    // it proves the event loop turns). Zero: never.
    std::chrono::milliseconds tick_interval{0};
    std::function<void()> on_tick;
};

// Lifecycle: open() binds everything (so errors surface before anything is announced), then
// run() serves until SIGTERM/SIGINT or stop(), then drains: the listeners close, idle
// connections close, requests being handled are answered, and the admin socket file is removed.
// The router and the registry must outlive the server and must not change after open(). An async
// handler's respond_fn must be called before the server is destroyed (close whatever completes
// them, e.g. the log, between run() and the destructor).
class server {
public:
    server(server_options options, const router& routes, const command_registry& commands);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the admin socket (mode 0600) and the HTTP listener, and starts catching SIGTERM and
    // SIGINT (and SIGHUP with on_reload). A stale admin socket file is replaced only if nothing
    // accepts connections on it. Call before starting other threads: it changes the process umask
    // briefly. Error: one line for the operator.
    std::expected<void, std::string> open();

    std::string http_host() const;    // as bound
    std::uint16_t http_port() const;  // as bound (the real port when 0 was asked for)
    std::string http_url() const;     // "http(s)://HOST:PORT", IPv6 hosts in brackets

    // Serves on `threads` threads (the caller's among them); returns after the drain.
    // Signals SIGTERM and SIGINT start the drain; install no other handlers for them.
    void run();

    // Starts the drain from any thread (e.g. tests, a fatal log error).
    void stop();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::daemon
