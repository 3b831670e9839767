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
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

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

namespace {

namespace el = scimsync::eventlog;
namespace sd = scimsync::daemon;

void say(const std::string& line) {
    std::cerr << "scimsyncd: " << line << '\n' << std::flush;
}

struct flags {
    std::optional<std::string> config;
    std::optional<std::string> data_dir;
    std::optional<std::string> listen;
    std::optional<std::string> admin_socket;
    std::optional<std::string> durability;
};

// Settings: defaults, then the config file, then flags. Error: one line (without the prefix).
std::expected<sd::daemon_config, std::string> settle_config(const flags& f) {
    sd::daemon_config config;
    std::filesystem::path file{f.config ? *f.config : std::string(sd::default_config_path)};
    std::error_code ec;
    // The default file is optional (a bare `scimsyncd` must work); a named one is not.
    if (f.config || std::filesystem::exists(file, ec)) {
        if (auto r = sd::apply_config_file(file, config); !r) return std::unexpected(r.error());
    }
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

int serve(const sd::daemon_config& config) {
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

    // A failed write (or fdatasync, or a fatal producer error) leaves the log refusing writes
    // (eventlog/README.md); the way back is a restart, which runs recovery. So drain and exit
    // 1 for systemd to restart us.
    std::atomic<bool> log_failed{false};
    std::atomic<sd::server*> running{nullptr};
    auto on_fatal = [&](const el::error& e) {
        say("log: " + e.message + "; shutting down so that a restart runs recovery");
        log_failed = true;
        if (auto* s = running.load()) s->stop();
    };
    auto log_notice = [](const std::string& line) { say("log: " + line); };

    sd::daemon_status status;
    status.version = SCIMSYNC_VERSION;
    status.data_dir = config.data_dir;
    status.durability = config.durability;
    std::unique_ptr<el::log> owned_log;
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
        auto opened = el::file_log::open(std::move(log_options));
        if (!opened) {
            say("cannot open log in " + config.log_dir().string() + ": " +
                opened.error().message);
            return 1;
        }
        owned_log = std::move(*opened);
        status.log_dir = config.log_dir();
        status.log = "file " + config.log_dir().string();
    }
    el::log& log = *owned_log;
    status.log_open = true;

    sd::scim_options scim;
    scim.snapshots.emplace(config.data_dir / "snapshots");
    scim.snapshot_every_events = config.snapshot_every_events;
    scim.notice = [](const std::string& line) { say(line); };
    sd::scim_service service(log, std::move(scim));
    if (auto r = service.start(); !r) {
        say("cannot rebuild the directory from the log: " + r.error().message);
        return 1;
    }

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

    sd::router routes(say);
    sd::add_health_routes(routes, log, status);
    service.add_routes(routes);
    sd::access_api access(service, config.access);
    access.add_routes(routes);
    policy.add_routes(routes);
    sd::add_status_command(commands, log, status);
    service.add_commands(commands);
    access.add_commands(commands, routes);
    policy.add_commands(commands);

    sd::server_options options;
    options.host = config.listen.host;
    options.port = config.listen.port;
    options.body_limit_bytes = config.body_limit_bytes;
    options.read_timeout = config.read_timeout;
    options.threads = config.threads;
    options.admin_socket = config.admin_socket;
    options.server_header = "scimsync/" SCIMSYNC_VERSION;
    options.notice = say;
    options.on_drain = [&status] { status.log_open = false; };

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
            running = &server;
            if (log_failed) server.stop();  // failed before `running` was set
            server.run();
            running = nullptr;
        }
        // Completes queued appends (and with them any async handler still owed a response)
        // while the server, which those responses go to, still exists.
        status.log_open = false;
        policy.stop();  // it appends through the SCIM command path: before the log closes
        if (ldap) ldap->stop_ingest();
        log.close();
        service.stop();
        if (ldap) ldap->stop();
    }
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
        return serve(*config);
    } catch (const std::exception& e) {
        say(std::string("fatal: ") + e.what());
        return 1;
    }
}
