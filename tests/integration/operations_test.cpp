// Running scimsyncd as a service and questioning it as an auditor: /metrics, request logs, rate
// limits, configuration errors and environment overrides, SIGHUP reloads (a token file, the LDAP
// mapping against a real slapd), a SIGTERM under load that loses nothing, and the offline
// history / state --as-of / diff commands against what the daemon showed at the time.

#include <pwd.h>
#include <unistd.h>

#include <barrier>
#include <catch2/catch.hpp>
#include <csignal>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "scimsync/bridge/dn.hpp"
#include "slapd_fixture.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;

namespace {

// A daemon with one SCIM token, configured by `config` (TOML).
struct ops_fixture {
    temp_dir dir;
    std::optional<daemon_process> daemon;
    std::string token;

    explicit ops_fixture(const std::string& config = "", std::vector<std::string> env = {},
                         std::string durability = "none") {
        write_file(dir.path() / "scimsyncd.toml", config);
        start(std::move(env), std::move(durability));
    }
    void start(std::vector<std::string> env = {}, std::string durability = "none") {
        daemon_options o;
        o.dir = dir.path();
        o.env = std::move(env);
        o.durability = std::move(durability);
        daemon.emplace(o);
        if (token.empty()) token = issue("okta");
    }
    std::string issue(const std::string& name) {
        auto created = ctl({"token", "create", "--name", name, "--json"});
        INFO(created.err);
        REQUIRE(created.code() == 0);
        return json::parse(created.out)["token"];
    }
    process_output ctl(std::vector<std::string> args) const {
        std::vector<std::string> all{"--socket", (dir.path() / "admin.sock").string(), "--data-dir",
                                     (dir.path() / "data").string()};
        all.insert(all.end(), args.begin(), args.end());
        return run_binary("scimsyncctl", all, std::chrono::seconds(60));
    }
    http_reply call(const std::string& method, const std::string& path, const json& body = nullptr,
                    const std::string& bearer = "") {
        http_connection c(daemon->host(), daemon->port());
        std::vector<std::pair<std::string, std::string>> h{
            {"Authorization", "Bearer " + (bearer.empty() ? token : bearer)}};
        if (!body.is_null()) h.emplace_back("Content-Type", "application/scim+json");
        return c.request(method, path, body.is_null() ? "" : body.dump(), h);
    }
    // Registers a device held by `owner` (id or userName) under policy "standard"; its id.
    std::string register_device(const std::string& name, const std::string& serial,
                                const std::string& owner) {
        auto r = ctl({"device", "register", "--name", name, "--serial", serial, "--owner", owner,
                      "--policy", "standard", "--json"});
        INFO(r.err);
        REQUIRE(r.code() == 0);
        return json::parse(r.out)["id"];
    }
    std::string post_user(const std::string& name) {
        auto r = call("POST", "/scim/v2/Users",
                      {{"schemas", {user_schema}}, {"userName", name}, {"title", "engineer"}});
        REQUIRE(r.status == 201);
        return json::parse(r.body)["id"];
    }
};

// One sample of the Prometheus text format: name, labels, value.
struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

// Parses the exposition strictly (text format 0.0.4): every line a comment (# HELP / # TYPE) or a
// sample; every sample's family declared by # TYPE before it. Fails the test otherwise.
std::vector<sample> parse_prometheus(const std::string& text) {
    static const std::regex type_line(
        R"re(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)re");
    static const std::regex help_line(R"re(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)re");
    static const std::regex sample_line(
        R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*",?)*)\})? ([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf|NaN))$)re");
    static const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)")re");
    std::map<std::string, std::string> types;
    std::vector<sample> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        INFO(line);
        std::smatch m;
        if (std::regex_match(line, m, type_line)) {
            types[m[1]] = m[2];
            continue;
        }
        if (std::regex_match(line, m, help_line)) continue;
        REQUIRE(std::regex_match(line, m, sample_line));
        sample s;
        s.name = m[1];
        const std::string labels = m[3];
        for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it)
            s.labels[(*it)[1]] = (*it)[2];
        s.value = m[4] == "Inf" ? INFINITY : std::stod(m[4]);
        std::string family = s.name;
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (!types.contains(family) && family.ends_with(suffix))
                family = family.substr(0, family.size() - std::strlen(suffix));
        REQUIRE(types.contains(family));
        out.push_back(std::move(s));
    }
    return out;
}

