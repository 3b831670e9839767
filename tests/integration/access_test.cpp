// The access model through the real daemon: an identity provider pushes users and nested
// groups over SCIM, an administrator grants service access and roles over the admin API
// (HTTP, admin token) and with scimsyncctl, registers devices, and manages local users and
// groups; each side is kept to what it owns.

#include <csignal>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;

namespace {

const char* catalogue_toml = R"([access.services.dashboard]
description = "Operations dashboard"
roles = ["viewer", "admin"]

[access.services.store]
roles = ["clerk"]
)";

struct access_fixture {
    temp_dir dir;
    std::optional<daemon_process> daemon;
    std::optional<http_connection> conn;
    std::string scim_token, admin_token;

    access_fixture() {
        write_file(dir.path() / "scimsyncd.toml", catalogue_toml);
        start();
        auto scim = ctl({"token", "create", "--name", "okta", "--json"});
        REQUIRE(scim.code() == 0);
        scim_token = json::parse(scim.out)["token"];
        auto admin = ctl({"token", "create", "--name", "ops", "--scope", "admin", "--json"});
        REQUIRE(admin.code() == 0);
        const auto a = json::parse(admin.out);
        admin_token = a["token"];
        REQUIRE(a["base_url"] == daemon->url() + "/admin/v1");
        REQUIRE(a["scope"] == "admin");
    }

    void start() {
        daemon_options o;
        o.dir = dir.path();
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
        REQUIRE(r.code() == 0);
        return json::parse(r.out);
    }

    http_reply send(const std::string& token, const std::string& method, const std::string& path,
                    const json& body = nullptr) {
        std::vector<std::pair<std::string, std::string>> headers{
            {"Authorization", "Bearer " + token}};
        if (!body.is_null()) headers.emplace_back("Content-Type", "application/json");
        return conn->request(method, path, body.is_null() ? std::string() : body.dump(), headers);
    }
    http_reply scim(const std::string& method, const std::string& path,
                    const json& body = nullptr) {
        return send(scim_token, method, "/scim/v2" + path, body);
    }
    http_reply admin(const std::string& method, const std::string& path,
                     const json& body = nullptr) {
        return send(admin_token, method, "/admin/v1" + path, body);
    }

    std::string scim_user(const std::string& name) {
        auto r = scim("POST", "/Users",
                      {{"schemas", {user_schema}}, {"userName", name}, {"active", true}});
        REQUIRE(r.status == 201);
        return json::parse(r.body)["id"];
    }
    std::string scim_group(const std::string& name, const std::vector<std::string>& members) {
        json m = json::array();
        for (const auto& id : members) m.push_back({{"value", id}});
        auto r = scim("POST", "/Groups",
                      {{"schemas", {group_schema}}, {"displayName", name}, {"members", m}});
        REQUIRE(r.status == 201);
        return json::parse(r.body)["id"];
    }
};

std::vector<std::string> strings(const json& list) {
    std::vector<std::string> out;
    for (const auto& v : list) out.push_back(v.get<std::string>());
    return out;
}

}  // namespace

