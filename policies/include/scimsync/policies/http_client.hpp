#pragma once
// A small blocking HTTP/1.1 client for the policy connectors (Boost.Beast, over TLS for https;
// this is the only translation unit of policies/ that includes Beast).

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace scimsync::policies {

struct url_parts {
    bool tls = false;  // https
    std::string host;
    std::string port;
    std::string target;  // path and query, at least "/"
};
// "http[s]://HOST[:PORT]/PATH" -> parts; nullopt (with `why`) otherwise.
std::optional<url_parts> parse_http_url(const std::string& url, std::string* why);

struct http_result {
    int status = 0;     // 0: no HTTP answer (see error)
    std::string error;  // connection, TLS or timeout problem, one line
    std::string body;
};

struct tls_options {
    // PEM file of the certificate authorities to trust; "" trusts the system's (ca-certificates).
    std::string ca_file;
};

// Sends one request on a fresh connection and waits for the answer, up to `timeout` overall.
// https checks the server's certificate chain and that it names the URL's host.
http_result http_send(const std::string& method, const std::string& url, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout, const tls_options& tls = {});

}  // namespace scimsync::policies