double value_of(const std::vector<sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels) {
    for (const auto& s : samples) {
        if (s.name != name) continue;
        bool all = true;
        for (const auto& [k, v] : labels) all = all && s.labels.contains(k) && s.labels.at(k) == v;
        if (all) return s.value;
    }
    return -1;
}

}  // namespace

TEST_CASE("/metrics is valid Prometheus text counting requests, latencies, events and lags",
          "[integration][operations]") {
    ops_fixture f;
    for (int i = 0; i < 3; ++i) f.post_user("metrics" + std::to_string(i) + "@example.com");
    REQUIRE(f.call("GET", "/scim/v2/Users/nope").status == 404);
    http_connection c(f.daemon->host(), f.daemon->port());
    const auto r = c.request("GET", "/metrics");
    REQUIRE(r.status == 200);
    REQUIRE_THAT(*r.header("Content-Type"), Catch::StartsWith("text/plain; version=0.0.4"));
    const auto samples = parse_prometheus(r.body);
    REQUIRE(value_of(samples, "scimsync_http_requests_total",
                     {{"method", "POST"}, {"route", "/scim/v2/Users"}, {"status", "201"}}) == 3);
    REQUIRE(value_of(samples, "scimsync_http_requests_total",
                     {{"method", "GET"}, {"route", "/scim/v2/Users/{id}"}, {"status", "404"}}) ==
            1);
    REQUIRE(value_of(samples, "scimsync_events_total", {{"type", "UserCreated"}}) == 3);
    REQUIRE(value_of(samples, "scimsync_projector_lag_events", {{"projector", "views"}}) == 0);
    REQUIRE(value_of(samples, "scimsync_log_last_seq", {}) == 4);  // the token and three users
    // Histograms: cumulative buckets ending in +Inf == _count.
    const double count = value_of(samples, "scimsync_http_request_duration_seconds_count",
                                  {{"route", "/scim/v2/Users"}});
    REQUIRE(count == 3);
    double previous = 0;
    for (const auto& s : samples) {
        if (s.name != "scimsync_http_request_duration_seconds_bucket" ||
            s.labels.at("route") != "/scim/v2/Users")
            continue;
        REQUIRE(s.value >= previous);
        previous = s.value;
    }
    REQUIRE(previous == count);
    REQUIRE(value_of(samples, "scimsync_log_append_duration_seconds_count", {}) == 4);
}

TEST_CASE(
    "every request leaves one log line with its method, path, status, latency and token "
    "name, never the token",
    "[integration][operations]") {
    ops_fixture f;
    f.post_user("logged@example.com");
    f.daemon->process().send_signal(SIGTERM);  // flushes the batched request lines
    REQUIRE(f.daemon->process().wait(std::chrono::seconds(20))->code == 0);
    REQUIRE(f.daemon->process().wait_output_closed(std::chrono::seconds(5)));
    const auto err = f.daemon->process().err();
    REQUIRE_THAT(err, Catch::Contains("request method=POST path=/scim/v2/Users status=201 "
                                      "duration_ms="));
    REQUIRE_THAT(err, Catch::Contains("token=okta"));
    REQUIRE(err.find(f.token) == std::string::npos);
}

TEST_CASE("a token over its rate gets 429 with Retry-After, and other tokens go on",
          "[integration][operations]") {
    ops_fixture f("[http]\nrate_limit_per_token = 0.5\nrate_limit_burst = 2\n");
    const std::string other = f.issue("entra");
    REQUIRE(f.call("GET", "/scim/v2/Users").status == 200);
    REQUIRE(f.call("GET", "/scim/v2/Users").status == 200);
    const auto refused = f.call("GET", "/scim/v2/Users");
    REQUIRE(refused.status == 429);
    REQUIRE(std::stoi(*refused.header("Retry-After")) >= 1);
    REQUIRE(json::parse(refused.body)["status"] == "429");
    REQUIRE(f.call("GET", "/scim/v2/Users", nullptr, other).status == 200);
}