TEST_CASE("roles granted to SCIM groups are inherited through nested groups, next to direct ones",
          "[integration][access]") {
    access_fixture f;
    const auto alice = f.scim_user("alice@example.com");
    const auto bob = f.scim_user("bob@example.com");
    const auto backend = f.scim_group("Backend", {alice});
    const auto engineering = f.scim_group("Engineering", {backend, bob});

    // Over HTTP with the admin token: the SCIM group may be given access.
    auto g = f.admin("POST", "/access/grant",
                     {{"group", "Engineering"}, {"service", "dashboard"}, {"role", "viewer"}});
    REQUIRE(g.status == 200);
    REQUIRE(json::parse(g.body)["changed"] == true);
    REQUIRE(json::parse(g.body)["subject"] == "Group/" + engineering);
    // With the CLI, directly to the user.
    REQUIRE(f.ctl({"access", "grant", "--user", "alice@example.com", "--service", "store", "--role",
                   "clerk"})
                .code() == 0);
    REQUIRE(
        f.ctl({"access", "grant", "--user", alice, "--service", "dashboard", "--role", "viewer"})
            .code() == 0);

    auto explained = f.ctl_json({"access", "explain", "alice@example.com"});
    REQUIRE(explained["source"] == "scim");
    REQUIRE(strings(explained["groups"]) == std::vector<std::string>{"Backend", "Engineering"});
    REQUIRE(explained["access"].size() == 2);
    const auto& viewer = explained["access"][0];
    REQUIRE(viewer["grant"] == "dashboard/viewer");
    REQUIRE(viewer["via"].size() == 2);
    REQUIRE(viewer["via"][0]["direct"] == true);
    REQUIRE(viewer["via"][1]["groups"][0]["displayName"] == "Backend");
    REQUIRE(viewer["via"][1]["groups"][1]["displayName"] == "Engineering");
    REQUIRE(explained["access"][1]["grant"] == "store/clerk");
    REQUIRE(explained["access"][1]["via"][0]["direct"] == true);

    // The consolidated list.
    auto users = json::parse(f.admin("GET", "/access/users").body);
    REQUIRE(users["totalResults"] == 2);
    REQUIRE(users["users"][0]["userName"] == "alice@example.com");
    REQUIRE(strings(users["users"][0]["access"]) ==
            std::vector<std::string>{"dashboard/viewer", "store/clerk"});
    REQUIRE(strings(users["users"][1]["access"]) == std::vector<std::string>{"dashboard/viewer"});
    REQUIRE(users["users"][1]["client"] == "okta");
    auto groups = json::parse(f.admin("GET", "/access/groups").body);
    REQUIRE(groups["groups"][1]["displayName"] == "Engineering");
    REQUIRE(groups["groups"][1]["members"] == 2);
    REQUIRE(strings(groups["groups"][1]["access"]) == std::vector<std::string>{"dashboard/viewer"});

    // Revoking the group's grant leaves alice's direct one and takes bob's.
    REQUIRE(f.ctl({"access", "revoke", "--group", "Engineering", "--service", "dashboard", "--role",
                   "viewer"})
                .code() == 0);
    explained = f.ctl_json({"access", "explain", alice});
    REQUIRE(explained["access"][0]["via"].size() == 1);
    REQUIRE(explained["access"][0]["via"][0]["direct"] == true);
    REQUIRE(f.ctl_json({"access", "explain", "bob@example.com"})["access"].empty());

    // The IdP moving alice out of Backend takes what Backend's chain gave; grants are events.
    f.admin("POST", "/access/grant",
            {{"group", backend}, {"service", "dashboard"}, {"role", "admin"}});
    REQUIRE(f.ctl_json({"access", "explain", alice})["access"].size() == 3);
    auto patched = f.scim(
        "PATCH", "/Groups/" + backend,
        {{"schemas", {patch_op}},
         {"Operations", {{{"op", "remove"}, {"path", "members[value eq \"" + alice + "\"]"}}}}});
    REQUIRE(patched.status / 100 == 2);
    REQUIRE(f.ctl_json({"access", "explain", alice})["access"].size() == 2);

    // Unknown services and roles are refused with what is configured, and change nothing.
    const auto before = f.ctl_json({"status"})["last_seq"];
    auto bad = f.ctl({"access", "grant", "--user", alice, "--service", "crm"});
    REQUIRE(bad.code() == 1);
    REQUIRE_THAT(bad.err,
                 Catch::Contains("unknown service \"crm\" (configured: dashboard, store)"));
    bad = f.ctl({"access", "grant", "--user", alice, "--service", "store", "--role", "owner"});
    REQUIRE_THAT(bad.err, Catch::Contains("has no role \"owner\" (roles: clerk)"));
    REQUIRE(f.ctl_json({"status"})["last_seq"] == before);

    // Everything above is in the log, as admin events, and survives a restart.
    auto dump = f.ctl({"log", "dump"});
    REQUIRE(dump.code() == 0);
    REQUIRE_THAT(dump.out, Catch::Contains("\"type\":\"AccessGranted\""));
    REQUIRE_THAT(dump.out, Catch::Contains("\"type\":\"AccessRevoked\""));
    const auto live = f.admin("GET", "/access/users").body;
    f.restart();
    REQUIRE(f.admin("GET", "/access/users").body == live);
}

