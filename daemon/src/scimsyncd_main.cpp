// scimsyncd: the composition root. Reads settings, opens the log, wires routes and admin
// commands, serves until SIGTERM/SIGINT, then drains and closes the log.
//
// Exit codes: 0 after a clean shutdown, 1 when start-up fails at run time (log, sockets),
// 2 for usage and configuration errors. Every diagnostic is one line on stderr.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

#include <CLI/CLI.hpp>

#include "logging.hpp"
#include "metrics.hpp"
#include "rate_limit.hpp"
#include "scimsync/daemon/access_api.hpp"
#include "scimsync/daemon/admin_commands.hpp"
#include "scimsync/daemon/config.hpp"
#include "scimsync/daemon/ldap_service.hpp"
#include "scimsync/daemon/policy_service.hpp"
#include "scimsync/daemon/router.hpp"
#include "scimsync/daemon/scim_service.hpp"
#include "scimsync/daemon/server.hpp"
#include "scimsync/daemon/status.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/eventlog/kafka_log.hpp"
#include "secrets.hpp"
#include "service_manager.hpp"

namespace {

namespace el = scimsync::eventlog;
namespace sd = scimsync::daemon;
namespace bridge = scimsync::bridge;

// The daemon's log (stderr, the journal under systemd); see logging.hpp.
sd::logger& log_out() {
    static sd::logger l;
    return l;
}

void say(const std::string& line) {
    log_out().info(line);
}

void warn(const std::string& line) {
    log_out().warning(line);
}

// True for 127.0.0.0/8, ::1 and "localhost": where plain HTTP stays on this machine.
bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.");
}

struct flags {
    std::optional<std::string> config;
    std::optional<std::string> data_dir;
    std::optional<std::string> listen;
    std::optional<std::string> admin_socket;
    std::optional<std::string> durability;
};

// The config file, if any: --config, else the default path when it exists (a bare `scimsyncd`
// must work), else none.
std::optional<std::filesystem::path> config_file(const flags& f) {
    if (f.config) return std::filesystem::path(*f.config);
    std::error_code ec;
    const std::filesystem::path file{std::string(sd::default_config_path)};
    if (std::filesystem::exists(file, ec)) return file;
    return std::nullopt;
}

// Settings: defaults, then the config file, then SCIMSYNC_* variables, then flags.
// Error: one line (without the prefix).
std::expected<sd::daemon_config, std::string> settle_config(const flags& f) {
    sd::daemon_config config;
    std::error_code ec;
    if (auto r = sd::load_config(config_file(f), environ, config); !r)
        return std::unexpected(r.error());
    if (f.data_dir) config.data_dir = *f.data_dir;
    if (f.admin_socket) config.admin_socket = *f.admin_socket;
    if (f.listen) {
        auto a = sd::parse_listen(*f.listen);
        if (!a) return std::unexpected("--listen: " + a.error());
        config.listen = std::move(*a);
    }
    if (f.durability) {
        auto d = el::parse_durability(*f.durability);
        if (!d) return std::unexpected("--durability: " + d.error().message);
        config.durability = *d;
    }
    if (config.data_dir.empty()) return std::unexpected("--data-dir: must not be empty");
    // Reported by `status` and used in messages; absolute so that it means the same to a
    // scimsyncctl started elsewhere.
    config.data_dir = std::filesystem::absolute(config.data_dir, ec).lexically_normal();
    if (ec) return std::unexpected("--data-dir: " + ec.message());
    return config;
}

// Holds an exclusive flock on DATA_DIR/scimsyncd.lock for the life of the process: two daemons
// appending to one log would each believe they own its tail.
std::expected<int, std::string> lock_data_dir(const std::filesystem::path& data_dir) {
    const auto path = data_dir / "scimsyncd.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return std::unexpected("cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        ::close(fd);
        if (err == EWOULDBLOCK) {
            return std::unexpected("data directory " + data_dir.string() +
                                   " is in use by another scimsyncd (" + path.string() +
                                   " is locked)");
        }
        return std::unexpected("cannot lock " + path.string() + ": " + std::strerror(err));
    }
    return fd;
}

