#include "scimsync/daemon/scim_service.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>
#include <utility>
#include <variant>

#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/directory_projector.hpp"
#include "scimsync/model/events.hpp"
#include "scimsync/model/json_text.hpp"
#include "scimsync/model/scim/filter.hpp"
#include "scimsync/model/scim/patch.hpp"
#include "scimsync/model/scim/resource.hpp"
#include "secrets.hpp"

namespace scimsync::daemon {

namespace el = scimsync::eventlog;
namespace scim = scimsync::model::scim;
namespace names = scimsync::model::event_names;
namespace jt = scimsync::model::json_text;
using nlohmann::json;

namespace {

constexpr std::string_view list_schema = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr std::string_view ldap_extension = "urn:scimsync:schemas:extension:ldap:1.0:User";

http_response error_response(const scim::scim_error& e) {
    return scim_error(e.status, e.detail, e.scim_type);
}

http_response scim_json(int status, const json& body) {
    return json_response(status, body.dump(), scim_content_type);
}

std::string etag_of(std::uint64_t version) {
    return "W/\"" + std::to_string(version) + "\"";
}

std::string string_member(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The data of UserCreated and UserReplaced as canonical text around the resource's text, so
// the resource is serialised once for the event, both directories and the response.
std::string user_data(const std::string& id, const std::string& resource_text, bool with_password,
                      const std::optional<std::string>& password_hash) {
    std::string d;
    d.reserve(resource_text.size() + id.size() + 32);
    d += "{\"id\":";
    jt::append_quoted(d, id);
    if (with_password) {
        d += ",\"password_hash\":";
        if (password_hash)
            jt::append_quoted(d, *password_hash);
        else
            d += "null";
    }
    d += ",\"resource\":";
    d += resource_text;
    d += '}';
    return d;
}

// RFC 7232 entity tags as sent in If-Match / If-None-Match: "*", W/"3", "3", or a list.
bool etag_matches(std::string_view header, std::uint64_t version) {
    const std::string want = std::to_string(version);
    std::size_t pos = 0;
    while (pos < header.size()) {
        auto comma = header.find(',', pos);
        std::string_view tag =
            header.substr(pos, comma == std::string_view::npos ? header.npos : comma - pos);
        pos = comma == std::string_view::npos ? header.size() : comma + 1;
        while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
        while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
        if (tag == "*") return true;
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"')
            tag = tag.substr(1, tag.size() - 2);
        if (tag == want) return true;
    }
    return false;
}

// Parameters of a list request, from a query string or a SearchRequest body.
struct list_params {
    std::string filter;
    std::string sort_by;
    bool descending = false;
    std::int64_t start_index = 1;
    std::optional<std::int64_t> count;
    std::vector<std::string> attributes;
    std::vector<std::string> excluded;
};

scim::scim_result<std::int64_t> to_int(const std::string& name, const std::string& text) {
    try {
        std::size_t used = 0;
        const auto v = std::stoll(text, &used);
        if (used == text.size()) return v;
    } catch (const std::exception&) {
    }
    return scim::scim_fail(400, "invalidValue", name + " must be an integer, got \"" + text + "\"");
}

scim::scim_result<list_params> params_from_query(std::string_view query) {
    list_params p;
    auto q = parse_query(query);
    if (auto it = q.find("filter"); it != q.end()) p.filter = it->second;
    if (auto it = q.find("sortby"); it != q.end()) p.sort_by = it->second;
    if (auto it = q.find("sortorder"); it != q.end())
        p.descending = scim::iequals(it->second, "descending");
    if (auto it = q.find("startindex"); it != q.end()) {
        auto v = to_int("startIndex", it->second);
        if (!v) return std::unexpected(v.error());
        p.start_index = *v;
    }
    if (auto it = q.find("count"); it != q.end()) {
        auto v = to_int("count", it->second);
        if (!v) return std::unexpected(v.error());
        p.count = *v;
    }
    if (auto it = q.find("attributes"); it != q.end())
        p.attributes = scim::split_attribute_list(it->second);
    if (auto it = q.find("excludedattributes"); it != q.end())
        p.excluded = scim::split_attribute_list(it->second);
    return p;
}

scim::scim_result<list_params> params_from_search(const json& body) {
    list_params p;
    auto text = [&](const char* key) -> std::string {
        for (const auto& [k, v] : body.items())
            if (scim::iequals(k, key) && v.is_string()) return v.get<std::string>();
        return {};
    };
    auto number = [&](const char* key) -> std::optional<std::int64_t> {
        for (const auto& [k, v] : body.items())
            if (scim::iequals(k, key) && v.is_number_integer()) return v.get<std::int64_t>();
        return std::nullopt;
    };
    auto list = [&](const char* key) {
        std::vector<std::string> out;
        for (const auto& [k, v] : body.items()) {
            if (!scim::iequals(k, key)) continue;
            if (v.is_array()) {
                for (const auto& s : v)
                    if (s.is_string()) out.push_back(s.get<std::string>());
            } else if (v.is_string()) {
                out = scim::split_attribute_list(v.get<std::string>());
            }
        }
        return out;
    };
    p.filter = text("filter");
    p.sort_by = text("sortBy");
    p.descending = scim::iequals(text("sortOrder"), "descending");
    if (auto v = number("startIndex")) p.start_index = *v;
    p.count = number("count");
    p.attributes = list("attributes");
    p.excluded = list("excludedAttributes");
    return p;
}

// A mutex that spins briefly before it sleeps (glibc's adaptive mutex). The command mutex is
// held for a few microseconds per write and wanted by every HTTP thread: a plain mutex put the
// loser to sleep and woke it with two system calls and a context switch each time (a third of
// the daemon's futex calls under POST load), where waiting out the holder costs less.
class adaptive_mutex {
public:
    adaptive_mutex() {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&m_, &a);
        pthread_mutexattr_destroy(&a);
    }
    ~adaptive_mutex() { pthread_mutex_destroy(&m_); }
    adaptive_mutex(const adaptive_mutex&) = delete;
    adaptive_mutex& operator=(const adaptive_mutex&) = delete;
    void lock() { pthread_mutex_lock(&m_); }
    bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
    void unlock() { pthread_mutex_unlock(&m_); }

private:
    pthread_mutex_t m_;
};

}  // namespace

// The read model: the directory projector behind a reader/writer lock. The runner thread
// applies events under the unique lock, taken once per run of events; request handlers read
// under the shared lock.
class locked_directory final : public el::projector {
public:
    std::string name() const override { return inner_.name(); }
    std::uint32_t schema_version() const override { return inner_.schema_version(); }
    // Without the lock: the runner asks while it holds it for a run.
    el::seq_no checkpoint() const override { return el::seq_no{checkpoint_.load()}; }
    // The events applied, by type, after each run (metrics); outside the lock. Set before
    // start.
    std::function<void(std::string_view, std::uint64_t)> on_event;

    // Only inside a run (the runner brackets every apply), under the run's lock.
    el::result<void> apply(const el::event& e) override {
        auto r = inner_.apply(e);
        checkpoint_.store(inner_.checkpoint().value);
        if (r && inner_.dir().last_void().kind != model::directory::void_kind::none) {
            voids_.emplace(e.seq.value, inner_.dir().last_void());
            // Only writers waiting for their own events look these up, right after the apply.
            while (voids_.size() > max_voids) voids_.erase(voids_.begin());
        }
        if (r) count_event(e.type);
        if (r && changes_credentials(e.type)) refresh_credentials();
        return r;
    }
    // The runner applies events in runs (see el::projector::begin_run): the lock is taken
    // once per run. Both are called on the runner thread only.
    void begin_run() override { run_lock_ = std::unique_lock(mu_); }
    void end_run() override {
        if (run_lock_.owns_lock()) run_lock_.unlock();
        report_events();
    }

    // What authenticating a request needs: the issued tokens and the provisioning switch.
    // A copy of the directory's, behind its own lock, so that requests do not queue behind
    // the runner's runs for it; refreshed by the events that change it.
    struct credentials {
        std::map<std::string, model::token_state, std::less<>> tokens;
        bool provisioning = true;
    };
    // Runs `fn(credentials)` under the credentials' shared lock.
    template <class F>
    auto read_credentials(F&& fn) const {
        std::shared_lock lk(cred_mu_);
        return fn(std::as_const(cred_));
    }

private:
    static bool changes_credentials(const std::string& type) {
        return type == model::event_names::token_issued ||
               type == model::event_names::token_revoked ||
               type == model::event_names::provisioning_disabled ||
               type == model::event_names::provisioning_enabled;
    }
    // Under the directory's unique lock.
    void refresh_credentials() {
        credentials c;
        for (const auto* t : inner_.dir().tokens()) c.tokens.emplace(t->id, *t);
        c.provisioning = inner_.dir().provisioning_enabled();
        std::unique_lock lk(cred_mu_);
        cred_ = std::move(c);
    }
    void count_event(const std::string& type) {
        for (auto& [t, n] : run_counts_)
            if (t == type) {
                ++n;
                return;
            }
        run_counts_.emplace_back(type, 1);
    }
    void report_events() {
        if (on_event)
            for (const auto& [t, n] : run_counts_)
                if (n > 0) on_event(t, n);
        for (auto& c : run_counts_) c.second = 0;  // the types stay: a run has few
    }

public:
    // The verdict on the first event in [first, last] that had no effect, if any.
    std::optional<model::directory::void_verdict> void_in(std::uint64_t first,
                                                          std::uint64_t last) const {
        std::shared_lock lk(mu_);
        auto it = voids_.lower_bound(first);
        if (it == voids_.end() || it->first > last) return std::nullopt;
        return it->second;
    }
    // Holds the read model steady (shared) for a command decided against it; while the lock is
    // held, held_dir() may be used.
    std::shared_lock<std::shared_mutex> hold() const { return std::shared_lock(mu_); }
    const model::directory& held_dir() const { return inner_.dir(); }
    // On the runner thread between runs: the runner is the only writer, so no lock.
    std::uint64_t state_size() const override { return inner_.state_size(); }
    std::optional<std::string> snapshot() const override {
        // Also runs in the background snapshot's child, where the lock is this process's copy:
        // readers may have held it shared at the fork, never a writer (the runner forks).
        std::shared_lock lk(mu_);
        return inner_.snapshot();
    }
    bool write_snapshot(const std::function<void(std::string_view)>& out) const override {
        std::shared_lock lk(mu_);  // as in snapshot()
        return inner_.write_snapshot(out);
    }
    el::result<void> restore(std::string_view body, el::seq_no at) override {
        std::unique_lock lk(mu_);
        auto r = inner_.restore(body, at);
        checkpoint_.store(inner_.checkpoint().value);
        refresh_credentials();
        return r;
    }
    // Runs `fn(directory)` under the shared lock.
    template <class F>
    auto read(F&& fn) const {
        std::shared_lock lk(mu_);
        return fn(inner_.dir());
    }
    // Runs `fn(directory&)` under the unique lock; for changes that do not alter what the
    // directory holds (capacity).
    template <class F>
    void mutate(F&& fn) {
        std::unique_lock lk(mu_);
        fn(inner_.mutable_dir());
    }

private:
    static constexpr std::size_t max_voids = 10'000;
    mutable std::shared_mutex mu_;
    std::unique_lock<std::shared_mutex> run_lock_;  // held from begin_run to end_run
    std::atomic<std::uint64_t> checkpoint_{0};      // inner_.checkpoint(), for any thread
    std::vector<std::pair<std::string, std::uint64_t>> run_counts_;  // type -> applied
    mutable std::shared_mutex cred_mu_;
    credentials cred_;
    model::directory_projector inner_;
    std::map<std::uint64_t, model::directory::void_verdict> voids_;  // seq -> verdict
};

// Answers owed at once by a command holding the read model (multi-writer logs): they read the
// read model, so they run when the command's lock is released (see command_lock).
thread_local std::vector<std::function<void()>>* deferred_while_held = nullptr;

// Who a write comes from: an identity provider over SCIM, or an administrator through the admin
// API (same handlers under /admin/v1); the event's source and actor.
struct origin {
    std::string source;  // "scim" or "admin"
    std::string actor;   // "token:<id>"
};

bool admin_door(const http_request& req) {
    return req.path().starts_with(admin_api_base) &&
           (req.path().size() == admin_api_base.size() || req.path()[admin_api_base.size()] == '/');
}

struct scim_service::impl {
    el::log& log;
    scim_options opt;
    std::string base_url;
    std::string admin_url;