TEST_CASE("bad configuration names the file, line and key, or the environment variable",
          "[integration][operations]") {
    temp_dir dir;
    auto start = [&](const std::string& config, std::vector<std::string> env = {}) {
        write_file(dir.path() / "bad.toml", config);
        std::vector<std::string> argv{built_binary("scimsyncd").string(),
                                      "--config",
                                      (dir.path() / "bad.toml").string(),
                                      "--data-dir",
                                      (dir.path() / "data").string(),
                                      "--listen",
                                      "127.0.0.1:0",
                                      "--admin-socket",
                                      (dir.path() / "a.sock").string()};
        child_process p(argv, child_process::options{.cwd = {}, .env = std::move(env)});
        auto st = p.wait(std::chrono::seconds(20));
        REQUIRE(st);
        REQUIRE(p.wait_output_closed(std::chrono::seconds(5)));
        return std::make_pair(st->code, p.err());
    };
    auto [code, err] = start("[http]\n\nthreads = 0\n");
    REQUIRE(code == 2);
    REQUIRE_THAT(err,
                 Catch::Contains("bad.toml:3: http.threads: expected an integer from 1 to 64"));
    std::tie(code, err) = start("[logging]\nlevel = \"loud\"\n");
    REQUIRE(code == 2);
    REQUIRE_THAT(err, Catch::Contains("bad.toml:2: logging.level"));
    std::tie(code, err) = start("[tokens.okta]\nfile = \"/nonexistent/okta\"\n");
    REQUIRE(code == 2);
    REQUIRE_THAT(err, Catch::Contains("tokens.okta.file: cannot read /nonexistent/okta"));
    std::tie(code, err) = start("", {"SCIMSYNC_HTTP__THREADS=lots"});
    REQUIRE(code == 2);
    REQUIRE_THAT(err, Catch::Contains("environment variable SCIMSYNC_HTTP__THREADS: http.threads"));
    std::tie(code, err) = start("", {"SCIMSYNC_NO_SUCH_THING=1"});
    REQUIRE(code == 2);
    REQUIRE_THAT(err, Catch::Contains("SCIMSYNC_NO_SUCH_THING: no_such_thing: unknown key"));
}

TEST_CASE("environment variables override the configuration file", "[integration][operations]") {
    ops_fixture f("[http]\nrate_limit_per_token = 1000\n",
                  {"SCIMSYNC_HTTP__RATE_LIMIT_PER_TOKEN=0.5", "SCIMSYNC_HTTP__RATE_LIMIT_BURST=1"});
    REQUIRE(f.call("GET", "/scim/v2/Users").status == 200);
    REQUIRE(f.call("GET", "/scim/v2/Users").status == 429);
}

TEST_CASE(
    "SIGHUP applies a new token file and a changed LDAP mapping, and says what needs a "
    "restart",
    "[integration][operations][ldap]") {
    slapd_server slapd;
    temp_dir dir;
    write_file(dir.path() / "ldap.secret", slapd.admin_password() + "\n");
    const std::string ldap = "[ldap]\nurl = \"" + slapd.url() + "\"\nbind_dn = \"" +
                             slapd.admin_dn() + "\"\nbind_password_file = \"" +
                             (dir.path() / "ldap.secret").string() +
                             "\"\nsuffix = \"dc=example,dc=com\"\n";
    write_file(dir.path() / "scimsyncd.toml",
               ldap + "[ldap.attributes]\ndescription = \"title\"\n");
    daemon_options o;
    o.dir = dir.path();
    daemon_process d(o);
    auto ctl = [&](std::vector<std::string> args) {
        std::vector<std::string> all{"--socket", (dir.path() / "admin.sock").string()};
        all.insert(all.end(), args.begin(), args.end());
        return run_binary("scimsyncctl", all);
    };
    const std::string issued =
        json::parse(ctl({"token", "create", "--name", "okta", "--json"}).out)["token"];
    auto post = [&](const std::string& bearer, const std::string& name) {
        http_connection c(d.host(), d.port());
        return c.request(
            "POST", "/scim/v2/Users",
            json{{"schemas", {user_schema}},
                 {"userName", name},
                 {"title", "engineer"},
                 {"nickName", "nick"}}
                .dump(),
            {{"Authorization", "Bearer " + bearer}, {"Content-Type", "application/scim+json"}});
    };
    auto description_of = [&](const std::string& name) -> std::string {
        const auto found = slapd.search("uid=" + name + ",ou=people,dc=example,dc=com",
                                        "(objectClass=*)", {"description"});
        if (found.empty() || !found[0].attrs.contains("description")) return "";
        return found[0].attrs.at("description").front();
    };
    REQUIRE(post(issued, "before").status == 201);
    REQUIRE(eventually([&] { return description_of("before") == "engineer"; },
                       std::chrono::seconds(30)));

    // A token from a file, a changed mapping, and a changed listen address.
    const std::string configured = "cfg_" + std::string(40, 'k');
    write_file(dir.path() / "okta2.token", configured + "\n");
    REQUIRE(post(configured, "nobody").status == 401);
    write_file(dir.path() / "scimsyncd.toml",
               ldap + "[ldap.attributes]\ndescription = \"nickName\"\n[tokens.okta2]\nfile = \"" +
                   (dir.path() / "okta2.token").string() + "\"\n" + "[http]\nthreads = 3\n");
    d.process().send_signal(SIGHUP);
    REQUIRE(d.process().wait_err_contains("reload: applied", std::chrono::seconds(30)));
    REQUIRE_THAT(d.process().err(), Catch::Contains("tokens") && Catch::Contains("ldap") &&
                                        Catch::Contains("needs a restart to take effect: http"));
    REQUIRE(d.process().err().find(configured) == std::string::npos);
    REQUIRE(post(configured, "after").status == 201);
    REQUIRE(
        eventually([&] { return description_of("after") == "nick"; }, std::chrono::seconds(30)));
    // The actor of a configured token's writes names it.
    REQUIRE(d.stop().value().code == 0);
    auto hist = run_binary("scimsyncctl",
                           {"--data-dir", (dir.path() / "data").string(), "history", "after"});
    REQUIRE(hist.code() == 0);
    REQUIRE_THAT(hist.out, Catch::Contains("UserCreated  by scim:okta2 (configured token)"));
}

