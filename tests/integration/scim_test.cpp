// The SCIM API driven the way identity providers drive it: the real scimsyncd on a random
// loopback port, a real token from `scimsyncctl token create`, and the request sequences Okta
// and Microsoft Entra are documented to send.

#include <csignal>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;

namespace {

const std::string enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// A daemon with one issued token, and a keep-alive connection that sends it.
struct scim_fixture {
    temp_dir dir;
    std::optional<daemon_process> daemon;
    std::optional<http_connection> conn;
    std::string token;
    std::string token_id;
    std::string base = "/scim/v2";

    explicit scim_fixture(std::string durability = "none") { start(std::move(durability)); }

    void start(std::string durability = "none") {
        daemon_options o;
        o.dir = dir.path();
        o.durability = std::move(durability);
        daemon.emplace(o);
        conn.emplace(daemon->host(), daemon->port());
        if (token.empty()) {
            auto created = ctl({"token", "create", "--name", "okta", "--ttl", "90d", "--json"});
            REQUIRE(created.code() == 0);
            auto j = json::parse(created.out);
            token = j["token"];
            token_id = j["id"];
            REQUIRE(j["base_url"] == daemon->url() + "/scim/v2");
        }
    }

    void restart() {
        conn.reset();
        daemon->process().send_signal(SIGTERM);
        REQUIRE(daemon->process().wait(std::chrono::seconds(20))->code == 0);
        daemon.reset();
        start();
    }

    process_output ctl(std::vector<std::string> args) {
        std::vector<std::string> all{"--socket", (dir.path() / "admin.sock").string(), "--data-dir",
                                     (dir.path() / "data").string()};
        all.insert(all.end(), args.begin(), args.end());
        return run_binary("scimsyncctl", all);
    }

    std::uint64_t last_seq() {
        auto s = ctl({"status", "--json"});
        REQUIRE(s.code() == 0);
        return json::parse(s.out)["last_seq"];
    }

    http_reply call(const std::string& method, const std::string& path, const json& body = nullptr,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
        headers.emplace_back("Authorization", "Bearer " + token);
        if (!body.is_null()) headers.emplace_back("Content-Type", "application/scim+json");
        return conn->request(method, base + path, body.is_null() ? std::string() : body.dump(),
                             headers);
    }

    json ok(const std::string& method, const std::string& path, const json& body = nullptr,
            int want = 200) {
        auto r = call(method, path, body);
        INFO(method << " " << path << " -> " << r.status << " " << r.body);
        REQUIRE(r.status == want);
        return r.body.empty() ? json() : json::parse(r.body);
    }

    json create_user(const std::string& user_name, json extra = json::object()) {
        json body{{"schemas", {user_schema}}, {"userName", user_name}, {"active", true}};
        body.update(extra);
        return ok("POST", "/Users", body, 201);
    }
};

std::string filter_query(const std::string& f) {
    std::string out;
    for (char c : f) {
        if (c == ' ')
            out += "%20";
        else if (c == '"')
            out += "%22";
        else
            out += c;
    }
    return out;
}

}  // namespace