    locked_directory read;
    std::unique_ptr<el::projector_runner> runner;

    adaptive_mutex cmd_mu;  // serialises validation + submission (= log order)
    // Single writer (file log): every submitted event is folded into `write` at once, and
    // commands are decided against it. Several writers (Kafka): another daemon's events are
    // not known until read back, so commands are decided against the read model and carry
    // their preconditions in the events; the log's order decides, and the writer reads the
    // verdict back (model::directory::last_void). `write` stays empty then.
    const bool single_writer;
    model::directory write;  // guarded by cmd_mu

    // The state commands are decided against; call only under a command_lock.
    const model::directory& model() const { return single_writer ? write : read.held_dir(); }

    // Serialises commands and, on a multi-writer log, holds the read model steady while a
    // command is decided against it. Answers that would read the read model at once wait
    // until the lock is released.
    class command_lock {
    public:
        explicit command_lock(impl& s) : s_(s), cmd_(s.cmd_mu, std::defer_lock) { lock(); }
        ~command_lock() { unlock(); }
        command_lock(const command_lock&) = delete;
        command_lock& operator=(const command_lock&) = delete;
        void lock() {
            cmd_.lock();
            if (!s_.single_writer) {
                view_ = s_.read.hold();
                deferred_while_held = &deferred_;
            }
        }
        void unlock() {
            if (!cmd_.owns_lock()) return;
            if (view_.owns_lock()) {
                view_.unlock();
                deferred_while_held = nullptr;
            }
            cmd_.unlock();
            auto run = std::move(deferred_);
            deferred_.clear();
            for (auto& fn : run) fn();
        }

    private:
        impl& s_;
        std::unique_lock<adaptive_mutex> cmd_;
        std::shared_lock<std::shared_mutex> view_;
        std::vector<std::function<void()>> deferred_;
    };

    std::mutex wait_mu;
    std::uint64_t applied = 0;
    std::multimap<std::uint64_t, std::function<void()>> waiting;

    // Tells this service from others in the same process (tests) in per-thread caches.
    const std::uint64_t instance = [] {
        static std::atomic<std::uint64_t> services{0};
        return services.fetch_add(1) + 1;
    }();
    std::mutex used_mu;
    std::map<std::string, el::utc_time> last_used;  // token id -> last successful use (memory only)

    mutable std::shared_mutex config_tokens_mu;
    std::vector<config_token> config_tokens;  // from the configuration; replaced on reload

    // The configuration token `presented` is, if any (constant-time comparisons).
    std::optional<config_token> config_token_for(std::string_view presented) const {
        std::shared_lock lk(config_tokens_mu);
        std::optional<config_token> found;
        for (const auto& t : config_tokens)
            if (secrets::token_matches(presented, t.hash)) found = t;
        return found;
    }

    impl(el::log& l, scim_options o)
        : log(l), opt(std::move(o)), single_writer(l.single_writer()) {}

    void notice(const std::string& s) const {
        if (opt.notice) opt.notice(s);
    }

    // ---- read-your-writes -------------------------------------------------------------
    void on_applied(el::seq_no seq) {
        std::vector<std::function<void()>> ready;
        {
            std::lock_guard lk(wait_mu);
            applied = std::max(applied, seq.value);
            auto end = waiting.upper_bound(applied);
            for (auto it = waiting.begin(); it != end; ++it) ready.push_back(std::move(it->second));
            waiting.erase(waiting.begin(), end);
        }
        for (auto& fn : ready) fn();
    }

    void when_applied(std::uint64_t seq, std::function<void()> fn) {
        {
            std::lock_guard lk(wait_mu);
            if (applied < seq) {
                waiting.emplace(seq, std::move(fn));
                return;
            }
        }
        if (deferred_while_held != nullptr) return deferred_while_held->push_back(std::move(fn));
        fn();
    }

    // ---- events --------------------------------------------------------------------------
    static el::event make_event(const char* type, std::string stream, const json& data,
                                const std::string& source, const std::string& actor,
                                const std::string& request_id) {
        return make_event_text(type, std::move(stream), data.dump(), source, actor, request_id);
    }

    // `data` is canonical JSON text (json_text.hpp).
    static el::event make_event_text(const char* type, std::string stream, std::string data,
                                     const std::string& source, const std::string& actor,
                                     const std::string& request_id) {
        el::event e;
        e.type = type;
        e.version = 1;
        e.source = source;
        e.actor = actor;
        e.request_id = request_id;
        e.stream = std::move(stream);
        e.data = std::move(data);
        return e;
    }

    // What became of a submitted command: the append's result and, on a multi-writer log, the
    // verdict of the readers (kind none: it took effect).
    struct outcome {
        el::result<el::append_result> appended;
        model::directory::void_verdict verdict;
    };

    // Submits `events` and calls `done` once they are durable and applied to the read model
    // (or with the error if the append failed). Caller holds a command_lock, which makes
    // submission order the log order. Single writer: the events are folded into the write
    // model now. Several writers: the first event carries `expect` (the state the command was
    // decided against: {} for "as it is", {"version": N}), the others void with it, and the
    // verdict comes from the read model.
    void submit(std::vector<el::event> events, std::optional<json> expect,
                std::function<void(outcome)> done) {
        if (single_writer) {
            // The log stamps each event's time again as it appends it (the daemon does not
            // keep event times), so this stamp is the write model's alone: no copy needed.
            for (auto& e : events) {
                e.time = el::system_utc_now();
                if (auto r = write.apply(e); !r)
                    notice("write model rejected its own event: " + r.error().message);
            }
        } else if (expect) {
            for (std::size_t i = 0; i < events.size(); ++i)
                add_expect(events[i], i == 0 ? *expect : json{{"with_previous", true}});
        }
        const auto submitted = std::chrono::steady_clock::now();
        // The log calls its handler once, so the handler hands `done` on rather than copying it
        // (three std::functions and what they hold).
        log.async_append(std::move(events), [this, done = std::move(done),
                                             submitted](el::result<el::append_result> r) mutable {
            if (opt.on_append)
                opt.on_append(
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted)
                        .count());
            if (!r) return done(outcome{std::move(r), {}});
            const std::uint64_t last = r->last.value;
            when_applied(last, [this, done = std::move(done), r = std::move(r)]() mutable {
                model::directory::void_verdict verdict;
                if (!single_writer)
                    if (auto v = read.void_in(r->first.value, r->last.value)) verdict = *v;
                done(outcome{std::move(r), std::move(verdict)});
            });
        });
    }

    // Adds the preconditions to an event's canonical data.
    static void add_expect(el::event& e, const json& expect) {
        if (e.data.starts_with("{\"id\":")) {  // "expect" sorts first: no tree needed
            e.data.insert(1, "\"expect\":" + expect.dump() + ",");
            return;
        }
        auto d = json::parse(e.data);
        d["expect"] = expect;
        e.data = d.dump();
    }

    // Submits and answers with `render()` once the events are readable. When the log's order
    // voided the command (another daemon's write came first): a uniqueness conflict is 409, a
    // resource gone is 404, a version overtaken is 412 when the client sent If-Match, else
    // `retry` runs the command again on the newer state (at most `max_attempts` times).
    static constexpr int max_attempts = 3;
    void submit_and_respond(std::vector<el::event> events, std::optional<json> expect,
                            respond_fn respond, std::function<http_response()> render,
                            std::function<void()> retry = {}) {
        submit(std::move(events), std::move(expect),
               [this, respond = std::move(respond), render = std::move(render),
                retry = std::move(retry)](outcome o) {
                   using kind = model::directory::void_kind;
                   if (!o.appended) {
                       notice("append failed: " + o.appended.error().message);
                       return respond(scim_error(
                           503, "the change could not be recorded durably; it was not applied"));
                   }
                   switch (o.verdict.kind) {
                       case kind::none:
                           return respond(render());
                       case kind::taken:
                           return respond(scim_error(409, o.verdict.detail, "uniqueness"));
                       case kind::gone:
                           return respond(scim_error(404, o.verdict.detail));
                       case kind::stale:
                           if (retry) return retry();
                           return respond(
                               scim_error(412, "the resource has changed: " + o.verdict.detail));
                       case kind::with_previous:
                           break;
                   }
                   respond(scim_error(
                       409, "a concurrent change overtook this one: " + o.verdict.detail));
               });
    }

    // Blocks the calling (admin) thread until `events` are durable and readable.
    el::result<el::append_result> submit_and_wait(std::vector<el::event> events) {
        std::promise<el::result<el::append_result>> p;
        auto f = p.get_future();
        {
            command_lock lk(*this);
            submit(std::move(events), std::nullopt,
                   [&p](outcome o) { p.set_value(std::move(o.appended)); });
        }
        return f.get();
    }

