// Deprovisioning policies through the real daemon: an identity provider deactivates or
// deletes users (Okta- and Entra-shaped requests), or moves them out of a group; the policies
// act on devices (admin API), on a downstream HTTP service (a stub the test runs), and record
// every decision and outcome in the log.

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "daemon_process.hpp"
#include "http_stub.hpp"
#include "net_client.hpp"
#include "slapd_fixture.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;

namespace {

const std::string downstream_secret = "Bearer downstream-s3cret-value";

// Five populations, one per deactivation action, each the members of one SCIM group; the two
// removal populations live in the "apps" connector (the stub), which also gets an account on
// entry.
std::string policies_toml(const http_stub& stub, const std::string& auth_file, int max_removals,
                          int report_after = 3) {
    return "[policies]\nmax_removals = " + std::to_string(max_removals) +
           "\nwindow_minutes = 10\n\n"
           "[policies.connectors.apps]\n"
           "auth_header_file = \"" +
           auth_file +
           "\"\n"
           "report_after_attempts = " +
           std::to_string(report_after) +
           "\n"
           "backoff_initial_ms = 20\nbackoff_max_ms = 200\n"
           "create = { method = \"POST\", url = \"" +
           stub.url() +
           "/accounts\", body = '{\"login\": \"{{user.userName}}\", \"role\": \"{{role}}\"}' }\n"
           "remove = { method = \"DELETE\", url = \"" +
           stub.url() +
           "/accounts/{{user.id}}\" }\n\n"
           "[policies.populations.p_nothing]\ngroup = \"G-nothing\"\non_deactivate = "
           "\"nothing\"\n\n"
           "[policies.populations.p_unassign]\ngroup = \"G-unassign\"\non_deactivate = "
           "\"unassign\"\n\n"
           "[policies.populations.p_change]\ngroup = \"G-change\"\non_deactivate = "
           "\"change_policy\"\n"
           "device_policy = \"locked\"\n\n"
           "[policies.populations.p_remove]\ngroup = \"G-remove\"\non_create = \"create\"\n"
           "role = \"member\"\non_deactivate = \"remove_user\"\nconnectors = [\"apps\"]\n"
           "ldap = true\n\n"
           "[policies.populations.p_remove_all]\nfilter = 'title eq \"Contractor\"'\n"
           "on_deactivate = \"remove_user_and_devices\"\nconnectors = [\"apps\"]\nldap = true\n";
}

struct policy_fixture {
    temp_dir dir;
    http_stub stub;
    std::optional<slapd_server> slapd;  // when the daemon also mirrors into LDAP
    std::optional<daemon_process> daemon;
    std::optional<http_connection> conn;
    std::string token;
    std::map<std::string, std::string> groups;  // displayName -> id

    explicit policy_fixture(int max_removals = 50, int report_after = 3, bool with_ldap = false) {
        write_file(dir.path() / "apps.auth", "Authorization: " + downstream_secret + "\n");
        std::string ldap;
        if (with_ldap) {
            slapd.emplace();
            write_file(dir.path() / "ldap.secret", slapd->admin_password() + "\n");
            ldap = "[ldap]\nurl = \"" + slapd->url() + "\"\nbind_dn = \"" + slapd->admin_dn() +
                   "\"\nbind_password_file = \"" + (dir.path() / "ldap.secret").string() +
                   "\"\nsuffix = \"dc=example,dc=com\"\n\n";
        }
        write_file(dir.path() / "scimsyncd.toml",
                   ldap + policies_toml(stub, (dir.path() / "apps.auth").string(), max_removals,
                                        report_after));
        start();
        auto t = ctl({"token", "create", "--name", "okta", "--json"});
        REQUIRE(t.code() == 0);
        token = json::parse(t.out)["token"];
        for (const char* g : {"G-nothing", "G-unassign", "G-change", "G-remove"}) {
            auto r = scim("POST", "/Groups", {{"schemas", {group_schema}}, {"displayName", g}});
            REQUIRE(r.status == 201);
            groups[g] = json::parse(r.body)["id"];
        }
    }

