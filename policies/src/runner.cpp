#include "scimsync/policies/runner.hpp"

#include <fstream>

#include "scimsync/model/events.hpp"
#include "scimsync/policies/http_client.hpp"

namespace scimsync::policies {

namespace el = scimsync::eventlog;
namespace names = scimsync::model::event_names;
using json = nlohmann::json;

namespace {
constexpr auto follow_poll = std::chrono::milliseconds(50);
constexpr std::uint64_t checkpoint_every = 1000;  // events, when nothing was decided
constexpr std::size_t batch_limit = 256;          // local decisions per append

bool success(int status) {
    return status >= 200 && status < 300;
}
}  // namespace

runner::runner(const el::log& log, runner_options options)
    : log_(log), options_(std::move(options)), engine_(options_.config) {}

runner::~runner() {
    stop();
}

el::event runner::policy_event(const char* type, const std::string& stream, const json& data,
                               const std::string& actor) const {
    el::event e;
    e.type = type;
    e.version = 1;
    e.source = "policy";
    e.actor = actor;
    e.stream = stream;
    e.data = data.dump(-1, ' ', false, json::error_handler_t::replace);
    return e;
}

el::result<void> runner::append(std::vector<el::event> events) {
    return options_.submit(
        [events = std::move(events)](const model::directory&) { return events; });
}

void runner::save_checkpoint(std::uint64_t seq) {
    std::error_code ec;
    std::filesystem::create_directories(options_.state_dir, ec);
    const auto file = options_.state_dir / "checkpoint";
    auto tmp = file;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << seq << '\n';
        if (!out) return;
    }
    std::filesystem::rename(tmp, file, ec);
}

el::result<void> runner::start() {
    bool resumed = false;
    {
        std::ifstream in(options_.state_dir / "checkpoint");
        std::uint64_t seq = 0;
        if (in >> seq) {
            checkpoint_ = seq;
            resumed = true;
        }
    }
    if (checkpoint_ > log_.last_seq().value) checkpoint_ = log_.last_seq().value;
    if (!resumed) {
        // Policies switched on for the first time: they govern what happens from now on.
        // Deactivations already in the log are history, not decisions owed (otherwise adding a
        // population would act on every user deactivated before it existed).
        checkpoint_ = log_.last_seq().value;
        save_checkpoint(checkpoint_);
        if (options_.notice && checkpoint_ > 0)
            options_.notice("policies: first start, deciding events after seq " +
                            std::to_string(checkpoint_) + "; earlier ones are history");
    }
    // What was decided or finished after the checkpoint (a crash between the two): not twice.
    {
        auto reader = log_.read_from(el::seq_no{checkpoint_ + 1});
        if (!reader) return std::unexpected(reader.error());
        el::event e;
        for (;;) {
            auto got = (*reader)->next(e);
            if (!got) return std::unexpected(got.error());
            if (!*got) break;
            if (e.type != names::policy_decided && e.type != names::policy_applied &&
                e.type != names::policy_failed)
                continue;
            const auto data = json::parse(e.data, nullptr, false);
            if (!data.is_object()) continue;
            const std::string id = data.value("decision", std::string());
            if (e.type == names::policy_decided) recorded_.insert(id);
            if (e.type == names::policy_applied ||
                (e.type == names::policy_failed && !data.value("retrying", false)))
                completed_.insert(id);
        }
    }
    // The replay up to the checkpoint happens on the thread: start-up does not wait for it.
    thread_ = std::thread([this] { follow(); });
    return {};
}

void runner::stop() {
    stop_ = true;
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
        // Never below the checkpoint read at start: stopped during the replay, nothing after
        // it was handled, and what came before stays done.
        save_checkpoint(std::max(handled_, checkpoint_));
    }
}

bool runner::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, d, [this] { return stop_.load(); });
    return !stop_.load();
}