    // The retry of a command whose version another daemon overtook, or nothing when the
    // client named the version it expects (If-Match: the answer is 412) or the attempts are
    // used up (the answer is 409).
    template <class F>
    std::function<void()> retry_of(const http_request& req, int attempt, F again) {
        if (single_writer || req.header("if-match") || attempt >= max_attempts) return {};
        return [again = std::move(again), attempt]() mutable { again(attempt + 1); };
    }

    // The version a command on a multi-writer log expects: the one it was decided against.
    static json at_version(std::uint64_t v) { return json{{"version", v}}; }
    // For commands that hold whatever the version: the resource must exist (and names stay
    // unique), or the version named by If-Match.
    static json as_it_is(const http_request& req, std::uint64_t v) {
        return req.header("if-match") ? at_version(v) : json::object();
    }

    // ---- authentication -----------------------------------------------------------------
    // The token's id when the request carries a valid, unexpired, unrevoked bearer token.
    // `provisioning` is set to the provisioning switch, read in the same look at the
    // credentials as the token.
    std::optional<http_response> authenticate(const http_request& req, std::string& token_id,
                                              std::string_view scope, bool& provisioning) {
        auto unauthorized = [](std::string_view detail) {
            auto r = scim_error(401, detail);
            r.set_header("WWW-Authenticate", "Bearer realm=\"scimsync\"");
            return r;
        };
        auto header = req.header("authorization");
        if (!header) return unauthorized("a bearer token is required");
        std::string_view h = *header;
        if (h.size() < 7 || !scim::iequals(h.substr(0, 7), "Bearer "))
            return unauthorized("a bearer token is required");
        std::string_view presented = h.substr(7);
        while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
        auto id = secrets::token_id(presented);
        struct look {
            bool issued = false;
            std::string verdict;  // "" when the issued token is good
            bool provisioning = true;
        };
        const auto seen = read.read_credentials([&](const locked_directory::credentials& c) {
            look l;
            l.provisioning = c.provisioning;
            const auto found = id ? c.tokens.find(*id) : c.tokens.end();
            if (found == c.tokens.end()) return l;
            const model::token_state* t = &found->second;
            l.issued = true;
            if (!secrets::token_matches(presented, t->hash))
                l.verdict = "the bearer token is not valid";
            else if (t->revoked)
                l.verdict = "the bearer token has been revoked";
            else if (t->expires && *t->expires <= el::system_utc_now())
                l.verdict = "the bearer token has expired";
            else if (t->scope != scope)
                l.verdict = t->scope == "admin"
                                ? "this is an admin API token; SCIM needs a SCIM token"
                                : "this is a SCIM token; the admin API needs an admin token "
                                  "(scimsyncctl token create --scope admin)";
            return l;
        });
        provisioning = seen.provisioning;
        if (!seen.issued) {
            const auto configured = config_token_for(presented);
            if (!configured) return unauthorized("the bearer token is not valid");
            if (configured->scope != scope)
                return unauthorized(configured->scope == "admin"
                                        ? "this is an admin API token; SCIM needs a SCIM token"
                                        : "this is a SCIM token; the admin API needs an admin "
                                          "token");
            token_id = "config-token:" + configured->name;
            return std::nullopt;
        }
        if (!seen.verdict.empty()) return unauthorized(seen.verdict);
        token_id = "token:" + *id;
        note_used(*id);
        return std::nullopt;
    }

    // Records a token's use for `token list` (memory only). Each thread records a token at
    // most once a second: under load that keeps the shared map out of every request.
    void note_used(const std::string& id) {
        thread_local std::uint64_t last_service = 0;
        thread_local std::string last_id;
        thread_local el::utc_time last_at{};
        const auto now = el::system_utc_now();
        if (last_service == instance && id == last_id && now - last_at < std::chrono::seconds(1))
            return;
        last_service = instance;
        last_id = id;
        last_at = now;
        std::lock_guard lk(used_mu);
        last_used[id] = now;
    }

    // ---- rendering ----------------------------------------------------------------------
    json meta(const scim::resource_type& type, const model::resource_state& r,
              const std::string& id) const {
        return {{"resourceType", type.name},
                {"created", el::format_time(r.created)},
                {"lastModified", el::format_time(r.last_modified)},
                {"location", base_url + type.endpoint + "/" + id},
                {"version", etag_of(r.version)}};
    }

    std::optional<json> render_user(const model::directory& d, std::string_view id) const {
        const auto* u = d.user(id);
        if (u == nullptr) return std::nullopt;
        json j = json::parse(u->json);
        // Attributes LDAP owns (the bridge's drift policy "accept"): shown, never written.
        if (const auto* owned = d.ldap_attributes(id)) {
            j[std::string(ldap_extension)] = json{{"attributes", *owned}};
            if (j.contains("schemas") && j["schemas"].is_array())
                j["schemas"].push_back(ldap_extension);
        }
        j["meta"] = meta(scim::user_type(), *u, std::string(id));
        return j;
    }

    // A user in full as JSON text: its stored text plus meta (no tree), or the rendered tree
    // when LDAP owns some of its attributes.
    std::string user_text(const model::directory& d, const model::user_state& u,
                          std::string_view id) const {
        if (d.ldap_attributes(id) != nullptr) return render_user(d, id)->dump();
        return jt::with_member(u.json, "meta", meta_text(scim::user_type(), u, id));
    }

    std::optional<json> render_group(const model::directory& d, std::string_view id,
                                     bool with_members) const {
        const auto* g = d.group(id);
        if (g == nullptr) return std::nullopt;
        json j = json::parse(g->json);
        if (with_members) {
            json members = json::array();
            if (const auto* m = d.members(id)) {
                std::vector<std::pair<std::string, std::string>> sorted(m->begin(), m->end());
                std::sort(sorted.begin(), sorted.end());
                for (const auto& [value, type] : sorted) {
                    json member{{"value", value}, {"type", type}};
                    member["$ref"] = base_url + (type == "Group" ? "/Groups/" : "/Users/") + value;
                    if (type == "User") {
                        if (const auto* u = d.user(value)) member["display"] = u->user_name;
                    } else if (const auto* sub = d.group(value)) {
                        member["display"] = sub->display_name;
                    }
                    members.push_back(std::move(member));
                }
            }
            if (!members.empty()) j["members"] = std::move(members);
        }
        j["meta"] = meta(scim::group_type(), *g, std::string(id));
        return j;
    }

    std::optional<json> render(const scim::resource_type& type, const model::directory& d,
                               std::string_view id, bool with_members = true) const {
        return &type == &scim::user_type() ? render_user(d, id) : render_group(d, id, with_members);
    }

    // The id of a stored resource, read from its text.
    static std::string id_of(const model::resource_state& r) {
        if (auto members = jt::canonical_members(r.json))
            for (const auto& m : *members)
                if (m.key == "id") return jt::string_value(m.value).value_or(std::string());
        return string_member(json::parse(r.json), "id");
    }

    // meta as JSON text (keys in canonical order).
    std::string meta_text(const scim::resource_type& type, const model::resource_state& r,
                          std::string_view id) const {
        std::string m;
        m.reserve(192);
        m += "{\"created\":";
        jt::append_quoted(m, el::format_time(r.created));
        m += ",\"lastModified\":";
        jt::append_quoted(m, el::format_time(r.last_modified));
        m += ",\"location\":";
        jt::append_quoted(m, base_url + type.endpoint + "/" + std::string(id));
        m += ",\"resourceType\":";
        jt::append_quoted(m, type.name);
        m += ",\"version\":";
        jt::append_quoted(m, etag_of(r.version));
        m += '}';
        return m;
    }

    http_response single(const scim::resource_type& type, const std::string& id, int status,
                         const std::vector<std::string>& attributes = {},
                         const std::vector<std::string>& excluded = {}) const {
        if (&type == &scim::user_type() && attributes.empty() && excluded.empty()) {
            // A user in full is its stored text plus meta: no tree. The stored layout is what
            // project() returns for it unchanged (resource_test.cpp checks that).
            return read.read([&](const model::directory& d) {
                const auto* u = d.user(id);
                if (u == nullptr) return scim_error(404, type.name + " " + id + " not found");
                auto resp = json_response(status, user_text(d, *u, id), scim_content_type);
                resp.set_header("ETag", etag_of(u->version));
                resp.set_header("Location", base_url + type.endpoint + "/" + id);
                return resp;
            });
        }
        return read.read([&](const model::directory& d) {
            bool members = std::none_of(excluded.begin(), excluded.end(), [](const std::string& a) {
                return scim::iequals(a, "members");
            });
            auto j = render(type, d, id, members);
            if (!j) return scim_error(404, type.name + " " + id + " not found");
            auto resp = scim_json(status, scim::project(type, *j, attributes, excluded));
            resp.set_header("ETag", (*j)["meta"]["version"].get<std::string>());
            resp.set_header("Location", (*j)["meta"]["location"].get<std::string>());
            return resp;
        });
    }

    // ---- request plumbing ---------------------------------------------------------------
    static scim::scim_result<json> body_json(const http_request& req) {
        if (auto ct = req.header("content-type")) {
            std::string_view t = *ct;
            t = t.substr(0, t.find(';'));
            while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
            if (!scim::iequals(t, scim_content_type) && !scim::iequals(t, json_content_type))
                return scim::scim_fail(
                    415, "", "Content-Type must be application/scim+json or application/json");
        }
        auto j = json::parse(req.body, nullptr, false);
        if (j.is_discarded())
            return scim::scim_fail(400, "invalidSyntax", "the request body is not valid JSON");
        if (!j.is_object())
            return scim::scim_fail(400, "invalidSyntax", "the request body must be a JSON object");
        return j;
    }

    std::optional<http_response> precondition(const http_request& req,
                                              std::uint64_t version) const {
        if (auto m = req.header("if-match"); m && !etag_matches(*m, version))
            return scim_error(412,
                              "the resource has changed (its version is " + etag_of(version) + ")");
        return std::nullopt;
    }

    // Common gate for SCIM requests: authentication and the provisioning switch. Returns the
    // token id (the actor) or the response to send.
    std::variant<origin, http_response> gate(const http_request& req, bool discovery = false) {
        std::string token;
        const bool admin = admin_door(req);
        if (admin && !req.trusted_actor.empty()) return origin{"admin", req.trusted_actor};
        bool provisioning = true;
        if (auto denied = authenticate(req, token, admin ? "admin" : "scim", provisioning))
            return std::move(*denied);
        if (admin) return origin{"admin", token};
        if (!discovery && !provisioning)
            return scim_error(503,
                              "provisioning is disabled by the administrator "
                              "(scimsyncctl provisioning enable); nothing was changed");
        return origin{"scim", token};
    }