    void start() {
        daemon_options o;
        o.dir = dir.path();
        o.durability = "batch";
        daemon.emplace(o);
        conn.emplace(daemon->host(), daemon->port());
    }
    void restart() {
        conn.reset();
        REQUIRE(daemon->stop()->code == 0);
        daemon.reset();
        start();
    }

    process_output ctl(std::vector<std::string> args) { return daemon->ctl(std::move(args)); }
    json ctl_json(std::vector<std::string> args) {
        args.push_back("--json");
        auto r = ctl(args);
        INFO(r.err);
        INFO("daemon: " + daemon->process().err());
        REQUIRE(r.code() == 0);
        return json::parse(r.out);
    }

    http_reply scim(const std::string& method, const std::string& path,
                    const json& body = nullptr) {
        std::vector<std::pair<std::string, std::string>> headers{
            {"Authorization", "Bearer " + token}};
        if (!body.is_null()) headers.emplace_back("Content-Type", "application/scim+json");
        return conn->request(method, "/scim/v2" + path, body.is_null() ? "" : body.dump(), headers);
    }

    // A user in `group` (or with the title), holding one device; returns {user id, device id}.
    std::pair<std::string, std::string> user_with_device(const std::string& name,
                                                         const std::string& group,
                                                         const std::string& title = "") {
        json u{{"schemas", {user_schema}}, {"userName", name}, {"active", true}};
        if (!title.empty()) u["title"] = title;
        auto r = scim("POST", "/Users", u);
        REQUIRE(r.status == 201);
        const std::string id = json::parse(r.body)["id"];
        if (!group.empty()) {
            auto p =
                scim("PATCH", "/Groups/" + groups.at(group),
                     {{"schemas", {patch_op}},
                      {"Operations", json::array({{{"op", "add"},
                                                   {"path", "members"},
                                                   {"value", json::array({{{"value", id}}})}}})}});
            REQUIRE(p.status / 100 == 2);
        }
        auto d = ctl_json({"device", "register", "--name", name + " laptop", "--serial",
                           "SN-" + name, "--owner", id, "--policy", "standard"});
        return {id, d["id"]};
    }

    json device(const std::string& id) {
        auto r = ctl({"admin", "GET", "/devices/" + id});
        if (r.code() != 0) return nullptr;
        return json::parse(r.out);
    }
    json status() { return ctl_json({"policy", "status"}); }
    // Waits until LDAP has every event the log has.
    void converge() {
        REQUIRE(eventually([&] {
            const auto m = ctl_json({"ldap", "status"})["mirror"];
            return m["connected"] == true && m["checkpoint"] == m["log_head"] &&
                   m["queued_writes"] == 0;
        }));
    }
    std::vector<scimsync::bridge::ldap_entry> ldap(const std::string& base,
                                                   const std::string& filter) {
        return slapd->search(base, filter);
    }
    std::uint64_t last_seq() { return ctl_json({"status"})["last_seq"]; }
    // Waits until the policies handled everything in the log so far.
    void settle() {
        REQUIRE(eventually([&] {
            const auto s = status();
            return s["lag_events"] == 0 && s["working_on"] == "";
        }));
    }
    std::vector<json> events(const std::string& type) {
        auto d = ctl({"log", "dump"});
        std::vector<json> out;
        std::istringstream in(d.out);
        for (std::string line; std::getline(in, line);) {
            auto j = json::parse(line);
            if (j["type"] == type) out.push_back(j);
        }
        return out;
    }
};

json deactivate_okta() {
    return {{"schemas", {patch_op}},
            {"Operations", json::array({{{"op", "replace"}, {"value", {{"active", false}}}}})}};
}
json deactivate_entra() {
    return {
        {"schemas", {patch_op}},
        {"Operations", json::array({{{"op", "Replace"}, {"path", "active"}, {"value", "False"}}})}};
}

}  // namespace