void runner::follow() {
    auto fail = [this](const std::string& why) {
        std::lock_guard lk(mu_);
        last_error_ = why;
        if (options_.notice) options_.notice("policies stopped: " + why);
    };
    auto reader = log_.read_from(el::seq_no{1});
    if (!reader) return fail("cannot read the log: " + reader.error().message);
    el::event e;
    // The engine's state up to the checkpoint: fold only, those decisions were handled.
    while (handled_ < checkpoint_ && !stop_.load()) {
        auto got = (*reader)->next(e);
        if (!got) return fail("the log could not be read: " + got.error().message);
        if (!*got) break;
        try {
            if (auto r = handle(e, false); !r) return fail(r.error().message);
        } catch (const std::exception& ex) {
            return fail("unexpected error at seq " + std::to_string(e.seq.value) + ": " +
                        ex.what());
        }
    }
    std::uint64_t since_save = 0;
    while (!stop_.load()) {
        auto got = (*reader)->next(e);
        if (!got) return fail("the log could not be read: " + got.error().message);
        if (!*got) {
            if (!batch_.empty()) {
                if (!flush_batch()) return;
                since_save = 1;
            }
            if (since_save > 0) {
                save_checkpoint(handled_);
                since_save = 0;
            }
            log_.wait_for(el::seq_no{handled_}, std::chrono::steady_clock::now() + follow_poll);
            continue;
        }
        const std::uint64_t decided_before = decided_total_;
        el::result<void> r;
        try {
            r = handle(e, true);
        } catch (const std::exception& ex) {
            // Fail closed: stop here (reported), redo this event after a restart.
            r = el::fail(
                el::errc::invalid_argument,
                "unexpected error at seq " + std::to_string(e.seq.value) + ": " + ex.what());
        }
        if (!r) return fail(r.error().message);
        if (stop_.load()) {
            (void)flush_batch();  // decided locally: cheap to finish; the rest is redone
            return;
        }
        if (batch_.size() >= batch_limit && !flush_batch()) return;
        ++since_save;
        if (decided_total_ != decided_before || since_save >= checkpoint_every) {
            save_checkpoint(handled_);
            since_save = 0;
        }
    }
}

void runner::fold_policy_event(const el::event& e) {
    const auto data = json::parse(e.data, nullptr, false);
    if (!data.is_object()) return;
    const std::string id = data.value("decision", std::string());
    auto drop_held = [&] {
        for (auto it = held_.begin(); it != held_.end();) {
            it->second.erase(id);
            it = it->second.empty() ? held_.erase(it) : std::next(it);
        }
    };
    if (e.type == names::policy_decided) {
        ++decided_total_;
        if (data.value("held", false) && !completed_.contains(id)) {
            auto d = decision::from_json(data);
            held_[d.source_seq][id] = std::move(d);
        }
    } else if (e.type == names::policy_applied) {
        ++applied_total_;
        drop_held();
        const auto a = parse_action(data.value("action", std::string()));
        if (a && is_removal(*a) && counted_.insert(id).second) removals_.push_back(e.time);
    } else if (e.type == names::policy_failed) {
        ++failed_total_;
        if (!data.value("retrying", false)) drop_held();
    } else if (e.type == names::policy_paused) {
        paused_ = true;
        paused_reason_ = data.value("reason", std::string());
    } else if (e.type == names::policy_resumed) {
        paused_ = false;
        paused_reason_.clear();
        removals_.clear();
    }
}

el::result<void> runner::handle(const el::event& source, bool live) {
    el::event e = source;
    if (auto r = model::catalogue().upcast(e); !r) return r;
    std::vector<decision> decisions;
    std::map<std::uint64_t, std::map<std::string, decision>> to_resume;
    {
        std::lock_guard lk(mu_);
        if (model::catalogue().find(e.type)->stream_kind == "Policy") fold_policy_event(e);
        if (e.type == names::policy_resumed && live) to_resume = held_;
        auto ds = engine_.apply(e);
        if (!ds) return std::unexpected(ds.error());
        decisions = std::move(*ds);
    }
    if (live) {
        for (auto& d : decisions) {
            if (stop_.load()) return {};
            process(std::move(d), e.time);
        }
        // After a resume the held removals run, in the order they were decided.
        if (!to_resume.empty() && !flush_batch()) return {};
        for (auto& [seq, by_id] : to_resume)
            for (auto& [id, d] : by_id) {
                if (stop_.load()) return {};
                d.held = false;
                execute(d);
            }
    }
    if (stop_.load() && live) return {};
    if (live && !batch_.empty()) {
        batch_seq_ = e.seq.value;  // handled once the batch is written
        return {};
    }
    {
        std::lock_guard lk(mu_);
        handled_ = e.seq.value;
    }
    cv_.notify_all();
    return {};
}

