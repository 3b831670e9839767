// The LDAP bridge end to end: a real slapd started by the test, the real scimsyncd mirroring
// into it, SCIM requests in, LDAP entries checked with an LDAP client, hand-made changes made
// with the real ldapmodify/ldapdelete tools, and scimsyncctl for status and reconcile.

#include <csignal>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "scimsync/bridge/dn.hpp"
#include "slapd_fixture.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;
namespace bridge = scimsync::bridge;

namespace {

const std::string enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const std::string people = "ou=people,dc=example,dc=com";
const std::string groups = "ou=groups,dc=example,dc=com";

std::string user_dn(const std::string& user_name) {
    return "uid=" + bridge::escape_dn_value(user_name) + "," + people;
}
std::string group_dn(const std::string& name) {
    return "cn=" + bridge::escape_dn_value(name) + "," + groups;
}

// slapd + scimsyncd configured to mirror into it, with one SCIM token.
struct bridge_fixture {
    slapd_server slapd;
    temp_dir dir;
    std::optional<daemon_process> daemon;
    std::optional<http_connection> conn;
    std::string token;

    explicit bridge_fixture(const std::string& extra_config = "") {
        write_file(dir.path() / "ldap.secret", slapd.admin_password() + "\n");
        write_file(dir.path() / "scimsyncd.toml",
                   "[ldap]\nurl = \"" + slapd.url() + "\"\nbind_dn = \"" + slapd.admin_dn() +
                       "\"\nbind_password_file = \"" + (dir.path() / "ldap.secret").string() +
                       "\"\nsuffix = \"dc=example,dc=com\"\n" + extra_config);
        start();
    }

    void start() {
        daemon_options o;
        o.dir = dir.path();
        daemon.emplace(o);
        conn.emplace(daemon->host(), daemon->port());
        if (token.empty()) {
            auto created = ctl({"token", "create", "--name", "okta", "--json"});
            INFO(created.out << created.err);
            REQUIRE(created.code() == 0);
            token = json::parse(created.out)["token"];
        }
    }

    void stop_daemon() {
        conn.reset();
        daemon->process().send_signal(SIGTERM);
        REQUIRE(daemon->process().wait(std::chrono::seconds(30))->code == 0);
        daemon.reset();
    }

    process_output ctl(std::vector<std::string> args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        std::vector<std::string> all{"--socket", (dir.path() / "admin.sock").string(), "--data-dir",
                                     (dir.path() / "data").string()};
        all.insert(all.end(), args.begin(), args.end());
        return run_binary("scimsyncctl", all, timeout);
    }

    json ldap_status() {
        auto s = ctl({"ldap", "status", "--json"});
        REQUIRE(s.code() == 0);
        return json::parse(s.out);
    }

    // Waits until LDAP has every event the log has.
    void converge(std::chrono::seconds timeout = std::chrono::seconds(60)) {
        json last;
        const bool done = eventually(
            [&] {
                last = ldap_status()["mirror"];
                return last["connected"] == true && last["checkpoint"] == last["log_head"] &&
                       last["queued_writes"] == 0;
            },
            timeout);
        INFO(last.dump());
        REQUIRE(done);
    }

    json ok(const std::string& method, const std::string& path, const json& body = nullptr,
            int want = 200, int also = 0) {
        std::vector<std::pair<std::string, std::string>> headers{
            {"Authorization", "Bearer " + token}};
        if (!body.is_null()) headers.emplace_back("Content-Type", "application/scim+json");
        auto r =
            conn->request(method, "/scim/v2" + path, body.is_null() ? "" : body.dump(), headers);
        INFO(method << " " << path << " -> " << r.status << " " << r.body);
        REQUIRE((r.status == want || r.status == also));
        return r.body.empty() ? json() : json::parse(r.body);
    }

    json create_user(const std::string& user_name, json extra = json::object()) {
        json body{{"schemas", {user_schema}}, {"userName", user_name}, {"active", true}};
        body.update(extra);
        return ok("POST", "/Users", body, 201);
    }

    json create_group(const std::string& name, const std::vector<std::string>& member_ids) {
        json members = json::array();
        for (const auto& id : member_ids) members.push_back({{"value", id}});
        return ok("POST", "/Groups",
                  {{"schemas", {group_schema}}, {"displayName", name}, {"members", members}}, 201);
    }