TEST_CASE("SIGHUP applies changed deprovisioning policies and a changed service catalogue",
          "[integration][operations][policies]") {
    ops_fixture f("[access.services.dashboard]\nroles = [\"viewer\"]\n");
    auto policy_status = f.ctl({"policy", "status"});
    REQUIRE(policy_status.code() != 0);
    REQUIRE_THAT(policy_status.err, Catch::Contains("no deprovisioning policies are configured"));

    // Carl is a contractor holding a laptop; the daemon knows of no policy for him yet.
    auto created =
        f.call("POST", "/scim/v2/Users",
               {{"schemas", {user_schema}}, {"userName", "carl"}, {"title", "Contractor"}});
    REQUIRE(created.status == 201);
    const std::string carl = json::parse(created.body)["id"];
    const std::string laptop = f.register_device("carl laptop", "SN-C", carl);
    // Dora, another contractor, left before any policy existed: the new policy is not applied
    // to her after the fact.
    auto dora = f.call("POST", "/scim/v2/Users",
                       {{"schemas", {user_schema}}, {"userName", "dora"}, {"title", "Contractor"}});
    REQUIRE(dora.status == 201);
    const std::string dora_laptop = f.register_device("dora laptop", "SN-D", "dora");
    const auto deactivate = json{
        {"schemas", {patch_op}},
        {"Operations", json::array({{{"op", "replace"}, {"path", "active"}, {"value", false}}})}};
    REQUIRE(f.call("PATCH", "/scim/v2/Users/" + json::parse(dora.body)["id"].get<std::string>(),
                   deactivate)
                    .status /
                100 ==
            2);
    auto grant_wiki = [&] {
        return f.ctl({"access", "grant", "--user", "carl", "--service", "wiki"});
    };
    auto refused = grant_wiki();
    REQUIRE(refused.code() != 0);
    REQUIRE_THAT(refused.err + refused.out, Catch::Contains("wiki"));

    write_file(f.dir.path() / "scimsyncd.toml",
               "[access.services.dashboard]\nroles = [\"viewer\"]\n"
               "[access.services.wiki]\ndescription = \"Team wiki\"\n"
               "[policies.populations.contractors]\nfilter = 'title eq \"Contractor\"'\n"
               "on_deactivate = \"unassign\"\n");
    f.daemon->process().send_signal(SIGHUP);
    REQUIRE(f.daemon->process().wait_err_contains("reload: applied", std::chrono::seconds(30)));
    const std::string said = f.daemon->process().err();
    REQUIRE_THAT(said, Catch::Contains("policies") && Catch::Contains("access"));
    REQUIRE_THAT(said, !Catch::Contains("needs a restart"));

    auto granted = grant_wiki();
    INFO(granted.err);
    REQUIRE(granted.code() == 0);
    REQUIRE(f.ctl({"policy", "status"}).code() == 0);
    // Deactivating him now runs the new policy: the laptop loses its owner.
    auto off = f.call("PATCH", "/scim/v2/Users/" + carl, deactivate);
    REQUIRE(off.status / 100 == 2);
    REQUIRE(eventually([&] {
        auto r = f.ctl({"admin", "GET", "/devices/" + laptop});
        return r.code() == 0 && json::parse(r.out)["owner"].is_null();
    }));
    auto status = f.ctl({"policy", "status", "--json"});
    REQUIRE(status.code() == 0);
    REQUIRE(json::parse(status.out)["applied"] == 1);
    auto dora_device = f.ctl({"admin", "GET", "/devices/" + dora_laptop});
    REQUIRE(json::parse(dora_device.out)["owner"] == json::parse(dora.body)["id"]);
}