bool runner::local(const decision& d) const {
    if (d.held) return false;
    const auto* pop = engine_.population(d.population);
    if (pop == nullptr || pop->connectors.empty()) return true;
    const auto a = parse_action(d.action);
    return !d.entering() && !(a && is_removal(*a));
}

bool runner::flush_batch() {
    if (batch_.empty()) return true;
    std::vector<decision> batch = std::move(batch_);
    batch_.clear();
    auto r = options_.submit([&](const model::directory& dir) {
        std::vector<el::event> events;
        std::map<std::string, model::device_state> overlay;
        for (const auto& d : batch) {
            if (!recorded_.contains(d.id))
                events.push_back(policy_event(names::policy_decided, "Policy/" + d.population,
                                              d.to_json(), d.population));
            auto effects = device_events(dir, d, overlay, events);
            events.push_back(applied_event(d, std::move(effects)));
        }
        return events;
    });
    std::lock_guard lk(mu_);
    if (!r) {
        last_error_ =
            "cannot record " + std::to_string(batch.size()) + " decisions: " + r.error().message;
        if (options_.notice) options_.notice("policies stopped: " + last_error_);
        return false;
    }
    for (const auto& d : batch) completed_.insert(d.id);
    handled_ = std::max(handled_, batch_seq_);
    cv_.notify_all();
    return true;
}

std::vector<std::string> runner::device_events(const model::directory& dir, const decision& d,
                                               std::map<std::string, model::device_state>& overlay,
                                               std::vector<el::event>& out) const {
    std::vector<std::string> effects;
    const auto a = parse_action(d.action);
    if (!a || !(*a == action::unassign || *a == action::change_policy ||
                *a == action::remove_user_and_devices))
        return effects;
    const auto* pop = engine_.population(d.population);
    const std::string policy = pop != nullptr ? pop->device_policy : std::string();
    for (const auto* listed : dir.access().devices_of(d.user)) {
        auto it = overlay.find(listed->id);
        model::device_state dev = it != overlay.end() ? it->second : *listed;
        if (dev.id.empty() || dev.owner != d.user) continue;  // removed or reassigned just now
        model::device_state next = dev;
        const char* type = names::device_updated;
        std::string what;
        if (*a == action::unassign) {
            next.owner.clear();
            what = "owner removed";
        } else if (*a == action::change_policy) {
            if (dev.policy == policy) continue;
            next.policy = policy;
            what = "policy " + policy;
        } else {
            type = names::device_removed;
            what = "removed";
            next.id.clear();
        }
        json data{{"id", dev.id}};
        if (type == names::device_updated) data["device"] = model::device_json(next);
        out.push_back(policy_event(type, "Device/" + dev.id, data, d.population));
        overlay[dev.id] = next;
        effects.push_back("device " + dev.id + ": " + what);
    }
    return effects;
}

el::event runner::applied_event(const decision& d, std::vector<std::string> effects) const {
    json applied{{"decision", d.id},
                 {"population", d.population},
                 {"user", d.user},
                 {"action", d.action},
                 {"effects", std::move(effects)}};
    const auto* pop = engine_.population(d.population);
    const auto a = parse_action(d.action);
    if (pop != nullptr && pop->ldap && a && is_removal(*a)) {
        applied["effects"].push_back("ldap: entry removed (by the mirror)");
        applied["ldap_removed"] = true;
    }
    return policy_event(names::policy_applied, "Policy/" + d.population, applied, d.population);
}

bool runner::trips_threshold(el::utc_time when) {
    const auto window = std::chrono::duration_cast<el::utc_time::duration>(options_.config.window);
    while (!removals_.empty() && removals_.front() + window < when) removals_.pop_front();
    return removals_.size() >= options_.config.max_removals;
}

