#pragma once
// Tiny blocking clients for integration tests, on plain POSIX sockets (no Asio: cheap to build):
// HTTP/1.1 over TCP with keep-alive, and raw exchanges on a Unix socket. Every read has a
// deadline; nothing sleeps.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scimsync::testing {

struct http_reply {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // Case-insensitive lookup of the first header with this name.
    std::optional<std::string> header(std::string_view name) const;
};

// One TCP connection to an HTTP server. Replies must carry Content-Length (scimsyncd's do).
class http_connection {
public:
    // Throws std::runtime_error if the connection cannot be made before the timeout.
    http_connection(const std::string& host, std::uint16_t port,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
    ~http_connection();
    http_connection(const http_connection&) = delete;
    http_connection& operator=(const http_connection&) = delete;

    int native_handle() const { return fd_; }
    // Sends raw bytes (for malformed or partial requests). Throws on failure.
    void send(std::string_view bytes);
    // Sends one request (Host and, if there is a body, Content-Length are added) and reads
    // the reply. Throws if no complete reply arrives before the timeout.
    http_reply request(const std::string& method, const std::string& target,
                       const std::string& body = {},
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Reads one reply; nullopt if the server closes or the timeout passes first.
    std::optional<http_reply> read_reply(
        std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // True if the server closes the connection (end of file or reset) before the timeout;
    // bytes that arrive meanwhile are kept for read_reply().
    bool closed_by_peer(std::chrono::milliseconds timeout);

private:
    // Appends what arrives within the deadline; false on timeout, EOF or error.
    bool fill(std::chrono::steady_clock::time_point deadline);

    int fd_ = -1;
    std::string host_;
    std::string in_;
    bool eof_ = false;
};

// GET on a fresh connection.
// One HTTPS request (blocking, "Connection: close"), the server's certificate checked against
// `ca_file` and the host name (an IP address). Throws on TLS or transport failure.
http_reply https_request(const std::string& host, std::uint16_t port,
                         const std::filesystem::path& ca_file, const std::string& method,
                         const std::string& target, const std::string& body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {});

http_reply http_get(const std::string& host, std::uint16_t port, const std::string& target);

// Connects to a Unix stream socket, sends `request` and returns everything read until `lines`
// newline-terminated lines arrived, the peer closed, or the timeout passed.
std::string unix_exchange(const std::filesystem::path& socket, std::string_view request,
                          std::size_t lines = 1,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace scimsync::testing
