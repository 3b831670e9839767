#include <catch2/catch.hpp>
#include <random>

#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/directory_projector.hpp"
#include "support/test_support.hpp"

namespace el = scimsync::eventlog;
using nlohmann::json;
using scimsync::model::directory;

namespace {

std::uint64_t next_seq = 1;

el::event ev(std::string type, std::string stream, json data) {
    el::event e;
    e.seq = el::seq_no{next_seq++};
    e.time = el::utc_time(std::chrono::microseconds(1'800'000'000'000'000 + e.seq.value));
    e.type = std::move(type);
    e.stream = std::move(stream);
    e.source = "scim";
    e.data = data.dump();
    return e;
}

el::event user_created(const std::string& id, const std::string& name, std::string ext = "") {
    json res{{"id", id}, {"userName", name}};
    if (!ext.empty()) res["externalId"] = ext;
    return ev("UserCreated", "User/" + id,
              {{"id", id}, {"resource", res}, {"password_hash", nullptr}});
}

el::event group_created(const std::string& id, const std::string& name,
                        json members = json::array()) {
    return ev(
        "GroupCreated", "Group/" + id,
        {{"id", id}, {"resource", {{"id", id}, {"displayName", name}}}, {"members", members}});
}

el::event members_changed(const std::string& id, json added, json removed) {
    return ev("GroupMembersChanged", "Group/" + id,
              {{"id", id}, {"added", added}, {"removed", removed}});
}

void apply_all(directory& d, const std::vector<el::event>& events) {
    for (const auto& e : events) {
        auto r = d.apply(e);
        INFO((r ? std::string() : r.error().message));
        REQUIRE(r.has_value());
    }
}

}  // namespace

TEST_CASE("users are found by id, by userName in any case, and by externalId",
          "[model][directory]") {
    directory d;
    apply_all(d, {user_created("u1", "BJensen@Example.com", "00u1")});
    REQUIRE(d.user("u1")->user_name == "BJensen@Example.com");
    REQUIRE(d.user_by_name("bjensen@example.COM") == d.user("u1"));
    REQUIRE(d.user_by_external_id("00u1") == d.user("u1"));
    REQUIRE(d.user_by_external_id("00U1") == nullptr);  // externalId is case-exact
    REQUIRE(d.user("u1")->version == 1);
}

TEST_CASE("a rename moves the userName index and bumps the version", "[model][directory]") {
    directory d;
    apply_all(d, {user_created("u1", "old"),
                  ev("UserReplaced", "User/u1",
                     {{"id", "u1"}, {"resource", {{"id", "u1"}, {"userName", "new"}}}})});
    REQUIRE(d.user_by_name("old") == nullptr);
    REQUIRE(d.user_by_name("NEW")->version == 2);
    REQUIRE(d.user("u1")->created < d.user("u1")->last_modified);
}

TEST_CASE(
    "a replace that keeps userName and externalId keeps both indexed; changing either "
    "moves it",
    "[model][directory]") {
    directory d;
    auto replaced = [](json resource) {
        resource["id"] = "u1";
        return ev("UserReplaced", "User/u1", {{"id", "u1"}, {"resource", resource}});
    };
    apply_all(d, {user_created("u1", "Name", "e1"),
                  replaced({{"userName", "Name"}, {"externalId", "e1"}, {"active", false}})});
    REQUIRE(d.user_by_name("name") == d.user("u1"));
    REQUIRE(d.user_by_external_id("e1") == d.user("u1"));
    REQUIRE(d.user("u1")->version == 2);

    apply_all(d, {replaced({{"userName", "NAME"}, {"externalId", "e1"}})});  // case only
    REQUIRE(d.user("u1")->user_name == "NAME");
    REQUIRE(d.user_by_name("Name") == d.user("u1"));

    apply_all(d, {replaced({{"userName", "NAME"}, {"externalId", "e2"}})});
    REQUIRE(d.user_by_external_id("e1") == nullptr);
    REQUIRE(d.user_by_external_id("e2") == d.user("u1"));

    apply_all(d, {replaced({{"userName", "NAME"}})});
    REQUIRE(d.user_by_external_id("e2") == nullptr);
    REQUIRE(d.user_by_name("name") == d.user("u1"));
    REQUIRE(d.user("u1")->version == 5);
}

TEST_CASE("membership is kept in both directions and deltas apply member by member",
          "[model][directory]") {
    directory d;
    apply_all(d, {user_created("u1", "a"), user_created("u2", "b"),
                  group_created("g1", "Eng", json::array({{{"value", "u1"}, {"type", "User"}}})),
                  members_changed("g1", json::array({{{"value", "u2"}, {"type", "User"}}}),
                                  json::array({"u1"}))});
    REQUIRE(d.members("g1")->size() == 1);
    REQUIRE(d.members("g1")->count("u2") == 1);
    REQUIRE(d.groups_of("u2")->count("g1") == 1);
    REQUIRE(d.groups_of("u1") == nullptr);
    REQUIRE(d.group("g1")->version == 2);
    REQUIRE(d.group_by_name("eng") == d.group("g1"));
}

TEST_CASE("a member's groups come back in id order whatever order they were joined in, once each",
          "[model][directory]") {
    directory d;
    std::vector<el::event> events{user_created("u1", "a")};
    for (const char* g : {"g3", "g1", "g4", "g2"}) events.push_back(group_created(g, g));
    for (const char* g : {"g3", "g1", "g4", "g2", "g1"})
        events.push_back(
            members_changed(g, json::array({{{"value", "u1"}, {"type", "User"}}}), json::array()));
    apply_all(d, events);
    auto ids = [&] {
        const auto* groups = d.groups_of("u1");
        REQUIRE(groups != nullptr);
        return std::vector<std::string>(groups->begin(), groups->end());
    };
    REQUIRE(ids() == std::vector<std::string>{"g1", "g2", "g3", "g4"});
    apply_all(d, {members_changed("g2", json::array(), json::array({"u1"})),
                  members_changed("g2", json::array(), json::array({"u1"}))});
    REQUIRE(ids() == std::vector<std::string>{"g1", "g3", "g4"});
    REQUIRE(d.groups_of("u1")->count("g2") == 0);
    REQUIRE(d.groups_of("u1")->count("g3") == 1);
    apply_all(d, {members_changed("g1", json::array(), json::array({"u1"})),
                  members_changed("g3", json::array(), json::array({"u1"})),
                  members_changed("g4", json::array(), json::array({"u1"}))});
    REQUIRE(d.groups_of("u1") == nullptr);
}

TEST_CASE("deleting a user removes it from its groups and changes their version",
          "[model][directory]") {
    directory d;
    apply_all(d, {user_created("u1", "a"),
                  group_created("g1", "Eng", json::array({{{"value", "u1"}, {"type", "User"}}})),
                  ev("UserDeleted", "User/u1", {{"id", "u1"}})});
    REQUIRE(d.user("u1") == nullptr);
    REQUIRE(d.user_by_name("a") == nullptr);
    REQUIRE(d.members("g1")->empty());
    REQUIRE(d.group("g1")->version == 2);
}

TEST_CASE("deleting a group removes it from groups that nest it", "[model][directory]") {
    directory d;
    apply_all(
        d, {group_created("inner", "Inner"),
            group_created("outer", "Outer", json::array({{{"value", "inner"}, {"type", "Group"}}})),
            ev("GroupDeleted", "Group/inner", {{"id", "inner"}})});
    REQUIRE(d.members("outer")->empty());
    REQUIRE(d.group_by_name("inner") == nullptr);
}

TEST_CASE("tokens and the provisioning switch are folded", "[model][directory]") {
    directory d;
    apply_all(d, {ev("TokenIssued", "Token/t1",
                     {{"id", "t1"},
                      {"name", "okta"},
                      {"hash", "sha256:00"},
                      {"created", "2026-11-22T10:00:00Z"},
                      {"expires", nullptr}}),
                  ev("ProvisioningDisabled", "Provisioning", json::object())});
    REQUIRE(d.token("t1")->name == "okta");
    REQUIRE_FALSE(d.token("t1")->expires.has_value());
    REQUIRE_FALSE(d.provisioning_enabled());
    apply_all(d, {ev("TokenRevoked", "Token/t1", {{"id", "t1"}}),
                  ev("ProvisioningEnabled", "Provisioning", json::object())});
    REQUIRE(d.token("t1")->revoked);
    REQUIRE(d.provisioning_enabled());
}

TEST_CASE("a serialised directory restores to an equal one", "[model][directory]") {
    directory d;
    apply_all(d, {user_created("u1", "a", "x1"), user_created("u2", "b"),
                  group_created("g1", "Eng",
                                json::array({{{"value", "u1"}, {"type", "User"}},
                                             {{"value", "u2"}, {"type", "User"}}})),
                  ev("TokenIssued", "Token/t1",
                     {{"id", "t1"},
                      {"name", "okta"},
                      {"hash", "sha256:00"},
                      {"created", "2026-11-22T10:00:00Z"},
                      {"expires", "2027-01-01T00:00:00Z"}})});
    auto back = directory::deserialize(d.serialize());
    REQUIRE(back.has_value());
    REQUIRE(*back == d);
    REQUIRE(back->user_by_external_id("x1") == back->user("u1"));
    REQUIRE(back->groups_of("u2")->count("g1") == 1);
}

TEST_CASE(
    "every line of a snapshot is the canonical JSON a tree would print, escapes, passwords, "
    "admin-created users and chunked member lists included",
    "[model][directory][snapshot]") {
    directory d;
    const std::string odd = "quote \" backslash \\ tab \t newline \n control \x01 \u00e9\u4e2d";
    auto with_password = user_created("u1", odd, "x\"1");
    auto data = json::parse(with_password.data);
    data["password_hash"] = "$6$salt$hash\\with\"quotes";
    with_password.data = data.dump();
    with_password.actor = "token:" + odd;
    auto local = user_created("u2", "admin-made");
    local.source = "admin";
    json members = json::array();
    for (int i = 0; i < 10'001; ++i)
        members.push_back({{"value", "m" + std::to_string(i)}, {"type", i % 2 ? "User" : "Group"}});
    apply_all(d, {with_password, local, user_created("u3", "plain"),
                  group_created("g1", odd, members), group_created("g2", "empty")});

    CHECK(d.entry_count() == 3 + 2 + 10'001);  // users, groups, members (a snapshot's entries)

    const std::string body = d.serialize();
    std::size_t lines = 0;
    std::size_t member_lines = 0;
    for (std::size_t at = 0; at < body.size();) {
        const auto nl = body.find('\n', at);
        REQUIRE(nl != std::string::npos);
        const std::string line = body.substr(at, nl - at);
        INFO(line.substr(0, 200));
        CHECK(json::parse(line).dump() == line);
        if (line.starts_with("{\"members\":")) ++member_lines;
        ++lines;
        at = nl + 1;
    }
    CHECK(member_lines == 2);       // 10,000 and 1
    CHECK(lines == 3 + 2 + 2 + 2);  // users, groups, member chunks, access and the switch
    auto back = directory::deserialize(body);
    REQUIRE(back.has_value());
    REQUIRE(*back == d);
    CHECK(back->user("u1")->password_hash == "$6$salt$hash\\with\"quotes");
    CHECK(back->user("u2")->local);
    CHECK(back->owner(*back->user("u1")) == "token:" + odd);

    // Resource lines are read as canonical text, anything else through a JSON tree: the same
    // lines made non-canonical (a space after the first colon) restore the same directory.
    std::string loose;
    for (std::size_t at = 0; at < body.size();) {
        const auto nl = body.find('\n', at);
        std::string line = body.substr(at, nl + 1 - at);
        if (line.starts_with("{\"user\":") || line.starts_with("{\"group\":"))
            line.insert(line.find(':') + 1, " ");
        loose += line;
        at = nl + 1;
    }
    REQUIRE(loose.size() == body.size() + 5);
    auto loose_back = directory::deserialize(loose);
    REQUIRE(loose_back.has_value());
    REQUIRE(*loose_back == d);
    for (const directory* r : {&*back, &*loose_back}) {
        CHECK(r->user_by_name(odd) == r->user("u1"));
        CHECK(r->user_by_external_id("x\"1") == r->user("u1"));
        CHECK(r->user_by_name("PLAIN") == r->user("u3"));
        CHECK(r->group_by_name(odd) == r->group("g1"));
        CHECK(r->members("g2") != nullptr);
        CHECK(r->members("g1")->size() == 10'001);
        CHECK(r->user("u3")->version == d.user("u3")->version);
        CHECK(r->user("u3")->created == d.user("u3")->created);
        CHECK(r->user("u3")->json == d.user("u3")->json);
    }
}

TEST_CASE(
    "replaying random operations from the log gives the same directory, with or without "
    "a snapshot",
    "[model][directory][replay]") {
    scimsync::testing::temp_dir dir;
    auto log = el::file_log::open({.dir = dir.path() / "log", .mode = el::durability::none});
    REQUIRE(log.has_value());
    std::mt19937 rng(42);
    directory live;
    std::vector<std::string> users, groups;
    for (int i = 0; i < 600; ++i) {
        el::event e;
        const int pick = int(rng() % 6);
        const std::string n = std::to_string(i);
        if (pick == 0 || users.empty()) {
            e = user_created("u" + n, "user" + n);
            users.push_back("u" + n);
        } else if (pick == 1 || groups.empty()) {
            e = group_created("g" + n, "group" + n);
            groups.push_back("g" + n);
        } else if (pick == 2) {
            const auto& g = groups[rng() % groups.size()];
            e = members_changed(
                g, json::array({{{"value", users[rng() % users.size()]}, {"type", "User"}}}),
                json::array({users[rng() % users.size()]}));
        } else if (pick == 3) {
            const auto& u = users[rng() % users.size()];
            e = ev("UserReplaced", "User/" + u,
                   {{"id", u}, {"resource", {{"id", u}, {"userName", "renamed" + n}}}});
        } else if (pick == 4) {
            const auto& u = users[rng() % users.size()];
            e = ev("UserDeleted", "User/" + u, {{"id", u}});
        } else {
            const auto& g = groups[rng() % groups.size()];
            e = ev("GroupDeleted", "Group/" + g, {{"id", g}});
        }
        auto appended = (*log)->append({e});
        REQUIRE(appended.has_value());
        e.seq = appended->first;
        e.time = appended->time;
        REQUIRE(live.apply(e).has_value());
    }
    scimsync::model::directory_projector full;
    el::projector_runner r1(**log, full, {});
    REQUIRE(r1.run_once().has_value());
    REQUIRE(full.dir() == live);

    el::runner_options snap;
    snap.snapshots.emplace(dir.path() / "snapshots");
    snap.snapshot_every_events = 250;
    {
        scimsync::model::directory_projector p;
        el::projector_runner r(**log, p, snap);
        REQUIRE(r.run_once().has_value());
    }
    scimsync::model::directory_projector from_snapshot;
    el::projector_runner r2(**log, from_snapshot, snap);
    REQUIRE(r2.run_once().has_value());
    REQUIRE(from_snapshot.dir() == live);
}

namespace {
el::event by(std::string actor, el::event e) {
    e.actor = std::move(actor);
    return e;
}
}  // namespace

TEST_CASE("externalId is scoped to the client that created the resource",
          "[model][directory][uniqueness]") {
    directory d;
    apply_all(d, {by("token:a", user_created("u1", "one", "e1")),
                  by("token:b", user_created("u2", "two", "e1")),
                  by("token:a", user_created("u3", "three", "e3"))});
    REQUIRE(d.owner(*d.user("u1")) == "token:a");
    REQUIRE(d.user_by_external_id("token:a", "e1") == d.user("u1"));
    REQUIRE(d.user_by_external_id("token:b", "e1") == d.user("u2"));
    REQUIRE(d.user_by_external_id("token:c", "e1") == nullptr);
    REQUIRE(d.user_ids_by_external_id("e1") == std::vector<std::string_view>{"u1", "u2"});
    REQUIRE(d.user_by_external_id("e1") == d.user("u1"));  // any client: the smallest id
}

TEST_CASE("a replace by another client keeps the resource's creator", "[model][directory]") {
    directory d;
    auto replaced = user_created("u1", "one", "e2");
    replaced.type = "UserReplaced";
    apply_all(d, {by("token:a", user_created("u1", "one", "e1")), by("token:b", replaced)});
    REQUIRE(d.owner(*d.user("u1")) == "token:a");
    REQUIRE(d.user_by_external_id("token:a", "e2") == d.user("u1"));
    REQUIRE(d.user_ids_by_external_id("e1").empty());
}

TEST_CASE("group externalIds are scoped to their creating client too", "[model][directory]") {
    directory d;
    auto g1 = group_created("g1", "one");
    auto g2 = group_created("g2", "two");
    for (auto* e : {&g1, &g2}) {
        auto data = json::parse(e->data);
        data["resource"]["externalId"] = "x";
        e->data = data.dump();
    }
    apply_all(d, {by("token:a", g1), by("token:b", g2)});
    REQUIRE(d.group_by_external_id("token:a", "x") == d.group("g1"));
    REQUIRE(d.group_by_external_id("token:b", "x") == d.group("g2"));
    REQUIRE(d.group_ids_by_external_id("x").size() == 2);
}

TEST_CASE("resources' creators survive a snapshot", "[model][directory][uniqueness]") {
    directory d;
    apply_all(d, {by("token:a", user_created("u1", "one", "e1")),
                  by("token:b", group_created("g1", "eng"))});
    auto back = directory::deserialize(d.serialize());
    REQUIRE(back.has_value());
    REQUIRE(*back == d);
    REQUIRE(back->user_by_external_id("token:a", "e1") == back->user("u1"));
    REQUIRE(back->owner(*back->group("g1")) == "token:b");
    directory other;
    apply_all(other, {by("token:z", user_created("u1", "one", "e1")),
                      by("token:b", group_created("g1", "eng"))});
    REQUIRE_FALSE(other == d);  // the same resources from another client are another state
}

TEST_CASE("a user event in canonical form and the same event written loosely fold alike",
          "[model][directory]") {
    const json data{{"id", "u1"},
                    {"password_hash", "{CRYPT}$6$x"},
                    {"resource",
                     {{"id", "u1"},
                      {"userName", "Zoë \"Z\" Ünal"},
                      {"externalId", "e\n1"},
                      {"name", {{"givenName", "Zoë"}}}}}};
    auto canonical = by("token:a", ev("UserCreated", "User/u1", data));
    auto loose = canonical;
    loose.data = data.dump(2);  // whitespace: not canonical, folded through nlohmann
    directory a, b;
    apply_all(a, {canonical});
    apply_all(b, {loose});
    REQUIRE(a == b);
    REQUIRE(a.user("u1")->json == data["resource"].dump());
    REQUIRE(a.user_by_name("ZOë \"Z\" Ünal") == a.user("u1"));
    REQUIRE(a.user_by_external_id("token:a", "e\n1") == a.user("u1"));
    REQUIRE(a.user("u1")->password_hash == "{CRYPT}$6$x");
}

TEST_CASE("malformed user events are errors on both paths", "[model][directory]") {
    for (const std::string& data :
         {std::string(R"({"id":"u1","resource":"text"})"), std::string(R"({"id":"u1"})"),
          std::string(R"({"id":5})"), std::string(R"({"id":"u1","resource":{"id":"u1"})"),
          std::string(R"({"id": "u1", "resource": [1]})")}) {
        INFO(data);
        el::event e = ev("UserCreated", "User/u1", json::object());
        e.data = data;
        directory d;
        REQUIRE_FALSE(d.apply(e).has_value());
    }
}

namespace {
el::event ldap_changed(const std::string& user_name, json attributes, json drift,
                       const std::string& change = "modify") {
    return ev("LdapEntryChanged", "LdapEntry/uuid-1",
              json{{"dn", "uid=" + user_name + ",ou=people,dc=example,dc=com"},
                   {"change", change},
                   {"attributes", std::move(attributes)},
                   {"modifier", "cn=operator"},
                   {"csn", "1"},
                   {"accesslog_entry", "reqStart=1,cn=accesslog"},
                   {"drift", std::move(drift)},
                   {"user_name", user_name}});
}
}  // namespace

TEST_CASE("attributes LDAP owns are folded into the user's view; repaired ones are not",
          "[model][directory][ldap]") {
    directory d;
    REQUIRE(d.apply(user_created("u1", "Hank")));
    CHECK(d.ldap_attributes("u1") == nullptr);
    REQUIRE(d.apply(ldap_changed(
        "hank",
        json::array({{{"name", "telephoneNumber"}, {"op", "replace"}, {"values", {"999"}}},
                     {{"name", "mail"}, {"op", "replace"}, {"values", {"evil@x"}}},
                     {{"name", "description"}, {"op", "add"}, {"values", {"a", "b"}}},
                     {{"name", "userPassword"},
                      {"op", "replace"},
                      {"values", json::array()},
                      {"redacted", true}}}),
        {{"telephoneNumber", "accept"},
         {"mail", "repair"},
         {"description", "accept"},
         {"userPassword", "accept"}})));
    const auto* owned = d.ldap_attributes("u1");
    REQUIRE(owned != nullptr);
    CHECK(owned->size() == 2);
    CHECK(owned->at("telephoneNumber") == std::vector<std::string>{"999"});
    CHECK(owned->at("description") == std::vector<std::string>{"a", "b"});

    // Deltas: a value removed, then the whole attribute.
    REQUIRE(d.apply(ldap_changed(
        "hank", json::array({{{"name", "description"}, {"op", "delete"}, {"values", {"a"}}}}),
        {{"description", "accept"}})));
    CHECK(d.ldap_attributes("u1")->at("description") == std::vector<std::string>{"b"});
    REQUIRE(d.apply(ldap_changed(
        "hank",
        json::array({{{"name", "telephoneNumber"}, {"op", "delete"}, {"values", json::array()}}}),
        {{"telephoneNumber", "accept"}})));
    CHECK_FALSE(d.ldap_attributes("u1")->contains("telephoneNumber"));

    // They survive a snapshot (written as canonical JSON), and count for equality.
    const std::string body = d.serialize();
    for (std::size_t at = 0, nl; (nl = body.find('\n', at)) != std::string::npos; at = nl + 1)
        CHECK(json::parse(body.substr(at, nl - at)).dump() == body.substr(at, nl - at));
    CHECK(body.find("\"ldap_attributes\":{\"description\":[\"b\"]}") != std::string::npos);
    auto restored = directory::deserialize(body);
    REQUIRE(restored);
    CHECK(*restored == d);
    CHECK(restored->ldap_attributes("u1")->at("description") == std::vector<std::string>{"b"});

    // Changes to entries no user has, and deletes, change nothing; deleting the user drops them.
    REQUIRE(d.apply(ldap_changed(
        "nobody", json::array({{{"name", "title"}, {"op", "replace"}, {"values", {"x"}}}}),
        {{"title", "accept"}})));
    REQUIRE(d.apply(ev("UserDeleted", "User/u1", {{"id", "u1"}})));
    CHECK(d.ldap_attributes("u1") == nullptr);
}

namespace {

// The same event with the preconditions a writer on a multi-writer log adds.
el::event expecting(el::event e, json expect) {
    auto data = json::parse(e.data);
    data["expect"] = std::move(expect);
    e.data = data.dump();
    return e;
}

el::event user_replaced(const std::string& id, const std::string& name) {
    return ev("UserReplaced", "User/" + id,
              {{"id", id}, {"resource", {{"id", id}, {"userName", name}}}});
}

}  // namespace

TEST_CASE(
    "a create whose userName another user took earlier in the log voids when it carries "
    "preconditions",
    "[model][directory][conflict]") {
    directory d;
    apply_all(d, {user_created("u1", "bjensen")});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    apply_all(d, {expecting(user_created("u2", "BJENSEN"), json::object())});
    REQUIRE_THAT(d.last_void().detail, Catch::Contains("userName \"BJENSEN\" is already taken"));
    REQUIRE(d.user("u2") == nullptr);
    REQUIRE(d.user_by_name("bjensen")->json.find("\"u1\"") != std::string::npos);
    // The next event's verdict is its own.
    apply_all(d, {expecting(user_created("u3", "other"), json::object())});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    REQUIRE(d.user("u3") != nullptr);
}

TEST_CASE("an externalId is unique per client for events with preconditions, not across clients",
          "[model][directory][conflict]") {
    directory d;
    auto first = user_created("u1", "a", "ext-1");
    first.actor = "token:okta";
    apply_all(d, {first});
    auto same_client = expecting(user_created("u2", "b", "ext-1"), json::object());
    same_client.actor = "token:okta";
    apply_all(d, {same_client});
    REQUIRE_THAT(d.last_void().detail, Catch::Contains("externalId \"ext-1\""));
    auto other_client = expecting(user_created("u3", "c", "ext-1"), json::object());
    other_client.actor = "token:entra";
    apply_all(d, {other_client});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
}

TEST_CASE("a replace that expects a version the user has left voids and changes nothing",
          "[model][directory][conflict]") {
    directory d;
    apply_all(d, {user_created("u1", "bjensen"), user_replaced("u1", "bjensen2")});
    REQUIRE(d.user("u1")->version == 2);
    apply_all(d, {expecting(user_replaced("u1", "from-a-stale-read"), {{"version", 1}})});
    REQUIRE_THAT(d.last_void().detail, Catch::Contains("at version 2, not 1"));
    REQUIRE(d.user("u1")->user_name == "bjensen2");
    REQUIRE(d.user("u1")->version == 2);
    apply_all(d, {expecting(user_replaced("u1", "bjensen3"), {{"version", 2}})});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    REQUIRE(d.user("u1")->version == 3);
}

TEST_CASE("a replace of a user another writer deleted voids instead of bringing it back",
          "[model][directory][conflict]") {
    directory d;
    apply_all(d, {user_created("u1", "bjensen"), ev("UserDeleted", "User/u1", {{"id", "u1"}})});
    apply_all(d, {expecting(user_replaced("u1", "bjensen"), json::object())});
    REQUIRE_THAT(d.last_void().detail, Catch::Contains("does not exist"));
    REQUIRE(d.user("u1") == nullptr);
    // Without preconditions (a single writer decided it) the event is applied as written.
    apply_all(d, {user_replaced("u1", "bjensen")});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    REQUIRE(d.user("u1") != nullptr);
}

TEST_CASE(
    "a group with a taken displayName voids, and added members that no longer exist are "
    "skipped",
    "[model][directory][conflict]") {
    directory d;
    apply_all(d, {group_created("g1", "Staff"), user_created("u1", "a")});
    apply_all(d, {expecting(group_created("g2", "staff"), json::object())});
    REQUIRE_THAT(d.last_void().detail, Catch::Contains("displayName \"staff\" is already taken"));
    REQUIRE(d.group("g2") == nullptr);
    apply_all(d, {expecting(members_changed("g1",
                                            json::array({{{"value", "u1"}, {"type", "User"}},
                                                         {{"value", "gone"}, {"type", "User"}}}),
                                            json::array()),
                            json::object())});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    REQUIRE(d.members("g1")->size() == 1);
    REQUIRE(d.members("g1")->count("u1") == 1);
}

TEST_CASE("preconditions that are not an object with an unsigned version are malformed",
          "[model][directory][conflict]") {
    directory d;
    auto r = d.apply(expecting(user_created("u1", "a"), {{"version", "one"}}));
    REQUIRE_FALSE(r.has_value());
    REQUIRE_THAT(r.error().message, Catch::Contains("expect"));
}

TEST_CASE("the events of one append after a void one void with it, across a snapshot in between",
          "[model][directory][conflict]") {
    directory d;
    apply_all(d, {group_created("g1", "Staff"), user_created("u1", "a")});
    // A replace decided against version 1; another writer's change came first.
    apply_all(d, {ev("GroupReplaced", "Group/g1",
                     {{"id", "g1"}, {"resource", {{"id", "g1"}, {"displayName", "Staff 2"}}}})});
    apply_all(d,
              {expecting(ev("GroupReplaced", "Group/g1",
                            {{"id", "g1"}, {"resource", {{"id", "g1"}, {"displayName", "Mine"}}}}),
                         {{"version", 1}})});
    REQUIRE(d.last_void().kind == directory::void_kind::stale);
    // A snapshot taken between the two events of that append.
    auto restored = directory::deserialize(d.serialize());
    REQUIRE(restored.has_value());
    REQUIRE(*restored == d);
    const auto second = expecting(
        members_changed("g1", json::array({{{"value", "u1"}, {"type", "User"}}}), json::array()),
        {{"with_previous", true}});
    apply_all(d, {second});
    apply_all(*restored, {second});
    for (const directory* x : {&d, &*restored}) {
        REQUIRE(x->last_void().kind == directory::void_kind::with_previous);
        REQUIRE(x->members("g1")->empty());
    }
    // The next append starts afresh.
    apply_all(d,
              {expecting(members_changed("g1", json::array({{{"value", "u1"}, {"type", "User"}}}),
                                         json::array()),
                         json::object())});
    REQUIRE(d.last_void().kind == directory::void_kind::none);
    REQUIRE(d.members("g1")->size() == 1);
}
