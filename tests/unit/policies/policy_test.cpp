#include <catch2/catch.hpp>

#include "scimsync/policies/policy.hpp"

namespace el = scimsync::eventlog;
namespace pol = scimsync::policies;
using nlohmann::json;

namespace {

struct fixture {
    pol::engine eng;
    std::uint64_t seq = 0;

    explicit fixture(pol::policy_config c) : eng(std::move(c)) {}

    std::vector<pol::decision> apply(const char* type, std::string stream, const json& data) {
        el::event e;
        e.seq = el::seq_no{++seq};
        e.time = el::utc_time(std::chrono::microseconds(1'800'000'000'000'000 + seq));
        e.type = type;
        e.stream = std::move(stream);
        e.source = "scim";
        e.actor = "token:t";
        e.data = data.dump();
        auto r = eng.apply(e);
        INFO((r ? std::string() : r.error().message));
        REQUIRE(r.has_value());
        return *r;
    }
    std::vector<pol::decision> user(const char* type, const std::string& id, bool active,
                                    json extra = json::object()) {
        json res{{"id", id}, {"userName", id + "@example.com"}, {"active", active}};
        res.update(extra);
        return apply(type, "User/" + id, {{"id", id}, {"resource", res}});
    }
    std::vector<pol::decision> group(const std::string& id, const std::string& name) {
        return apply("GroupCreated", "Group/" + id,
                     {{"id", id},
                      {"resource", {{"id", id}, {"displayName", name}}},
                      {"members", json::array()}});
    }
    std::vector<pol::decision> members(const std::string& g, json added, json removed) {
        return apply("GroupMembersChanged", "Group/" + g,
                     {{"id", g}, {"added", added}, {"removed", removed}});
    }
};

pol::policy_config by_group() {
    pol::policy_config c;
    pol::population_def p;
    p.name = "laptops";
    p.group = "Laptop users";
    p.create_account = true;
    p.create_role = "user";
    p.on_deactivate = pol::action::unassign;
    c.populations.push_back(p);
    return c;
}

std::vector<std::string> summary(const std::vector<pol::decision>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.user + " " + d.trigger + " " + d.action);
    return out;
}

}  // namespace

TEST_CASE("a group population decides on joining, deactivation, reactivation, leaving, deletion",
          "[policies][engine]") {
    fixture f(by_group());
    f.group("g1", "Laptop users");
    f.group("g2", "Nested team");
    REQUIRE(f.user("UserCreated", "u1", true).empty());  // not in the group yet
    REQUIRE(summary(f.members("g1", json::array({{{"value", "u1"}, {"type", "User"}}}),
                              json::array())) == std::vector<std::string>{"u1 joined create"});
    REQUIRE(f.eng.member("laptops", "u1"));
    REQUIRE(summary(f.user("UserReplaced", "u1", false)) ==
            std::vector<std::string>{"u1 deactivated unassign"});
    REQUIRE(f.user("UserReplaced", "u1", false).empty());  // still inactive: nothing new
    REQUIRE(summary(f.user("UserReplaced", "u1", true)) ==
            std::vector<std::string>{"u1 reactivated create"});

    // Nested: a member of a group inside the population's group is in the population.
    f.user("UserCreated", "u2", true);
    f.members("g2", json::array({{{"value", "u2"}, {"type", "User"}}}), json::array());
    REQUIRE(summary(f.members("g1", json::array({{{"value", "g2"}, {"type", "Group"}}}),
                              json::array())) == std::vector<std::string>{"u2 joined create"});
    REQUIRE(summary(f.members("g1", json::array(), json::array({"g2"}))) ==
            std::vector<std::string>{"u2 left unassign"});

    auto gone = f.apply("UserDeleted", "User/u1", {{"id", "u1"}});
    REQUIRE(summary(gone) == std::vector<std::string>{"u1 deleted unassign"});
    REQUIRE(gone[0].user_name == "u1@example.com");  // as it was before the deletion
    REQUIRE(gone[0].id == std::to_string(f.seq) + ":laptops:u1");
    REQUIRE_FALSE(f.eng.member("laptops", "u1"));
}

TEST_CASE("a filter population follows attribute changes", "[policies][engine]") {
    pol::policy_config c;
    pol::population_def p;
    p.name = "contractors";
    p.filter = "title eq \"Contractor\"";
    p.on_deactivate = pol::action::remove_user_and_devices;
    c.populations.push_back(p);
    REQUIRE(pol::validate(c).empty());
    fixture f(std::move(c));
    REQUIRE(f.user("UserCreated", "c1", true, {{"title", "contractor"}}).empty());  // no create
    REQUIRE(f.eng.member("contractors", "c1"));  // title is case-insensitive
    REQUIRE(summary(f.user("UserReplaced", "c1", true, {{"title", "Engineer"}})) ==
            std::vector<std::string>{"c1 left remove_user_and_devices"});
    REQUIRE(f.eng.preview("c1").empty());
    f.user("UserReplaced", "c1", true, {{"title", "Contractor"}});
    auto preview = f.eng.preview("c1");
    REQUIRE(preview.size() == 1);
    REQUIRE(preview[0].removal());
}

TEST_CASE("decisions replay identically", "[policies][engine]") {
    std::vector<std::vector<std::string>> runs;
    for (int run = 0; run < 2; ++run) {
        fixture f(by_group());
        f.group("g1", "Laptop users");
        std::vector<std::string> ids;
        for (const char* u : {"a", "b", "c"}) {
            f.user("UserCreated", u, true);
            for (auto& d :
                 f.members("g1", json::array({{{"value", u}, {"type", "User"}}}), json::array()))
                ids.push_back(d.id);
        }
        for (auto& d : f.apply("GroupDeleted", "Group/g1", {{"id", "g1"}})) ids.push_back(d.id);
        runs.push_back(ids);
    }
    REQUIRE(runs[0] == runs[1]);
    REQUIRE(runs[0].size() == 6);
    REQUIRE(runs[0].back() == "8:laptops:c");  // a group's deletion: each member, sorted
}

TEST_CASE("call templates escape values for URLs and JSON bodies", "[policies][engine]") {
    pol::decision d;
    d.id = "5:p:u";
    d.user = "id/1";
    d.user_name = "o'brien \"x\"@example.com";
    d.role = "admin";
    d.user_resource = {
        {"externalId", "00u1"},
        {"emails", json::array({{{"value", "w@x"}}, {{"value", "p@x"}, {"primary", true}}})}};
    REQUIRE(pol::render_template("http://h/u/{{user.id}}?n={{ user.userName }}", d, true) ==
            "http://h/u/id%2F1?n=o%27brien%20%22x%22@example.com");
    REQUIRE(pol::render_template(R"({"login":"{{user.userName}}","mail":"{{user.email}}"})", d,
                                 false) == R"({"login":"o'brien \"x\"@example.com","mail":"p@x"})");
    REQUIRE(pol::unknown_placeholder("{{user.id}} {{user.mail}}") == "user.mail");
    REQUIRE(pol::unknown_placeholder("{{role}}").empty());
}

TEST_CASE("policy configurations are checked with the population and key named",
          "[policies][engine]") {
    pol::policy_config c;
    pol::population_def p;
    p.name = "mdm";
    c.populations.push_back(p);
    REQUIRE_THAT(pol::validate(c), Catch::Contains("policies.populations.mdm: set exactly one"));
    c.populations[0].group = "MDM";
    c.populations[0].on_deactivate = pol::action::change_policy;
    REQUIRE_THAT(pol::validate(c), Catch::Contains("mdm.device_policy"));
    c.populations[0].device_policy = "locked";
    c.populations[0].connectors = {"api"};
    REQUIRE_THAT(pol::validate(c), Catch::Contains("no connector \"api\""));
    c.connectors["api"] = pol::connector_def{};
    c.populations[0].on_deactivate = pol::action::remove_user;
    REQUIRE_THAT(pol::validate(c), Catch::Contains("connector \"api\" has no remove call"));
    c.connectors["api"].remove = pol::http_call{"DELETE", "http://h/{{user.id}}", ""};
    REQUIRE(pol::validate(c).empty());
}