// Bearer tokens kept in files ([tokens.<name>]): each is read, hashed, and forgotten.
std::expected<std::vector<sd::config_token>, std::string> read_token_files(
    const std::vector<sd::token_file>& files) {
    std::vector<sd::config_token> out;
    for (const auto& f : files) {
        std::ifstream in(f.file, std::ios::binary);
        if (!in)
            return std::unexpected("tokens." + f.name + ".file: cannot read " + f.file.string() +
                                   ": " + std::strerror(errno));
        std::ostringstream text;
        text << in.rdbuf();
        std::string token = text.str();
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
        if (token.size() < 32)
            return std::unexpected("tokens." + f.name + ".file: " + f.file.string() +
                                   " holds fewer than 32 characters; use a long random token");
        out.push_back({f.name, sd::secrets::hash_token(token), f.scope});
    }
    return out;
}

// What may change while running: the parts SIGHUP applies. Read by request threads.
struct live_settings {
    std::atomic<std::uint64_t> views_max_lag{0};
    std::atomic<std::uint64_t> ldap_max_lag{0};
    std::atomic<std::uint64_t> policies_max_lag{0};

    void take(const sd::daemon_config& c) {
        views_max_lag = c.views_max_lag;
        ldap_max_lag = c.ldap_max_lag;
        policies_max_lag = c.policies_max_lag;
        log_out().set_level(*sd::parse_log_level(c.log_level));
        log_out().set_requests(c.log_requests);
    }
};

void describe_metrics(sd::metrics& m) {
    using k = sd::metrics::kind;
    m.describe("scimsync_build_info", k::gauge, "scimsyncd's version (the value is always 1)");
    m.describe("scimsync_http_requests_total", k::counter,
               "HTTP requests answered, by method, route pattern and status");
    m.describe("scimsync_http_request_duration_seconds", k::histogram,
               "time from reading a request to its response, by route pattern");
    m.describe("scimsync_http_rate_limited_total", k::counter,
               "requests refused with 429 because their token went over its rate");
    m.describe("scimsync_log_last_seq", k::gauge, "the last durable sequence number of the log");
    m.describe("scimsync_log_append_duration_seconds", k::histogram,
               "time from submitting a change to the log until it is durable");
    m.describe("scimsync_log_fsync_duration_seconds", k::histogram,
               "fdatasync latency of the file log (group commit)");
    m.describe("scimsync_events_total", k::counter, "events applied to the views, by type");
    m.describe("scimsync_projector_lag_events", k::gauge,
               "events in the log that a projector has not applied yet");
    m.describe("scimsync_ldap_writes_total", k::counter, "LDAP writes the mirror completed");
    m.describe("scimsync_ldap_write_failures_total", k::counter,
               "LDAP writes the directory refused for good");
    m.describe("scimsync_ldap_reconnects_total", k::counter, "LDAP reconnections of the mirror");
    m.describe("scimsync_policy_actions_total", k::counter,
               "deprovisioning decisions by outcome (decided, applied, failed)");
    m.describe("process_resident_memory_bytes", k::gauge, "resident memory of scimsyncd");
    m.describe("process_start_time_seconds", k::gauge, "start time (seconds since the epoch)");
}

double resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return double(resident) * double(::sysconf(_SC_PAGESIZE));
}