TEST_CASE(
    "Entra's test connection: a userName filter for a random guid answers 200 with an empty "
    "list",
    "[integration][scim]") {
    scim_fixture f;
    auto r =
        f.call("GET", "/Users?filter=" +
                          filter_query("userName eq \"8c1e2f3a-0b4d-4a6e-9f7c-1d2e3f4a5b6c\""));
    REQUIRE(r.status == 200);
    REQUIRE(r.header("content-type").value_or("").find("application/scim+json") == 0);
    auto j = json::parse(r.body);
    REQUIRE(j["totalResults"] == 0);
    REQUIRE(j["Resources"].empty());
    REQUIRE(j["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:ListResponse");
}

TEST_CASE("requests without a token, with a wrong one, or with a revoked one get 401 Bearer",
          "[integration][scim][auth]") {
    scim_fixture f;
    auto none = f.conn->request("GET", "/scim/v2/Users");
    REQUIRE(none.status == 401);
    REQUIRE(none.header("www-authenticate").value_or("").find("Bearer") == 0);
    REQUIRE(json::parse(none.body)["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:Error");
    auto forged =
        f.conn->request("GET", "/scim/v2/Users", "",
                        {{"Authorization", "Bearer scs_" + f.token_id + "_not-the-secret"}});
    REQUIRE(forged.status == 401);
    REQUIRE(f.call("GET", "/Users").status == 200);
    REQUIRE(f.ctl({"token", "revoke", f.token_id}).code() == 0);
    auto revoked = f.call("GET", "/Users");
    REQUIRE(revoked.status == 401);
    REQUIRE_THAT(revoked.body, Catch::Contains("revoked"));
}

TEST_CASE("token list shows name, expiry and last use, and never the token",
          "[integration][scim][auth]") {
    scim_fixture f;
    REQUIRE(f.call("GET", "/Users").status == 200);
    auto list = f.ctl({"token", "list", "--json"});
    REQUIRE(list.code() == 0);
    REQUIRE(list.out.find(f.token) == std::string::npos);
    auto t = json::parse(list.out)["tokens"][0];
    REQUIRE(t["name"] == "okta");
    REQUIRE(t["expires"].is_string());
    REQUIRE(t["last_used"].is_string());
    REQUIRE(f.ctl({"token", "create", "--name", "x", "--ttl", "soon"}).code() == 2);
}

TEST_CASE("an Okta user lifecycle: create, look up, update, deactivate, reactivate and delete",
          "[integration][scim][okta]") {
    scim_fixture f;
    // Okta's create: string booleans, an empty groups list, the enterprise extension.
    auto created = f.ok(
        "POST", "/Users",
        {{"schemas", {user_schema, enterprise}},
         {"userName", "isabella.fox@example.com"},
         {"name", {{"givenName", "Isabella"}, {"familyName", "Fox"}}},
         {"emails", {{{"primary", true}, {"value", "isabella.fox@example.com"}, {"type", "work"}}}},
         {"displayName", "Isabella Fox"},
         {"externalId", "00u1fox"},
         {"groups", json::array()},
         {"password", "Tr0ub4dor&3"},
         {"active", "True"},
         {enterprise, {{"department", "Sales"}, {"manager", "boss-id"}}}},
        201);
    const std::string id = created["id"];
    REQUIRE(created["active"] == true);
    REQUIRE_FALSE(created.contains("password"));
    REQUIRE(created[enterprise]["manager"]["value"] == "boss-id");
    REQUIRE(created["meta"]["resourceType"] == "User");
    REQUIRE(created["meta"]["version"] == "W/\"1\"");

    // Okta looks users up by userName in any case.
    auto found =
        f.ok("GET", "/Users?filter=" + filter_query("userName eq \"ISABELLA.FOX@example.com\"") +
                        "&startIndex=1&count=100");
    REQUIRE(found["totalResults"] == 1);
    REQUIRE(found["Resources"][0]["id"] == id);
    REQUIRE(found["startIndex"] == 1);
    REQUIRE(found["itemsPerPage"] == 1);

    // Profile update through PUT, then deactivation through PATCH replace (Okta's shape).
    auto put = f.ok("PUT", "/Users/" + id,
                    {{"schemas", {user_schema}},
                     {"id", id},
                     {"userName", "isabella.fox@example.com"},
                     {"name", {{"givenName", "Bella"}, {"familyName", "Fox"}}},
                     {"active", true}});
    REQUIRE(put["name"]["givenName"] == "Bella");
    auto deactivated =
        f.ok("PATCH", "/Users/" + id,
             {{"schemas", {patch_op}},
              {"Operations", {{{"op", "replace"}, {"value", {{"active", false}}}}}}});
    REQUIRE(deactivated["active"] == false);
    // Inactive users still come back from GET and from filters.
    REQUIRE(f.ok("GET", "/Users/" + id)["active"] == false);
    REQUIRE(f.ok("GET", "/Users?filter=" + filter_query("active eq false"))["totalResults"] == 1);
    auto reactivated =
        f.ok("PATCH", "/Users/" + id,
             {{"schemas", {patch_op}},
              {"Operations", {{{"op", "Replace"}, {"path", "active"}, {"value", "True"}}}}});
    REQUIRE(reactivated["active"] == true);
    f.ok("DELETE", "/Users/" + id, nullptr, 204);
    REQUIRE(f.call("GET", "/Users/" + id).status == 404);
}

TEST_CASE(
    "an Entra user sequence: create with the enterprise extension, path-less PATCH with "
    "path keys, then a filtered add",
    "[integration][scim][entra]") {
    scim_fixture f;
    auto u = f.create_user(
        "jdoe@contoso.com",
        {{"externalId", "jdoe"},
         {"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User", {{"x", 1}}}});
    const std::string id = u["id"];
    auto p1 =
        f.ok("PATCH", "/Users/" + id,
             {{"schemas", {patch_op}},
              {"Operations",
               {{{"op", "Replace"},
                 {"value", {{"name.givenName", "John"}, {enterprise + ":department", "R&D"}}}}}}});
    REQUIRE(p1["name"]["givenName"] == "John");
    REQUIRE(p1[enterprise]["department"] == "R&D");
    auto p2 = f.ok("PATCH", "/Users/" + id,
                   {{"schemas", {patch_op}},
                    {"Operations",
                     {{{"op", "Add"},
                       {"path", "phoneNumbers[type eq \"mobile\"].value"},
                       {"value", "+1 555 0100"}}}}});
    auto p3 = f.ok("PATCH", "/Users/" + id,
                   {{"schemas", {patch_op}},
                    {"Operations",
                     {{{"op", "Add"},
                       {"path", "phoneNumbers[type eq \"mobile\"].value"},
                       {"value", "+1 555 0199"}}}}});
    REQUIRE(p3["phoneNumbers"].size() == 1);
    REQUIRE(p3["phoneNumbers"][0]["value"] == "+1 555 0199");
    (void)p2;
}

TEST_CASE("a taken userName, in any case, gets 409 uniqueness and appends nothing",
          "[integration][scim]") {
    scim_fixture f;
    f.create_user("bjensen@example.com");
    const auto before = f.last_seq();
    auto r =
        f.call("POST", "/Users", {{"schemas", {user_schema}}, {"userName", "BJENSEN@example.com"}});
    REQUIRE(r.status == 409);
    REQUIRE(json::parse(r.body)["scimType"] == "uniqueness");
    REQUIRE(f.last_seq() == before);
}

TEST_CASE("bad input gets the right SCIM error and appends nothing", "[integration][scim]") {
    scim_fixture f;
    const auto before = f.last_seq();
    auto malformed = f.conn->request(
        "POST", "/scim/v2/Users", "{not json",
        {{"Authorization", "Bearer " + f.token}, {"Content-Type", "application/json"}});
    REQUIRE(malformed.status == 400);
    REQUIRE(json::parse(malformed.body)["scimType"] == "invalidSyntax");
    auto no_name = f.call("POST", "/Users", {{"schemas", {user_schema}}, {"displayName", "x"}});
    REQUIRE(no_name.status == 400);
    REQUIRE(json::parse(no_name.body)["scimType"] == "invalidValue");
    auto bad_filter = f.call("GET", "/Users?filter=" + filter_query("nosuchattr eq \"x\""));
    REQUIRE(bad_filter.status == 400);
    REQUIRE(json::parse(bad_filter.body)["scimType"] == "invalidFilter");
    auto unknown = f.call("GET", "/Users/does-not-exist");
    REQUIRE(unknown.status == 404);
    REQUIRE(f.last_seq() == before);
}

TEST_CASE("a group push: create with members, add and remove members, list without members",
          "[integration][scim][okta]") {
    scim_fixture f;
    const std::string a = f.create_user("a@example.com")["id"];
    const std::string b = f.create_user("b@example.com")["id"];
    const std::string c = f.create_user("c@example.com")["id"];
    auto g = f.ok("POST", "/Groups",
                  {{"schemas", {group_schema}},
                   {"displayName", "Engineering"},
                   {"members", {{{"value", a}}}}},
                  201);
    const std::string gid = g["id"];
    REQUIRE(g["members"].size() == 1);
    // Several members in one Add, one with "$ref": null (Entra).
    f.ok("PATCH", "/Groups/" + gid,
         {{"schemas", {patch_op}},
          {"Operations",
           {{{"op", "Add"},
             {"path", "members"},
             {"value", {{{"value", b}, {"$ref", nullptr}}, {{"value", c}}}}}}}},
         204);
    REQUIRE(f.ok("GET", "/Groups/" + gid)["members"].size() == 3);
    // Remove one by a value filter, and one by a value array: only those listed go.
    f.ok("PATCH", "/Groups/" + gid,
         {{"schemas", {patch_op}},
          {"Operations", {{{"op", "Remove"}, {"path", "members[value eq \"" + a + "\"]"}}}}},
         204);
    f.ok("PATCH", "/Groups/" + gid,
         {{"schemas", {patch_op}},
          {"Operations", {{{"op", "remove"}, {"path", "members"}, {"value", {{{"value", b}}}}}}}},
         204);
    auto after = f.ok("GET", "/Groups/" + gid);
    REQUIRE(after["members"].size() == 1);
    REQUIRE(after["members"][0]["value"] == c);
    // Okta's rename includes the group's own id in the value.
    auto renamed = f.ok(
        "PATCH", "/Groups/" + gid,
        {{"schemas", {patch_op}},
         {"Operations", {{{"op", "replace"}, {"value", {{"id", gid}, {"displayName", "Eng"}}}}}}});
    REQUIRE(renamed["displayName"] == "Eng");
    auto listed = f.ok("GET", "/Groups?excludedAttributes=members&filter=" +
                                  filter_query("displayName eq \"eng\""));
    REQUIRE(listed["totalResults"] == 1);
    REQUIRE_FALSE(listed["Resources"][0].contains("members"));
    // Deleting a member user removes it from the group.
    f.ok("DELETE", "/Users/" + c, nullptr, 204);
    REQUIRE_FALSE(f.ok("GET", "/Groups/" + gid).contains("members"));
}

TEST_CASE("ETags: a stale If-Match gets 412 and the current If-None-Match gets 304",
          "[integration][scim][etag]") {
    scim_fixture f;
    auto u = f.create_user("etag@example.com");
    const std::string id = u["id"];
    const std::string v1 = u["meta"]["version"];
    f.ok("PATCH", "/Users/" + id,
         {{"schemas", {patch_op}},
          {"Operations", {{{"op", "replace"}, {"path", "title"}, {"value", "CTO"}}}}});
    auto stale = f.call("PATCH", "/Users/" + id,
                        {{"schemas", {patch_op}},
                         {"Operations", {{{"op", "replace"}, {"path", "title"}, {"value", "x"}}}}},
                        {{"If-Match", v1}});
    REQUIRE(stale.status == 412);
    auto current = f.call("GET", "/Users/" + id);
    auto etag = current.header("etag");
    REQUIRE(etag.has_value());
    REQUIRE(f.call("GET", "/Users/" + id, nullptr, {{"If-None-Match", *etag}}).status == 304);
}

TEST_CASE("while provisioning is disabled SCIM requests are refused and change nothing",
          "[integration][scim]") {
    scim_fixture f;
    REQUIRE(f.ctl({"provisioning", "disable"}).code() == 0);
    const auto before = f.last_seq();
    auto r = f.call("POST", "/Users", {{"schemas", {user_schema}}, {"userName", "x@example.com"}});
    REQUIRE(r.status == 503);
    REQUIRE_THAT(r.body, Catch::Contains("disabled"));
    REQUIRE(f.last_seq() == before);
    REQUIRE(f.ctl({"provisioning", "enable"}).code() == 0);
    REQUIRE(f.call("POST", "/Users", {{"schemas", {user_schema}}, {"userName", "x@example.com"}})
                .status == 201);
}

TEST_CASE("a password is never returned and never reaches the log in clear",
          "[integration][scim][secrets]") {
    scim_fixture f;
    auto u = f.create_user("secret@example.com", {{"password", "Sup3r-S3cret-Pw"}});
    REQUIRE_FALSE(f.ok("GET", "/Users/" + u["id"].get<std::string>()).contains("password"));
    f.restart();  // the log is closed cleanly, so dump reads everything
    auto dump = f.ctl({"log", "dump"});
    REQUIRE(dump.code() == 0);
    REQUIRE(dump.out.find("Sup3r-S3cret-Pw") == std::string::npos);
    REQUIRE(dump.out.find(f.token) == std::string::npos);
    REQUIRE(dump.out.find("{CRYPT}$6$") != std::string::npos);
}

TEST_CASE("discovery describes Users with the enterprise extension and Groups",
          "[integration][scim]") {
    scim_fixture f;
    auto spc = f.ok("GET", "/ServiceProviderConfig");
    REQUIRE(spc["patch"]["supported"] == true);
    REQUIRE(spc["filter"]["maxResults"].is_number_integer());
    auto types = f.ok("GET", "/ResourceTypes");
    REQUIRE(types["totalResults"] == 2);
    auto schemas = f.ok("GET", "/Schemas");
    std::vector<std::string> ids;
    for (const auto& s : schemas["Resources"]) ids.push_back(s["id"]);
    REQUIRE(std::find(ids.begin(), ids.end(), enterprise) != ids.end());
}

TEST_CASE("after random operations a restarted daemon answers every GET identically",
          "[integration][scim][replay]") {
    scim_fixture f("batch");
    std::mt19937 rng(std::random_device{}());
    std::vector<std::string> users, groups;
    for (int i = 0; i < 120; ++i) {
        const int pick = int(rng() % 7);
        const std::string n = std::to_string(i);
        if (pick <= 1 || users.empty()) {
            users.push_back(f.create_user("user" + n + "@example.com", {{"title", "t" + n}})["id"]);
        } else if (pick == 2 || groups.empty()) {
            groups.push_back(f.ok("POST", "/Groups",
                                  {{"schemas", {group_schema}}, {"displayName", "g" + n}},
                                  201)["id"]);
        } else if (pick == 3) {
            f.call("PATCH", "/Groups/" + groups[rng() % groups.size()],
                   {{"schemas", {patch_op}},
                    {"Operations",
                     {{{"op", "add"},
                       {"path", "members"},
                       {"value", {{{"value", users[rng() % users.size()]}}}}}}}});
        } else if (pick == 4) {
            f.call(
                "PATCH", "/Users/" + users[rng() % users.size()],
                {{"schemas", {patch_op}},
                 {"Operations", {{{"op", "replace"}, {"value", {{"active", rng() % 2 == 0}}}}}}});
        } else if (pick == 5) {
            const auto victim = rng() % users.size();
            f.call("DELETE", "/Users/" + users[victim]);
            users.erase(users.begin() + long(victim));
        } else {
            f.call("PUT", "/Users/" + users[rng() % users.size()],
                   {{"schemas", {user_schema}}, {"userName", "renamed" + n + "@example.com"}});
        }
    }
    // Locations carry the daemon's URL, whose port changes across the restart.
    auto normalised = [&](std::string body) {
        const std::string url = f.daemon->url();
        for (auto pos = body.find(url); pos != std::string::npos; pos = body.find(url, pos))
            body.replace(pos, url.size(), "BASE");
        return body;
    };
    auto snapshot_all = [&] {
        std::vector<std::string> bodies;
        bodies.push_back(f.ok("GET", "/Users?count=1000").dump());
        bodies.push_back(f.ok("GET", "/Groups?count=1000").dump());
        for (const auto& id : users) bodies.push_back(f.call("GET", "/Users/" + id).body);
        for (const auto& id : groups) bodies.push_back(f.call("GET", "/Groups/" + id).body);
        for (auto& b : bodies) b = normalised(b);
        return bodies;
    };
    const auto live = snapshot_all();
    f.restart();
    REQUIRE(snapshot_all() == live);
    auto verify = f.ctl({"log", "verify"});
    REQUIRE(verify.code() == 0);
}

TEST_CASE("paging returns stable pages with integer totals, and count=0 only counts",
          "[integration][scim][paging]") {
    scim_fixture f;
    for (int i = 0; i < 7; ++i) f.create_user("page" + std::to_string(i) + "@example.com");
    auto all = f.ok("GET", "/Users?count=100");
    REQUIRE(all["totalResults"] == 7);
    std::vector<std::string> order;
    for (const auto& u : all["Resources"]) order.push_back(u["id"]);
    auto second = f.ok("GET", "/Users?startIndex=3&count=2");
    REQUIRE(second["totalResults"].is_number_integer());
    REQUIRE(second["totalResults"] == 7);
    REQUIRE(second["startIndex"] == 3);
    REQUIRE(second["itemsPerPage"] == 2);
    REQUIRE(second["Resources"][0]["id"] == order[2]);
    REQUIRE(second["Resources"][1]["id"] == order[3]);
    auto counted = f.ok("GET", "/Users?count=0");
    REQUIRE(counted["totalResults"] == 7);
    REQUIRE(counted["Resources"].empty());
    auto sorted = f.ok("GET", "/Users?sortBy=userName&sortOrder=descending&count=3");
    REQUIRE(sorted["Resources"][0]["userName"] == "page6@example.com");
    auto searched = f.ok("POST", "/Users/.search",
                         {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}},
                          {"filter", "userName sw \"page1\""},
                          {"attributes", {"userName"}}});
    REQUIRE(searched["totalResults"] == 1);
    REQUIRE_FALSE(searched["Resources"][0].contains("active"));
}

