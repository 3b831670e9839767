#include "scimsync/daemon/ldap_service.hpp"

#include <optional>

#include "scimsync/bridge/entry.hpp"
#include <mutex>

#include "scimsync/bridge/ingest.hpp"
#include "scimsync/bridge/mirror.hpp"

namespace scimsync::daemon {

namespace el = eventlog;
using nlohmann::json;

struct ldap_service::impl {
    // Guards mirror and ingester against reload() while commands and status() use them.
    mutable std::mutex mu;
    el::log& log;
    ldap_config config;
    std::filesystem::path state_dir;
    std::function<void(const std::string&)> notice;
    std::optional<bridge::entry_builder> builder;  // outlives mirror and ingester
    std::unique_ptr<bridge::mirror> mirror;
    std::unique_ptr<bridge::ingester> ingester;

    impl(el::log& l, ldap_config c, std::filesystem::path dir,
         std::function<void(const std::string&)> n)
        : log(l), config(std::move(c)), state_dir(std::move(dir)), notice(std::move(n)) {}
    el::result<void> start_locked();
};

ldap_service::ldap_service(el::log& log, const ldap_config& config, std::filesystem::path state_dir,
                           std::function<void(const std::string&)> notice)
    : impl_(std::make_unique<impl>(log, config, std::move(state_dir), std::move(notice))) {}

ldap_service::~ldap_service() {
    stop_ingest();
    stop();
}

el::result<void> ldap_service::start() {
    std::lock_guard lk(impl_->mu);
    return impl_->start_locked();
}

el::result<void> ldap_service::impl::start_locked() {
    impl& s = *this;
    auto compiled = bridge::entry_builder::compile(s.config.mapping);
    if (!compiled) return el::fail(el::errc::invalid_argument, "ldap: " + compiled.error());
    s.builder.emplace(std::move(*compiled));
    // The mirror keeps its own compiled copy: the builder is cheap to compile twice.
    auto for_mirror = bridge::entry_builder::compile(s.config.mapping);
    bridge::mirror_options mo;
    mo.ldap = s.config.connection;
    mo.state_dir = s.state_dir;
    mo.window = s.config.window;
    mo.notice = s.notice;
    s.mirror = std::make_unique<bridge::mirror>(s.log, std::move(*for_mirror), std::move(mo));
    if (auto r = s.mirror->start(); !r) return r;
    if (s.config.ingest) {
        bridge::ingest_options io;
        io.ldap = s.config.connection;
        io.accesslog_base = s.config.accesslog_base;
        io.state_dir = s.state_dir;
        io.notice = s.notice;
        s.ingester = std::make_unique<bridge::ingester>(s.log, *s.builder, std::move(io));
        if (auto r = s.ingester->start(); !r) return r;
    }
    return {};
}

void ldap_service::stop_ingest() {
    if (!impl_) return;
    std::lock_guard lk(impl_->mu);
    if (impl_->ingester) impl_->ingester->stop();
}

void ldap_service::stop() {
    if (!impl_) return;
    std::lock_guard lk(impl_->mu);
    if (impl_->mirror) impl_->mirror->stop();
}

el::result<void> ldap_service::reload(const ldap_config& config) {
    std::lock_guard lk(impl_->mu);
    if (impl_->ingester) impl_->ingester->stop();
    if (impl_->mirror) impl_->mirror->stop();
    impl_->ingester.reset();
    impl_->mirror.reset();
    impl_->builder.reset();
    impl_->config = config;
    return impl_->start_locked();
}

std::optional<bridge::mirror_status> ldap_service::mirror_status() const {
    std::lock_guard lk(impl_->mu);
    if (!impl_->mirror) return std::nullopt;
    return impl_->mirror->status();
}

void ldap_service::add_commands(command_registry& commands) {
    impl* s = impl_.get();
    commands.add("ldap.status", [s](const json&) -> command_result {
        std::lock_guard lk(s->mu);
        json out{{"url", s->config.connection.url},
                 {"bind_dn", s->config.connection.bind_dn},
                 {"users_base", s->config.mapping.people_base},
                 {"groups_base", s->config.mapping.groups_base}};
        out["mirror"] = s->mirror ? s->mirror->status().to_json() : json(nullptr);
        out["ingest"] = s->ingester ? s->ingester->status().to_json() : json(nullptr);
        return out;
    });
    commands.add("ldap.reconcile", [s](const json& args) -> command_result {
        std::lock_guard lk(s->mu);
        if (!s->mirror) return std::unexpected(std::string("the LDAP mirror is not running"));
        const bool dry_run = args.value("dry_run", false);
        const auto timeout = std::chrono::seconds(args.value("timeout_s", 60));
        auto r = s->mirror->reconcile(dry_run, timeout);
        if (!r) return std::unexpected(r.error());
        return r->to_json();
    });
}

}  // namespace scimsync::daemon
