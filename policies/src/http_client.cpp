#include "scimsync/policies/http_client.hpp"

#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/ssl.hpp>

namespace scimsync::policies {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<url_parts> parse_http_url(const std::string& url, std::string* why) {
    url_parts p;
    std::string rest;
    if (url.starts_with("https://")) {
        p.tls = true;
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else {
        if (why != nullptr) *why = "expected an http:// or https:// URL";
        return std::nullopt;
    }
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    p.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (authority.empty()) {
        if (why != nullptr) *why = "no host";
        return std::nullopt;
    }
    p.port = p.tls ? "443" : "80";
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

namespace {

// One exchange on a connected (and, for https, handshaken) stream.
template <class Stream>
void exchange(Stream& stream, http::request<http::string_body>& req, beast::flat_buffer& buffer,
              http::response<http::string_body>& res, beast::error_code& failed,
              const char*& stage) {
    stage = "send";
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
        if (ec) {
            failed = ec;
            return;
        }
        stage = "read";
        http::async_read(stream, buffer, res,
                         [&](beast::error_code ec2, std::size_t) { failed = ec2; });
    });
}

}  // namespace

http_result http_send(const std::string& method, const std::string& url, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout, const tls_options& tls) {
    http_result out;
    std::string why;
    auto parts = parse_http_url(url, &why);
    if (!parts) {
        out.error = "bad URL: " + why;
        return out;
    }
    http::request<http::string_body> req{http::string_to_verb(method), parts->target, 11};
    req.set(http::field::host, parts->host + ":" + parts->port);
    req.set(http::field::user_agent, "scimsync-policy");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();

    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    beast::error_code failed;
    if (parts->tls) {
        ctx.set_verify_mode(asio::ssl::verify_peer);
        if (tls.ca_file.empty())
            ctx.set_default_verify_paths(failed);
        else
            ctx.load_verify_file(tls.ca_file, failed);
        if (failed) {
            out.error = "TLS set-up: " + failed.message();
            return out;
        }
    }
    beast::ssl_stream<beast::tcp_stream> secure(io, ctx);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    const char* stage = "resolve";
    auto& lowest = beast::get_lowest_layer(secure);
    lowest.expires_after(timeout);
    if (parts->tls) {
        // SNI, and the certificate must name the host.
        if (!SSL_set_tlsext_host_name(secure.native_handle(), parts->host.c_str())) {
            out.error = "TLS set-up: cannot set the server name";
            return out;
        }
        secure.set_verify_callback(asio::ssl::host_name_verification(parts->host));
    }
    resolver.async_resolve(
        parts->host, parts->port,
        [&](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
            if (ec) {
                failed = ec;
                return;
            }
            stage = "connect";
            lowest.async_connect(results, [&](beast::error_code ec2, auto) {
                if (ec2) {
                    failed = ec2;
                    return;
                }
                if (!parts->tls) return exchange(lowest, req, buffer, res, failed, stage);
                stage = "TLS handshake";
                secure.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec3) {
                    if (ec3) {
                        failed = ec3;
                        return;
                    }
                    exchange(secure, req, buffer, res, failed, stage);
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
    lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return out;
}

}  // namespace scimsync::policies
