#pragma once
// The seam between the HTTP server and the endpoints: a table of (method, path pattern) ->
// handler. Endpoint TUs register their routes here; none of them sees Beast or a socket.

#include <functional>
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

    std::function<void(const std::string&)> notice_;
    std::vector<route> routes_;
};

}  // namespace scimsync::daemon