    json patch(const std::string& path, json operations) {
        // PATCH may answer 200 with the resource or 204 (RFC 7644 §3.5.2).
        return ok("PATCH", path, {{"schemas", {patch_op}}, {"Operations", std::move(operations)}},
                  200, 204);
    }

    std::optional<bridge::ldap_entry> entry(const std::string& dn) {
        auto found = slapd.search(dn, "(objectClass=*)", {"*"});
        for (auto& e : found) {
            if (bridge::normalize_dn(e.dn) == bridge::normalize_dn(dn)) return e;
        }
        return std::nullopt;
    }

    std::vector<std::string> values(const std::string& dn, const std::string& attribute) {
        auto e = entry(dn);
        if (!e) return {};
        auto it = e->attrs.find(attribute);
        if (it == e->attrs.end()) return {};
        auto v = it->second;
        std::sort(v.begin(), v.end());
        return v;
    }

    std::vector<json> events_of_type(const std::string& type) {
        auto dump = ctl({"log", "dump"});
        REQUIRE(dump.code() == 0);
        std::vector<json> out;
        std::istringstream in(dump.out);
        for (std::string line; std::getline(in, line);) {
            auto e = json::parse(line);
            if (e["type"] == type) out.push_back(e);
        }
        return out;
    }

    // Runs an LDAP command-line tool as the operator (not the bridge's identity).
    process_output ldap_tool(const std::string& tool, const std::string& ldif) {
        const auto file = dir.path() / "change.ldif";
        write_file(file, ldif);
        return run_process({"/usr/bin/" + tool, "-x", "-H", slapd.url(), "-D", slapd.operator_dn(),
                            "-w", slapd.operator_password(), "-f", file.string()});
    }
};

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("SCIM users and groups appear in LDAP and follow renames, membership changes and deletes",
          "[integration][ldap]") {
    bridge_fixture f;
    const auto boss =
        f.create_user("boss", {{"name", {{"givenName", "Big"}, {"familyName", "Boss"}}}});
    const auto alice = f.create_user(
        "alice",
        {{"displayName", "Alice Liddell"},
         {"name", {{"givenName", "Alice"}, {"familyName", "Liddell"}}},
         {"title", "Engineer"},
         {"emails", {{{"value", "alice@example.com"}, {"type", "work"}, {"primary", true}}}},
         {"phoneNumbers", {{{"value", "+1 555 0100"}, {"type", "work"}}}},
         {enterprise, {{"employeeNumber", "42"}, {"manager", {{"value", boss["id"]}}}}}});
    const auto group = f.create_group("Engineering", {alice["id"], boss["id"]});
    f.converge();

    auto a = f.entry(user_dn("alice"));
    REQUIRE(a);
    CHECK(a->attrs.at("cn") == std::vector<std::string>{"Alice Liddell"});
    CHECK(a->attrs.at("sn") == std::vector<std::string>{"Liddell"});
    CHECK(a->attrs.at("mail") == std::vector<std::string>{"alice@example.com"});
    CHECK(a->attrs.at("telephoneNumber") == std::vector<std::string>{"+1 555 0100"});
    CHECK(a->attrs.at("title") == std::vector<std::string>{"Engineer"});
    CHECK(a->attrs.at("employeeNumber") == std::vector<std::string>{"42"});
    CHECK(f.values(user_dn("alice"), "manager") == std::vector<std::string>{user_dn("boss")});
    CHECK(f.values(group_dn("Engineering"), "member") ==
          sorted({user_dn("alice"), user_dn("boss")}));

    // Update: only what changed, and removal of an attribute the user no longer has.
    f.patch("/Users/" + alice["id"].get<std::string>(),
            {{{"op", "replace"}, {"path", "title"}, {"value", "Principal Engineer"}},
             {{"op", "remove"}, {"path", "phoneNumbers"}}});
    // Renames: the entry moves (modrdn) and every reference follows.
    f.patch("/Users/" + alice["id"].get<std::string>(),
            {{{"op", "replace"}, {"path", "userName"}, {"value", "alice.l"}}});
    f.patch("/Users/" + boss["id"].get<std::string>(),
            {{{"op", "replace"}, {"path", "userName"}, {"value", "the.boss"}}});
    f.converge();
    CHECK_FALSE(f.entry(user_dn("alice")));
    CHECK_FALSE(f.entry(user_dn("boss")));
    CHECK(f.values(user_dn("alice.l"), "title") == std::vector<std::string>{"Principal Engineer"});
    CHECK(f.values(user_dn("alice.l"), "telephoneNumber").empty());
    CHECK(f.values(user_dn("alice.l"), "uid") == std::vector<std::string>{"alice.l"});
    CHECK(f.values(user_dn("alice.l"), "manager") == std::vector<std::string>{user_dn("the.boss")});
    CHECK(f.values(group_dn("Engineering"), "member") ==
          sorted({user_dn("alice.l"), user_dn("the.boss")}));

    // Membership deltas, down to the empty group (which keeps its placeholder member).
    const std::string gid = group["id"];
    f.patch("/Groups/" + gid,
            {{{"op", "remove"},
              {"path", "members[value eq \"" + alice["id"].get<std::string>() + "\"]"}}});
    f.converge();
    CHECK(f.values(group_dn("Engineering"), "member") ==
          std::vector<std::string>{user_dn("the.boss")});
    f.ok("DELETE", "/Users/" + boss["id"].get<std::string>(), nullptr, 204);
    f.converge();
    CHECK_FALSE(f.entry(user_dn("the.boss")));
    CHECK(f.values(group_dn("Engineering"), "member") ==
          std::vector<std::string>{group_dn("Engineering")});
    CHECK(f.values(user_dn("alice.l"), "manager").empty());
    f.patch("/Groups/" + gid,
            {{{"op", "add"}, {"path", "members"}, {"value", {{{"value", alice["id"]}}}}}});
    f.converge();
    CHECK(f.values(group_dn("Engineering"), "member") ==
          std::vector<std::string>{user_dn("alice.l")});

    // Group rename and delete.
    f.patch("/Groups/" + gid, {{{"op", "replace"}, {"path", "displayName"}, {"value", "R&D"}}});
    f.converge();
    CHECK_FALSE(f.entry(group_dn("Engineering")));
    CHECK(f.values(group_dn("R&D"), "member") == std::vector<std::string>{user_dn("alice.l")});
    f.ok("DELETE", "/Groups/" + gid, nullptr, 204);
    f.ok("DELETE", "/Users/" + alice["id"].get<std::string>(), nullptr, 204);
    f.converge();
    CHECK_FALSE(f.entry(group_dn("R&D")));
    CHECK(f.slapd.search(people, "(objectClass=inetOrgPerson)").empty());
    CHECK(f.ldap_status()["mirror"]["failed_writes"] == 0);
}

TEST_CASE("deactivation follows the configured treatment, and reactivation undoes it",
          "[integration][ldap]") {
    const std::string mode = GENERATE("leave", "attribute", "move", "delete");
    INFO("mode " << mode);
    bridge_fixture f("[ldap.deactivate]\nmode = \"" + mode + "\"\n");
    const auto u = f.create_user("dora");
    const auto other = f.create_user("otto");
    f.create_group("Staff", {u["id"], other["id"]});
    f.converge();
    const std::string path = "/Users/" + u["id"].get<std::string>();
    f.patch(path, {{{"op", "replace"}, {"value", {{"active", false}}}}});
    f.converge();
    const std::string disabled_dn = "uid=dora,ou=disabled,dc=example,dc=com";
    if (mode == "leave") {
        CHECK(f.entry(user_dn("dora")));
        CHECK(f.values(user_dn("dora"), "employeeType").empty());
    } else if (mode == "attribute") {
        CHECK(f.values(user_dn("dora"), "employeeType") == std::vector<std::string>{"inactive"});
    } else if (mode == "move") {
        CHECK_FALSE(f.entry(user_dn("dora")));
        CHECK(f.entry(disabled_dn));
        CHECK(f.values(group_dn("Staff"), "member") == sorted({disabled_dn, user_dn("otto")}));
    } else {
        CHECK_FALSE(f.entry(user_dn("dora")));
        CHECK(f.values(group_dn("Staff"), "member") == std::vector<std::string>{user_dn("otto")});
    }
    f.patch(path, {{{"op", "replace"}, {"path", "active"}, {"value", true}}});
    f.converge();
    CHECK(f.entry(user_dn("dora")));
    CHECK_FALSE(f.entry(disabled_dn));
    CHECK(f.values(user_dn("dora"), "employeeType").empty());
    CHECK(f.values(group_dn("Staff"), "member") == sorted({user_dn("dora"), user_dn("otto")}));
    CHECK(f.ldap_status()["mirror"]["failed_writes"] == 0);
}

TEST_CASE("hostile userNames round-trip and cannot write outside the managed subtree",
          "[integration][ldap]") {
    bridge_fixture f;
    const std::vector<std::string> names{
        "Smith, John", "a+b=c",       "#hash",
        "\"quoted\"",  "trailing ",   "Zoë Ångström",
        "*)(uid=*",    "back\\slash", "x,ou=admins,dc=example,dc=com"};
    std::vector<std::string> ids;
    for (const auto& n : names) ids.push_back(f.create_user(n)["id"]);
    f.create_group("Hostile, Inc. (*)", ids);
    f.converge();
    for (const auto& n : names) {
        INFO(n);
        auto found =
            f.slapd.search(people, "(uid=" + bridge::escape_filter_value(n) + ")", {"uid"});
        REQUIRE(found.size() == 1);
        CHECK(found[0].attrs.at("uid") == std::vector<std::string>{n});
        CHECK(bridge::is_child_of(found[0].dn, people));
    }
    // Everything under the suffix is either seeded or under a managed OU.
    for (const auto& e : f.slapd.search("dc=example,dc=com", "(objectClass=*)", {"1.1"})) {
        INFO(e.dn);
        const bool managed = bridge::is_below(e.dn, people) || bridge::is_below(e.dn, groups);
        const bool seeded = !bridge::is_below(e.dn, people) && bridge::split_dn(e.dn)->size() <= 3;
        CHECK((managed || seeded));
    }
    CHECK_FALSE(f.entry("ou=admins,dc=example,dc=com"));
    CHECK(f.values(group_dn("Hostile, Inc. (*)"), "member").size() == names.size());
}

TEST_CASE("an LDAP outage loses nothing: 1,000 changes made while slapd is down converge",
          "[integration][ldap]") {
    bridge_fixture f;
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(f.create_user("seed" + std::to_string(i))["id"]);
    const std::string gid = f.create_group("Everyone", ids)["id"];
    f.converge();

    f.slapd.stop();
    int changes = 0;
    for (int i = 0; changes < 1000; ++i) {
        const std::string id = f.create_user("user" + std::to_string(i))["id"];
        ++changes;
        f.patch("/Users/" + id,
                {{{"op", "replace"}, {"path", "title"}, {"value", "T" + std::to_string(i)}}});
        ++changes;
        if (i % 2 == 0) {
            f.patch("/Groups/" + gid,
                    {{{"op", "add"}, {"path", "members"}, {"value", {{{"value", id}}}}}});
            ++changes;
        }
        if (i % 5 == 0) {
            f.patch("/Users/" + id, {{{"op", "replace"},
                                      {"path", "userName"},
                                      {"value", "renamed" + std::to_string(i)}}});
            ++changes;
        }
        if (i % 7 == 0) {
            f.ok("DELETE", "/Users/" + id, nullptr, 204);
            ++changes;
        }
    }
    auto during = f.ldap_status()["mirror"];
    CHECK(during["connected"] == false);
    CHECK(during["checkpoint"] < during["log_head"]);

    f.slapd.start();
    f.converge(std::chrono::seconds(120));
    // LDAP equals the views: reconcile finds nothing to fix.
    auto check = f.ctl({"ldap", "reconcile", "--dry-run", "--json"});
    INFO(check.out << check.err);
    REQUIRE(check.code() == 0);
    CHECK(json::parse(check.out)["differences"] == 0);
    auto listed = f.ok("GET", "/Users?count=1");
    CHECK(f.slapd.search(people, "(objectClass=inetOrgPerson)", {"1.1"}).size() ==
          listed["totalResults"].get<std::size_t>());
    auto group = f.ok("GET", "/Groups/" + gid);
    CHECK(f.values(group_dn("Everyone"), "member").size() == group["members"].size());
    CHECK(f.ldap_status()["mirror"]["failed_writes"] == 0);
}

TEST_CASE("the mirror resumes from its checkpoint after a restart without rewriting LDAP",
          "[integration][ldap]") {
    bridge_fixture f;
    for (int i = 0; i < 30; ++i) f.create_user("r" + std::to_string(i));
    f.converge();
    f.stop_daemon();
    f.start();
    f.converge();
    const auto st = f.ldap_status()["mirror"];
    CHECK(st["writes"] == 0);  // nothing replayed into LDAP
    f.create_user("after-restart");
    f.converge();
    CHECK(f.entry(user_dn("after-restart")));
    CHECK(f.ldap_status()["mirror"]["writes"] == 1);
}

TEST_CASE("after kill -9 with writes still owed to a down LDAP, the restarted mirror converges",
          "[integration][ldap]") {
    bridge_fixture f;
    for (int i = 0; i < 10; ++i) f.create_user("k" + std::to_string(i));
    f.converge();
    f.slapd.stop();
    for (int i = 10; i < 60; ++i) f.create_user("k" + std::to_string(i));
    f.conn.reset();
    f.daemon->process().send_signal(SIGKILL);
    REQUIRE(f.daemon->process().wait(std::chrono::seconds(20)));
    f.daemon.reset();
    f.slapd.start();
    f.start();
    f.converge();
    auto check = f.ctl({"ldap", "reconcile", "--dry-run", "--json"});
    INFO(check.out << check.err);
    REQUIRE(check.code() == 0);
    CHECK(json::parse(check.out)["differences"] == 0);
    CHECK(f.slapd.search(people, "(objectClass=inetOrgPerson)", {"1.1"}).size() == 60);
}

TEST_CASE(
    "hand-made LDAP changes become LdapEntryChanged events and are repaired or kept per policy",
    "[integration][ldap]") {
    bridge_fixture f("[ldap.drift]\ntelephoneNumber = \"accept\"\ntitle = \"report\"\n");
    const auto u =
        f.create_user("hank", {{"emails", {{{"value", "hank@example.com"}, {"type", "work"}}}},
                               {"phoneNumbers", {{{"value", "100"}, {"type", "work"}}}},
                               {"title", "Clerk"}});
    f.create_user("gina");
    f.converge();
    REQUIRE(eventually([&] { return f.ldap_status()["ingest"]["persisting"] == true; },
                       std::chrono::seconds(20)));

    auto r = f.ldap_tool("ldapmodify", "dn: " + user_dn("hank") +
                                           "\nchangetype: modify\nreplace: mail\nmail: "
                                           "evil@example.org\n-\nreplace: telephoneNumber\n"
                                           "telephoneNumber: 999\n-\nadd: description\n"
                                           "description: set by hand\n-\nreplace: title\n"
                                           "title: Boss\n");
    INFO(r.err);
    REQUIRE(r.code() == 0);
    // The change is recorded with its author and the decision...
    std::vector<json> changed;
    REQUIRE(eventually([&] {
        changed = f.events_of_type("LdapEntryChanged");
        return !changed.empty();
    }));
    const auto& e = changed.front();
    CHECK(e["source"] == "ldap");
    CHECK(e["actor"] == f.slapd.operator_dn());
    CHECK(e["data"]["dn"] == user_dn("hank"));
    CHECK(e["data"]["change"] == "modify");
    CHECK(e["data"]["drift"]["mail"] == "repair");
    CHECK(e["data"]["drift"]["telephoneNumber"] == "accept");
    CHECK(e["data"]["drift"]["description"] == "accept");
    CHECK(e["data"]["drift"]["title"] == "report");
    // ...mail is repaired; the accepted attributes stay as set by hand.
    REQUIRE(eventually([&] {
        return f.values(user_dn("hank"), "mail") == std::vector<std::string>{"hank@example.com"};
    }));
    f.converge();
    CHECK(f.values(user_dn("hank"), "telephoneNumber") == std::vector<std::string>{"999"});
    CHECK(f.values(user_dn("hank"), "description") == std::vector<std::string>{"set by hand"});
    // "report": recorded, LDAP's value kept, and not shown as LDAP-owned either.
    CHECK(f.values(user_dn("hank"), "title") == std::vector<std::string>{"Boss"});
    // The repair itself is the bridge's write: not ingested again.
    CHECK(f.events_of_type("LdapEntryChanged").size() == 1);
    // What LDAP owns shows read-only in the SCIM user; what SCIM owns stays SCIM's.
    const std::string ldap_ext = "urn:scimsync:schemas:extension:ldap:1.0:User";
    const auto seen = f.ok("GET", "/Users/" + u["id"].get<std::string>());
    INFO(seen.dump());
    CHECK(seen[ldap_ext]["attributes"]["telephoneNumber"] == json::array({"999"}));
    CHECK(seen[ldap_ext]["attributes"]["description"] == json::array({"set by hand"}));
    CHECK_FALSE(seen[ldap_ext]["attributes"].contains("mail"));
    CHECK_FALSE(seen[ldap_ext]["attributes"].contains("title"));
    CHECK(seen["title"] == "Clerk");
    CHECK(seen["emails"][0]["value"] == "hank@example.com");
    CHECK(std::find(seen["schemas"].begin(), seen["schemas"].end(), ldap_ext) !=
          seen["schemas"].end());

    SECTION("an entry deleted in LDAP is re-created") {
        auto d = f.ldap_tool("ldapdelete", user_dn("gina") + "\n");
        INFO(d.err);
        REQUIRE(d.code() == 0);
        REQUIRE(eventually([&] { return f.entry(user_dn("gina")).has_value(); }));
        CHECK(f.events_of_type("LdapEntryChanged").size() == 2);
    }
    SECTION("a change made while the daemon is down is ingested once after the restart") {
        f.stop_daemon();
        auto m = f.ldap_tool("ldapmodify", "dn: " + user_dn("gina") +
                                               "\nchangetype: modify\nreplace: sn\nsn: Hacked\n");
        REQUIRE(m.code() == 0);
        f.start();
        REQUIRE(eventually(
            [&] { return f.values(user_dn("gina"), "sn") == std::vector<std::string>{"gina"}; }));
        f.converge();
        REQUIRE(eventually([&] { return f.ldap_status()["ingest"]["persisting"] == true; }));
        CHECK(f.events_of_type("LdapEntryChanged").size() == 2);
        f.stop_daemon();
        f.start();
        REQUIRE(eventually([&] { return f.ldap_status()["ingest"]["persisting"] == true; }));
        CHECK(f.events_of_type("LdapEntryChanged").size() == 2);
    }
}

TEST_CASE("ldap reconcile lists and fixes missing, extra and drifted entries",
          "[integration][ldap]") {
    bridge_fixture f("ingest = false\n");
    f.create_user("rita", {{"title", "Auditor"}});
    f.create_user("sam");
    f.converge();
    REQUIRE(f.ldap_tool("ldapdelete", user_dn("sam") + "\n").code() == 0);
    REQUIRE(f.ldap_tool("ldapmodify", "dn: " + user_dn("rita") +
                                          "\nchangetype: modify\nreplace: title\ntitle: Hacker\n")
                .code() == 0);
    f.slapd.add({user_dn("intruder"),
                 {{"objectClass", {"inetOrgPerson"}},
                  {"uid", {"intruder"}},
                  {"cn", {"i"}},
                  {"sn", {"i"}}}});

    auto dry = f.ctl({"ldap", "reconcile", "--dry-run"});
    INFO(dry.out << dry.err);
    CHECK(dry.code() == 1);
    CHECK_THAT(dry.out, Catch::Contains("missing: " + user_dn("sam")));
    CHECK_THAT(dry.out, Catch::Contains("extra:   " + user_dn("intruder")));
    CHECK_THAT(dry.out, Catch::Contains("title"));
    CHECK_THAT(dry.out, Catch::Contains("3 differences"));
    CHECK(f.entry(user_dn("intruder")));  // a dry run changes nothing

    auto fix = f.ctl({"ldap", "reconcile"});
    INFO(fix.out << fix.err);
    CHECK(fix.code() == 0);
    CHECK(f.entry(user_dn("sam")));
    CHECK_FALSE(f.entry(user_dn("intruder")));
    CHECK(f.values(user_dn("rita"), "title") == std::vector<std::string>{"Auditor"});
    auto again = f.ctl({"ldap", "reconcile", "--dry-run", "--json"});
    CHECK(again.code() == 0);
    CHECK(json::parse(again.out)["differences"] == 0);
}

TEST_CASE("passwords reach LDAP as a hash slapd verifies, only when enabled",
          "[integration][ldap]") {
    bridge_fixture f("passwords = true\n");
    f.create_user("pat", {{"password", "Corr3ct-Horse"}});
    f.converge();
    const auto stored = f.values(user_dn("pat"), "userPassword");
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].rfind("{CRYPT}$6$", 0) == 0);
    CHECK(stored[0].find("Corr3ct-Horse") == std::string::npos);
    bridge::ldap_settings as_user{f.slapd.url(), user_dn("pat"), "Corr3ct-Horse",
                                  std::chrono::milliseconds(2000)};
    CHECK(bridge::ldap_connection::open(as_user));
    as_user.bind_password = "wrong";
    CHECK_FALSE(bridge::ldap_connection::open(as_user));
}

