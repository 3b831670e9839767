#include "http_stub.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <openssl/ssl.h>

#include <cctype>
#include <stdexcept>

namespace scimsync::testing {

http_stub::http_stub() {
    start();
}

http_stub::http_stub(const std::string& cert_file, const std::string& key_file) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("http_stub: cannot load the TLS certificate or key");
    tls_ = ctx;
    start();
}

void http_stub::start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0 || ::pipe2(stop_pipe_, O_CLOEXEC) != 0)
        throw std::runtime_error("http_stub: socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0)
        throw std::runtime_error("http_stub: bind/listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
}

http_stub::~http_stub() {
    (void)!::write(stop_pipe_[1], "x", 1);
    if (thread_.joinable()) thread_.join();
    for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]})
        if (fd >= 0) ::close(fd);
    if (tls_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(tls_));
}

void http_stub::fail_next(int n, int status) {
    std::lock_guard lk(mu_);
    failures_left_ = n;
    failure_status_ = status;
}

std::vector<stub_request> http_stub::requests() const {
    std::lock_guard lk(mu_);
    std::vector<stub_request> out;
    for (const auto& [r, status] : seen_) out.push_back(r);
    return out;
}

std::vector<stub_request> http_stub::succeeded() const {
    std::lock_guard lk(mu_);
    std::vector<stub_request> out;
    for (const auto& [r, status] : seen_)
        if (status / 100 == 2) out.push_back(r);
    return out;
}

namespace {
std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace

void http_stub::serve() {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents != 0) return;
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        SSL* ssl = nullptr;
        if (tls_ != nullptr) {
            ssl = SSL_new(static_cast<SSL_CTX*>(tls_));
            SSL_set_fd(ssl, c);
            if (SSL_accept(ssl) != 1) {  // e.g. the client refused our certificate
                SSL_free(ssl);
                ::close(c);
                continue;
            }
        }
        auto read_some = [&](char* b, std::size_t n) -> ssize_t {
            return ssl != nullptr ? SSL_read(ssl, b, int(n)) : ::read(c, b, n);
        };
        std::string in;
        char buf[4096];
        std::size_t header_end = std::string::npos, need = 0;
        for (;;) {
            pollfd p{c, POLLIN, 0};
            const bool buffered = ssl != nullptr && SSL_pending(ssl) > 0;
            if (!buffered && ::poll(&p, 1, 5000) <= 0) break;
            const ssize_t n = read_some(buf, sizeof buf);
            if (n <= 0) break;
            in.append(buf, std::size_t(n));
            if (header_end == std::string::npos) {
                header_end = in.find("\r\n\r\n");
                if (header_end != std::string::npos) {
                    const auto l = lower(in.substr(0, header_end));
                    const auto cl = l.find("content-length:");
                    need = cl == std::string::npos ? 0 : std::stoul(l.substr(cl + 15));
                }
            }
            if (header_end != std::string::npos && in.size() >= header_end + 4 + need) break;
        }
        if (header_end == std::string::npos) {
            if (ssl != nullptr) SSL_free(ssl);
            ::close(c);
            continue;
        }
        stub_request r;
        const std::string head = in.substr(0, header_end);
        const auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
        r.method = head.substr(0, sp1);
        r.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        r.body = in.substr(header_end + 4, need);
        std::size_t pos = head.find("\r\n");
        while (pos != std::string::npos && pos < head.size()) {
            const auto next = head.find("\r\n", pos + 2);
            const std::string line =
                head.substr(pos + 2, (next == std::string::npos ? head.size() : next) - pos - 2);
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                const std::string name = lower(line.substr(0, colon));
                std::string value = line.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.erase(0, 1);
                if (name == "idempotency-key") r.idempotency_key = value;
                if (name == "authorization") r.authorization = value;
            }
            pos = next;
        }
        int status = r.method == "POST" ? 201 : r.method == "DELETE" ? 204 : 200;
        {
            std::lock_guard lk(mu_);
            if (failures_left_ > 0) {
                --failures_left_;
                status = failure_status_;
            }
            seen_.emplace_back(r, status);
        }
        const std::string reply = "HTTP/1.1 " + std::to_string(status) +
                                  " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (ssl != nullptr) {
            SSL_write(ssl, reply.data(), int(reply.size()));
            SSL_shutdown(ssl);
            SSL_free(ssl);
        } else {
            (void)!::write(c, reply.data(), reply.size());
        }
        ::close(c);
    }
}

}  // namespace scimsync::testing
