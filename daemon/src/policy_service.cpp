#include "scimsync/daemon/policy_service.hpp"

#include <future>

namespace scimsync::daemon {

namespace el = scimsync::eventlog;
using json = nlohmann::json;

policy_service::policy_service(const el::log& log, scim_service& scim,
                               policies::policy_config config, std::filesystem::path state_dir,
                               std::function<void(const std::string&)> notice)
    : log_(log),
      scim_(scim),
      state_dir_(std::move(state_dir)),
      notice_(std::move(notice)),
      runner_(make_runner(std::move(config))) {}

policy_service::~policy_service() {
    stop();
}

std::shared_ptr<policies::runner> policy_service::make_runner(
    policies::policy_config config) const {
    if (!config.enabled()) return nullptr;
    policies::runner_options o;
    o.config = std::move(config);
    o.state_dir = state_dir_;
    o.notice = notice_;
    scim_service* s = &scim_;
    o.submit = [s](policies::runner_options::decide_fn decide) -> el::result<void> {
        std::promise<std::optional<scim_service::refusal>> done;
        auto f = done.get_future();
        s->execute(
            [&](const model::directory& d) -> scim_service::decision { return decide(d); },
            [&done](std::optional<scim_service::refusal> r) { done.set_value(std::move(r)); });
        if (auto r = f.get()) return el::fail(el::errc::io_error, r->detail);
        return {};
    };
    return std::make_shared<policies::runner>(log_, std::move(o));
}

std::shared_ptr<policies::runner> policy_service::current() const {
    std::lock_guard lk(mu_);
    return runner_;
}

el::result<void> policy_service::start() {
    std::lock_guard rl(reload_mu_);
    if (auto r = current()) return r->start();
    return {};
}

void policy_service::stop() {
    std::lock_guard rl(reload_mu_);
    if (auto r = current()) r->stop();
}

el::result<void> policy_service::reload(policies::policy_config config) {
    std::lock_guard rl(reload_mu_);
    // The old runner must have stopped acting before the new one starts: two would both carry
    // out the same decisions. It stays in place, stopped, so status and preview keep answering
    // while the new one replays to its checkpoint.
    if (auto old = current()) old->stop();
    auto next = make_runner(std::move(config));
    if (next)
        if (auto r = next->start(); !r) return r;
    std::lock_guard lk(mu_);
    runner_ = std::move(next);
    return {};
}

namespace {
command_result not_configured() {
    return std::unexpected(
        std::string("no deprovisioning policies are configured (no [policies.populations] in the "
                    "config file)"));
}
}  // namespace

void policy_service::add_commands(command_registry& commands) {
    commands.add("policy.status", [this](const json&) -> command_result {
        auto r = current();
        if (!r) return not_configured();
        return r->status();
    });
    commands.add("policy.preview", [this](const json& args) -> command_result {
        auto r = current();
        if (!r) return not_configured();
        auto p = r->preview(args.value("user", std::string()));
        if (!p) return std::unexpected(p.error().message);
        return *p;
    });
    commands.add("policy.resume", [this](const json& args) -> command_result {
        auto r = current();
        if (!r) return not_configured();
        auto done = r->resume(socket_actor(args));
        if (!done)
            return std::unexpected("the resume could not be recorded: " + done.error().message);
        return json{{"resumed", *done}};
    });
}

void policy_service::add_routes(router& routes) {
    const std::string base = std::string(admin_api_base) + "/policies";
    scim_service* s = &scim_;
    auto refuse = [](int status, const std::string& why) {
        return scim_service::error(status, why);
    };
    routes.add_async("GET", base + "/status", [=, this](http_request req, respond_fn respond) {
        auto actor = s->admin_actor(req);
        if (!actor) return respond(std::move(actor.error()));
        auto r = current();
        if (!r) return respond(refuse(404, "no deprovisioning policies are configured"));
        respond(json_response(200, r->status().dump()));
    });
    routes.add_async(
        "GET", base + "/preview/{user}", [=, this](http_request req, respond_fn respond) {
            auto actor = s->admin_actor(req);
            if (!actor) return respond(std::move(actor.error()));
            auto r = current();
            if (!r) return respond(refuse(404, "no deprovisioning policies are configured"));
            auto p = r->preview(req.path_params.at("user"));
            if (!p) return respond(refuse(404, p.error().message));
            respond(json_response(200, p->dump()));
        });
    routes.add_async("POST", base + "/resume", [=, this](http_request req, respond_fn respond) {
        auto actor = s->admin_actor(req);
        if (!actor) return respond(std::move(actor.error()));
        auto r = current();
        if (!r) return respond(refuse(404, "no deprovisioning policies are configured"));
        auto done = r->resume(*actor);
        if (!done) return respond(refuse(503, "the resume could not be recorded"));
        respond(json_response(200, json{{"resumed", *done}}.dump()));
    });
}

std::optional<nlohmann::json> policy_service::status() const {
    if (auto r = current()) return r->status();
    return std::nullopt;
}

}  // namespace scimsync::daemon