TEST_CASE("a bad [ldap] mapping stops start-up with the key named and no secret shown",
          "[integration][ldap]") {
    temp_dir dir;
    write_file(dir.path() / "secret", "hunter2-secret\n");
    const auto start_with = [&](const std::string& toml) {
        write_file(dir.path() / "bad.toml", toml);
        return run_binary("scimsyncd",
                          {"--config", (dir.path() / "bad.toml").string(), "--data-dir",
                           (dir.path() / "data").string(), "--listen", "127.0.0.1:0",
                           "--admin-socket", (dir.path() / "a.sock").string()});
    };
    const std::string head =
        "[ldap]\nurl = \"ldap://127.0.0.1:1\"\nbind_dn = \"cn=x\"\n"
        "bind_password_file = \"" +
        (dir.path() / "secret").string() + "\"\n";
    auto r = start_with(head + "[ldap.attributes]\ndescription = \"nickNmae\"\n");
    CHECK(r.code() == 2);
    CHECK_THAT(r.err, Catch::Contains("bad.toml") &&
                          Catch::Contains("ldap.attributes.description") &&
                          Catch::Contains("nickNmae"));
    CHECK(r.err.find("hunter2") == std::string::npos);
    r = start_with(head + "[ldap.deactivate]\nmode = \"vanish\"\n");
    CHECK(r.code() == 2);
    CHECK_THAT(r.err, Catch::Contains("ldap.deactivate.mode"));
    r = start_with(
        "[ldap]\nurl = \"ldap://127.0.0.1:1\"\nbind_dn = \"cn=x\"\n"
        "bind_password_file = \"/nonexistent/secret\"\n");
    CHECK(r.code() == 2);
    CHECK_THAT(r.err, Catch::Contains("ldap.bind_password_file") &&
                          Catch::Contains("/nonexistent/secret"));
}