TEST_CASE("a SIGTERM under load finishes what was acknowledged: every 201 survives a restart",
          "[integration][operations]") {
    ops_fixture f("", {}, "batch");
    constexpr int writers = 6;
    std::mutex mu;
    std::vector<std::string> acknowledged;
    std::atomic<bool> go_on{true};
    std::atomic<int> answered{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < writers; ++t) {
        threads.emplace_back([&, t] {
            try {
                http_connection c(f.daemon->host(), f.daemon->port());
                for (int i = 0; go_on.load(); ++i) {
                    const std::string name =
                        "load-" + std::to_string(t) + "-" + std::to_string(i) + "@example.com";
                    auto r = c.request("POST", "/scim/v2/Users",
                                       json{{"schemas", {user_schema}}, {"userName", name}}.dump(),
                                       {{"Authorization", "Bearer " + f.token},
                                        {"Content-Type", "application/scim+json"}},
                                       std::chrono::seconds(10));
                    ++answered;
                    if (r.status == 201) {
                        std::lock_guard lk(mu);
                        acknowledged.push_back(json::parse(r.body)["id"]);
                    }
                    if (r.header("Connection").value_or("") == "close") return;
                }
            } catch (const std::exception&) {
                // The server closed the connection while draining: that request got no answer
                // and was therefore not acknowledged.
            }
        });
    }
    REQUIRE(eventually([&] { return answered.load() >= 200; }, std::chrono::seconds(60)));
    f.daemon->process().send_signal(SIGTERM);
    const auto st = f.daemon->process().wait(std::chrono::seconds(30));
    go_on = false;
    for (auto& t : threads) t.join();
    REQUIRE(st);
    REQUIRE(st->code == 0);
    REQUIRE(acknowledged.size() >= 200);

    f.start({}, "batch");
    http_connection c(f.daemon->host(), f.daemon->port());
    for (const auto& id : acknowledged)
        REQUIRE(
            c.request("GET", "/scim/v2/Users/" + id, "", {{"Authorization", "Bearer " + f.token}})
                .status == 200);
}

