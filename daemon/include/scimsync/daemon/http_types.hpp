#pragma once
// The HTTP vocabulary that request handlers see. Deliberately free of Boost: handlers and their
// unit tests build a request, call a function and inspect the response, with no socket and no
// Beast (the server translates to and from Beast in one TU, server.cpp).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scimsync::daemon {

// Header names compare case-insensitively (RFC 9110); order and duplicates are preserved.
using http_headers = std::vector<std::pair<std::string, std::string>>;

std::optional<std::string_view> find_header(const http_headers& headers, std::string_view name);

struct http_request {
    std::string method;  // "GET", "POST", ... as sent (the server does not normalise it)
    std::string target;  // request-target as sent: path plus optional "?query"
    http_headers headers;
    std::string body;
    std::string remote;  // peer address "HOST:PORT", for logs; "" when not over a socket
    // Set only by in-process callers (the admin socket's "admin.http" command, whose socket
    // permissions are the access control): the admin API then takes this as the actor instead
    // of asking for a bearer token. The HTTP server never sets it.
    std::string trusted_actor;
    // Filled by the router from "{name}" segments of the matched pattern (undecoded).
    std::map<std::string, std::string, std::less<>> path_params;

    std::string_view path() const;   // target up to '?'
    std::string_view query() const;  // target after '?', "" if none
    std::optional<std::string_view> header(std::string_view name) const {
        return find_header(headers, name);
    }
};

struct http_response {
    int status = 200;
    http_headers headers;  // the server adds Content-Length, Server and Connection itself
    std::string body;

    void set_header(std::string name, std::string value);
    std::optional<std::string_view> header(std::string_view name) const {
        return find_header(headers, name);
    }
};

inline constexpr std::string_view json_content_type = "application/json";
inline constexpr std::string_view scim_content_type = "application/scim+json";
inline constexpr std::string_view scim_error_schema = "urn:ietf:params:scim:api:messages:2.0:Error";

// A response with `body` (already serialised JSON) and the given content type.
http_response json_response(int status, std::string body,
                            std::string_view content_type = json_content_type);

// An RFC 7644 section 3.12 error: {"schemas":[Error],"status":"<status>","detail":...} with
// "scimType" only when non-empty; Content-Type application/scim+json.
// application/x-www-form-urlencoded: "%XX" and "+" decoded.
std::string percent_decode(std::string_view s);
// A query string as name -> value, names lower-cased (the last of repeated names wins).
std::map<std::string, std::string> parse_query(std::string_view query);

http_response scim_error(int status, std::string_view detail, std::string_view scim_type = {});

}  // namespace scimsync::daemon