TEST_CASE("each of the five deactivation actions runs end to end from a SCIM request",
          "[integration][policies]") {
    policy_fixture f(50, 3, true);
    const std::string people = "ou=people,dc=example,dc=com";
    const std::string devices = "ou=devices,dc=example,dc=com";
    const auto [u_nothing, d_nothing] = f.user_with_device("nina", "G-nothing");
    const auto [u_unassign, d_unassign] = f.user_with_device("uma", "G-unassign");
    const auto [u_change, d_change] = f.user_with_device("chen", "G-change");
    const auto [u_remove, d_remove] = f.user_with_device("rita", "G-remove");
    const auto [u_all, d_all] = f.user_with_device("carl", "", "Contractor");
    f.settle();
    // Entering p_remove created the downstream account, with the role, once.
    auto created = f.stub.succeeded();
    REQUIRE(created.size() == 1);
    REQUIRE(created[0].method == "POST");
    REQUIRE(json::parse(created[0].body) == json{{"login", "rita"}, {"role", "member"}});
    REQUIRE(created[0].authorization == downstream_secret);

    // A preview changes nothing.
    const auto before = f.last_seq();
    auto preview = f.ctl_json({"policy", "preview", "carl"});
    REQUIRE(preview["decisions"][0]["action"] == "remove_user_and_devices");
    REQUIRE(preview["decisions"][0]["calls"][0]["url"] == f.stub.url() + "/accounts/" + u_all);
    REQUIRE(f.last_seq() == before);

    f.converge();
    REQUIRE(f.ldap(devices, "(objectClass=device)").size() == 5);

    // Okta-style PATCH, Entra-style PATCH, leaving the group, DELETE, Okta PATCH again.
    REQUIRE(f.scim("PATCH", "/Users/" + u_nothing, deactivate_okta()).status == 200);
    REQUIRE(f.scim("PATCH", "/Users/" + u_unassign, deactivate_entra()).status == 200);
    REQUIRE(f.scim("PATCH", "/Groups/" + f.groups["G-change"],
                   {{"schemas", {patch_op}},
                    {"Operations",
                     json::array({{{"op", "remove"},
                                   {"path", "members[value eq \"" + u_change + "\"]"}}})}})
                    .status /
                100 ==
            2);
    REQUIRE(f.scim("DELETE", "/Users/" + u_remove).status == 204);
    REQUIRE(f.scim("PATCH", "/Users/" + u_all, deactivate_okta()).status == 200);
    f.settle();

    // nothing: the device is untouched.
    REQUIRE(f.device(d_nothing)["owner"] == u_nothing);
    REQUIRE(f.device(d_nothing)["policy"] == "standard");
    // unassign: the device lost its owner.
    REQUIRE(f.device(d_unassign)["owner"].is_null());
    // change_policy: same owner (still an active user), policy locked.
    REQUIRE(f.device(d_change)["owner"] == u_change);
    REQUIRE(f.device(d_change)["policy"] == "locked");
    // remove_user: the downstream account is deleted; the device stays.
    REQUIRE(f.device(d_remove)["owner"] == u_remove);
    // remove_user_and_devices: the account and the device.
    REQUIRE(f.device(d_all).is_null());
    const auto calls = f.stub.succeeded();
    REQUIRE(calls.size() == 3);
    std::set<std::string> deleted;
    for (const auto& c : calls)
        if (c.method == "DELETE") deleted.insert(c.target);
    REQUIRE(deleted == std::set<std::string>{"/accounts/" + u_remove, "/accounts/" + u_all});
    for (const auto& c : calls) REQUIRE(c.idempotency_key.starts_with("scimsync-"));

    // LDAP: devices follow (owner gone, policy in ou, entry removed), and the two removal
    // populations (ldap = true) took their users' entries; the others keep theirs.
    f.converge();
    auto dev_entry = [&](const std::string& id) { return f.ldap(devices, "(cn=" + id + ")"); };
    REQUIRE(dev_entry(d_nothing)[0].attrs.count("owner") == 1);
    REQUIRE(dev_entry(d_unassign)[0].attrs.count("owner") == 0);
    REQUIRE(dev_entry(d_change)[0].attrs["ou"] == std::vector<std::string>{"locked"});
    REQUIRE(dev_entry(d_remove).size() == 1);
    REQUIRE(dev_entry(d_remove)[0].attrs.count("owner") == 0);  // its owner's entry is gone
    REQUIRE(dev_entry(d_all).empty());
    REQUIRE(f.ldap(people, "(uid=nina)").size() == 1);
    REQUIRE(f.ldap(people, "(uid=uma)").size() == 1);
    REQUIRE(f.ldap(people, "(uid=chen)").size() == 1);
    REQUIRE(f.ldap(people, "(uid=rita)").empty());
    REQUIRE(f.ldap(people, "(uid=carl)").empty());
    REQUIRE(f.ctl({"ldap", "reconcile", "--dry-run"}).code() == 0);

    // The views keep the deactivated users (the IdP decides their fate), not the deleted one.
    REQUIRE(f.scim("GET", "/Users/" + u_all).status == 200);
    REQUIRE(f.scim("GET", "/Users/" + u_remove).status == 404);

    // Every decision and outcome is in the log, with its trigger.
    const auto decided = f.events("PolicyDecided");
    std::map<std::string, std::string> trigger_of;
    for (const auto& e : decided)
        if (e["data"]["action"] != "create")
            trigger_of[e["data"]["population"]] = e["data"]["trigger"];
    REQUIRE(trigger_of == std::map<std::string, std::string>{{"p_change", "left"},
                                                             {"p_nothing", "deactivated"},
                                                             {"p_remove", "deleted"},
                                                             {"p_remove_all", "deactivated"},
                                                             {"p_unassign", "deactivated"}});
    REQUIRE(f.events("PolicyApplied").size() == decided.size());
    const auto device_events = f.events("DeviceRemoved");
    REQUIRE(device_events.size() == 1);
    REQUIRE(device_events[0]["source"] == "policy");
    REQUIRE(device_events[0]["actor"] == "p_remove_all");

    // The downstream secret is never in the log or the daemon's output.
    REQUIRE(f.ctl({"log", "dump"}).out.find("downstream-s3cret") == std::string::npos);
    REQUIRE(f.daemon->process().err().find("downstream-s3cret") == std::string::npos);

    // Nothing is done twice after a restart.
    const auto applied = f.events("PolicyApplied").size();
    f.restart();
    f.settle();
    REQUIRE(f.events("PolicyApplied").size() == applied);
    REQUIRE(f.stub.succeeded().size() == 3);
}