TEST_CASE("devices are mirrored as device entries, and a policy with ldap removes the user's entry",
          "[integration][ldap][policies]") {
    bridge_fixture f(
        "\n[policies.populations.contractors]\nfilter = 'title eq \"Contractor\"'\n"
        "on_deactivate = \"remove_user_and_devices\"\nldap = true\n");
    const std::string devices = "ou=devices,dc=example,dc=com";
    const auto carl = f.create_user("carl", {{"title", "Contractor"}})["id"].get<std::string>();
    const auto dana = f.create_user("dana")["id"].get<std::string>();
    const auto group = f.create_group("Crew", {carl, dana});
    auto reg = [&](const std::string& serial, const std::string& owner) {
        auto r = f.ctl({"device", "register", "--name", "laptop " + serial, "--serial", serial,
                        "--platform", "linux", "--owner", owner, "--policy", "standard", "--json"});
        INFO(r.err);
        REQUIRE(r.code() == 0);
        return json::parse(r.out)["id"].get<std::string>();
    };
    const auto d_carl = reg("SN-1", carl);
    const auto d_dana = reg("SN-2", dana);
    f.converge();
    auto entry = f.slapd.search("cn=" + d_dana + "," + devices, "(objectClass=device)");
    REQUIRE(entry.size() == 1);
    REQUIRE(entry[0].attrs["serialNumber"] == std::vector<std::string>{"SN-2"});
    REQUIRE(entry[0].attrs["owner"] == std::vector<std::string>{user_dn("dana")});
    REQUIRE(entry[0].attrs["ou"] == std::vector<std::string>{"standard"});

    // The owner's rename follows into the device's owner value; unassigning removes it.
    f.ok("PATCH", "/Users/" + dana,
         {{"schemas", {patch_op}},
          {"Operations",
           json::array({{{"op", "replace"}, {"path", "userName"}, {"value", "dana2"}}})}});
    f.converge();
    entry = f.slapd.search("cn=" + d_dana + "," + devices, "(objectClass=device)");
    REQUIRE(entry[0].attrs["owner"] == std::vector<std::string>{user_dn("dana2")});
    REQUIRE(f.ctl({"device", "update", d_dana, "--unassign"}).code() == 0);
    f.converge();
    entry = f.slapd.search("cn=" + d_dana + "," + devices, "(objectClass=device)");
    REQUIRE(entry[0].attrs.count("owner") == 0);

    // Deactivating the contractor: the policy removes the account (LDAP entry, group member
    // value) and the device, in LDAP too; the SCIM view keeps the inactive user.
    f.ok("PATCH", "/Users/" + carl,
         {{"schemas", {patch_op}},
          {"Operations", json::array({{{"op", "replace"}, {"value", {{"active", false}}}}})}});
    REQUIRE(eventually([&] {
        auto s = f.ctl({"policy", "status", "--json"});
        return s.code() == 0 && json::parse(s.out)["applied"] == 1 &&
               json::parse(s.out)["lag_events"] == 0;
    }));
    f.converge();
    REQUIRE(f.slapd.search(people, "(uid=carl)").empty());
    REQUIRE(f.slapd.search(devices, "(serialNumber=SN-1)").empty());
    auto crew = f.slapd.search(group_dn("Crew"), "(objectClass=*)");
    REQUIRE(crew[0].attrs["member"] == std::vector<std::string>{user_dn("dana2")});
    REQUIRE(f.ok("GET", "/Users/" + carl)["active"] == false);
    auto dry = f.ctl({"ldap", "reconcile", "--dry-run"});
    INFO(dry.out << dry.err);
    REQUIRE(dry.code() == 0);

    // Reactivated by the identity provider: the entry and the membership come back.
    f.ok("PATCH", "/Users/" + carl,
         {{"schemas", {patch_op}},
          {"Operations", json::array({{{"op", "replace"}, {"value", {{"active", true}}}}})}});
    f.converge();
    REQUIRE(f.slapd.search(people, "(uid=carl)").size() == 1);
    crew = f.slapd.search(group_dn("Crew"), "(objectClass=*)");
    REQUIRE(crew[0].attrs["member"].size() == 2);
    (void)group;
    (void)d_carl;
}

