// scimsyncd and scimsyncctl as an operator meets them: start-up, health endpoints, the admin
// socket, configuration errors and clean shutdown. Every test runs the real binaries.

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Number of lines in `text` (a trailing newline does not start another).
std::size_t line_count(const std::string& text) {
    std::size_t n = 0;
    for (char c : text) n += c == '\n';
    return n + (!text.empty() && text.back() != '\n');
}

// A daemon in its own temp dir, with optional TOML settings.
struct running_daemon {
    temp_dir dir{"scimsyncd-it"};
    std::optional<daemon_process> daemon;

    explicit running_daemon(const std::string& toml = {},
                            std::vector<std::string> extra_args = {}) {
        write_file(dir.path() / "scimsyncd.toml", toml);
        daemon.emplace(daemon_options{.dir = dir.path(), .extra_args = std::move(extra_args)});
    }
    daemon_process* operator->() { return &*daemon; }
};

void require_scim_error(const http_reply& r, int status) {
    INFO(r.body);
    REQUIRE(r.status == status);
    REQUIRE(r.header("Content-Type") == "application/scim+json");
    const auto body = json::parse(r.body);
    REQUIRE(body["schemas"] == json::array({"urn:ietf:params:scim:api:messages:2.0:Error"}));
    REQUIRE(body["status"] == std::to_string(status));
    REQUIRE(body["detail"].is_string());
}