TEST_CASE(
    "state --as-of gives the directory exactly as it was served then; diff and history "
    "say what changed and who did it",
    "[integration][operations][audit]") {
    ops_fixture f("[access.services.wiki]\nroles = [\"editor\"]\n");
    const std::string alice = f.post_user("alice@example.com");
    const std::string bob = f.post_user("bob@example.com");
    const std::string laptop = f.register_device("alice laptop", "SN-A", alice);
    auto g = f.call("POST", "/scim/v2/Groups",
                    {{"schemas", {group_schema}},
                     {"displayName", "Staff"},
                     {"members", {{{"value", alice}}, {{"value", bob}}}}});
    REQUIRE(g.status == 201);
    const std::string staff = json::parse(g.body)["id"];
    // What the daemon shows at this moment, and where the log stands.
    const auto users_then = json::parse(f.call("GET", "/scim/v2/Users").body)["Resources"];
    const auto groups_then = json::parse(f.call("GET", "/scim/v2/Groups").body)["Resources"];
    const std::uint64_t seq_then = json::parse(f.ctl({"status", "--json"}).out)["last_seq"];

    // Later changes: a deactivation, a removal, a new user.
    REQUIRE(f.call("PATCH", "/scim/v2/Users/" + alice,
                   {{"schemas", {patch_op}},
                    {"Operations", {{{"op", "replace"}, {"path", "active"}, {"value", false}}}}})
                .status == 200);
    REQUIRE(f.call("DELETE", "/scim/v2/Users/" + bob).status == 204);
    f.post_user("carol@example.com");
    REQUIRE(f.ctl({"access", "grant", "--user", "carol@example.com", "--service", "wiki", "--role",
                   "editor"})
                .code() == 0);
    REQUIRE(f.ctl({"device", "update", laptop, "--policy", "locked"}).code() == 0);
    REQUIRE(f.daemon->stop().value().code == 0);

    auto state = f.ctl({"state", "--as-of", std::to_string(seq_then), "--json"});
    INFO(state.err);
    REQUIRE(state.code() == 0);
    const auto then = json::parse(state.out);
    REQUIRE(then["as_of"]["seq"] == seq_then);
    auto strip = [](json list) {
        for (auto& r : list) {
            r["meta"].erase("location");
            r["meta"].erase("resourceType");
            r.erase("members");
        }
        return list;
    };
    REQUIRE(strip(then["users"]) == strip(users_then));
    REQUIRE(strip(then["groups"]) == strip(groups_then));
    REQUIRE(then["groups"][0]["members"].size() == 2);
    // By time too: the time of the last event as of then.
    auto by_time = f.ctl({"state", "--as-of", then["as_of"]["time"].get<std::string>(), "--json"});
    REQUIRE(by_time.code() == 0);
    REQUIRE(json::parse(by_time.out)["users"] == then["users"]);
    // LDIF, with the default mapping.
    auto ldif = f.ctl({"state", "--as-of", std::to_string(seq_then), "--format", "ldif"});
    REQUIRE(ldif.code() == 0);
    REQUIRE_THAT(ldif.out, Catch::Contains("dn: uid=bob@example.com,ou=people,dc=example,dc=com"));
    REQUIRE_THAT(ldif.out,
                 Catch::Contains("member: uid=alice@example.com,ou=people,dc=example,dc=com"));

    auto diff =
        f.ctl({"diff", "--from", std::to_string(seq_then), "--to",
               json::parse(f.ctl({"log", "stats", "--json"}).out)["last_seq"].dump(), "--json"});
    INFO(diff.err);
    REQUIRE(diff.code() == 0);
    const auto d = json::parse(diff.out);
    REQUIRE(d["users"]["added"].size() == 1);
    REQUIRE(d["users"]["added"][0]["userName"] == "carol@example.com");
    REQUIRE(d["users"]["removed"][0]["id"] == bob);
    REQUIRE(d["users"]["changed"][0]["id"] == alice);
    REQUIRE(d["users"]["changed"][0]["attributes"][0] ==
            json{{"attribute", "active"}, {"from", nullptr}, {"to", false}});
    REQUIRE(d["groups"]["changed"][0]["members_removed"] == json::array({bob}));
    const std::string carol = d["users"]["added"][0]["id"];
    REQUIRE(d["grants"]["added"] ==
            json::array({{{"subject", "User/" + carol}, {"service", "wiki"}, {"role", "editor"}}}));
    REQUIRE(d["grants"]["removed"].empty());
    REQUIRE(d["devices"]["changed"].size() == 1);
    REQUIRE(d["devices"]["changed"][0]["id"] == laptop);
    REQUIRE(d["devices"]["changed"][0]["attributes"] ==
            json::array({{{"attribute", "policy"}, {"from", "standard"}, {"to", "locked"}}}));
    auto text_diff = f.ctl({"diff", "--from", std::to_string(seq_then), "--to",
                            json::parse(f.ctl({"log", "stats", "--json"}).out)["last_seq"].dump()});
    REQUIRE_THAT(text_diff.out, Catch::Contains("+ grant User/" + carol + " wiki/editor") &&
                                    Catch::Contains("~ Device/" + laptop +
                                                    " alice laptop policy: \"standard\" -> "
                                                    "\"locked\""));

    // scimsyncctl's changes name the Unix user who ran it (from the socket's peer credentials).
    auto alice_history = f.ctl({"history", "User/" + alice});
    REQUIRE(alice_history.code() == 0);
    const passwd* me = ::getpwuid(::getuid());
    REQUIRE(me != nullptr);
    REQUIRE_THAT(alice_history.out, Catch::Contains("DeviceRegistered  by admin:admin-socket:" +
                                                    std::string(me->pw_name)));

    auto hist = f.ctl({"history", "BOB@example.com"});
    INFO(hist.err);
    REQUIRE(hist.code() == 0);
    REQUIRE_THAT(hist.out, Catch::Contains("UserCreated  by scim:okta (token"));
    REQUIRE_THAT(hist.out, Catch::Contains("GroupCreated"));
    REQUIRE_THAT(hist.out, Catch::Contains("UserDeleted"));
    auto group_hist = f.ctl({"history", "Group/" + staff, "--json"});
    REQUIRE(group_hist.code() == 0);
    REQUIRE(json::parse(group_hist.out).size() == 1);
    REQUIRE(json::parse(group_hist.out)[0]["type"] == "GroupCreated");
    REQUIRE(f.ctl({"history", "nobody@example.com"}).code() == 1);
}