TEST_CASE("reactivation creates the downstream account again; devices are not given back",
          "[integration][policies]") {
    policy_fixture f;
    const auto [id, dev] = f.user_with_device("rosa", "G-remove");
    f.settle();
    REQUIRE(f.scim("PATCH", "/Users/" + id, deactivate_okta()).status == 200);
    f.settle();
    REQUIRE(
        f.scim("PATCH", "/Users/" + id,
               {{"schemas", {patch_op}},
                {"Operations", json::array({{{"op", "replace"}, {"value", {{"active", true}}}}})}})
            .status == 200);
    f.settle();
    std::vector<std::string> methods;
    for (const auto& c : f.stub.succeeded()) methods.push_back(c.method);
    REQUIRE(methods == std::vector<std::string>{"POST", "DELETE", "POST"});
    const auto decided = f.events("PolicyDecided");
    REQUIRE(decided.back()["data"]["trigger"] == "reactivated");
    REQUIRE(decided.back()["data"]["action"] == "create");
    // remove_user leaves devices alone; a reactivated user keeps what it still holds.
    REQUIRE(f.device(dev)["owner"] == id);
}

TEST_CASE("more removals than the threshold pause removals until an operator resumes them",
          "[integration][policies]") {
    policy_fixture f(3);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i)
        ids.push_back(f.user_with_device("t" + std::to_string(i), "G-remove").first);
    f.settle();
    const auto creates = f.stub.succeeded().size();
    REQUIRE(creates == 5);
    for (const auto& id : ids)
        REQUIRE(f.scim("PATCH", "/Users/" + id, deactivate_okta()).status == 200);
    f.settle();
    auto s = f.status();
    REQUIRE(s["paused"] == true);
    REQUIRE_THAT(s["paused_reason"].get<std::string>(),
                 Catch::Contains("4 removals within 10 minutes (threshold 3)"));
    REQUIRE(s["held"] == 2);
    REQUIRE(f.stub.succeeded().size() == creates + 3);
    REQUIRE(f.events("PolicyPaused").size() == 1);
    auto preview = f.ctl_json({"policy", "preview", "t0"});
    REQUIRE(preview["paused"] == true);
    auto human = f.ctl({"policy", "status"});
    REQUIRE_THAT(human.out, Catch::Contains("PAUSED"));

    // Held across a restart, then carried out on resume, each once.
    f.restart();
    f.settle();
    REQUIRE(f.status()["held"] == 2);
    REQUIRE(f.stub.succeeded().size() == creates + 3);
    REQUIRE(f.ctl({"policy", "resume"}).code() == 0);
    f.settle();
    REQUIRE(f.status()["paused"] == false);
    REQUIRE(f.status()["held"] == 0);
    REQUIRE(f.stub.succeeded().size() == creates + 5);
    REQUIRE(f.events("PolicyResumed").size() == 1);
    REQUIRE(f.ctl_json({"policy", "resume"})["resumed"] == false);
}

