#pragma once
// A small blocking HTTP/1.1 client for the policy connectors (Boost.Beast; this is the only
// translation unit of policies/ that includes it). Plain http:// only.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace scimsync::policies {

struct url_parts {
    std::string host;
    std::string port;
    std::string target;  // path and query, at least "/"
};
// "http://HOST[:PORT]/PATH" -> parts; nullopt (with `why`) otherwise.
std::optional<url_parts> parse_http_url(const std::string& url, std::string* why);

struct http_result {
    int status = 0;     // 0: no HTTP answer (see error)
    std::string error;  // connection or timeout problem, one line
    std::string body;
};

// Sends one request on a fresh connection and waits for the answer, up to `timeout` overall.
http_result http_send(const std::string& method, const std::string& url, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout);

}  // namespace scimsync::policies