TEST_CASE(
    "with a certificate and key the listener speaks HTTPS only, and token create gives an "
    "https base URL",
    "[integration][operations][tls]") {
    temp_dir dir;
    const auto cert = dir.path() / "cert.pem";
    const auto key = dir.path() / "key.pem";
    auto made = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                             "-keyout", key.string(), "-out", cert.string(), "-days", "2", "-subj",
                             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
    INFO(made.err);
    REQUIRE(made.code() == 0);
    ops_fixture f("[http.tls]\ncert_file = \"" + cert.string() + "\"\nkey_file = \"" +
                  key.string() + "\"\n");
    REQUIRE(f.daemon->url().starts_with("https://127.0.0.1:"));
    auto created = f.ctl({"token", "create", "--name", "tls", "--json"});
    REQUIRE(json::parse(created.out)["base_url"] == f.daemon->url() + "/scim/v2");
    const auto health = https_request(f.daemon->host(), f.daemon->port(), cert, "GET", "/healthz");
    REQUIRE(health.status == 200);
    const auto made_user = https_request(
        f.daemon->host(), f.daemon->port(), cert, "POST", "/scim/v2/Users",
        json{{"schemas", {user_schema}}, {"userName", "tls@example.com"}}.dump(),
        {{"Authorization", "Bearer " + f.token}, {"Content-Type", "application/scim+json"}});
    REQUIRE(made_user.status == 201);
    // Plain HTTP on the TLS port gets no answer.
    http_connection plain(f.daemon->host(), f.daemon->port());
    plain.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_FALSE(plain.read_reply(std::chrono::seconds(5)).has_value());

    // A key that does not exist is named at start-up.
    write_file(dir.path() / "bad.toml", "[http.tls]\ncert_file = \"" + cert.string() +
                                            "\"\nkey_file = \"/nonexistent/key.pem\"\n");
    auto r = run_binary("scimsyncd", {"--config", (dir.path() / "bad.toml").string(), "--data-dir",
                                      (dir.path() / "d2").string(), "--listen", "127.0.0.1:0",
                                      "--admin-socket", (dir.path() / "a2.sock").string()});
    REQUIRE(r.code() == 1);
    REQUIRE_THAT(r.err, Catch::Contains("http.tls.key_file: cannot use /nonexistent/key.pem: No "
                                        "such file or directory"));
    // A certificate file that holds no certificate is named as such.
    write_file(dir.path() / "bad.toml", "[http.tls]\ncert_file = \"" + key.string() +
                                            "\"\nkey_file = \"" + key.string() + "\"\n");
    r = run_binary("scimsyncd", {"--config", (dir.path() / "bad.toml").string(), "--data-dir",
                                 (dir.path() / "d2").string(), "--listen", "127.0.0.1:0",
                                 "--admin-socket", (dir.path() / "a2.sock").string()});
    REQUIRE(r.code() == 1);
    REQUIRE_THAT(r.err, Catch::Contains("http.tls.cert_file: cannot use " + key.string() +
                                        ": not a PEM certificate chain"));
    REQUIRE(r.err.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("plain HTTP on an address other than loopback is served with a warning",
          "[integration][operations][tls]") {
    temp_dir dir;
    daemon_options o;
    o.dir = dir.path();
    o.listen = "0.0.0.0:0";
    daemon_process d(o);
    REQUIRE(
        d.process().wait_err_contains("serving plain HTTP on 0.0.0.0", std::chrono::seconds(10)));
    REQUIRE_THAT(d.process().err(), Catch::Contains("[http.tls]"));
    // On loopback (every other test), no such warning.
    temp_dir dir2;
    daemon_options o2;
    o2.dir = dir2.path();
    daemon_process quiet(o2);
    REQUIRE(quiet.stop().value().code == 0);
    REQUIRE(quiet.process().wait_output_closed(std::chrono::seconds(10)));
    REQUIRE(quiet.process().err().find("plain HTTP") == std::string::npos);
}