TEST_CASE("a connector outage is retried until it recovers, with no duplicate effect",
          "[integration][policies]") {
    policy_fixture f(50, 3);
    const auto [id, dev] = f.user_with_device("otto", "G-remove");
    f.settle();
    f.stub.fail_next(6, 503);
    REQUIRE(f.scim("DELETE", "/Users/" + id).status == 204);
    f.settle();
    const auto all = f.stub.requests();
    std::vector<stub_request> deletes;
    for (const auto& r : all)
        if (r.method == "DELETE") deletes.push_back(r);
    REQUIRE(deletes.size() == 7);  // six refused, then done
    for (const auto& r : deletes) REQUIRE(r.idempotency_key == deletes.front().idempotency_key);
    const auto failed = f.events("PolicyFailed");
    REQUIRE(failed.size() == 1);  // reported once, after three attempts
    REQUIRE(failed[0]["data"]["retrying"] == true);
    REQUIRE(failed[0]["data"]["error"] == "apps: HTTP 503");
    std::size_t applied = 0;
    for (const auto& e : f.events("PolicyApplied"))
        if (e["data"]["action"] == "remove_user") ++applied;
    REQUIRE(applied == 1);

    SECTION("a restart in the middle of an outage finishes the decision once") {
        const auto [id2, dev2] = f.user_with_device("olga", "G-remove");
        f.settle();
        f.stub.fail_next(1'000'000, 503);
        REQUIRE(f.scim("DELETE", "/Users/" + id2).status == 204);
        REQUIRE(eventually([&] {
            return !f.events("PolicyFailed").empty() && f.events("PolicyFailed").size() == 2;
        }));
        f.restart();
        f.stub.fail_next(0);
        f.settle();
        std::size_t decided = 0;
        for (const auto& e : f.events("PolicyDecided"))
            if (e["data"]["user"] == id2 && e["data"]["action"] == "remove_user") ++decided;
        REQUIRE(decided == 1);
        std::set<std::string> keys;
        for (const auto& r : f.stub.succeeded())
            if (r.method == "DELETE" && r.target == "/accounts/" + id2)
                keys.insert(r.idempotency_key);
        REQUIRE(keys.size() == 1);
    }
}