    static std::string request_id(const http_request& req) {
        if (auto h = req.header("x-request-id")) return std::string(h->substr(0, 128));
        if (auto h = req.header("client-request-id"))
            return std::string(h->substr(0, 128));  // Entra
        return next_request_id();
    }

    // A request id for requests that bring none: unique without a random draw per request
    // (one per process, then a counter), e.g. "5f0c1a2b9e4d-42".
    static std::string next_request_id() {
        static const std::string prefix = secrets::uuid_v4().substr(24) + "-";
        static std::atomic<std::uint64_t> counter{0};
        return prefix + std::to_string(counter.fetch_add(1, std::memory_order_relaxed) + 1);
    }

    // The common start of POST and PUT: authentication and the provisioning switch, the body,
    // its normalisation. On failure the error has been sent and nullopt is returned.
    struct write_request {
        origin who;
        scim::normalized input;
    };
    std::optional<write_request> read_write_request(const scim::resource_type& type,
                                                    const http_request& req, respond_fn& respond) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) {
            respond(std::move(*r));
            return std::nullopt;
        }
        auto body = body_json(req);
        if (!body) {
            respond(error_response(body.error()));
            return std::nullopt;
        }
        auto n = scim::normalize(type, *body);
        if (!n) {
            respond(error_response(n.error()));
            return std::nullopt;
        }
        return write_request{std::get<origin>(g), std::move(*n)};
    }

    // Users and groups belong to whoever created them: the identity provider's are changed only
    // over SCIM (admins may only grant them access), local ones only through the admin API.
    std::optional<http_response> managed_elsewhere(const origin& who,
                                                   const scim::resource_type& type,
                                                   const std::string& id,
                                                   const model::resource_state& r) const {
        const bool admin = who.source == "admin";
        if (r.local == admin) return std::nullopt;
        if (admin) {
            std::string client = model().owner(r);
            if (client.starts_with("token:"))
                if (const auto* t = model().token(client.substr(6))) client = t->name;
            return scim_error(
                403, type.name + " " + id + " is managed by the identity provider (SCIM client \"" +
                         client + "\"): change it there; here only its access can be granted");
        }
        return scim_error(403, type.name + " " + id +
                                   " was created by an administrator and is managed locally "
                                   "(scimsyncctl / admin API), not over SCIM");
    }

    // ---- commands: users ----------------------------------------------------------------
    // JSON work (normalising, PATCH, serialising, password hashing) happens before cmd_mu is
    // taken; under it only the checks against the write model, folding and submitting.
    http_response user_taken(const std::string& user_name) const {
        return scim_error(409, "userName \"" + user_name + "\" is already taken", "uniqueness");
    }
    http_response external_id_taken(const scim::resource_type& type,
                                    const std::string& external_id) const {
        return scim_error(409,
                          "externalId \"" + external_id + "\" is already used by another " +
                              type.name + " of this client",
                          "uniqueness");
    }

    void create_user(http_request req, respond_fn respond) {
        auto w = read_write_request(scim::user_type(), req, respond);
        if (!w) return;
        auto& resource = w->input.resource;
        const std::string id = secrets::uuid_v4();
        resource["id"] = id;
        const std::string user_name = string_member(resource, "userName");
        const std::string external_id = string_member(resource, "externalId");
        std::optional<std::string> hash;
        if (w->input.password) hash = secrets::hash_password(*w->input.password);
        auto e = make_event_text(names::user_created, "User/" + id,
                                 user_data(id, resource.dump(), true, hash), w->who.source,
                                 w->who.actor, request_id(req));
        command_lock lk(*this);
        if (model().user_by_name(user_name) != nullptr) return respond(user_taken(user_name));
        if (!external_id.empty() &&
            model().user_by_external_id(w->who.actor, external_id) != nullptr)
            return respond(external_id_taken(scim::user_type(), external_id));
        submit_and_respond({std::move(e)}, json::object(), std::move(respond),
                           [this, id] { return single(scim::user_type(), id, 201); });
    }

    // The outcome of a PUT or PATCH, computed outside cmd_mu: the resulting resource as text.
    struct user_replacement {
        std::string text;  // canonical, "id" included
        std::string user_name;
        std::string external_id;
        bool password_set = false;
        std::optional<std::string> password_hash;
    };
    static user_replacement replacement_of(const std::string& id, json resource,
                                           const std::optional<std::string>& password) {
        resource["id"] = id;
        user_replacement r;
        r.user_name = string_member(resource, "userName");
        r.external_id = string_member(resource, "externalId");
        // Replacing invalid UTF-8 cannot change a stored user: only the id (from the path) can
        // hold any, and such an id names no user, which the caller answers with 404.
        r.text = resource.dump(-1, ' ', false, json::error_handler_t::replace);
        if (password) {
            r.password_set = true;
            r.password_hash = secrets::hash_password(*password);
        }
        return r;
    }

    // PUT and PATCH end here, under cmd_mu, with `current` the user's state in the write model.
    void replace_user(const http_request& req, respond_fn respond, const origin& who,
                      const std::string& id, const model::user_state& current, user_replacement r,
                      json expect, std::function<void()> retry) {
        if (auto refused = managed_elsewhere(who, scim::user_type(), id, current))
            return respond(std::move(*refused));
        // A name the user already holds needs no lookup (most PATCHes keep both): the index
        // maps it to this user. These lookups miss the cache on a big directory, under cmd_mu.
        if (r.user_name != current.user_name)
            if (const auto* other = model().user_by_name(r.user_name);
                other != nullptr && other != &current)
                return respond(user_taken(r.user_name));
        if (!r.external_id.empty() && r.external_id != current.external_id) {
            const auto* other = model().user_by_external_id(model().owner(current), r.external_id);
            if (other != nullptr && other != &current)
                return respond(external_id_taken(scim::user_type(), r.external_id));
        }
        if (!r.password_set && current.json == r.text) {
            // Nothing changes: no event; answer with the state as of everything durable so far.
            return when_applied(log.last_seq().value, [this, id, respond] {
                respond(single(scim::user_type(), id, 200));
            });
        }
        submit_and_respond(
            {make_event_text(names::user_replaced, "User/" + id,
                             user_data(id, r.text, r.password_set, r.password_hash), who.source,
                             who.actor, request_id(req))},
            std::move(expect), std::move(respond),
            [this, id] { return single(scim::user_type(), id, 200); }, std::move(retry));
    }

    void put_user(http_request req, respond_fn respond) {
        auto w = read_write_request(scim::user_type(), req, respond);
        if (!w) return;
        const std::string id = req.path_params.at("id");
        auto r = replacement_of(id, std::move(w->input.resource), w->input.password);
        command_lock lk(*this);
        const auto* current = model().user(id);
        if (current == nullptr) return respond(scim_error(404, "User " + id + " not found"));
        if (auto pre = precondition(req, current->version)) return respond(std::move(*pre));
        // PUT states the whole user: it holds over another daemon's change unless If-Match.
        replace_user(req, std::move(respond), w->who, id, *current, std::move(r),
                     as_it_is(req, current->version), {});
    }

    void patch_user(http_request req, respond_fn respond, int attempt = 1) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return respond(std::move(*r));
        auto body = body_json(req);
        if (!body) return respond(error_response(body.error()));
        const std::string id = req.path_params.at("id");
        const auto& who = std::get<origin>(g);
        // A PATCH is relative to the version it was applied to: on a multi-writer log it
        // expects that version, and runs again when another daemon's change came first.
        std::function<void()> again;
        if (!single_writer)
            again = retry_of(req, attempt,
                             [this, req, respond](int a) { patch_user(req, respond, a); });
        // Optimistic: patch a copy of the current state outside cmd_mu, then commit if the
        // user's version is still the one patched. A concurrent write to the same user makes
        // it try again; the last attempt holds cmd_mu throughout.
        constexpr int attempts = 3;
        for (int local = 1;; ++local) {
            command_lock lk(*this);
            const auto* current = model().user(id);
            if (current == nullptr) return respond(scim_error(404, "User " + id + " not found"));
            if (auto pre = precondition(req, current->version)) return respond(std::move(*pre));
            const bool last = local == attempts;
            const std::uint64_t version = current->version;
            std::string base;
            if (!last) {
                base = current->json;
                lk.unlock();
            }
            auto patched = scim::apply_patch(scim::user_type(),
                                             json::parse(last ? current->json : base), *body);
            if (!patched) return respond(error_response(patched.error()));
            auto n = scim::normalize(scim::user_type(), patched->resource);
            if (!n) return respond(error_response(n.error()));
            auto r = replacement_of(id, std::move(n->resource), patched->password);
            if (!last) {
                lk.lock();
                current = model().user(id);
                if (current == nullptr || current->version != version) continue;
            }
            return replace_user(req, std::move(respond), who, id, *current, std::move(r),
                                at_version(version), std::move(again));
        }
    }

    // ---- commands: groups ---------------------------------------------------------------
    // Checks members against the write model and fixes their type from what they are.
    std::optional<http_response> resolve_members(json& members) const {
        if (!members.is_array()) return std::nullopt;
        for (auto& m : members) {
            const std::string value = m.value("value", std::string());
            if (model().user(value) != nullptr)
                m["type"] = "User";
            else if (model().group(value) != nullptr)
                m["type"] = "Group";
            else
                return scim_error(400,
                                  "member \"" + value + "\" is neither a User nor a Group here",
                                  "invalidValue");
            m.erase("$ref");
            m.erase("display");
        }
        return std::nullopt;
    }

    void create_group(http_request req, respond_fn respond) {
        auto w = read_write_request(scim::group_type(), req, respond);
        if (!w) return;
        auto* n = &w->input;
        command_lock lk(*this);
        const std::string name = n->resource.value("displayName", std::string());
        if (model().group_by_name(name) != nullptr)
            return respond(
                scim_error(409, "displayName \"" + name + "\" is already taken", "uniqueness"));
        if (const auto ext = string_member(n->resource, "externalId");
            !ext.empty() && model().group_by_external_id(w->who.actor, ext) != nullptr)
            return respond(external_id_taken(scim::group_type(), ext));
        json members = n->resource.contains("members") ? n->resource["members"] : json::array();
        n->resource.erase("members");
        if (auto bad = resolve_members(members)) return respond(std::move(*bad));
        const std::string id = secrets::uuid_v4();
        n->resource["id"] = id;
        submit_and_respond(
            {make_event(names::group_created, "Group/" + id,
                        {{"id", id}, {"resource", n->resource}, {"members", members}},
                        w->who.source, w->who.actor, request_id(req))},
            json::object(), std::move(respond),
            [this, id] { return single(scim::group_type(), id, 201); });
    }

    // Turns a resulting group (with its full members list) into events against the current one.
    // On a multi-writer log it expects the version it was computed from (its member delta is
    // relative to that version's members) and runs again (`retry`) when overtaken.
    void replace_group(const http_request& req, respond_fn respond, const origin& who,
                       const std::string& id, json resource, bool members_given,
                       std::function<void()> retry) {
        if (auto refused = managed_elsewhere(who, scim::group_type(), id, *model().group(id)))
            return respond(std::move(*refused));
        const std::string name = resource.value("displayName", std::string());
        if (const auto* other = model().group_by_name(name); other != nullptr) {
            if (other != model().group(id))
                return respond(
                    scim_error(409, "displayName \"" + name + "\" is already taken", "uniqueness"));
        }
        if (const auto ext = string_member(resource, "externalId"); !ext.empty()) {
            const auto* self = model().group(id);
            const auto* other = model().group_by_external_id(model().owner(*self), ext);
            if (other != nullptr && other != self)
                return respond(external_id_taken(scim::group_type(), ext));
        }
        json members = resource.contains("members") ? resource["members"] : json::array();
        resource.erase("members");
        resource["id"] = id;
        if (auto bad = resolve_members(members)) return respond(std::move(*bad));
        std::vector<el::event> events;
        const auto rid = request_id(req);
        if (model().group(id)->json != resource.dump())
            events.push_back(make_event(names::group_replaced, "Group/" + id,
                                        {{"id", id}, {"resource", resource}}, who.source, who.actor,
                                        rid));
        if (members_given) {
            json added = json::array(), removed = json::array();
            std::unordered_map<std::string, std::string> wanted;
            for (const auto& m : members)
                wanted[m["value"].get<std::string>()] = m["type"].get<std::string>();
            const auto* current = model().members(id);
            for (const auto& [value, type] : wanted)
                if (current == nullptr || !current->contains(value))
                    added.push_back({{"value", value}, {"type", type}});
            if (current != nullptr)
                for (const auto& [value, type] : *current)
                    if (!wanted.contains(value)) removed.push_back(value);
            if (!added.empty() || !removed.empty())
                events.push_back(make_event(names::group_members_changed, "Group/" + id,
                                            {{"id", id}, {"added", added}, {"removed", removed}},
                                            who.source, who.actor, rid));
        }
        if (events.empty())
            return when_applied(log.last_seq().value, [this, id, respond] {
                respond(single(scim::group_type(), id, 200));
            });
        submit_and_respond(
            std::move(events), at_version(model().group(id)->version), std::move(respond),
            [this, id] { return single(scim::group_type(), id, 200); }, std::move(retry));
    }

    void put_group(http_request req, respond_fn respond, int attempt = 1) {
        auto w = read_write_request(scim::group_type(), req, respond);
        if (!w) return;
        auto* n = &w->input;
        const std::string id = req.path_params.at("id");
        std::function<void()> again;
        if (!single_writer)
            again =
                retry_of(req, attempt, [this, req, respond](int a) { put_group(req, respond, a); });
        command_lock lk(*this);
        const auto* current = model().group(id);
        if (current == nullptr) return respond(scim_error(404, "Group " + id + " not found"));
        if (auto pre = precondition(req, current->version)) return respond(std::move(*pre));
        // PUT replaces everything, members included: an absent members list means no members.
        replace_group(req, std::move(respond), w->who, id, std::move(n->resource), true,
                      std::move(again));
    }

    // Membership-only PATCH (what Okta and Entra send for group pushes) as a delta, without
    // materialising the member list: constant time per member, whatever the group's size.
    // nullopt when an operation is anything else.
    struct member_delta {
        json added = json::array();
        std::vector<std::string> removed;
    };
    static std::optional<member_delta> membership_only(const json& body) {
        auto ops = body.find("Operations");
        if (ops == body.end() || !ops->is_array() || ops->empty()) return std::nullopt;
        member_delta d;
        for (const auto& op : *ops) {
            if (!op.is_object()) return std::nullopt;
            const std::string name = scimsync::model::lower(op.value("op", std::string()));
            const std::string path = op.value("path", std::string());
            const json value = op.value("value", json());
            auto member_list = [](const json& v) -> std::optional<json> {
                if (!v.is_array()) return std::nullopt;
                for (const auto& m : v)
                    if (!m.is_object() || !m.contains("value") || !m["value"].is_string())
                        return std::nullopt;
                return v;
            };
            if (name == "add") {
                std::optional<json> list;
                if (scim::iequals(path, "members"))
                    list = member_list(value);
                else if (path.empty() && value.is_object() && value.size() == 1 &&
                         value.contains("members"))
                    list = member_list(value["members"]);
                if (!list) return std::nullopt;
                for (const auto& m : *list) d.added.push_back(m);
            } else if (name == "remove") {
                if (scim::iequals(path, "members")) {
                    auto list = member_list(value);
                    if (!list) return std::nullopt;  // remove all members: the general path
                    for (const auto& m : *list) d.removed.push_back(m["value"].get<std::string>());
                } else {
                    auto ref = scim::resolve(scim::group_type(), "members");
                    const auto open = path.find('[');
                    if (open == std::string::npos || path.back() != ']' ||
                        !scim::iequals(path.substr(0, open), "members"))
                        return std::nullopt;
                    auto f = scim::filter::parse_value_filter(
                        scim::group_type(), *ref, path.substr(open + 1, path.size() - open - 2));
                    if (!f) return std::nullopt;
                    auto eq = f->as_simple_equality();
                    if (!eq || !scim::iequals(eq->attr->name, "value")) return std::nullopt;
                    d.removed.push_back(eq->value);
                }
            } else {
                return std::nullopt;
            }
        }
        return d;
    }

    void patch_group(http_request req, respond_fn respond, int attempt = 1) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return respond(std::move(*r));
        const auto who = std::get<origin>(g);
        auto body = body_json(req);
        if (!body) return respond(error_response(body.error()));
        const std::string id = req.path_params.at("id");
        std::function<void()> again;
        if (!single_writer)
            again = retry_of(req, attempt,
                             [this, req, respond](int a) { patch_group(req, respond, a); });
        command_lock lk(*this);
        const auto* current = model().group(id);
        if (current == nullptr) return respond(scim_error(404, "Group " + id + " not found"));
        if (auto pre = precondition(req, current->version)) return respond(std::move(*pre));
        if (auto refused = managed_elsewhere(who, scim::group_type(), id, *current))
            return respond(std::move(*refused));
        if (auto delta = membership_only(*body)) {
            if (auto bad = resolve_members(delta->added)) return respond(std::move(*bad));
            const auto* members = model().members(id);
            json added = json::array(), removed = json::array();
            std::unordered_set<std::string> seen;
            for (const auto& m : delta->added) {
                const std::string v = m["value"];
                if ((members == nullptr || !members->contains(v)) && seen.insert(v).second)
                    added.push_back({{"value", v}, {"type", m["type"]}});
            }
            for (const auto& v : delta->removed)
                if (members != nullptr && members->contains(v) && seen.insert(v).second)
                    removed.push_back(v);
            if (added.empty() && removed.empty())
                return when_applied(log.last_seq().value,
                                    [this, id, respond] { respond(patch_answer(id)); });
            // Member deltas commute: another daemon's change in between does not matter (a
            // member deleted meanwhile is skipped), so only If-Match pins a version.
            return submit_and_respond(
                {make_event(names::group_members_changed, "Group/" + id,
                            {{"id", id}, {"added", added}, {"removed", removed}}, who.source,
                            who.actor, request_id(req))},
                as_it_is(req, current->version), std::move(respond),
                [this, id] { return patch_answer(id); });
        }
        // General path: the whole group, members included, through the PATCH engine.
        json full = json::parse(current->json);
        json members = json::array();
        if (const auto* m = model().members(id))
            for (const auto& [value, type] : *m)
                members.push_back({{"value", value}, {"type", type}});
        if (!members.empty()) full["members"] = members;
        auto patched = scim::apply_patch(scim::group_type(), full, *body);
        if (!patched) return respond(error_response(patched.error()));
        auto n = scim::normalize(scim::group_type(), patched->resource);
        if (!n) return respond(error_response(n.error()));
        replace_group(req, std::move(respond), who, id, std::move(n->resource), true,
                      std::move(again));
    }

    // A membership PATCH answers 204: re-sending a 100,000-member group would defeat the point.
    http_response patch_answer(const std::string& id) const {
        return read.read([&](const model::directory& d) {
            const auto* g = d.group(id);
            if (g == nullptr) return scim_error(404, "Group " + id + " not found");
            http_response r;
            r.status = 204;
            r.set_header("ETag", etag_of(g->version));
            return r;
        });
    }

    void delete_resource(const scim::resource_type& type, http_request req, respond_fn respond) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return respond(std::move(*r));
        const std::string id = req.path_params.at("id");
        const bool user = &type == &scim::user_type();
        command_lock lk(*this);
        const model::resource_state* current =
            user ? static_cast<const model::resource_state*>(model().user(id)) : model().group(id);
        if (current == nullptr)
            return respond(scim_error(404, type.name + " " + id + " not found"));
        if (auto pre = precondition(req, current->version)) return respond(std::move(*pre));
        const auto& who = std::get<origin>(g);
        if (auto refused = managed_elsewhere(who, type, id, *current))
            return respond(std::move(*refused));
        submit_and_respond(
            {make_event(user ? names::user_deleted : names::group_deleted, type.name + "/" + id,
                        {{"id", id}}, who.source, who.actor, request_id(req))},
            as_it_is(req, current->version), std::move(respond), [] {
                http_response r;
                r.status = 204;
                return r;
            });
    }

    // ---- reads --------------------------------------------------------------------------
    http_response get_one(const scim::resource_type& type, const http_request& req) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return std::move(*r);
        auto p = params_from_query(req.query());
        if (!p) return error_response(p.error());
        const std::string id = req.path_params.at("id");
        auto resp = single(type, id, 200, p->attributes, p->excluded);
        if (auto none = req.header("if-none-match"); none && resp.status == 200) {
            auto tag = resp.header("etag");
            const auto version = std::stoull(std::string(tag->substr(3, tag->size() - 4)));
            if (etag_matches(*none, version)) {
                http_response nm;
                nm.status = 304;
                nm.set_header("ETag", std::string(*tag));
                return nm;
            }
        }
        return resp;
    }

    http_response list(const scim::resource_type& type, const list_params& p) {
        std::optional<scim::filter> f;
        if (!p.filter.empty()) {
            auto parsed = scim::filter::parse(type, p.filter);
            if (!parsed) return error_response(parsed.error());
            f = std::move(*parsed);
        }
        std::optional<scim::attr_ref> sort_ref;
        if (!p.sort_by.empty()) {
            sort_ref = scim::resolve(type, p.sort_by);
            if (!sort_ref)
                return scim_error(400, "sortBy names no attribute: " + p.sort_by, "invalidPath");
        }
        const bool user = &type == &scim::user_type();
        const bool with_members =
            std::none_of(p.excluded.begin(), p.excluded.end(),
                         [](const std::string& a) { return scim::iequals(a, "members"); });
        return read.read([&](const model::directory& d) {
            // Candidates: from an index when the filter is an equality on an indexed attribute.
            std::vector<std::string> ids;
            bool indexed = false;
            if (f) {
                if (auto eq = f->as_simple_equality()) {
                    const std::string& a = eq->attr->name;
                    const model::resource_state* hit = nullptr;
                    if (a == "id") {
                        hit = user ? static_cast<const model::resource_state*>(d.user(eq->value))
                                   : d.group(eq->value);
                        indexed = true;
                    } else if (user && a == "userName") {
                        hit = d.user_by_name(eq->value);
                        indexed = true;
                    } else if (a == "externalId") {
                        // Several clients may use one externalId: every match.
                        for (auto id : user ? d.user_ids_by_external_id(eq->value)
                                            : d.group_ids_by_external_id(eq->value))
                            ids.emplace_back(id);
                        indexed = true;
                    } else if (!user && a == "displayName") {
                        hit = d.group_by_name(eq->value);
                        indexed = true;
                    }
                    if (hit != nullptr) ids.push_back(id_of(*hit));
                }
            }
            const std::size_t start = std::size_t(std::max<std::int64_t>(p.start_index, 1));
            std::size_t count =
                p.count ? std::size_t(std::max<std::int64_t>(*p.count, 0)) : opt.default_count;
            count = std::min(count, opt.max_results);
            auto page = [&](std::size_t total, json resources) {
                return scim_json(200, {{"schemas", {list_schema}},
                                       {"totalResults", total},
                                       {"startIndex", start},
                                       {"itemsPerPage", resources.size()},
                                       {"Resources", std::move(resources)}});
            };
            if (user && p.attributes.empty() && p.excluded.empty() && !sort_ref &&
                (indexed || !f)) {
                // Users in full, as stored text plus meta (see single()): no trees. The lookups
                // IdPs make constantly (userName eq, externalId eq) and plain paging.
                std::vector<std::string_view> chosen;
                if (indexed)
                    chosen.assign(ids.begin(), ids.end());
                else
                    chosen = d.user_ids();
                std::string body = "{\"Resources\":[";
                std::size_t n = 0;
                for (std::size_t i = start - 1; i < chosen.size() && n < count; ++i) {
                    const auto* u = d.user(chosen[i]);
                    if (u == nullptr) continue;
                    if (n++ > 0) body += ',';
                    body += user_text(d, *u, chosen[i]);
                }
                body += "],\"itemsPerPage\":" + std::to_string(n) + ",\"schemas\":[\"" +
                        std::string(list_schema) + "\"],\"startIndex\":" + std::to_string(start) +
                        ",\"totalResults\":" + std::to_string(chosen.size()) + "}";
                return json_response(200, std::move(body), scim_content_type);
            }
            if (!f && !sort_ref) {
                // Plain paging (an IdP importing everything): render only the page asked for.
                const auto all = user ? d.user_ids() : d.group_ids();
                json resources = json::array();
                for (std::size_t i = start - 1; i < all.size() && resources.size() < count; ++i)
                    if (auto j = render(type, d, all[i], with_members))
                        resources.push_back(scim::project(type, *j, p.attributes, p.excluded));
                return page(all.size(), std::move(resources));
            }
            std::vector<json> matched;
            if (indexed) {
                for (const auto& id : ids)
                    if (auto j = render(type, d, id, with_members))
                        matched.push_back(std::move(*j));
            } else {
                for (auto id : user ? d.user_ids() : d.group_ids()) {
                    auto j = render(type, d, id, true);
                    if (!j || (f && !f->matches(*j))) continue;
                    if (!with_members) j->erase("members");
                    matched.push_back(std::move(*j));
                }
            }
            if (sort_ref) {
                std::stable_sort(matched.begin(), matched.end(), [&](const json& a, const json& b) {
                    const int c = scim::compare_sort_values(
                        *sort_ref, scim::sort_value(*sort_ref, a), scim::sort_value(*sort_ref, b));
                    return p.descending ? c > 0 : c < 0;
                });
            }
            json resources = json::array();
            for (std::size_t i = start - 1; i < matched.size() && resources.size() < count; ++i)
                resources.push_back(scim::project(type, matched[i], p.attributes, p.excluded));
            return page(matched.size(), std::move(resources));
        });
    }

    http_response list_get(const scim::resource_type& type, const http_request& req) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return std::move(*r);
        auto p = params_from_query(req.query());
        if (!p) return error_response(p.error());
        return list(type, *p);
    }

    http_response list_search(const scim::resource_type& type, const http_request& req) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return std::move(*r);
        auto body = body_json(req);
        if (!body) return error_response(body.error());
        auto p = params_from_search(*body);
        if (!p) return error_response(p.error());
        return list(type, *p);
    }

    // RFC 7644 §3.4.3, POST /.search at the root: one list over the union of every resource
    // type, each resource carrying its own schemas and meta.resourceType. The filter and sortBy
    // are resolved per type: a type whose attributes cannot express them contributes nothing
    // (filter) or sorts as having no value (sortBy); only a filter no type accepts is an error.
    // The union is ordered by type (as /ResourceTypes lists them), then id, before a stable
    // sort, so pages are stable.
    http_response list_root(const list_params& p) {
        struct part {
            const scim::resource_type* type;
            std::optional<scim::filter> f;
            std::optional<scim::attr_ref> sort;
        };
        std::vector<part> parts;
        std::optional<scim::scim_error> refused;
        bool sortable = false;
        for (const auto* t : scim::resource_types()) {
            part pt{t, std::nullopt, std::nullopt};
            if (!p.filter.empty()) {
                auto parsed = scim::filter::parse(*t, p.filter);
                if (!parsed) {
                    if (!refused) refused = parsed.error();
                    continue;
                }
                pt.f = std::move(*parsed);
            }
            if (!p.sort_by.empty()) {
                pt.sort = scim::resolve(*t, p.sort_by);
                sortable = sortable || pt.sort.has_value();
            }
            parts.push_back(std::move(pt));
        }
        if (parts.empty() && refused) return error_response(*refused);
        if (!p.sort_by.empty() && !sortable)
            return scim_error(400, "sortBy names no attribute: " + p.sort_by, "invalidPath");
        const bool with_members =
            std::none_of(p.excluded.begin(), p.excluded.end(),
                         [](const std::string& a) { return scim::iequals(a, "members"); });
        const std::size_t start = std::size_t(std::max<std::int64_t>(p.start_index, 1));
        std::size_t count =
            p.count ? std::size_t(std::max<std::int64_t>(*p.count, 0)) : opt.default_count;
        count = std::min(count, opt.max_results);
        return read.read([&](const model::directory& d) {
            auto ids_of = [&](const scim::resource_type& t) {
                return &t == &scim::user_type() ? d.user_ids() : d.group_ids();
            };
            json resources = json::array();
            std::size_t total = 0;
            if (p.filter.empty() && p.sort_by.empty()) {
                // Plain paging: render only the page asked for.
                for (const auto& pt : parts) {
                    const auto ids = ids_of(*pt.type);
                    for (std::size_t i = 0; i < ids.size(); ++i, ++total) {
                        if (total + 1 < start || resources.size() >= count) continue;
                        if (auto j = render(*pt.type, d, ids[i], with_members))
                            resources.push_back(
                                scim::project(*pt.type, *j, p.attributes, p.excluded));
                    }
                }
            } else {
                std::vector<std::pair<const part*, json>> matched;
                for (const auto& pt : parts) {
                    for (auto id : ids_of(*pt.type)) {
                        auto j = render(*pt.type, d, id, true);
                        if (!j || (pt.f && !pt.f->matches(*j))) continue;
                        if (!with_members) j->erase("members");
                        matched.emplace_back(&pt, std::move(*j));
                    }
                }
                if (sortable) {
                    // One reference for every comparison (it decides case-exactness), so the
                    // order does not depend on which side of a comparison a type is.
                    const scim::attr_ref* ref = nullptr;
                    for (const auto& pt : parts)
                        if (ref == nullptr && pt.sort) ref = &*pt.sort;
                    auto value = [](const std::pair<const part*, json>& m) {
                        return m.first->sort ? scim::sort_value(*m.first->sort, m.second) : nullptr;
                    };
                    std::stable_sort(
                        matched.begin(), matched.end(), [&](const auto& a, const auto& b) {
                            const int c = scim::compare_sort_values(*ref, value(a), value(b));
                            return p.descending ? c > 0 : c < 0;
                        });
                }
                total = matched.size();
                for (std::size_t i = start - 1; i < matched.size() && resources.size() < count; ++i)
                    resources.push_back(scim::project(*matched[i].first->type, matched[i].second,
                                                      p.attributes, p.excluded));
            }
            return scim_json(200, {{"schemas", {list_schema}},
                                   {"totalResults", total},
                                   {"startIndex", start},
                                   {"itemsPerPage", resources.size()},
                                   {"Resources", std::move(resources)}});
        });
    }

    http_response root_search(const http_request& req) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return std::move(*r);
        auto body = body_json(req);
        if (!body) return error_response(body.error());
        auto p = params_from_search(*body);
        if (!p) return error_response(p.error());
        return list_root(*p);
    }

    // ---- bulk ---------------------------------------------------------------------------
    // RFC 7644 §3.7: operations run in order, each through the same handler as a single
    // request (so each is durable before the next starts); "bulkId:<id>" references in paths
    // and data are replaced by the ids of resources created earlier in the request; processing
    // stops once failOnErrors operations have failed.
    struct bulk_state {
        json operations;
        std::size_t next = 0;
        std::int64_t fail_on_errors = 0;
        std::int64_t errors = 0;
        json results = json::array();
        std::map<std::string, std::string> created;  // bulkId -> id
        http_headers auth;
        respond_fn respond;
        // Trampoline: an operation may complete inside its handler (an error, a no-op), and the
        // handler may hold cmd_mu then; the loop in bulk_next continues after the handler
        // returns. An operation completing later (durable, on another thread) resumes the loop.
        std::mutex mu;
        bool dispatching = false;
        bool finished_inline = false;
    };

    static bool resolve_bulk_ids(json& j, const std::map<std::string, std::string>& created,
                                 std::string& missing) {
        if (j.is_string()) {
            const std::string& v = j.get_ref<const std::string&>();
            if (v.rfind("bulkId:", 0) == 0) {
                auto it = created.find(v.substr(7));
                if (it == created.end()) {
                    missing = v.substr(7);
                    return false;
                }
                j = it->second;
            }
        } else if (j.is_structured()) {
            for (auto& child : j)
                if (!resolve_bulk_ids(child, created, missing)) return false;
        }
        return true;
    }

    void bulk(http_request req, respond_fn respond) {
        auto g = gate(req);
        if (auto* r = std::get_if<http_response>(&g)) return respond(std::move(*r));
        if (req.body.size() > opt.bulk_max_payload)
            return respond(scim_error(413, "a bulk request may carry at most " +
                                               std::to_string(opt.bulk_max_payload) + " bytes"));
        auto body = body_json(req);
        if (!body) return respond(error_response(body.error()));
        auto ops = body->find("Operations");
        if (ops == body->end() || !ops->is_array())
            return respond(
                scim_error(400, "a bulk request needs an Operations array", "invalidSyntax"));
        if (ops->size() > opt.bulk_max_operations)
            return respond(scim_error(413, "a bulk request may carry at most " +
                                               std::to_string(opt.bulk_max_operations) +
                                               " operations"));
        auto st = std::make_shared<bulk_state>();
        st->operations = std::move(*ops);
        st->fail_on_errors = body->value("failOnErrors", std::int64_t{0});
        for (const auto& h : req.headers)
            if (scim::iequals(h.first, "authorization")) st->auth.push_back(h);
        st->respond = std::move(respond);
        bulk_next(st);
    }

    void bulk_next(const std::shared_ptr<bulk_state>& st) {
        while (true) {
            if (st->next == st->operations.size() ||
                (st->fail_on_errors > 0 && st->errors >= st->fail_on_errors)) {
                return st->respond(scim_json(
                    200, {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:BulkResponse"}},
                          {"Operations", std::move(st->results)}}));
            }
            {
                std::lock_guard lk(st->mu);
                st->dispatching = true;
                st->finished_inline = false;
            }
            bulk_dispatch(st, st->operations[st->next++]);
            std::lock_guard lk(st->mu);
            st->dispatching = false;
            if (!st->finished_inline) return;  // the completion will call bulk_next
        }
    }

    void bulk_dispatch(const std::shared_ptr<bulk_state>& st, json op) {
        const std::string method = [&] {
            std::string m = op.value("method", std::string());
            for (auto& c : m) c = char(std::toupper(static_cast<unsigned char>(c)));
            return m;
        }();
        const std::string bulk_id = op.value("bulkId", std::string());
        auto record = [this, st, method, bulk_id](http_response r) {
            json result{{"method", method}, {"status", std::to_string(r.status)}};
            if (!bulk_id.empty()) result["bulkId"] = bulk_id;
            if (auto loc = r.header("location")) result["location"] = std::string(*loc);
            if (auto tag = r.header("etag")) result["version"] = std::string(*tag);
            if (r.status >= 400) {
                ++st->errors;
                result["response"] = json::parse(r.body, nullptr, false);
            } else if (r.status == 201 && !bulk_id.empty()) {
                if (auto loc = r.header("location")) {
                    const std::string l(*loc);
                    st->created[bulk_id] = l.substr(l.rfind('/') + 1);
                }
            }
            st->results.push_back(std::move(result));
            {
                std::lock_guard lk(st->mu);
                if (st->dispatching) {
                    st->finished_inline = true;
                    return;
                }
            }
            bulk_next(st);
        };
        std::string path = op.value("path", std::string());
        json data = op.contains("data") ? op["data"] : json();
        std::string missing;
        // In a path the reference is the last segment ("/Users/bulkId:alice"); in data, a whole
        // string value (a member's "value": "bulkId:alice").
        json path_json = path.substr(path.rfind('/') + 1);
        if (!resolve_bulk_ids(path_json, st->created, missing) ||
            !resolve_bulk_ids(data, st->created, missing))
            return record(scim_error(409,
                                     "bulkId \"" + missing +
                                         "\" does not name a resource created earlier "
                                         "in this request",
                                     "invalidValue"));
        path = path.substr(0, path.rfind('/') + 1) + path_json.get<std::string>();
        http_request sub;
        sub.method = method;
        sub.target = opt.base_path + path;
        sub.headers = st->auth;
        sub.headers.emplace_back("Content-Type", std::string(scim_content_type));
        if (op.contains("version") && op["version"].is_string())
            sub.headers.emplace_back("If-Match", op["version"].get<std::string>());
        if (!data.is_null()) sub.body = data.dump();
        // "/Users", "/Users/<id>", "/Groups", "/Groups/<id>"
        const auto slash = path.find('/', 1);
        const std::string kind = path.substr(0, slash);
        const std::string id = slash == std::string::npos ? std::string() : path.substr(slash + 1);
        const bool users = kind == "/Users", groups = kind == "/Groups";
        if ((!users && !groups) || (id.empty() != (method == "POST")) ||
            id.find('/') != std::string::npos)
            return record(scim_error(400,
                                     "bulk operations address /Users, /Groups or one of their "
                                     "resources; got " +
                                         method + " " + path,
                                     "invalidPath"));
        if (!id.empty()) sub.path_params["id"] = id;
        if (method == "POST")
            return users ? create_user(std::move(sub), record)
                         : create_group(std::move(sub), record);
        if (method == "PUT")
            return users ? put_user(std::move(sub), record) : put_group(std::move(sub), record);
        if (method == "PATCH")
            return users ? patch_user(std::move(sub), record) : patch_group(std::move(sub), record);
        if (method == "DELETE")
            return delete_resource(users ? scim::user_type() : scim::group_type(), std::move(sub),
                                   record);
        return record(
            scim_error(400, "unsupported bulk method \"" + method + "\"", "invalidSyntax"));
    }

    // ---- discovery ----------------------------------------------------------------------
    json service_provider_config() const {
        return {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"}},
                {"documentationUri", "https://github.com/scimsync/scimsync/tree/main/docs"},
                {"patch", {{"supported", true}}},
                {"bulk",
                 {{"supported", true},
                  {"maxOperations", opt.bulk_max_operations},
                  {"maxPayloadSize", opt.bulk_max_payload}}},
                {"filter", {{"supported", true}, {"maxResults", opt.max_results}}},
                {"changePassword", {{"supported", false}}},
                {"sort", {{"supported", true}}},
                {"etag", {{"supported", true}}},
                {"authenticationSchemes",
                 {{{"type", "oauthbearertoken"},
                   {"name", "OAuth Bearer Token"},
                   {"description", "A bearer token issued by `scimsyncctl token create`."},
                   {"primary", true}}}},
                {"meta",
                 {{"resourceType", "ServiceProviderConfig"},
                  {"location", base_url + "/ServiceProviderConfig"}}}};
    }
};

