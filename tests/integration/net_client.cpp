#include "net_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>

namespace scimsync::testing {

namespace {

using clock = std::chrono::steady_clock;

std::runtime_error sys_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

int poll_until(int fd, short events, clock::time_point deadline) {
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
        if (n >= 0 || errno != EINTR) return n;
    }
}

void send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw sys_error("send");
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

bool iequals(std::string_view a, std::string_view b) {
    return std::ranges::equal(
        a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

}  // namespace

std::optional<std::string> http_reply::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return std::nullopt;
}

http_connection::http_connection(const std::string& host, std::uint16_t port,
                                 std::chrono::milliseconds timeout)
    : host_(host) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
    if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
        ::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
    } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
               ::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        family = AF_INET6;
    } else {
        throw std::invalid_argument("not an IP address: " + host);
    }
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw sys_error("socket");
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
        const auto e = sys_error("connect to " + host + ":" + std::to_string(port));
        ::close(fd_);
        throw e;
    }
    if (poll_until(fd_, POLLOUT, clock::now() + timeout) <= 0) {
        ::close(fd_);
        throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + " timed out");
    }
    int err = 0;
    socklen_t err_len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
        ::close(fd_);
        throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + ": " +
                                 std::strerror(err));
    }
    // Blocking from here on; reads are still bounded by poll deadlines.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

http_connection::~http_connection() {
    if (fd_ >= 0) ::close(fd_);
}

void http_connection::send(std::string_view bytes) {
    send_all(fd_, bytes);
}

bool http_connection::fill(clock::time_point deadline) {
    if (eof_) return false;
    if (poll_until(fd_, POLLIN, deadline) <= 0) return false;
    char buf[16384];
    ssize_t n;
    do {
        n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        eof_ = true;
        return false;
    }
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::optional<http_reply> http_connection::read_reply(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    std::size_t head_end;
    while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(deadline)) return std::nullopt;
    }
    http_reply reply;
    std::string_view head(in_.data(), head_end);
    const auto first_eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, first_eol);
    const auto sp = status_line.find(' ');
    if (sp == std::string_view::npos) throw std::runtime_error("bad status line");
    reply.status = std::stoi(std::string(status_line.substr(sp + 1, 3)));
    std::size_t pos = first_eol == std::string_view::npos ? head.size() : first_eol + 2;
    std::size_t content_length = 0;
    while (pos < head.size()) {
        auto eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = head.size();
        const auto line = head.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string name(line.substr(0, colon));
            std::string value(line.substr(colon + 1));
            value.erase(0, value.find_first_not_of(" \t"));
            if (iequals(name, "Content-Length")) content_length = std::stoul(value);
            reply.headers.emplace_back(std::move(name), std::move(value));
        }
        pos = eol + 2;
    }
    const std::size_t total = head_end + 4 + content_length;
    while (in_.size() < total) {
        if (!fill(deadline)) return std::nullopt;
    }
    reply.body = in_.substr(head_end + 4, content_length);
    in_.erase(0, total);
    return reply;
}

http_reply http_connection::request(const std::string& method, const std::string& target,
                                    const std::string& body,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::chrono::milliseconds timeout) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host_ + "\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    send(req);
    auto reply = read_reply(timeout);
    if (!reply) throw std::runtime_error("no reply to " + method + " " + target);
    return std::move(*reply);
}

bool http_connection::closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    while (!eof_) {
        if (!fill(deadline) && !eof_) return false;
    }
    return true;
}

http_reply https_request(const std::string& host, std::uint16_t port,
                         const std::filesystem::path& ca_file, const std::string& method,
                         const std::string& target, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
    std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()),
                                                     SSL_CTX_free);
    if (!ctx || SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
        throw std::runtime_error("https_request: cannot load " + ca_file.string());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    http_connection tcp(host, port);
    std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(ctx.get()), SSL_free);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
    SSL_set_fd(ssl.get(), tcp.native_handle());
    if (SSL_connect(ssl.get()) != 1)
        throw std::runtime_error("https_request: TLS handshake failed");
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    if (SSL_write(ssl.get(), req.data(), int(req.size())) != int(req.size()))
        throw std::runtime_error("https_request: write failed");
    std::string in;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl.get(), buf, sizeof buf)) > 0) in.append(buf, std::size_t(n));
    const auto head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) throw std::runtime_error("https_request: no reply");
    http_reply reply;
    reply.status = std::stoi(in.substr(in.find(' ') + 1, 3));
    std::size_t pos = in.find("\r\n") + 2;
    while (pos < head_end) {
        const auto eol = in.find("\r\n", pos);
        const auto line = in.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(" \t"));
            reply.headers.emplace_back(line.substr(0, colon), value);
        }
        pos = eol + 2;
    }
    reply.body = in.substr(head_end + 4);
    return reply;
}

http_reply http_get(const std::string& host, std::uint16_t port, const std::string& target) {
    http_connection c(host, port);
    return c.request("GET", target);
}

std::string unix_exchange(const std::filesystem::path& socket, std::string_view request,
                          std::size_t lines, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = socket.string();
    if (path.size() >= sizeof addr.sun_path) throw std::invalid_argument("socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw sys_error("socket");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const auto e = sys_error("connect to " + path);
        ::close(fd);
        throw e;
    }
    std::string in;
    try {
        send_all(fd, request);
    } catch (...) {
        ::close(fd);
        throw;
    }
    while (static_cast<std::size_t>(std::ranges::count(in, '\n')) < lines) {
        if (poll_until(fd, POLLIN, deadline) <= 0) break;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return in;
}

}  // namespace scimsync::testing
