#include "scimsync/daemon/policy_service.hpp"

#include <future>

namespace scimsync::daemon {

namespace el = scimsync::eventlog;
using json = nlohmann::json;

policy_service::policy_service(const el::log& log, scim_service& scim,
                               policies::policy_config config, std::filesystem::path state_dir,
                               std::function<void(const std::string&)> notice)
    : scim_(scim), enabled_(config.enabled()) {
    policies::runner_options o;
    o.config = std::move(config);
    o.state_dir = std::move(state_dir);
    o.notice = std::move(notice);
    scim_service* s = &scim;
    o.submit = [s](policies::runner_options::decide_fn decide) -> el::result<void> {
        std::promise<std::optional<scim_service::refusal>> done;
        auto f = done.get_future();
        s->execute(
            [&](const model::directory& d) -> scim_service::decision { return decide(d); },
            [&done](std::optional<scim_service::refusal> r) { done.set_value(std::move(r)); });
        if (auto r = f.get()) return el::fail(el::errc::io_error, r->detail);
        return {};
    };
    runner_ = std::make_unique<policies::runner>(log, std::move(o));
}

policy_service::~policy_service() {
    stop();
}

el::result<void> policy_service::start() {
    if (!enabled_) return {};
    return runner_->start();
}

void policy_service::stop() {
    if (runner_) runner_->stop();
}

namespace {
command_result not_configured() {
    return std::unexpected(
        std::string("no deprovisioning policies are configured (no [policies.populations] in the "
                    "config file)"));
}
}  // namespace

void policy_service::add_commands(command_registry& commands) {
    policies::runner* r = runner_.get();
    const bool on = enabled_;
    commands.add("policy.status", [r, on](const json&) -> command_result {
        if (!on) return not_configured();
        return r->status();
    });
    commands.add("policy.preview", [r, on](const json& args) -> command_result {
        if (!on) return not_configured();
        auto p = r->preview(args.value("user", std::string()));
        if (!p) return std::unexpected(p.error().message);
        return *p;
    });
    commands.add("policy.resume", [r, on](const json&) -> command_result {
        if (!on) return not_configured();
        auto done = r->resume("admin-socket");
        if (!done)
            return std::unexpected("the resume could not be recorded: " + done.error().message);
        return json{{"resumed", *done}};
    });
}

void policy_service::add_routes(router& routes) {
    const std::string base = std::string(admin_api_base) + "/policies";
    policies::runner* r = runner_.get();
    scim_service* s = &scim_;
    const bool on = enabled_;
    auto refuse = [](int status, const std::string& why) {
        return scim_service::error(status, why);
    };
    routes.add_async("GET", base + "/status", [=](http_request req, respond_fn respond) {
        auto actor = s->admin_actor(req);
        if (!actor) return respond(std::move(actor.error()));
        if (!on) return respond(refuse(404, "no deprovisioning policies are configured"));
        respond(json_response(200, r->status().dump()));
    });
    routes.add_async("GET", base + "/preview/{user}", [=](http_request req, respond_fn respond) {
        auto actor = s->admin_actor(req);
        if (!actor) return respond(std::move(actor.error()));
        if (!on) return respond(refuse(404, "no deprovisioning policies are configured"));
        auto p = r->preview(req.path_params.at("user"));
        if (!p) return respond(refuse(404, p.error().message));
        respond(json_response(200, p->dump()));
    });
    routes.add_async("POST", base + "/resume", [=](http_request req, respond_fn respond) {
        auto actor = s->admin_actor(req);
        if (!actor) return respond(std::move(actor.error()));
        if (!on) return respond(refuse(404, "no deprovisioning policies are configured"));
        auto done = r->resume(*actor);
        if (!done) return respond(refuse(503, "the resume could not be recorded"));
        respond(json_response(200, json{{"resumed", *done}}.dump()));
    });
}

}  // namespace scimsync::daemon

namespace scimsync::daemon {

std::optional<nlohmann::json> policy_service::status() const {
    if (!enabled_ || !runner_) return std::nullopt;
    return runner_->status();
}

}  // namespace scimsync::daemon
