#pragma once
// The SCIM 2.0 service provider (RFC 7643/7644) and the admin commands that manage its tokens
// and the provisioning switch. Every write becomes events in the log; reads are served from the
// directory view that follows the log.
//
// Write path (one per request):
//   1. outside any lock: authenticate, parse and normalise the body, compute the resulting
//      resource (a PATCH works on a copy of the current state and remembers its version) and
//      serialise it once: that text becomes the event's data, the stored view and the answer;
//   2. under the command mutex: check the request against the *write model* (the directory as
//      of every event submitted so far, durable or not: existence, If-Match, uniqueness, and for
//      a PATCH that the version it patched is still current, else it starts again), fold the
//      events into the write model and submit them to the log (submission order = log order,
//      so uniqueness and ETag checks are decided in log order);
//   3. when the log reports them durable, wait until the *read model* (the directory the
//      projector runner folds from the durable log) has applied them;
//   4. answer from the read model. A client therefore reads its own writes, and no answer ever
//      shows state that is not durable.
// A rejected request submits nothing.

#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/router.hpp"
#include "scimsync/eventlog/log.hpp"
#include "scimsync/eventlog/projector.hpp"
#include "scimsync/model/directory.hpp"

namespace scimsync::daemon {

// Where the admin API lives (its users and groups share the SCIM handlers, see scim_service.cpp).
inline constexpr std::string_view admin_api_base = "/admin/v1";

struct scim_options {
    std::string base_path = "/scim/v2";
    std::size_t max_results = 1000;   // largest page; advertised as filter.maxResults
    std::size_t default_count = 100;  // page size when the client gives no count
    std::size_t bulk_max_operations = 1000;
    std::size_t bulk_max_payload = 1u << 20;
    std::optional<eventlog::snapshot_store> snapshots;
    // While running, a forked child writes each snapshot from a copy-on-write image, so the
    // views go on (the fork itself pauses them for milliseconds). A snapshot waits for at
    // least snapshot_every_events events and for snapshot_growth times the directory's entries
    // (eventlog::runner_options); start-up replays what came after it (roughly 2 s per
    // hundred thousand events).
    std::uint64_t snapshot_every_events = 100'000;
    double snapshot_growth = 1.0;
    std::function<void(const std::string&)> notice;
    // Observers (metrics): the events the views applied (a type and how many of it, after
    // each run of events), on the runner's thread; each append's time from submission to
    // durable, on the log's thread. Must not block.
    std::function<void(std::string_view type, std::uint64_t count)> on_event;
    std::function<void(double seconds)> on_append;
    // While start() replays the log: (applied, last) now and then, on the calling thread.
    std::function<void(eventlog::seq_no applied, eventlog::seq_no last)> on_progress;
};

// A bearer token defined in the configuration ([tokens.<name>], a file holding it) rather than
// issued with `token create`: for deployments whose secrets manager puts the token in place.
// Only its hash is kept; requests made with it carry the actor "config-token:<name>".
struct config_token {
    std::string name;
    std::string hash;  // "sha256:<hex>" of the token
    std::string scope = "scim";
};

class scim_service {
public:
    scim_service(eventlog::log& log, scim_options options);
    ~scim_service();

    // Rebuilds the directory (snapshot + tail) and starts following the log.
    eventlog::result<void> start();
    // The externally visible base URL of the SCIM API, e.g. "http://127.0.0.1:8080/scim/v2",
    // used for meta.location and printed by `token create`. Set once the listener is bound.
    void set_base_url(std::string url);

    void add_routes(router& routes);
    void add_commands(command_registry& commands);

    // Writes a final snapshot and stops following the log.
    void stop();

    // Replaces the configuration's tokens (start-up and SIGHUP).
    void set_config_tokens(std::vector<config_token> tokens);
    // The name of the valid bearer token a request carries, or "" (for logs and rate limits;
    // never the token).
    std::string principal_name(const http_request& req);
    // The last seq the views have applied.
    eventlog::seq_no applied() const;

    // ---- the same write path and read model for the rest of the admin API (access_api) ----
    // A refused command: HTTP status and a one-line detail (no secrets).
    struct refusal {
        int status = 400;
        std::string detail;
    };
    using decision = std::expected<std::vector<eventlog::event>, refusal>;
    // Runs `decide` against the write model under the command mutex (so its checks and the
    // append are in log order, like every SCIM write) and appends the events it returns
    // (time and version are filled in). `done` runs once they are durable and readable, with
    // nullopt, or with the refusal (503 when the append failed); at once when there are none.
    void execute(std::function<decision(const model::directory&)> decide,
                 std::function<void(std::optional<refusal>)> done);
    // Runs `fn` on the read model under its shared lock.
    void read(const std::function<void(const model::directory&)>& fn) const;
    // Authenticates an admin API request (admin-scope bearer token, or an in-process request
    // from the admin socket): the actor for events, or the 401 answer.
    std::expected<std::string, http_response> admin_actor(const http_request& req);
    // The answer SCIM handlers give, for the admin API's own errors: the SCIM error schema.
    static http_response error(int status, std::string_view detail);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::daemon