int serve(const sd::daemon_config& initial, const flags& f) {
    sd::daemon_config config = initial;  // what runs; SIGHUP replaces the parts it can
    live_settings live;
    live.take(config);
    const auto started_at = std::chrono::system_clock::now();

    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec) {
        say("cannot create data directory " + config.data_dir.string() + ": " + ec.message());
        return 1;
    }
    const auto lock = lock_data_dir(config.data_dir);
    if (!lock) {
        say(lock.error());
        return 1;
    }
    auto tokens = read_token_files(config.tokens);
    if (!tokens) {
        say(tokens.error());
        return 2;
    }

    // A failed write (or fdatasync, or a fatal producer error) leaves the log refusing writes
    // (eventlog/README.md); the way back is a restart, which runs recovery. So drain and exit
    // 1 for systemd to restart us.
    std::atomic<bool> log_failed{false};
    std::atomic<sd::server*> running{nullptr};
    auto on_fatal = [&](const el::error& e) {
        log_out().error("log: " + e.message + "; shutting down so that a restart runs recovery");
        log_failed = true;
        if (auto* s = running.load()) s->stop();
    };
    auto log_notice = [](const std::string& line) { say("log: " + line); };

    sd::metrics metrics;
    describe_metrics(metrics);

    sd::daemon_status status;
    status.version = SCIMSYNC_VERSION;
    status.data_dir = config.data_dir;
    status.durability = config.durability;
    std::unique_ptr<el::log> owned_log;
    el::file_log* file_log = nullptr;
    if (config.backend == sd::log_backend::kafka) {
        el::kafka_log_options ko;
        ko.brokers = config.kafka.brokers;
        ko.topic = config.kafka.topic;
        ko.properties = config.kafka.properties;
        ko.delivery_timeout = config.kafka.delivery_timeout;
        ko.open_timeout = config.kafka.open_timeout;
        ko.checkpoint_every = config.kafka.checkpoint_every_events;
        ko.notice = log_notice;
        ko.on_fatal = on_fatal;
        sd::service_manager::status("reading the log from Kafka topic " + config.kafka.topic);
        auto opened = el::kafka_log::open(std::move(ko));
        if (!opened) {
            say("cannot open the log on Kafka topic " + config.kafka.topic + " at " +
                config.kafka.brokers + ": " + opened.error().message);
            return 1;
        }
        owned_log = std::move(*opened);
        status.log_dir = config.data_dir;
        status.log = "kafka topic " + config.kafka.topic + " at " + config.kafka.brokers;
    } else {
        el::file_log_options log_options;
        log_options.dir = config.log_dir();
        log_options.mode = config.durability;
        log_options.segment_bytes = config.segment_bytes;
        log_options.notice = log_notice;
        log_options.on_fatal = on_fatal;
        sd::service_manager::status("opening the log in " + config.log_dir().string());
        auto opened = el::file_log::open(std::move(log_options));
        if (!opened) {
            say("cannot open log in " + config.log_dir().string() + ": " + opened.error().message);
            return 1;
        }
        file_log = opened->get();
        owned_log = std::move(*opened);
        status.log_dir = config.log_dir();
        status.log = "file " + config.log_dir().string();
    }
    el::log& log = *owned_log;
    status.log_open = true;

    sd::scim_options scim;
    scim.snapshots.emplace(config.data_dir / "snapshots");
    scim.snapshot_every_events = config.snapshot_every_events;
    scim.snapshot_growth = config.snapshot_growth;
    scim.notice = [](const std::string& line) { say(line); };
    scim.on_event = [&metrics](std::string_view type, std::uint64_t count) {
        metrics.increment("scimsync_events_total", {{"type", std::string(type)}}, double(count));
    };
    scim.on_append = [&metrics](double seconds) {
        metrics.observe("scimsync_log_append_duration_seconds", {}, seconds);
    };
    scim.on_progress = [](el::seq_no at, el::seq_no last) {
        // A long replay: keep systemd from giving up on the start, and say how far it is.
        sd::service_manager::extend_start_timeout(std::chrono::seconds(60),
                                                  "rebuilding the views from the log: seq " +
                                                      std::to_string(at.value) + " of " +
                                                      std::to_string(last.value));
    };
    sd::service_manager::status("rebuilding the views from the log (up to seq " +
                                std::to_string(log.last_seq().value) + ")");
    sd::scim_service service(log, std::move(scim));
    if (auto r = service.start(); !r) {
        say("cannot rebuild the directory from the log: " + r.error().message);
        return 1;
    }
    service.set_config_tokens(std::move(*tokens));

    // The LDAP bridge follows the log on its own threads; LDAP being down does not stop us.
    std::optional<sd::ldap_service> ldap;
    sd::command_registry commands;
    if (config.ldap) {
        ldap.emplace(log, *config.ldap, config.data_dir / "ldap",
                     [](const std::string& line) { say(line); });
        if (auto r = ldap->start(); !r) {
            say("cannot start the LDAP bridge: " + r.error().message);
            return 1;
        }
        ldap->add_commands(commands);
    } else {
        for (const char* name : {"ldap.status", "ldap.reconcile"}) {
            commands.add(name, [](const nlohmann::json&) -> sd::command_result {
                return std::unexpected(std::string(
                    "the LDAP bridge is not configured (no [ldap] section in the config file)"));
            });
        }
    }

    // Deprovisioning policies follow the log on their own thread (when configured).
    sd::policy_service policy(log, service, config.policies, config.data_dir / "policies",
                              [](const std::string& line) { say(line); });
    if (auto r = policy.start(); !r) {
        say("cannot start the deprovisioning policies: " + r.error().message);
        return 1;
    }

    status.lags = [&]() {
        const auto last = log.last_seq().value;
        auto behind = [last](std::uint64_t at) { return last > at ? last - at : 0; };
        std::vector<sd::projector_lag> out{
            {"views", behind(service.applied().value), live.views_max_lag.load()}};
        if (ldap)
            if (auto m = ldap->mirror_status())
                out.push_back({"ldap", behind(m->checkpoint), live.ldap_max_lag.load()});
        if (auto p = policy.status())
            out.push_back({"policies", p->value("lag_events", std::uint64_t{0}),
                           live.policies_max_lag.load()});
        return out;
    };

    // Metrics read when scraped.
    metrics.add_source("scimsync_build_info", [] {
        return std::vector<std::pair<sd::metric_labels, double>>{
            {{{"version", SCIMSYNC_VERSION}}, 1}};
    });
    metrics.add_source("scimsync_log_last_seq", [&log] {
        return std::vector<std::pair<sd::metric_labels, double>>{
            {{}, double(log.last_seq().value)}};
    });
    metrics.add_source("scimsync_projector_lag_events", [&status] {
        std::vector<std::pair<sd::metric_labels, double>> out;
        for (const auto& l : status.lags())
            out.push_back({{{"projector", l.name}}, double(l.events)});
        return out;
    });
    if (ldap) {
        auto mirror_counter = [&ldap](std::uint64_t bridge::mirror_status::*field) {
            return [&ldap, field] {
                std::vector<std::pair<sd::metric_labels, double>> out;
                if (auto m = ldap->mirror_status()) out.push_back({{}, double((*m).*field)});
                return out;
            };
        };
        metrics.add_source("scimsync_ldap_writes_total",
                           mirror_counter(&bridge::mirror_status::writes));
        metrics.add_source("scimsync_ldap_write_failures_total",
                           mirror_counter(&bridge::mirror_status::failed));
        metrics.add_source("scimsync_ldap_reconnects_total",
                           mirror_counter(&bridge::mirror_status::reconnects));
    }
    metrics.add_source("scimsync_policy_actions_total", [&policy] {
        std::vector<std::pair<sd::metric_labels, double>> out;
        if (auto p = policy.status())
            for (const char* k : {"decided", "applied", "failed"})
                out.push_back({{{"outcome", k}}, double(p->value(k, std::uint64_t{0}))});
        return out;
    });
    if (file_log != nullptr) {
        metrics.add_histogram_source("scimsync_log_fsync_duration_seconds", [file_log] {
            const auto st = file_log->syncs();
            sd::histogram_values h;
            h.bounds.assign(el::sync_stats::bounds.begin(), el::sync_stats::bounds.end());
            h.cumulative.assign(st.at_or_below.begin(), st.at_or_below.end());
            h.sum = st.seconds;
            h.count = st.count;
            return h;
        });
    }
    metrics.add_source("process_resident_memory_bytes", [] {
        return std::vector<std::pair<sd::metric_labels, double>>{{{}, resident_bytes()}};
    });
    metrics.add_source("process_start_time_seconds", [started_at] {
        return std::vector<std::pair<sd::metric_labels, double>>{
            {{},
             double(std::chrono::duration_cast<std::chrono::seconds>(started_at.time_since_epoch())
                        .count())}};
    });

    sd::rate_limiter limiter;
    limiter.configure(config.rate_limit_per_token, config.rate_limit_burst > 0
                                                       ? config.rate_limit_burst
                                                       : config.rate_limit_per_token);

    sd::router routes([](const std::string& line) { warn(line); });
    sd::request_hooks hooks;
    hooks.principal = [&service](const sd::http_request& r) { return service.principal_name(r); };
    hooks.admit = [&limiter, &metrics](const std::string& who) -> std::optional<sd::http_response> {
        if (who.empty()) return std::nullopt;
        const auto wait = limiter.take(who, sd::rate_limiter::clock::now());
        if (!wait) return std::nullopt;
        metrics.increment("scimsync_http_rate_limited_total", {{"token", who}});
        auto res = sd::scim_error(429, "too many requests for token \"" + who + "\"; retry after " +
                                           std::to_string(wait->count()) + " s");
        res.set_header("Retry-After", std::to_string(wait->count()));
        return res;
    };
    hooks.answered = [&metrics](const sd::request_record& r) {
        const std::string route = r.route.empty() ? "(none)" : r.route;
        metrics.increment(
            "scimsync_http_requests_total",
            {{"method", r.method}, {"route", route}, {"status", std::to_string(r.status)}});
        metrics.observe("scimsync_http_request_duration_seconds", {{"route", route}},
                        r.elapsed.count());
        if (!log_out().requests()) return;
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.3f", r.elapsed.count() * 1000);
        // The path only: query strings may hold filter values (user names, e-mails).
        log_out().request("request method=" + sd::logfmt_value(r.method) +
                          " path=" + sd::logfmt_value(r.path) +
                          " status=" + std::to_string(r.status) + " duration_ms=" + ms +
                          " token=" + sd::logfmt_value(r.principal.empty() ? "-" : r.principal) +
                          " remote=" + sd::logfmt_value(r.remote));
    };
    routes.set_hooks(std::move(hooks));
    sd::add_health_routes(routes, log, status);
    routes.add("GET", "/metrics", [&metrics](const sd::http_request&) {
        sd::http_response r;
        r.status = 200;
        r.body = metrics.render();
        r.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        return r;
    });
    service.add_routes(routes);
    sd::access_api access(service, config.access);
    access.add_routes(routes);
    policy.add_routes(routes);
    sd::add_status_command(commands, log, status);
    service.add_commands(commands);
    access.add_commands(commands, routes);
    policy.add_commands(commands);

    // SIGHUP: the server only flags it; this thread reloads (reading files, restarting the
    // LDAP bridge), so the event loop never waits for it.
    std::mutex reload_mu;
    std::condition_variable reload_cv;
    bool reload_wanted = false, reload_stop = false;
    auto reload = [&] {
        sd::service_manager::reloading("reloading the configuration");
        auto next = settle_config(f);
        if (!next) {
            warn("reload refused, nothing changed: " + next.error());
            sd::service_manager::ready("serving; the last reload was refused: " + next.error());
            return;
        }
        std::vector<std::string> applied, restart;
        auto changed = [&](const char* section) {
            auto a = config.sections.find(section), b = next->sections.find(section);
            const std::string before = a == config.sections.end() ? "" : a->second;
            const std::string after = b == next->sections.end() ? "" : b->second;
            return before != after;
        };
        if (changed("logging")) applied.push_back("logging");
        if (changed("health")) applied.push_back("health");
        live.take(*next);
        if (next->rate_limit_per_token != config.rate_limit_per_token ||
            next->rate_limit_burst != config.rate_limit_burst) {
            limiter.configure(next->rate_limit_per_token, next->rate_limit_burst > 0
                                                              ? next->rate_limit_burst
                                                              : next->rate_limit_per_token);
            applied.push_back("http.rate_limit");
        }
        if (changed("tokens")) {
            if (auto t = read_token_files(next->tokens)) {
                service.set_config_tokens(std::move(*t));
                applied.push_back("tokens");
            } else {
                warn("reload: " + t.error() + "; the previous tokens stay");
                next->tokens = config.tokens;
                next->sections["tokens"] = config.sections["tokens"];
            }
        }
        if (changed("ldap")) {
            if (ldap && next->ldap) {
                if (auto r = ldap->reload(*next->ldap); r) {
                    applied.push_back(
                        "ldap (run `scimsyncctl ldap reconcile` to bring existing "
                        "entries in line)");
                } else {
                    warn("reload: the LDAP bridge did not restart with the new [ldap]: " +
                         r.error().message);
                }
            } else {
                restart.push_back("ldap");
            }
        }
        if (changed("policies")) {
            if (auto r = policy.reload(next->policies); r) {
                applied.push_back(
                    "policies (events from the policy checkpoint on are decided "
                    "under the new rules)");
                config.policies = next->policies;
                config.sections["policies"] = next->sections["policies"];
            } else {
                // The section stays "changed", so the next reload tries again.
                warn(
                    "reload: the deprovisioning policies are stopped; they did not start with "
                    "the new [policies]: " +
                    r.error().message + "; reload again once that is fixed");
            }
        }
        if (changed("access")) {
            access.set_catalogue(next->access);
            config.access = next->access;
            config.sections["access"] = next->sections["access"];
            applied.push_back("access");
        }
        if (next->data_dir != config.data_dir) restart.push_back("data_dir");
        if (to_string(next->listen) != to_string(config.listen)) restart.push_back("listen");
        if (next->admin_socket != config.admin_socket) restart.push_back("admin_socket");
        if (changed("log")) restart.push_back("log");
        if (next->threads != config.threads || next->body_limit_bytes != config.body_limit_bytes ||
            next->read_timeout != config.read_timeout ||
            next->tls_cert_file != config.tls_cert_file ||
            next->tls_key_file != config.tls_key_file)
            restart.push_back("http");
        auto join = [](const std::vector<std::string>& v) {
            std::string out;
            for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
            return out.empty() ? std::string("nothing") : out;
        };
        const std::string report =
            "reload: applied " + join(applied) +
            (restart.empty() ? std::string()
                             : "; needs a restart to take effect: " + join(restart));
        if (restart.empty())
            say(report);
        else
            warn(report);
        // Keep what was applied; the rest stays as it runs until a restart.
        config.log_level = next->log_level;
        config.log_requests = next->log_requests;
        config.rate_limit_per_token = next->rate_limit_per_token;
        config.rate_limit_burst = next->rate_limit_burst;
        config.tokens = next->tokens;
        for (const char* section : {"logging", "health", "tokens"})
            config.sections[section] = next->sections[section];
        if (ldap && next->ldap) {
            config.ldap = next->ldap;
            config.sections["ldap"] = next->sections["ldap"];
        }
        sd::service_manager::ready("serving on " + status.listen_url + "; " + report);
    };
    std::thread reloader([&] {
        std::unique_lock lk(reload_mu);
        while (true) {
            reload_cv.wait(lk, [&] { return reload_wanted || reload_stop; });
            if (reload_stop) return;
            reload_wanted = false;
            lk.unlock();
            reload();
            lk.lock();
        }
    });

    sd::server_options options;
    options.host = config.listen.host;
    options.port = config.listen.port;
    options.body_limit_bytes = config.body_limit_bytes;
    options.read_timeout = config.read_timeout;
    options.threads = config.threads;
    options.admin_socket = config.admin_socket;
    options.server_header = "scimsync/" SCIMSYNC_VERSION;
    options.tls_cert_file = config.tls_cert_file;
    options.tls_key_file = config.tls_key_file;
    options.notice = say;
    options.on_drain = [&status] {
        status.log_open = false;
        sd::service_manager::stopping("finishing the requests in flight");
    };
    options.on_reload = [&] {
        std::lock_guard lk(reload_mu);
        reload_wanted = true;
        reload_cv.notify_one();
    };
    // The keep-alive comes from the event loop itself: a loop that stops turning stops it, and
    // systemd restarts us. Request log lines are written out at the same pace.
    const auto watchdog = sd::service_manager::watchdog_interval();
    options.tick_interval =
        watchdog ? std::min(std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2),
                            std::chrono::milliseconds(1000))
                 : std::chrono::milliseconds(1000);
    options.on_tick = [watchdog] {
        if (watchdog) sd::service_manager::watchdog_ping();
        log_out().flush();
    };

    int exit_code = 0;
    {
        sd::server server(std::move(options), routes, commands);
        if (auto r = server.open(); !r) {
            say(r.error());
            exit_code = 1;
        } else {
            status.listen_url = server.http_url();
            service.set_base_url(status.listen_url);
            std::cout << "listening on " << status.listen_url << '\n' << std::flush;
            if (config.tls_cert_file.empty() && !is_loopback(server.http_host()))
                warn("serving plain HTTP on " + server.http_host() +
                     ", which is not a loopback address: bearer tokens cross the network in "
                     "clear; set [http.tls] cert_file and key_file, or put a TLS proxy in front");
            sd::service_manager::ready("serving on " + status.listen_url + " (log at seq " +
                                       std::to_string(log.last_seq().value) + ")");
            running = &server;
            if (log_failed) server.stop();  // failed before `running` was set
            server.run();
            running = nullptr;
        }
        {
            std::lock_guard lk(reload_mu);
            reload_stop = true;
            reload_cv.notify_one();
        }
        reloader.join();
        // Completes queued appends (and with them any async handler still owed a response)
        // while the server, which those responses go to, still exists.
        status.log_open = false;
        policy.stop();  // it appends through the SCIM command path: before the log closes
        if (ldap) ldap->stop_ingest();
        log.close();
        service.stop();
        if (ldap) ldap->stop();
    }
    log_out().flush();
    return log_failed ? 1 : exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    // A file-size limit must surface as EFBIG on the write (handled: the log stops taking
    // writes and we exit for a restart), not as a signal that kills us mid-write.
    std::signal(SIGXFSZ, SIG_IGN);

    CLI::App app{"scimsyncd: SCIM 2.0 provisioning sync daemon"};
    app.set_version_flag("--version", std::string("scimsyncd ") + SCIMSYNC_VERSION);
    flags f;
    app.add_option("--config", f.config,
                   "TOML config file (default " + std::string(sd::default_config_path) +
                       ", read only if it exists)");
    app.add_option(
        "--data-dir", f.data_dir,
        "state directory; the log is DIR/log (default " + std::string(sd::default_data_dir) + ")");
    app.add_option("--listen", f.listen,
                   "HTTP address IP:PORT; port 0 picks a free port "
                   "(default 127.0.0.1:8080)");
    app.add_option("--admin-socket", f.admin_socket,
                   "admin socket path (default " + std::string(sd::default_admin_socket) + ")");
    app.add_option("--durability", f.durability, "log fsync policy: always, batch (default), none")
        ->check(CLI::IsMember({"always", "batch", "none"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        say(e.what());
        return 2;
    }

    auto config = settle_config(f);
    if (!config) {
        say(config.error());
        return 2;
    }
    try {
        return serve(*config, f);
    } catch (const std::exception& e) {
        say(std::string("fatal: ") + e.what());
        return 1;
    }
}