TEST_CASE("roles are mirrored as groups whose members are everyone holding them",
          "[integration][ldap][access]") {
    bridge_fixture f("\n[access.services.dashboard]\nroles = [\"viewer\", \"admin\"]\n");
    const std::string roles = "ou=roles,dc=example,dc=com";
    const auto role = [&](const std::string& label) {
        return f.slapd.search(roles, "(cn=" + bridge::escape_filter_value(label) + ")", {"member"});
    };
    const auto members = [&](const std::string& label) {
        auto found = role(label);
        REQUIRE(found.size() == 1);
        auto m = found[0].attrs["member"];
        std::sort(m.begin(), m.end());
        return m;
    };
    const auto ann = f.create_user("ann")["id"].get<std::string>();
    const auto ben = f.create_user("ben")["id"].get<std::string>();
    const auto team = f.create_group("Team", {ann})["id"].get<std::string>();
    const auto org = f.create_group("Org", {team, ben})["id"].get<std::string>();
    auto grant = [&](bool give, const std::string& who, const std::string& kind,
                     const std::string& r) {
        auto out = f.ctl({"access", give ? "grant" : "revoke", "--" + kind, who, "--service",
                          "dashboard", "--role", r});
        INFO(out.err);
        REQUIRE(out.code() == 0);
    };
    grant(true, "Org", "group", "viewer");  // ann through Team inside Org, ben directly in Org
    grant(true, "ann", "user", "admin");
    f.converge();
    REQUIRE(members("dashboard/viewer") ==
            std::vector<std::string>{user_dn("ann"), user_dn("ben")});
    REQUIRE(members("dashboard/admin") == std::vector<std::string>{user_dn("ann")});

    // Leaving the nested group, a rename, and a revocation follow; an empty role goes.
    f.ok("PATCH", "/Groups/" + team,
         {{"schemas", {patch_op}},
          {"Operations",
           json::array({{{"op", "remove"}, {"path", "members[value eq \"" + ann + "\"]"}}})}},
         204, 200);
    f.ok("PATCH", "/Users/" + ben,
         {{"schemas", {patch_op}},
          {"Operations",
           json::array({{{"op", "replace"}, {"path", "userName"}, {"value", "ben2"}}})}});
    f.converge();
    REQUIRE(members("dashboard/viewer") == std::vector<std::string>{user_dn("ben2")});
    grant(false, "ann", "user", "admin");
    f.converge();
    REQUIRE(role("dashboard/admin").empty());
    auto dry = f.ctl({"ldap", "reconcile", "--dry-run"});
    INFO(dry.out << dry.err);
    REQUIRE(dry.code() == 0);

    // Deleting the group that holds the grant empties the role; a restart rewrites nothing.
    f.ok("DELETE", "/Groups/" + org, nullptr, 204);
    f.converge();
    REQUIRE(role("dashboard/viewer").empty());
    grant(true, "ben2", "user", "viewer");
    f.converge();
    f.stop_daemon();
    f.start();
    f.converge();
    REQUIRE(members("dashboard/viewer") == std::vector<std::string>{user_dn("ben2")});
    REQUIRE(f.ctl({"ldap", "reconcile", "--dry-run"}).code() == 0);
}