// A Unix socket file with nothing listening on it, as a crashed daemon leaves behind.
void make_stale_socket(const std::filesystem::path& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    REQUIRE(std::filesystem::is_socket(path));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HTTP

TEST_CASE("healthz answers 200 once the listening line is printed", "[integration][http]") {
    running_daemon d;
    const auto r = http_get(d->host(), d->port(), "/healthz");
    REQUIRE(r.status == 200);
    REQUIRE(r.header("Content-Type") == "application/json");
    REQUIRE(json::parse(r.body) == json{{"status", "ok"}});
}

TEST_CASE("the listening line names 127.0.0.1 and the port actually bound", "[integration][http]") {
    running_daemon d;
    REQUIRE(d->host() == "127.0.0.1");
    REQUIRE(d->port() != 0);
    REQUIRE(d->url() == "http://127.0.0.1:" + std::to_string(d->port()));
    // Exactly one line on stdout.
    REQUIRE(d->process().out() == "listening on " + d->url() + "\n");
}

TEST_CASE("readyz reports ready with the last sequence number of an empty log and the views' lag",
          "[integration][http]") {
    running_daemon d;
    const auto r = http_get(d->host(), d->port(), "/readyz");
    REQUIRE(r.status == 200);
    REQUIRE(json::parse(r.body) ==
            json{{"status", "ready"}, {"last_seq", 0}, {"lag", {{"views", 0}}}});
}

TEST_CASE("an unknown path gets 404 with a SCIM error body", "[integration][http]") {
    running_daemon d;
    const auto r = http_get(d->host(), d->port(), "/scim/v2/Nothing");
    require_scim_error(r, 404);
    REQUIRE(json::parse(r.body)["detail"].get<std::string>().find("/scim/v2/Nothing") !=
            std::string::npos);
}

TEST_CASE("a known path with another method gets 405 with an Allow header", "[integration][http]") {
    running_daemon d;
    http_connection c(d->host(), d->port());
    const auto r = c.request("POST", "/healthz", "{}");
    require_scim_error(r, 405);
    REQUIRE(r.header("Allow") == "GET");
}

TEST_CASE("several requests are answered in order on one keep-alive connection",
          "[integration][http]") {
    running_daemon d;
    http_connection c(d->host(), d->port());
    REQUIRE(c.request("GET", "/healthz").status == 200);
    REQUIRE(c.request("GET", "/nope").status == 404);
    // Two pipelined requests in one write are answered one after the other.
    c.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto first = c.read_reply();
    const auto second = c.read_reply();
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(json::parse(first->body)["status"] == "ready");
    REQUIRE(json::parse(second->body)["status"] == "ok");
}

TEST_CASE("Connection: close is honoured after the response", "[integration][http]") {
    running_daemon d;
    http_connection c(d->host(), d->port());
    const auto r = c.request("GET", "/healthz", {}, {{"Connection", "close"}});
    REQUIRE(r.status == 200);
    REQUIRE(c.closed_by_peer(5s));
}

TEST_CASE("a request body over the configured limit gets 413 and the connection closes",
          "[integration][http]") {
    running_daemon d("[http]\nbody_limit_bytes = 1024\n");
    SECTION("announced by Content-Length") {
        http_connection c(d->host(), d->port());
        c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n");
        c.send(std::string(2048, 'a'));
        const auto r = c.read_reply();
        REQUIRE(r);
        require_scim_error(*r, 413);
        REQUIRE(json::parse(r->body)["scimType"] == "tooLarge");
        REQUIRE(c.closed_by_peer(5s));
    }
    SECTION("sent chunked") {
        http_connection c(d->host(), d->port());
        c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send("800\r\n" + std::string(0x800, 'b') + "\r\n");
        const auto r = c.read_reply();
        REQUIRE(r);
        REQUIRE(r->status == 413);
    }
    SECTION("a body within the limit is read and routed") {
        http_connection c(d->host(), d->port());
        REQUIRE(c.request("POST", "/healthz", std::string(1000, 'c')).status == 405);
    }
}

TEST_CASE("a malformed request gets 400 and the connection closes", "[integration][http]") {
    running_daemon d;
    http_connection c(d->host(), d->port());
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    const auto r = c.read_reply();
    REQUIRE(r);
    require_scim_error(*r, 400);
    REQUIRE(c.closed_by_peer(5s));
}

TEST_CASE("an idle connection is closed after the configured read timeout", "[integration][http]") {
    running_daemon d("[http]\nread_timeout_s = 1\n");
    http_connection c(d->host(), d->port());
    REQUIRE(c.request("GET", "/healthz").status == 200);
    REQUIRE(c.closed_by_peer(10s));
    // The daemon itself is unaffected.
    REQUIRE(http_get(d->host(), d->port(), "/healthz").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Admin socket and scimsyncctl status

TEST_CASE("the admin socket is created with mode 0600", "[integration][admin]") {
    running_daemon d;
    struct stat st {};
    REQUIRE(::lstat(d->options().admin_socket.c_str(), &st) == 0);
    REQUIRE(S_ISSOCK(st.st_mode));
    REQUIRE((st.st_mode & 0777) == 0600);
}

TEST_CASE("scimsyncctl status --json reports last_seq, durability and the listen address",
          "[integration][admin]") {
    running_daemon d;
    const auto r = d->ctl({"status", "--json"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(line_count(r.out) == 1);
    const auto s = json::parse(r.out);
    REQUIRE(s["last_seq"] == 0);
    REQUIRE(s["durability"] == "none");
    REQUIRE(s["listen"] == d->url());
    REQUIRE(s["data_dir"] == d->options().data_dir.string());
    REQUIRE(s["version"].is_string());
    REQUIRE(s["uptime_s"].is_number_integer());
}

TEST_CASE("scimsyncctl accepts its global options before or after the subcommand",
          "[integration][admin]") {
    running_daemon d;
    const auto socket = d->options().admin_socket.string();
    const auto before = run_binary("scimsyncctl", {"--json", "--socket", socket, "status"});
    const auto after = run_binary("scimsyncctl", {"status", "--socket", socket, "--json"});
    INFO(before.err << after.err);
    REQUIRE(before.code() == 0);
    REQUIRE(after.code() == 0);
    REQUIRE(json::parse(before.out)["listen"] == d->url());
    REQUIRE(json::parse(after.out)["listen"] == d->url());
}

TEST_CASE("scimsyncctl status prints a human summary without --json", "[integration][admin]") {
    running_daemon d;
    const auto r = d->ctl({"status"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.find("is running") != std::string::npos);
    REQUIRE(r.out.find(d->url()) != std::string::npos);
    REQUIRE(r.out.find("last seq") != std::string::npos);
}

TEST_CASE("scimsyncctl status exits 1 and says so when no daemon is running",
          "[integration][admin]") {
    temp_dir dir;
    const auto socket = (dir.path() / "admin.sock").string();
    const auto r = run_binary("scimsyncctl", {"--socket", socket, "status"});
    REQUIRE(r.code() == 1);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find("cannot connect to admin socket " + socket) != std::string::npos);
    REQUIRE(r.err.find("is scimsyncd running?") != std::string::npos);
    REQUIRE(r.out.empty());
}

TEST_CASE("admin requests that are malformed or unknown get ok:false and the connection stays",
          "[integration][admin]") {
    running_daemon d;
    const auto reply = unix_exchange(d->options().admin_socket,
                                     "not json\n"
                                     "[1,2]\n"
                                     "{\"cmd\":\"no-such-command\"}\n"
                                     "{\"cmd\":\"status\",\"args\":7}\n"
                                     "{\"cmd\":\"status\"}\n",
                                     5);
    std::vector<json> lines;
    std::size_t start = 0;
    for (std::size_t nl; (nl = reply.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(json::parse(reply.substr(start, nl - start)));
    }
    REQUIRE(lines.size() == 5);
    for (std::size_t i = 0; i < 4; ++i) {
        INFO(lines[i].dump());
        REQUIRE(lines[i]["ok"] == false);
        REQUIRE(lines[i]["error"].is_string());
    }
    REQUIRE(lines[2]["error"].get<std::string>().find("no-such-command") != std::string::npos);
    REQUIRE(lines[4]["ok"] == true);
    REQUIRE(lines[4]["result"]["last_seq"] == 0);
}

TEST_CASE("a second daemon on the same admin socket exits 1 naming the socket",
          "[integration][admin]") {
    running_daemon first;
    temp_dir other;
    daemon_options o{.dir = other.path(), .admin_socket = first->options().admin_socket};
    write_file(other.path() / "scimsyncd.toml", "");
    const auto r = run_process(o.argv());
    INFO(r.err);
    REQUIRE(r.code() == 1);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find("already listening on admin socket " +
                       first->options().admin_socket.string()) != std::string::npos);
    REQUIRE(r.out.empty());
    // The first daemon still owns its socket.
    REQUIRE(std::filesystem::is_socket(first->options().admin_socket));
    REQUIRE(first->ctl({"status", "--json"}).code() == 0);
}

TEST_CASE("a second daemon on the same data directory exits 1 naming the directory",
          "[integration][admin]") {
    running_daemon first;
    temp_dir other;
    daemon_options o{.dir = other.path(), .data_dir = first->options().data_dir};
    write_file(other.path() / "scimsyncd.toml", "");
    const auto r = run_process(o.argv());
    INFO(r.err);
    REQUIRE(r.code() == 1);
    REQUIRE(r.err.find("in use by another scimsyncd") != std::string::npos);
    REQUIRE(!std::filesystem::exists(other.path() / "admin.sock"));
    REQUIRE(first->ctl({"status", "--json"}).code() == 0);
}

TEST_CASE("a stale admin socket file left by a crash is replaced at start-up",
          "[integration][admin]") {
    temp_dir dir;
    make_stale_socket(dir.path() / "admin.sock");
    daemon_process d(daemon_options{.dir = dir.path()});
    REQUIRE(d.process().wait_err_contains("removed stale admin socket", 10s));
    REQUIRE(d.ctl({"status", "--json"}).code() == 0);
}

TEST_CASE("an admin socket path that is a regular file is refused and left alone",
          "[integration][admin]") {
    temp_dir dir;
    write_file(dir.path() / "admin.sock", "precious");
    write_file(dir.path() / "scimsyncd.toml", "");
    const auto r = run_process(daemon_options{.dir = dir.path()}.argv());
    REQUIRE(r.code() == 1);
    REQUIRE(r.err.find("is not a socket") != std::string::npos);
    REQUIRE(read_file(dir.path() / "admin.sock") == "precious");
}

// ---------------------------------------------------------------------------------------------
// Shutdown

TEST_CASE("SIGTERM stops the daemon with exit code 0 and removes the admin socket",
          "[integration][shutdown]") {
    running_daemon d;
    REQUIRE(std::filesystem::exists(d->options().admin_socket));
    const auto status = d->stop();
    REQUIRE(status);
    INFO(d->process().err());
    REQUIRE(status->exited());
    REQUIRE(status->code == 0);
    REQUIRE(!std::filesystem::exists(d->options().admin_socket));
}

TEST_CASE("SIGINT stops the daemon like SIGTERM", "[integration][shutdown]") {
    running_daemon d;
    d->process().send_signal(SIGINT);
    const auto status = d->process().wait(20s);
    REQUIRE(status);
    REQUIRE(status->code == 0);
    REQUIRE(!std::filesystem::exists(d->options().admin_socket));
}

TEST_CASE("SIGTERM closes idle keep-alive connections instead of waiting for them",
          "[integration][shutdown]") {
    running_daemon d;  // default read timeout 30 s: the drain must not wait for it
    http_connection idle(d->host(), d->port());
    REQUIRE(idle.request("GET", "/healthz").status == 200);
    const auto started = std::chrono::steady_clock::now();
    const auto status = d->stop();
    REQUIRE(status);
    REQUIRE(status->code == 0);
    REQUIRE(std::chrono::steady_clock::now() - started < 10s);
    REQUIRE(idle.closed_by_peer(5s));
}

TEST_CASE("SIGTERM lets a request that is arriving finish, then closes its connection",
          "[integration][shutdown]") {
    running_daemon d;
    http_connection c(d->host(), d->port());
    // A first answer proves the connection was accepted: connections still in the listen
    // backlog when the drain closes the listener are reset by the kernel.
    REQUIRE(c.request("GET", "/healthz").status == 200);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    d->process().send_signal(SIGTERM);
    // The drain has begun once the admin socket is gone; the request is still half sent.
    REQUIRE(eventually([&] { return !std::filesystem::exists(d->options().admin_socket); }));
    c.send("\r\n");
    const auto r = c.read_reply();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    REQUIRE(r->header("Connection") == "close");
    const auto status = d->process().wait(20s);
    REQUIRE(status);
    REQUIRE(status->code == 0);
}

TEST_CASE("a restarted daemon serves the same data directory again", "[integration][shutdown]") {
    temp_dir dir;
    {
        daemon_process d(daemon_options{.dir = dir.path()});
        REQUIRE(d.stop().value().code == 0);
    }
    daemon_process d(daemon_options{.dir = dir.path()});
    REQUIRE(http_get(d.host(), d.port(), "/readyz").status == 200);
    REQUIRE(d.stop().value().code == 0);
}

// ---------------------------------------------------------------------------------------------
// Command line and configuration errors

TEST_CASE("an unknown flag exits 2 with one line on stderr", "[integration][config]") {
    const auto r = run_binary("scimsyncd", {"--no-such-flag"});
    REQUIRE(r.code() == 2);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find("--no-such-flag") != std::string::npos);
    REQUIRE(r.out.empty());
}

TEST_CASE("a bad --listen value exits 2 naming the flag", "[integration][config]") {
    temp_dir dir;
    const auto config = dir.path() / "empty.toml";
    write_file(config, "");
    for (const char* bad : {"localhost:8080", "127.0.0.1", "127.0.0.1:99999", "1.2.3.4:x"}) {
        const auto r = run_binary("scimsyncd", {"--config", config.string(), "--listen", bad});
        INFO(bad << ": " << r.err);
        REQUIRE(r.code() == 2);
        REQUIRE(line_count(r.err) == 1);
        REQUIRE(r.err.find("--listen") != std::string::npos);
    }
}

TEST_CASE("a bad --durability value exits 2 naming the flag", "[integration][config]") {
    const auto r = run_binary("scimsyncd", {"--durability", "sometimes"});
    REQUIRE(r.code() == 2);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find("--durability") != std::string::npos);
}

TEST_CASE("an unknown key in the config file exits 2 naming file, line and key",
          "[integration][config]") {
    temp_dir dir;
    const auto file = dir.path() / "scimsyncd.toml";
    write_file(file, "data_dir = \"/tmp/x\"\n\n[http]\nthreads = 2\nthredas = 3\n");
    const auto r = run_binary("scimsyncd", {"--config", file.string()});
    INFO(r.err);
    REQUIRE(r.code() == 2);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find(file.string() + ":5:") != std::string::npos);
    REQUIRE(r.err.find("http.thredas") != std::string::npos);
    REQUIRE(r.err.find("unknown key") != std::string::npos);
}

TEST_CASE("an unknown top-level table in the config file exits 2", "[integration][config]") {
    temp_dir dir;
    const auto file = dir.path() / "scimsyncd.toml";
    write_file(file, "[tls]\ncert = \"x\"\n");
    const auto r = run_binary("scimsyncd", {"--config", file.string()});
    REQUIRE(r.code() == 2);
    REQUIRE(r.err.find(file.string() + ":1:") != std::string::npos);
    REQUIRE(r.err.find("tls") != std::string::npos);
}

TEST_CASE("a bad value in the config file exits 2 naming file, line and key",
          "[integration][config]") {
    temp_dir dir;
    const auto file = dir.path() / "scimsyncd.toml";
    struct bad_case {
        std::string toml;
        std::string key;
        int line;
    };
    const std::vector<bad_case> cases = {
        {"[log]\ndurability = \"sometimes\"\n", "log.durability", 2},
        {"\n\n[http]\nthreads = 0\n", "http.threads", 4},
        {"[http]\nbody_limit_bytes = \"1MiB\"\n", "http.body_limit_bytes", 2},
        {"listen = \"nowhere\"\n", "listen", 1},
        {"data_dir = 5\n", "data_dir", 1},
        {"log = 3\n", "log", 1},
    };
    for (const auto& c : cases) {
        write_file(file, c.toml);
        const auto r = run_binary("scimsyncd", {"--config", file.string()});
        INFO(c.toml << " -> " << r.err);
        REQUIRE(r.code() == 2);
        REQUIRE(line_count(r.err) == 1);
        REQUIRE(r.err.find(file.string() + ":" + std::to_string(c.line) + ":") !=
                std::string::npos);
        REQUIRE(r.err.find(c.key) != std::string::npos);
    }
}

TEST_CASE("a config file that is not valid TOML exits 2 naming file and line",
          "[integration][config]") {
    temp_dir dir;
    const auto file = dir.path() / "scimsyncd.toml";
    write_file(file, "data_dir = \"/x\"\nlisten = \n");
    const auto r = run_binary("scimsyncd", {"--config", file.string()});
    REQUIRE(r.code() == 2);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find(file.string() + ":2:") != std::string::npos);
}

TEST_CASE("an explicitly named config file that does not exist exits 2", "[integration][config]") {
    temp_dir dir;
    const auto file = dir.path() / "missing.toml";
    const auto r = run_binary("scimsyncd", {"--config", file.string()});
    REQUIRE(r.code() == 2);
    REQUIRE(line_count(r.err) == 1);
    REQUIRE(r.err.find(file.string()) != std::string::npos);
}

TEST_CASE("settings come from the config file and flags override them", "[integration][config]") {
    temp_dir dir;
    const auto from_file = dir.path() / "from-file";
    const auto from_flag = dir.path() / "from-flag";
    write_file(dir.path() / "scimsyncd.toml",
               "data_dir = \"" + from_file.string() + "\"\n[log]\ndurability = \"always\"\n");
    SECTION("the file alone") {
        daemon_process d(
            daemon_options{.dir = dir.path(), .data_dir = from_file, .durability = ""});
        const auto s = json::parse(d.ctl({"status", "--json"}).out);
        REQUIRE(s["durability"] == "always");
        REQUIRE(s["data_dir"] == from_file.string());
    }
    SECTION("flags on top") {
        daemon_process d(
            daemon_options{.dir = dir.path(), .data_dir = from_flag, .durability = "none"});
        const auto s = json::parse(d.ctl({"status", "--json"}).out);
        REQUIRE(s["durability"] == "none");
        REQUIRE(s["data_dir"] == from_flag.string());
        REQUIRE(std::filesystem::is_directory(from_flag / "log"));
        REQUIRE(!std::filesystem::exists(from_file));
    }
}

TEST_CASE("scimsyncctl usage errors exit 2 with one line on stderr", "[integration][config]") {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{},
                                               {"frobnicate"},
                                               {"log"},
                                               {"log", "dump", "--from", "x"},
                                               {"log", "dump", "--since", "yesterday"}}) {
        const auto r = run_binary("scimsyncctl", args);
        INFO(r.err);
        REQUIRE(r.code() == 2);
        REQUIRE(line_count(r.err) == 1);
    }
}

TEST_CASE("scimsyncctl log commands on a directory without a log exit 2", "[integration][config]") {
    temp_dir dir;
    for (const char* cmd : {"verify", "stats", "dump"}) {
        const auto r = run_binary("scimsyncctl", {"--data-dir", dir.path().string(), "log", cmd});
        INFO(cmd << ": " << r.err);
        REQUIRE(r.code() == 2);
        REQUIRE(line_count(r.err) == 1);
        REQUIRE(r.err.find((dir.path() / "log").string()) != std::string::npos);
    }
}
