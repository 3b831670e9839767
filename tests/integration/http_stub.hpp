#pragma once
// A downstream HTTP service for connector tests, on plain POSIX sockets: it records every
// request (method, target, Idempotency-Key, body) and answers with a status the test chooses,
// e.g. 503 for the first N requests to simulate an outage. One request per connection.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace scimsync::testing {

struct stub_request {
    std::string method;
    std::string target;
    std::string idempotency_key;
    std::string authorization;
    std::string body;
};

class http_stub {
public:
    http_stub();  // listens on 127.0.0.1, a free port
    // HTTPS with this PEM certificate and key (OpenSSL, TLS 1.2+).
    http_stub(const std::string& cert_file, const std::string& key_file);
    ~http_stub();
    http_stub(const http_stub&) = delete;
    http_stub& operator=(const http_stub&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const {
        return std::string(tls_ != nullptr ? "https" : "http") +
               "://127.0.0.1:" + std::to_string(port_);
    }
    // The next `n` requests are answered with `status` (then 200/201/204 again).
    void fail_next(int n, int status = 503);
    std::vector<stub_request> requests() const;
    // Requests answered with a 2xx.
    std::vector<stub_request> succeeded() const;

private:
    void serve();
    void start();
    void* tls_ = nullptr;  // SSL_CTX*, when serving HTTPS
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    mutable std::mutex mu_;
    int failures_left_ = 0;
    int failure_status_ = 503;
    std::vector<std::pair<stub_request, int>> seen_;
    std::thread thread_;
};

}  // namespace scimsync::testing
