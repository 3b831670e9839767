#include "scimsync/daemon/router.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>

namespace scimsync::daemon {

namespace {

// Splits "/a/b/c" into {"a","b","c"}; "/" gives {""}, so "/" only matches pattern "/".
std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.empty() || path.front() != '/') return out;
    path.remove_prefix(1);
    while (true) {
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

}  // namespace

void router::add(std::string method, std::string_view pattern, handler_fn handler) {
    add_async(std::move(method), pattern,
              [h = std::move(handler)](http_request request, const respond_fn& respond) {
                  respond(h(request));
              });
}

void router::add_async(std::string method, std::string_view pattern, async_handler_fn handler) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
    }
    route r{std::move(method), std::string(pattern), {}, std::move(handler)};
    for (const auto part : split_path(pattern)) {
        const bool param = part.size() > 2 && part.front() == '{' && part.back() == '}';
        r.segments.push_back(param ? segment{std::string(part.substr(1, part.size() - 2)), true}
                                   : segment{std::string(part), false});
    }
    for (const auto& existing : routes_) {
        if (existing.method == r.method && existing.pattern == r.pattern) {
            throw std::invalid_argument("route registered twice: " + r.method + " " + r.pattern);
        }
    }
    routes_.push_back(std::move(r));
}

bool router::match(const route& r, std::string_view path, http_request* request) {
    const auto parts = split_path(path);
    if (parts.size() != r.segments.size()) return false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& s = r.segments[i];
        if (s.is_param ? parts[i].empty() : parts[i] != s.text) return false;
    }
    if (request != nullptr) {
        request->path_params.clear();
        for (std::size_t i = 0; i < parts.size(); ++i) {
            if (r.segments[i].is_param) {
                request->path_params.emplace(r.segments[i].text, std::string(parts[i]));
            }
        }
    }
    return true;
}

void router::dispatch(http_request request, const respond_fn& respond) const {
    if (!hooks_.principal && !hooks_.admit && !hooks_.answered)
        return dispatch_to(std::move(request), respond);
    auto record = std::make_shared<request_record>();
    const auto started = std::chrono::steady_clock::now();
    record->method = request.method;
    record->path = std::string(request.path());
    record->remote = request.remote;
    if (hooks_.principal) record->principal = hooks_.principal(request);
    for (const auto& r : routes_) {
        if (r.method == request.method && match(r, record->path, nullptr)) {
            record->route = r.pattern;
            break;
        }
    }
    const respond_fn observed = [this, record, started, respond](http_response res) {
        record->status = res.status;
        record->elapsed = std::chrono::steady_clock::now() - started;
        if (hooks_.answered) hooks_.answered(*record);
        respond(std::move(res));
    };
    if (hooks_.admit) {
        if (auto refused = hooks_.admit(record->principal)) return observed(std::move(*refused));
    }
    dispatch_to(std::move(request), observed);
}

void router::dispatch_to(http_request request, const respond_fn& respond) const {
    const std::string path(request.path());
    std::vector<std::string_view> allowed;
    for (const auto& r : routes_) {
        if (!match(r, path, nullptr)) continue;
        if (r.method != request.method) {
            if (std::ranges::find(allowed, r.method) == allowed.end()) allowed.push_back(r.method);
            continue;
        }
        match(r, path, &request);
        const std::string method = request.method;  // `request` is moved into the handler
        try {
            r.handler(std::move(request), respond);
        } catch (const std::exception& e) {
            // A handler that throws before responding is a bug; answer rather than hang the
            // client. (If it threw after responding, the server drops the second response.)
            if (notice_) notice_(method + " " + path + ": handler failed: " + e.what());
            respond(scim_error(500, "internal error"));
        }
        return;
    }
    if (!allowed.empty()) {
        std::string allow;
        for (const auto m : allowed) allow += (allow.empty() ? "" : ", ") + std::string(m);
        auto res = scim_error(405, "method " + request.method + " is not allowed on " + path);
        res.set_header("Allow", allow);
        respond(std::move(res));
        return;
    }
    respond(scim_error(404, "no resource at " + path));
}

http_response router::handle(http_request request) const {
    auto promise = std::make_shared<std::promise<http_response>>();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto future = promise->get_future();
    dispatch(std::move(request), [promise, answered](http_response r) {
        if (!answered->exchange(true)) promise->set_value(std::move(r));
    });
    return future.get();
}

}  // namespace scimsync::daemon
