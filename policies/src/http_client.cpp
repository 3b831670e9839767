#include "scimsync/policies/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace scimsync::policies {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<url_parts> parse_http_url(const std::string& url, std::string* why) {
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme)) {
        if (why != nullptr) *why = "only http:// URLs are supported";
        return std::nullopt;
    }
    std::string rest = url.substr(scheme.size());
    url_parts p;
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    p.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (authority.empty()) {
        if (why != nullptr) *why = "no host";
        return std::nullopt;
    }
    p.port = "80";
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) {
            if (why != nullptr) *why = "unclosed [";
            return std::nullopt;
        }
        p.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':')
            p.port = authority.substr(close + 2);
    } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
        p.host = authority.substr(0, colon);
        p.port = authority.substr(colon + 1);
    } else {
        p.host = authority;
    }
    if (p.port.empty() || p.port.find_first_not_of("0123456789") != std::string::npos) {
        if (why != nullptr) *why = "the port must be a number";
        return std::nullopt;
    }
    return p;
}

http_result http_send(const std::string& method, const std::string& url, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout) {
    http_result out;
    std::string why;
    auto parts = parse_http_url(url, &why);
    if (!parts) {
        out.error = "bad URL: " + why;
        return out;
    }
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    http::request<http::string_body> req{http::string_to_verb(method), parts->target, 11};
    req.set(http::field::host, parts->host + ":" + parts->port);
    req.set(http::field::user_agent, "scimsync-policy");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    beast::error_code failed;
    const char* stage = "resolve";
    stream.expires_after(timeout);
    resolver.async_resolve(
        parts->host, parts->port,
        [&](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
            if (ec) {
                failed = ec;
                return;
            }
            stage = "connect";
            stream.async_connect(results, [&](beast::error_code ec2, auto) {
                if (ec2) {
                    failed = ec2;
                    return;
                }
                stage = "send";
                http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
                    if (ec3) {
                        failed = ec3;
                        return;
                    }
                    stage = "read";
                    http::async_read(stream, buffer, res,
                                     [&](beast::error_code ec4, std::size_t) { failed = ec4; });
                });
            });
        });
    io.run();
    if (failed) {
        out.error = std::string(stage) + ": " + failed.message();
        return out;
    }
    out.status = int(res.result_int());
    out.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return out;
}

}  // namespace scimsync::policies