TEST_CASE(
    "identity-provider users and groups are changed only over SCIM, local ones only by admins",
    "[integration][access]") {
    access_fixture f;
    const auto carol = f.scim_user("carol@example.com");
    const auto sales = f.scim_group("Sales", {carol});

    // Tokens are for one door each.
    REQUIRE(f.send(f.scim_token, "GET", "/admin/v1/access/users").status == 401);
    REQUIRE(f.send(f.admin_token, "GET", "/scim/v2/Users").status == 401);
    REQUIRE(f.conn->request("GET", "/admin/v1/access/users", "", {}).status == 401);

    // The admin API refuses to edit what the IdP manages, and says who does.
    const json add_carol{
        {"schemas", {patch_op}},
        {"Operations", json::array({{{"op", "add"},
                                     {"path", "members"},
                                     {"value", json::array({{{"value", carol}}})}}})}};
    auto r = f.admin("PATCH", "/Groups/" + sales, add_carol);
    REQUIRE(r.status == 403);
    REQUIRE_THAT(json::parse(r.body)["detail"].get<std::string>(),
                 Catch::Contains("managed by the identity provider (SCIM client \"okta\")"));
    REQUIRE(f.admin("DELETE", "/Users/" + carol).status == 403);
    auto cli = f.ctl({"user", "deactivate", "carol@example.com"});
    REQUIRE(cli.code() == 1);
    REQUIRE_THAT(cli.err, Catch::Contains("managed by the identity provider"));

    // Local users and groups: created by admins, listed with the SCIM ones.
    auto made =
        f.ctl_json({"user", "create", "--user-name", "dave@example.com", "--given-name", "Dave"});
    const std::string dave = made["id"];
    REQUIRE(f.ctl({"group", "create", "--name", "Contractors", "--member", "dave@example.com"})
                .code() == 0);
    REQUIRE(f.ctl({"group", "add-member", "Contractors", "Sales"}).code() ==
            0);  // nest a SCIM group
    REQUIRE(f.ctl({"access", "grant", "--group", "Contractors", "--service", "store"}).code() == 0);
    auto users = json::parse(f.admin("GET", "/access/users").body);
    REQUIRE(users["totalResults"] == 2);
    REQUIRE(users["users"][0]["userName"] == "carol@example.com");
    REQUIRE(users["users"][0]["source"] == "scim");
    REQUIRE(strings(users["users"][0]["access"]) == std::vector<std::string>{"store"});
    REQUIRE(users["users"][1]["source"] == "local");
    REQUIRE(strings(users["users"][1]["groups"]) == std::vector<std::string>{"Contractors"});

    // SCIM sees the local user but cannot change it; a userName is unique across both.
    REQUIRE(f.scim("GET", "/Users/" + dave).status == 200);
    r = f.scim("PATCH", "/Users/" + dave,
               {{"schemas", {patch_op}},
                {"Operations", {{{"op", "replace"}, {"path", "active"}, {"value", false}}}}});
    REQUIRE(r.status == 403);
    REQUIRE_THAT(json::parse(r.body)["detail"].get<std::string>(),
                 Catch::Contains("managed locally"));
    REQUIRE(f.scim("POST", "/Users", {{"schemas", {user_schema}}, {"userName", "DAVE@example.com"}})
                .status == 409);

    // Admins change their own.
    REQUIRE(f.ctl({"user", "deactivate", "dave@example.com"}).code() == 0);
    REQUIRE(json::parse(f.admin("GET", "/Users/" + dave).body)["active"] == false);
    REQUIRE(f.ctl({"group", "remove-member", "Contractors", "dave@example.com"}).code() == 0);
    REQUIRE(f.ctl_json({"access", "explain", dave})["access"].empty());
    REQUIRE(f.ctl({"user", "delete", dave}).code() == 0);
    REQUIRE(f.admin("GET", "/Users/" + dave).status == 404);
}

TEST_CASE("devices are registered, assigned and removed, each change an event",
          "[integration][access]") {
    access_fixture f;
    const auto erin = f.scim_user("erin@example.com");
    auto d =
        f.ctl_json({"device", "register", "--name", "Erin's laptop", "--serial", "C02XK1",
                    "--platform", "macos", "--owner", "erin@example.com", "--policy", "standard"});
    const std::string id = d["id"];
    REQUIRE(d["owner"] == erin);
    // A serial is one device; an unknown owner is refused.
    auto dup = f.admin("POST", "/devices", {{"name", "other"}, {"serial", "c02xk1"}});
    REQUIRE(dup.status == 409);
    REQUIRE(f.admin("POST", "/devices", {{"name", "x"}, {"serial", "S2"}, {"owner", "nobody"}})
                .status == 400);
    REQUIRE(
        f.admin("POST", "/devices", {{"name", "x"}, {"serial", "S3"}, {"colour", "red"}}).status ==
        400);
    REQUIRE(f.ctl_json({"device", "list", "--owner", "erin@example.com"})["devices"].size() == 1);
    REQUIRE(f.ctl_json({"access", "explain", erin})["devices"][0]["id"] == id);

    auto updated = f.ctl_json({"device", "update", id, "--unassign", "--policy", "locked"});
    REQUIRE(updated["owner"].is_null());
    REQUIRE(updated["policy"] == "locked");
    REQUIRE(f.ctl_json({"device", "list", "--owner", erin})["devices"].empty());

    const auto before = f.admin("GET", "/devices").body;
    f.restart();
    REQUIRE(f.admin("GET", "/devices").body == before);

    REQUIRE(f.ctl({"device", "remove", id}).code() == 0);
    REQUIRE(f.admin("GET", "/devices/" + id).status == 404);
    auto dump = f.ctl({"log", "dump"});
    for (const char* type : {"DeviceRegistered", "DeviceUpdated", "DeviceRemoved"})
        REQUIRE_THAT(dump.out, Catch::Contains(std::string("\"type\":\"") + type + "\""));
    REQUIRE_THAT(dump.out, Catch::Contains("\"source\":\"admin\""));
}

TEST_CASE("a bad service catalogue stops start-up naming the file, line and key",
          "[integration][access]") {
    temp_dir dir;
    write_file(dir.path() / "scimsyncd.toml",
               "[access.services.dashboard]\nroles = [\"viewer\", 3]\n");
    daemon_options o;
    o.dir = dir.path();
    auto r = run_process(o.resolved().argv());
    REQUIRE(r.code() == 2);
    REQUIRE_THAT(r.err, Catch::Contains("scimsyncd.toml:"));
    REQUIRE_THAT(r.err, Catch::Contains("access.services"));
    REQUIRE_THAT(r.err, Catch::Contains("dashboard.roles"));
}
