#pragma once
// The seam between the HTTP server and the endpoints: a table of (method, path pattern) ->
// handler. Endpoint TUs register their routes here; none of them sees Beast or a socket.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scimsync/daemon/http_types.hpp"

namespace scimsync::daemon {

// Completes one request. Must be called exactly once, from any thread; the server writes the
// response on the connection's strand.
using respond_fn = std::function<void(http_response)>;

// A handler that answers at once. Runs on an io thread, so it must not block for long.
using handler_fn = std::function<http_response(const http_request&)>;

// A handler that answers later (e.g. after a log append is durable): it keeps `respond` and
// calls it when done. The request is moved in and may be kept.
using async_handler_fn = std::function<void(http_request, respond_fn)>;

// What the router tells an observer about each request once it is answered.
struct request_record {
    std::string method;
    std::string route;  // the matched pattern ("/scim/v2/Users/{id}"); "" when none matched
    std::string path;
    int status = 0;
    std::chrono::duration<double> elapsed{};  // from dispatch to the response
    std::string principal;                    // see request_hooks::principal
    std::string remote;
};

// Optional hooks around every request (metrics, request logs, rate limits).
struct request_hooks {
    // Who sent the request, by name (a valid bearer token's name), or "" for nobody known.
    // Never the token itself.
    std::function<std::string(const http_request&)> principal;
    // Runs before the handler: a response refuses the request (e.g. 429 when over a rate).
    std::function<std::optional<http_response>(const std::string& principal)> admit;
    // Runs once per request with what was answered; from any thread.
    std::function<void(const request_record&)> answered;
};

// Patterns are absolute paths whose segments are literals or "{name}" (one non-empty segment,
// stored in http_request::path_params). A trailing "/" in the request path is not ignored.
// Registration happens before the server starts; after that the router is only read, from any
// number of io threads at once.
class router {
public:
    // `notice` receives one line per handler failure (the client only sees a generic 500).
    explicit router(std::function<void(const std::string&)> notice = {})
        : notice_(std::move(notice)) {}

    void add(std::string method, std::string_view pattern, handler_fn handler);
    void add_async(std::string method, std::string_view pattern, async_handler_fn handler);
    // Before the server starts.
    void set_hooks(request_hooks hooks) { hooks_ = std::move(hooks); }

    // Routes one request: the matching handler, else 405 (path known, method not; with Allow)
    // or 404, both as SCIM errors. A handler that throws yields a 500 SCIM error (without the
    // exception's text, which may quote internals) and a notice.
    void dispatch(http_request request, const respond_fn& respond) const;

    // dispatch() for callers that want the response as a value (tests, tools). Blocks until an
    // async handler responds.
    http_response handle(http_request request) const;

private:
    struct segment {
        std::string text;
        bool is_param = false;
    };
    struct route {
        std::string method;
        std::string pattern;
        std::vector<segment> segments;
        async_handler_fn handler;
    };
    static bool match(const route& r, std::string_view path, http_request* request);

    void dispatch_to(http_request request, const respond_fn& respond) const;

    std::function<void(const std::string&)> notice_;
    std::vector<route> routes_;
    request_hooks hooks_;
};

}  // namespace scimsync::daemon