TEST_CASE("bulk runs operations in order, resolves bulkId references and stops at failOnErrors",
          "[integration][scim][bulk]") {
    scim_fixture f;
    const std::string bulk_schema = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    auto r = f.ok(
        "POST", "/Bulk",
        {{"schemas", {bulk_schema}},
         {"Operations",
          {{{"method", "POST"},
            {"path", "/Users"},
            {"bulkId", "alice"},
            {"data", {{"schemas", {user_schema}}, {"userName", "alice@example.com"}}}},
           {{"method", "POST"},
            {"path", "/Groups"},
            {"bulkId", "admins"},
            {"data",
             {{"schemas", {group_schema}},
              {"displayName", "Admins"},
              {"members", {{{"value", "bulkId:alice"}, {"type", "User"}}}}}}},
           {{"method", "PATCH"},
            {"path", "/Users/bulkId:alice"},
            {"data",
             {{"schemas", {patch_op}},
              {"Operations", {{{"op", "replace"}, {"path", "title"}, {"value", "Boss"}}}}}}}}}});
    REQUIRE(r["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:BulkResponse");
    REQUIRE(r["Operations"].size() == 3);
    REQUIRE(r["Operations"][0]["status"] == "201");
    REQUIRE(r["Operations"][0]["bulkId"] == "alice");
    const std::string location = r["Operations"][0]["location"];
    const std::string alice = location.substr(location.rfind('/') + 1);
    REQUIRE(r["Operations"][1]["status"] == "201");
    REQUIRE(r["Operations"][2]["status"] == "200");
    REQUIRE(f.ok("GET", "/Users/" + alice)["title"] == "Boss");
    auto groups = f.ok("GET", "/Groups?filter=" + filter_query("displayName eq \"Admins\""));
    REQUIRE(groups["Resources"][0]["members"][0]["value"] == alice);

    // failOnErrors 1: the duplicate fails, and nothing after it runs.
    auto stopped =
        f.ok("POST", "/Bulk",
             {{"schemas", {bulk_schema}},
              {"failOnErrors", 1},
              {"Operations",
               {{{"method", "POST"},
                 {"path", "/Users"},
                 {"data", {{"schemas", {user_schema}}, {"userName", "alice@example.com"}}}},
                {{"method", "POST"},
                 {"path", "/Users"},
                 {"data", {{"schemas", {user_schema}}, {"userName", "never@example.com"}}}}}}});
    REQUIRE(stopped["Operations"].size() == 1);
    REQUIRE(stopped["Operations"][0]["status"] == "409");
    REQUIRE(f.ok("GET", "/Users?filter=" +
                            filter_query("userName eq \"never@example.com\""))["totalResults"] ==
            0);

    auto dangling =
        f.ok("POST", "/Bulk",
             {{"schemas", {bulk_schema}},
              {"Operations", {{{"method", "DELETE"}, {"path", "/Users/bulkId:nobody"}}}}});
    REQUIRE(dangling["Operations"][0]["status"] == "409");
    REQUIRE(f.ok("GET", "/ServiceProviderConfig")["bulk"]["supported"] == true);
}

TEST_CASE(
    "when the log cannot be written the daemon refuses writes, exits 1, and every "
    "acknowledged user survives the restart",
    "[integration][scim][failure]") {
    temp_dir dir;
    daemon_options o;
    o.dir = dir.path();
    o.durability = "batch";
    auto argv = o.resolved().argv();
    // A real write failure: a file-size limit just above the first preallocated MiB of the
    // segment, so the log fails with EFBIG once its data outgrows it.
    argv.insert(argv.begin(), {"/usr/bin/prlimit", "--fsize=1200000"});
    write_file(o.resolved().config, "");
    child_process daemon(argv);
    auto line = daemon.read_line(std::chrono::seconds(20));
    INFO(daemon.err());
    REQUIRE(line.has_value());
    const std::string url = line->substr(std::string("listening on http://").size());
    const auto colon = url.rfind(':');
    http_connection conn(url.substr(0, colon), std::uint16_t(std::stoi(url.substr(colon + 1))));
    auto created = run_binary("scimsyncctl", {"--socket", (dir.path() / "admin.sock").string(),
                                              "token", "create", "--name", "t", "--json"});
    REQUIRE(created.code() == 0);
    const std::string token = json::parse(created.out)["token"];
    std::vector<std::string> acknowledged;
    int failed_status = 0;
    for (int i = 0; i < 20000 && failed_status == 0; ++i) {
        json body{{"schemas", {user_schema}},
                  {"userName", "user" + std::to_string(i) + "@example.com"},
                  {"title", std::string(300, 'x')}};
        auto r = conn.request(
            "POST", "/scim/v2/Users", body.dump(),
            {{"Authorization", "Bearer " + token}, {"Content-Type", "application/scim+json"}});
        if (r.status == 201)
            acknowledged.push_back(json::parse(r.body)["id"]);
        else
            failed_status = r.status;
    }
    REQUIRE(failed_status == 503);
    REQUIRE(acknowledged.size() > 100);
    auto status = daemon.wait(std::chrono::seconds(30));
    REQUIRE(status.has_value());
    REQUIRE(status->code == 1);
    REQUIRE(daemon.wait_err_contains("restart runs recovery", std::chrono::seconds(5)));

    // Restarted without the limit: recovery runs, and every acknowledged user is there.
    daemon_options again;
    again.dir = dir.path();
    again.durability = "batch";
    daemon_process restarted(again);
    http_connection c2(restarted.host(), restarted.port());
    for (const auto& id : acknowledged) {
        auto r =
            c2.request("GET", "/scim/v2/Users/" + id, "", {{"Authorization", "Bearer " + token}});
        INFO(id);
        REQUIRE(r.status == 200);
    }
    REQUIRE(
        run_binary("scimsyncctl", {"--data-dir", (dir.path() / "data").string(), "log", "verify"})
            .code() == 0);
}

TEST_CASE(
    "externalId is unique per client: a second resource of one client gets 409 and appends "
    "nothing, another client may use it, and the rule holds after a restart",
    "[integration][scim][uniqueness]") {
    scim_fixture f;
    auto other = f.ctl({"token", "create", "--name", "entra", "--ttl", "90d", "--json"});
    REQUIRE(other.code() == 0);
    const std::string other_token = json::parse(other.out)["token"];
    auto as_other = [&](const std::string& method, const std::string& path, const json& body) {
        return f.conn->request(method, f.base + path, body.dump(),
                               {{"Authorization", "Bearer " + other_token},
                                {"Content-Type", "application/scim+json"}});
    };
    const auto first = f.create_user("one@example.com", {{"externalId", "00u1"}});
    const auto second = f.create_user("two@example.com", {{"externalId", "00u2"}});
    auto check_rejections = [&] {
        const auto before = f.last_seq();
        auto again = f.call("POST", "/Users",
                            {{"schemas", {user_schema}},
                             {"userName", "three@example.com"},
                             {"externalId", "00u1"}});
        REQUIRE(again.status == 409);
        REQUIRE(json::parse(again.body)["scimType"] == "uniqueness");
        auto patched = f.call(
            "PATCH", "/Users/" + second["id"].get<std::string>(),
            {{"schemas", {patch_op}},
             {"Operations", {{{"op", "replace"}, {"path", "externalId"}, {"value", "00u1"}}}}});
        REQUIRE(patched.status == 409);
        REQUIRE(json::parse(patched.body)["scimType"] == "uniqueness");
        auto group = f.ok("POST", "/Groups",
                          {{"schemas", {group_schema}},
                           {"displayName", "g-" + std::to_string(before)},
                           {"externalId", "00g1"}},
                          201);
        auto group_again = f.call("POST", "/Groups",
                                  {{"schemas", {group_schema}},
                                   {"displayName", "h-" + std::to_string(before)},
                                   {"externalId", "00g1"}});
        REQUIRE(group_again.status == 409);
        REQUIRE(json::parse(group_again.body)["scimType"] == "uniqueness");
        f.ok("DELETE", "/Groups/" + group["id"].get<std::string>(), nullptr, 204);
        REQUIRE(f.last_seq() == before + 2);  // the group created and deleted, nothing else
    };
    check_rejections();
    // Re-sending a user's own externalId is no conflict.
    f.ok("PUT", "/Users/" + first["id"].get<std::string>(),
         {{"schemas", {user_schema}},
          {"userName", "one@example.com"},
          {"externalId", "00u1"},
          {"active", false}});
    auto theirs = as_other(
        "POST", "/Users",
        {{"schemas", {user_schema}}, {"userName", "four@example.com"}, {"externalId", "00u1"}});
    REQUIRE(theirs.status == 201);
    auto both = f.ok("GET", "/Users?filter=" + filter_query("externalId eq \"00u1\""));
    REQUIRE(both["totalResults"] == 2);
    f.restart();
    check_rejections();
    auto theirs_again = as_other(
        "POST", "/Users",
        {{"schemas", {user_schema}}, {"userName", "five@example.com"}, {"externalId", "00u1"}});
    REQUIRE(theirs_again.status == 409);
}

TEST_CASE("a user's write response is what a GET or a list answers right after it",
          "[integration][scim]") {
    scim_fixture f;
    auto created = f.create_user("render@example.com",
                                 {{"name", {{"givenName", "Zoë"}, {"familyName", "\"Q\""}}},
                                  {"emails", {{{"value", "z@example.com"}, {"primary", true}}}},
                                  {enterprise, {{"department", "Eng"}}}});
    const std::string id = created["id"];
    REQUIRE(created["meta"]["resourceType"] == "User");
    REQUIRE(created["meta"]["version"] == "W/\"1\"");
    REQUIRE(f.ok("GET", "/Users/" + id) == created);
    auto patched = f.ok("PATCH", "/Users/" + id,
                        {{"schemas", {patch_op}},
                         {"Operations", {{{"op", "replace"}, {"value", {{"active", false}}}}}}});
    REQUIRE(patched["active"] == false);
    REQUIRE(patched["meta"]["version"] == "W/\"2\"");
    REQUIRE(patched["meta"]["created"] == created["meta"]["created"]);
    REQUIRE(f.ok("GET", "/Users/" + id) == patched);
    auto found = f.ok("GET", "/Users?filter=" + filter_query("userName eq \"RENDER@example.com\""));
    REQUIRE(found["totalResults"] == 1);
    REQUIRE(found["Resources"][0] == patched);
    auto listed = f.ok("GET", "/Users?count=10");
    REQUIRE(listed["Resources"][0] == patched);
}

TEST_CASE(
    "POST /.search at the root lists users and groups together, each with its schemas and "
    "resourceType, with filters, sorting and stable paging across the union",
    "[integration][scim][search]") {
    scim_fixture f;
    const json search_schema = {"urn:ietf:params:scim:api:messages:2.0:SearchRequest"};
    for (const auto* n : {"carol", "alice", "bob"})
        f.create_user(std::string(n) + "@example.com", {{"displayName", n}});
    for (const auto* n : {"beta", "alpha"})
        f.ok("POST", "/Groups", {{"schemas", {group_schema}}, {"displayName", n}}, 201);
    auto all = f.ok("POST", "/.search", {{"schemas", search_schema}});
    REQUIRE(all["totalResults"] == 5);
    REQUIRE(all["Resources"].size() == 5);
    int users = 0, groups = 0;
    for (const auto& r : all["Resources"]) {
        const std::string type = r["meta"]["resourceType"];
        REQUIRE(r["schemas"][0] == (type == "User" ? user_schema : group_schema));
        (type == "User" ? users : groups)++;
    }
    REQUIRE(users == 3);
    REQUIRE(groups == 2);

    // Sorted across both types by an attribute both have; paged without gaps or repeats.
    auto page = [&](int start) {
        return f.ok("POST", "/.search",
                    {{"schemas", search_schema},
                     {"sortBy", "displayName"},
                     {"startIndex", start},
                     {"count", 2}});
    };
    std::vector<std::string> names;
    for (int start = 1; start <= 5; start += 2) {
        auto p = page(start);
        REQUIRE(p["totalResults"] == 5);
        REQUIRE(p["startIndex"] == start);
        for (const auto& r : p["Resources"]) names.push_back(r["displayName"]);
    }
    REQUIRE(names == std::vector<std::string>{"alice", "alpha", "beta", "bob", "carol"});
    REQUIRE(page(3) == page(3));

    // A filter only users can express finds users; one only groups can, groups.
    auto by_user_name = f.ok("POST", "/.search",
                             {{"schemas", search_schema},
                              {"filter", "userName sw \"a\""},
                              {"attributes", {"userName"}}});
    REQUIRE(by_user_name["totalResults"] == 1);
    REQUIRE(by_user_name["Resources"][0]["userName"] == "alice@example.com");
    REQUIRE(by_user_name["Resources"][0]["meta"]["resourceType"] == "User");
    REQUIRE_FALSE(by_user_name["Resources"][0].contains("displayName"));
    auto by_members =
        f.ok("POST", "/.search", {{"schemas", search_schema}, {"filter", "displayName sw \"al\""}});
    REQUIRE(by_members["totalResults"] == 2);  // alice (User) and alpha (Group)

    // A filter no resource type accepts is an error and appends nothing.
    const auto before = f.last_seq();
    auto bad =
        f.call("POST", "/.search", {{"schemas", search_schema}, {"filter", "nosuchattr eq \"x\""}});
    REQUIRE(bad.status == 400);
    REQUIRE(json::parse(bad.body)["scimType"] == "invalidFilter");
    REQUIRE(f.last_seq() == before);
}