void runner::process(decision d, el::utc_time when) {
    bool trip = false;
    {
        std::lock_guard lk(mu_);
        if (completed_.contains(d.id)) return;
        if (d.removal()) {
            if (paused_) {
                d.held = true;
            } else if (trips_threshold(when)) {
                d.held = true;
                trip = true;
                paused_ = true;
                paused_reason_ = std::to_string(removals_.size() + 1) + " removals within " +
                                 std::to_string(options_.config.window.count()) +
                                 " minutes (threshold " +
                                 std::to_string(options_.config.max_removals) + ")";
            }
        }
    }
    if (!d.held && local(d)) {
        if (d.removal()) {
            std::lock_guard lk(mu_);
            if (counted_.insert(d.id).second) removals_.push_back(when);
        }
        batch_.push_back(std::move(d));
        return;
    }
    if (!flush_batch()) return;
    if (trip) {
        if (options_.notice)
            options_.notice("policies: removals paused: " + paused_reason_ +
                            "; run `scimsyncctl policy resume` to carry them out");
        if (auto r = append({policy_event(names::policy_paused, "Policy/removals",
                                          {{"reason", paused_reason_},
                                           {"removals", removals_.size() + 1},
                                           {"threshold", options_.config.max_removals},
                                           {"window_minutes", options_.config.window.count()}},
                                          "threshold")});
            !r) {
            std::lock_guard lk(mu_);
            last_error_ = r.error().message;
        }
    }
    if (!recorded_.contains(d.id)) {
        if (auto r = append({policy_event(names::policy_decided, "Policy/" + d.population,
                                          d.to_json(), d.population)});
            !r) {
            std::lock_guard lk(mu_);
            last_error_ = "cannot record decision " + d.id + ": " + r.error().message;
            return;
        }
    }
    if (d.held) {
        std::lock_guard lk(mu_);
        held_[d.source_seq][d.id] = d;
        return;
    }
    if (execute(d) && d.removal()) {
        std::lock_guard lk(mu_);
        if (counted_.insert(d.id).second) removals_.push_back(when);
    }
}

std::optional<std::string> runner::call_connector(const decision& d, const connector_def& c,
                                                  const http_call& call, bool& gave_up) {
    const std::string url = render_template(call.url, d, true);
    const std::string body = render_template(call.body, d, false);
    std::vector<std::pair<std::string, std::string>> headers;
    headers.emplace_back("Idempotency-Key", "scimsync-" + d.id);
    if (const auto colon = c.auth_header.find(':'); colon != std::string::npos) {
        std::string value = c.auth_header.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        headers.emplace_back(c.auth_header.substr(0, colon), value);
    }
    const bool removing = d.action != "create";
    int attempts = 0;
    auto backoff = c.backoff_initial;
    for (;;) {
        const auto r = http_send(call.method, url, body, headers, c.timeout, {c.ca_file});
        ++attempts;
        const bool done = success(r.status) || (removing && (r.status == 404 || r.status == 410)) ||
                          (!removing && r.status == 409);
        if (done) return c.name + ": HTTP " + std::to_string(r.status);
        const std::string problem =
            c.name + ": " + (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status));
        const bool permanent =
            r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429;
        {
            std::lock_guard lk(mu_);
            last_error_ = d.id + ": " + problem;
        }
        if (permanent || attempts == c.report_after_attempts) {
            (void)append({policy_event(names::policy_failed, "Policy/" + d.population,
                                       {{"decision", d.id},
                                        {"population", d.population},
                                        {"user", d.user},
                                        {"action", d.action},
                                        {"error", problem},
                                        {"attempts", attempts},
                                        {"retrying", !permanent}},
                                       d.population)});
            if (options_.notice)
                options_.notice("policy " + d.population + ": " + d.id + ": " + problem +
                                (permanent ? " (refused; not retried)" : " (retrying)"));
        }
        if (permanent) {
            gave_up = true;
            return problem;
        }
        if (!sleep_for(backoff)) return std::nullopt;
        backoff = std::min(backoff * 2, c.backoff_max);
    }
}