TEST_CASE("a bad policy stops start-up naming the file and the key", "[integration][policies]") {
    temp_dir dir;
    daemon_options o;
    o.dir = dir.path();
    SECTION("an unknown action") {
        write_file(dir.path() / "scimsyncd.toml",
                   "[policies.populations.mdm]\ngroup = \"MDM\"\non_deactivate = \"wipe\"\n");
        auto r = run_process(o.resolved().argv());
        REQUIRE(r.code() == 2);
        REQUIRE_THAT(r.err, Catch::Contains("scimsyncd.toml:"));
        REQUIRE_THAT(r.err, Catch::Contains("mdm.on_deactivate"));
    }
    SECTION("a bad filter") {
        write_file(dir.path() / "scimsyncd.toml",
                   "[policies.populations.mdm]\nfilter = 'title eq'\n");
        auto r = run_process(o.resolved().argv());
        REQUIRE(r.code() == 2);
        REQUIRE_THAT(r.err, Catch::Contains("policies.populations.mdm.filter"));
    }
    SECTION("an unknown connector") {
        write_file(dir.path() / "scimsyncd.toml",
                   "[policies.populations.mdm]\ngroup = \"MDM\"\non_deactivate = \"remove_user\"\n"
                   "connectors = [\"nope\"]\n");
        auto r = run_process(o.resolved().argv());
        REQUIRE(r.code() == 2);
        REQUIRE_THAT(r.err, Catch::Contains("no connector \"nope\""));
    }
}

TEST_CASE("an https connector checks the server's certificate against the configured CAs",
          "[integration][policies]") {
    temp_dir dir;
    const auto cert = (dir.path() / "cert.pem").string();
    const auto key = (dir.path() / "key.pem").string();
    auto made = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                             "-addext", "subjectAltName=IP:127.0.0.1"});
    INFO(made.err);
    REQUIRE(made.code() == 0);
    http_stub stub(cert, key);
    REQUIRE(stub.url().starts_with("https://"));
    write_file(
        dir.path() / "scimsyncd.toml",
        "[policies.connectors.trusted]\nca_file = \"" + cert +
            "\"\nbackoff_initial_ms = 20\nreport_after_attempts = 2\n"
            "create = { method = \"POST\", url = \"" +
            stub.url() +
            "/trusted\", body = '{\"login\": \"{{user.userName}}\"}' }\n\n"
            "[policies.connectors.untrusted]\nbackoff_initial_ms = 20\n"
            "report_after_attempts = 2\n"
            "create = { method = \"POST\", url = \"" +
            stub.url() +
            "/untrusted\" }\n\n"
            "[policies.populations.everyone]\nfilter = 'userName pr'\non_create = \"create\"\n"
            "connectors = [\"trusted\", \"untrusted\"]\n");
    daemon_options o;
    o.dir = dir.path();
    daemon_process daemon(o);
    auto t = daemon.ctl({"token", "create", "--name", "okta", "--json"});
    REQUIRE(t.code() == 0);
    http_connection conn(daemon.host(), daemon.port());
    auto r =
        conn.request("POST", "/scim/v2/Users",
                     json{{"schemas", {user_schema}}, {"userName", "tls@example.com"}}.dump(),
                     {{"Authorization", "Bearer " + json::parse(t.out)["token"].get<std::string>()},
                      {"Content-Type", "application/scim+json"}});
    REQUIRE(r.status == 201);
    // The trusted call went through TLS; the other one is refused by the handshake (the
    // system's CAs do not know this certificate) and retried, reported once.
    auto dump = [&] { return daemon.ctl({"log", "dump"}).out; };
    REQUIRE(
        eventually([&] { return dump().find("\"type\":\"PolicyFailed\"") != std::string::npos; }));
    auto ok = stub.succeeded();
    REQUIRE(ok.size() == 1);
    REQUIRE(ok[0].target == "/trusted");
    REQUIRE(json::parse(ok[0].body) == json{{"login", "tls@example.com"}});
    REQUIRE_THAT(dump(), Catch::Contains("untrusted: TLS handshake: certificate verify failed"));
    for (const auto& req : stub.requests()) REQUIRE(req.target != "/untrusted");
}