scim_service::scim_service(el::log& log, scim_options options)
    : impl_(std::make_unique<impl>(log, std::move(options))) {}

scim_service::~scim_service() {
    stop();
}

el::result<void> scim_service::start() {
    el::runner_options ro;
    ro.snapshots = impl_->opt.snapshots;
    ro.snapshot_every_events = impl_->opt.snapshot_every_events;
    ro.snapshot_growth = impl_->opt.snapshot_growth;
    ro.snapshot_in_background = true;
    ro.upcast = &model::catalogue();
    ro.notice = impl_->opt.notice;
    ro.on_applied = [p = impl_.get()](el::seq_no s) { p->on_applied(s); };
    if (impl_->opt.on_progress)
        ro.on_progress = [p = impl_.get()](el::seq_no at) {
            p->opt.on_progress(at, p->log.last_seq());
        };
    impl_->read.on_event = impl_->opt.on_event;
    impl_->runner = std::make_unique<el::projector_runner>(impl_->log, impl_->read, std::move(ro));
    if (auto r = impl_->runner->start(); !r) return r;
    // The write model starts equal to the read model: nothing is in flight yet. Both get room
    // to grow by half again (at least 100,000 users) before an index shard rehashes, which
    // stops writes (write model) or reads (read model) for a few milliseconds.
    impl_->read.mutate([&](model::directory& d) {
        d.reserve_headroom(std::max<std::size_t>(d.user_count() / 2, 100'000),
                           std::max<std::size_t>(d.group_count() / 2, 10'000));
        if (impl_->single_writer) impl_->write = d;
    });
    impl_->on_applied(impl_->runner->applied());
    return {};
}

void scim_service::set_config_tokens(std::vector<config_token> tokens) {
    std::unique_lock lk(impl_->config_tokens_mu);
    impl_->config_tokens = std::move(tokens);
}

std::string scim_service::principal_name(const http_request& req) {
    if (!req.trusted_actor.empty()) return req.trusted_actor;
    auto header = req.header("authorization");
    if (!header || header->size() < 7 || !scim::iequals(header->substr(0, 7), "Bearer ")) return "";
    std::string_view presented = header->substr(7);
    while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
    if (auto id = secrets::token_id(presented)) {
        auto name = impl_->read.read_credentials(
            [&](const locked_directory::credentials& c) -> std::optional<std::string> {
                const auto t = c.tokens.find(*id);
                if (t == c.tokens.end()) return std::nullopt;
                return secrets::token_matches(presented, t->second.hash) ? t->second.name
                                                                         : std::string();
            });
        if (name) return *name;
    }
    if (auto t = impl_->config_token_for(presented)) return t->name;
    return "";
}

el::seq_no scim_service::applied() const {
    return impl_->runner ? impl_->runner->applied() : el::seq_no{};
}

void scim_service::set_base_url(std::string url) {
    impl_->admin_url = url + std::string(admin_api_base);
    impl_->base_url = std::move(url) + impl_->opt.base_path;
}

void scim_service::stop() {
    if (impl_ && impl_->runner) {
        if (auto r = impl_->runner->snapshot_now(); !r)
            impl_->notice("final snapshot failed: " + r.error().message);
        impl_->runner->stop();
        impl_->runner.reset();
    }
}

void scim_service::add_routes(router& routes) {
    impl* s = impl_.get();
    const auto& user = scim::user_type();
    const auto& group = scim::group_type();
    // Users and groups are also served under the admin API, for local ones (admin tokens;
    // managed_elsewhere keeps each side to its own).
    for (const std::string& b : {s->opt.base_path, std::string(admin_api_base)}) {
        // .search before {id}: routes match in registration order.
        routes.add("POST", b + "/Users/.search",
                   [s, &user](const http_request& r) { return s->list_search(user, r); });
        routes.add("POST", b + "/Groups/.search",
                   [s, &group](const http_request& r) { return s->list_search(group, r); });
        routes.add("POST", b + "/.search",
                   [s](const http_request& r) { return s->root_search(r); });
        routes.add("GET", b + "/Users",
                   [s, &user](const http_request& r) { return s->list_get(user, r); });
        routes.add("GET", b + "/Groups",
                   [s, &group](const http_request& r) { return s->list_get(group, r); });
        routes.add("GET", b + "/Users/{id}",
                   [s, &user](const http_request& r) { return s->get_one(user, r); });
        routes.add("GET", b + "/Groups/{id}",
                   [s, &group](const http_request& r) { return s->get_one(group, r); });
        routes.add_async("POST", b + "/Users", [s](http_request r, respond_fn f) {
            s->create_user(std::move(r), std::move(f));
        });
        routes.add_async("PUT", b + "/Users/{id}", [s](http_request r, respond_fn f) {
            s->put_user(std::move(r), std::move(f));
        });
        routes.add_async("PATCH", b + "/Users/{id}", [s](http_request r, respond_fn f) {
            s->patch_user(std::move(r), std::move(f));
        });
        routes.add_async("DELETE", b + "/Users/{id}", [s, &user](http_request r, respond_fn f) {
            s->delete_resource(user, std::move(r), std::move(f));
        });
        routes.add_async("POST", b + "/Groups", [s](http_request r, respond_fn f) {
            s->create_group(std::move(r), std::move(f));
        });
        routes.add_async("PUT", b + "/Groups/{id}", [s](http_request r, respond_fn f) {
            s->put_group(std::move(r), std::move(f));
        });
        routes.add_async("PATCH", b + "/Groups/{id}", [s](http_request r, respond_fn f) {
            s->patch_group(std::move(r), std::move(f));
        });
        routes.add_async("DELETE", b + "/Groups/{id}", [s, &group](http_request r, respond_fn f) {
            s->delete_resource(group, std::move(r), std::move(f));
        });
    }
    const std::string b = s->opt.base_path;
    routes.add_async("POST", b + "/Bulk",
                     [s](http_request r, respond_fn f) { s->bulk(std::move(r), std::move(f)); });
    routes.add("GET", b + "/ServiceProviderConfig", [s](const http_request& r) {
        auto g = s->gate(r, true);
        if (auto* e = std::get_if<http_response>(&g)) return std::move(*e);
        return scim_json(200, s->service_provider_config());
    });
    routes.add("GET", b + "/ResourceTypes", [s](const http_request& r) {
        auto g = s->gate(r, true);
        if (auto* e = std::get_if<http_response>(&g)) return std::move(*e);
        json all = json::array();
        for (const auto* t : scim::resource_types()) all.push_back(scim::to_json(*t));
        return scim_json(200, {{"schemas", {list_schema}},
                               {"totalResults", all.size()},
                               {"startIndex", 1},
                               {"itemsPerPage", all.size()},
                               {"Resources", all}});
    });
    routes.add("GET", b + "/ResourceTypes/{name}", [s](const http_request& r) {
        auto g = s->gate(r, true);
        if (auto* e = std::get_if<http_response>(&g)) return std::move(*e);
        for (const auto* t : scim::resource_types())
            if (scim::iequals(t->name, r.path_params.at("name")))
                return scim_json(200, scim::to_json(*t));
        return scim_error(404, "no resource type " + r.path_params.at("name"));
    });
    routes.add("GET", b + "/Schemas", [s](const http_request& r) {
        auto g = s->gate(r, true);
        if (auto* e = std::get_if<http_response>(&g)) return std::move(*e);
        json all = json::array();
        for (const auto* sc :
             {&scim::user_schema(), &scim::enterprise_user_schema(), &scim::group_schema()})
            all.push_back(scim::to_json(*sc));
        return scim_json(200, {{"schemas", {list_schema}},
                               {"totalResults", all.size()},
                               {"startIndex", 1},
                               {"itemsPerPage", all.size()},
                               {"Resources", all}});
    });
    routes.add("GET", b + "/Schemas/{id}", [s](const http_request& r) {
        auto g = s->gate(r, true);
        if (auto* e = std::get_if<http_response>(&g)) return std::move(*e);
        for (const auto* sc :
             {&scim::user_schema(), &scim::enterprise_user_schema(), &scim::group_schema()})
            if (scim::iequals(sc->id, r.path_params.at("id")))
                return scim_json(200, scim::to_json(*sc));
        return scim_error(404, "no schema " + r.path_params.at("id"));
    });
}

namespace {

// "30d", "90d", "1y", "12h", "none" -> duration (nullopt = never expires).
std::expected<std::optional<std::chrono::seconds>, std::string> parse_ttl(const std::string& text) {
    if (text == "none" || text == "never") return std::optional<std::chrono::seconds>{};
    if (text.size() >= 2) {
        try {
            std::size_t used = 0;
            const long n = std::stol(text.substr(0, text.size() - 1), &used);
            const char unit = text.back();
            if (n > 0 && used == text.size() - 1) {
                if (unit == 'h') return std::optional(std::chrono::seconds(n * 3600));
                if (unit == 'd') return std::optional(std::chrono::seconds(n * 86400));
                if (unit == 'y') return std::optional(std::chrono::seconds(n * 365 * 86400));
            }
        } catch (const std::exception&) {
        }
    }
    return std::unexpected("ttl must be like 30d, 90d, 1y, 12h or none (got \"" + text + "\")");
}

}  // namespace

void scim_service::add_commands(command_registry& commands) {
    impl* s = impl_.get();
    commands.add("token.create", [s](const json& args) -> command_result {
        const std::string name = args.value("name", std::string());
        if (name.empty() || name.size() > 64)
            return std::unexpected("token create needs --name (1 to 64 characters)");
        auto ttl = parse_ttl(args.value("ttl", std::string("90d")));
        if (!ttl) return std::unexpected(ttl.error());
        const std::string scope = args.value("scope", std::string("scim"));
        if (scope != "scim" && scope != "admin")
            return std::unexpected(
                "--scope must be scim (for identity providers) or admin (for "
                "the admin API), not \"" +
                scope + "\"");
        const auto t = secrets::issue_token();
        const auto now = el::system_utc_now();
        json data{
            {"id", t.id}, {"name", name}, {"hash", t.hash}, {"created", el::format_time(now)}};
        if (scope != "scim") data["scope"] = scope;
        data["expires"] = *ttl ? json(el::format_time(now + **ttl)) : json(nullptr);
        auto r = s->submit_and_wait({impl::make_event(names::token_issued, "Token/" + t.id, data,
                                                      "admin", socket_actor(args), "")});
        if (!r) return std::unexpected("the token could not be recorded: " + r.error().message);
        const std::string base = scope == "admin" ? s->admin_url : s->base_url;
        return json{{"base_url", base}, {"token", t.token}, {"id", t.id},
                    {"name", name},     {"scope", scope},   {"expires", data["expires"]}};
    });
    commands.add("token.list", [s](const json&) -> command_result {
        json out = json::array();
        std::map<std::string, el::utc_time> used;
        {
            std::lock_guard lk(s->used_mu);
            used = s->last_used;
        }
        s->read.read([&](const model::directory& d) {
            for (const auto* t : d.tokens()) {
                json j{{"id", t->id}, {"name", t->name}, {"created", el::format_time(t->created)}};
                j["expires"] = t->expires ? json(el::format_time(*t->expires)) : json(nullptr);
                j["revoked"] = t->revoked;
                j["scope"] = t->scope;
                auto u = used.find(t->id);
                j["last_used"] = u == used.end() ? json(nullptr) : json(el::format_time(u->second));
                out.push_back(std::move(j));
            }
            return 0;
        });
        return json{{"tokens", out}};
    });
    commands.add("token.revoke", [s](const json& args) -> command_result {
        const std::string id = args.value("id", std::string());
        const bool known = s->read.read([&](const model::directory& d) {
            const auto* t = d.token(id);
            return t != nullptr && !t->revoked;
        });
        if (!known) return std::unexpected("no active token with id \"" + id + "\"");
        auto r = s->submit_and_wait({impl::make_event(
            names::token_revoked, "Token/" + id, {{"id", id}}, "admin", socket_actor(args), "")});
        if (!r)
            return std::unexpected("the revocation could not be recorded: " + r.error().message);
        return json{{"id", id}, {"revoked", true}};
    });
    for (const bool enable : {true, false}) {
        commands.add(
            enable ? "provisioning.enable" : "provisioning.disable",
            [s, enable](const json& args) -> command_result {
                const bool now = s->read.read(
                    [](const model::directory& d) { return d.provisioning_enabled(); });
                if (now != enable) {
                    auto r = s->submit_and_wait({impl::make_event(
                        enable ? names::provisioning_enabled : names::provisioning_disabled,
                        "Provisioning", json::object(), "admin", socket_actor(args), "")});
                    if (!r)
                        return std::unexpected("the change could not be recorded: " +
                                               r.error().message);
                }
                return json{{"provisioning", enable ? "enabled" : "disabled"},
                            {"changed", now != enable}};
            });
    }
}

}  // namespace scimsync::daemon

namespace scimsync::daemon {

void scim_service::execute(std::function<decision(const model::directory&)> decide,
                           std::function<void(std::optional<refusal>)> done) {
    impl* s = impl_.get();
    impl::command_lock lk(*s);
    auto d = decide(s->model());
    if (!d) return done(std::move(d.error()));
    if (d->empty()) return s->when_applied(s->log.last_seq().value, [done] { done(std::nullopt); });
    for (auto& e : *d) e.version = 1;
    s->submit(std::move(*d), std::nullopt, [s, done](impl::outcome o) {
        if (!o.appended) {
            s->notice("append failed: " + o.appended.error().message);
            return done(
                refusal{503, "the change could not be recorded durably; it was not applied"});
        }
        done(std::nullopt);
    });
}

void scim_service::read(const std::function<void(const model::directory&)>& fn) const {
    impl_->read.read([&](const model::directory& d) {
        fn(d);
        return 0;
    });
}

std::expected<std::string, http_response> scim_service::admin_actor(const http_request& req) {
    auto g = impl_->gate(req);
    if (auto* r = std::get_if<http_response>(&g)) return std::unexpected(std::move(*r));
    return std::get<origin>(g).actor;
}

http_response scim_service::error(int status, std::string_view detail) {
    return scim_error(status, detail);
}

}  // namespace scimsync::daemon