bool runner::execute(const decision& d) {
    {
        std::lock_guard lk(mu_);
        working_on_ = d.id;
    }
    const auto* pop = engine_.population(d.population);
    std::vector<std::string> effects;
    const auto a = parse_action(d.action);
    if (pop != nullptr && (d.entering() || (a && is_removal(*a)))) {
        for (const auto& name : pop->connectors) {
            const auto& c = options_.config.connectors.at(name);
            const auto& call = d.entering() ? c.create : c.remove;
            if (!call) continue;
            bool gave_up = false;
            auto effect = call_connector(d, c, *call, gave_up);
            if (!effect) return false;  // stopping: redone after the restart
            if (gave_up) {
                std::lock_guard lk(mu_);
                completed_.insert(d.id);
                working_on_.clear();
                return false;
            }
            effects.push_back(*effect);
        }
    }
    // Devices: decided against the daemon's current state, so doing it twice changes nothing.
    auto devices = options_.submit([&](const model::directory& dir) {
        std::vector<el::event> events;
        std::map<std::string, model::device_state> overlay;
        for (auto& effect : device_events(dir, d, overlay, events)) effects.push_back(effect);
        return events;
    });
    if (!devices) {
        std::lock_guard lk(mu_);
        last_error_ = d.id + ": " + devices.error().message;
        return false;
    }
    auto r = append({applied_event(d, std::move(effects))});
    std::lock_guard lk(mu_);
    working_on_.clear();
    if (!r) {
        last_error_ = d.id + ": " + r.error().message;
        return false;
    }
    completed_.insert(d.id);
    return true;
}

bool runner::wait_until(el::seq_no seq, std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lk(mu_);
    return cv_.wait_until(lk, deadline, [&] { return handled_ >= seq.value; });
}

json runner::status() const {
    std::lock_guard lk(mu_);
    json pops = json::array();
    for (const auto& p : options_.config.populations) {
        pops.push_back({{"name", p.name},
                        {"members", engine_.member_count(p.name)},
                        {"on_deactivate", to_string(p.on_deactivate)},
                        {"on_create", p.create_account ? "create" : "none"}});
    }
    std::size_t held = 0;
    for (const auto& [seq, m] : held_) held += m.size();
    const auto last = log_.last_seq().value;
    return {{"enabled", options_.config.enabled()},
            {"populations", pops},
            {"paused", paused_},
            {"paused_reason", paused_reason_},
            {"held", held},
            {"handled_seq", handled_},
            {"lag_events", last > handled_ ? last - handled_ : 0},
            {"working_on", working_on_},
            {"decided", decided_total_},
            {"applied", applied_total_},
            {"failed", failed_total_},
            {"removals_in_window", removals_.size()},
            {"threshold", options_.config.max_removals},
            {"window_minutes", options_.config.window.count()},
            {"last_error", last_error_}};
}

el::result<json> runner::preview(const std::string& user) const {
    std::lock_guard lk(mu_);
    const auto& dir = engine_.directory();
    std::string id = user;
    if (dir.user(id) == nullptr) {
        const auto* u = dir.user_by_name(user);
        if (u == nullptr)
            return el::fail(el::errc::not_found, "no user with id or userName \"" + user + "\"");
        id = json::parse(u->json).value("id", std::string());
    }
    json out = json::array();
    for (const auto& d : engine_.preview(id)) {
        json calls = json::array();
        const auto* pop = engine_.population(d.population);
        if (d.removal() && pop != nullptr)
            for (const auto& name : pop->connectors)
                if (const auto& call = options_.config.connectors.at(name).remove)
                    calls.push_back({{"connector", name},
                                     {"method", call->method},
                                     {"url", render_template(call->url, d, true)}});
        out.push_back({{"population", d.population},
                       {"action", d.action},
                       {"devices", d.devices},
                       {"device_policy", pop ? pop->device_policy : ""},
                       {"calls", calls},
                       {"held", d.removal() && paused_}});
    }
    return json{{"user", id}, {"decisions", out}, {"paused", paused_}};
}

el::result<bool> runner::resume(const std::string& actor) {
    {
        std::lock_guard lk(mu_);
        if (!paused_) return false;
    }
    el::event e = policy_event(names::policy_resumed, "Policy/removals", json::object(), actor);
    e.source = "admin";
    if (auto r = append({std::move(e)}); !r) return std::unexpected(r.error());
    return true;
}

}  // namespace scimsync::policies
