#include <catch2/catch.hpp>

#include "scimsync/model/access.hpp"
#include "scimsync/model/directory.hpp"

namespace el = scimsync::eventlog;
namespace model = scimsync::model;
using nlohmann::json;

namespace {

struct fixture {
    model::directory d;
    std::uint64_t seq = 1;

    void apply(std::string type, std::string stream, json data, std::string source = "scim") {
        el::event e;
        e.seq = el::seq_no{seq++};
        e.time = el::utc_time(std::chrono::microseconds(1'800'000'000'000'000 + e.seq.value));
        e.type = std::move(type);
        e.stream = std::move(stream);
        e.source = std::move(source);
        e.actor = "client-1";
        e.data = data.dump();
        auto r = d.apply(e);
        INFO((r ? std::string() : r.error().message));
        REQUIRE(r.has_value());
    }
    void user(const std::string& id, std::string source = "scim") {
        apply("UserCreated", "User/" + id,
              {{"id", id}, {"resource", {{"id", id}, {"userName", id + "@example.com"}}}},
              std::move(source));
    }
    void group(const std::string& id, json members = json::array()) {
        apply("GroupCreated", "Group/" + id,
              {{"id", id}, {"resource", {{"id", id}, {"displayName", id}}}, {"members", members}});
    }
    void add(const std::string& group, const std::string& member, const std::string& type) {
        apply("GroupMembersChanged", "Group/" + group,
              {{"id", group},
               {"added", json::array({{{"value", member}, {"type", type}}})},
               {"removed", json::array()}});
    }
    void grant(bool give, const std::string& type, const std::string& id,
               const std::string& service, const std::string& role = "") {
        apply(give ? "AccessGranted" : "AccessRevoked", "Access/" + type + "/" + id,
              {{"subject", {{"type", type}, {"id", id}}}, {"service", service}, {"role", role}},
              "admin");
    }
    void device(const char* type, const std::string& id, const std::string& owner,
                const std::string& policy = "standard") {
        apply(type, "Device/" + id,
              {{"id", id},
               {"device",
                {{"id", id},
                 {"name", "laptop " + id},
                 {"serial", "SN-" + id},
                 {"platform", "macos"},
                 {"owner", owner.empty() ? json(nullptr) : json(owner)},
                 {"policy", policy}}}},
              "admin");
    }
};

std::vector<std::string> labels(const std::vector<model::effective_grant>& grants) {
    std::vector<std::string> out;
    for (const auto& g : grants) out.push_back(g.grant.label());
    return out;
}

}  // namespace

TEST_CASE("a user inherits the grants of every group above it, with the path that gave each",
          "[model][access]") {
    fixture f;
    f.user("alice");
    f.group("engineering");
    f.group("backend");
    f.group("oncall");
    f.add("backend", "alice", "User");
    f.add("engineering", "backend", "Group");  // backend is nested in engineering
    f.add("oncall", "alice", "User");
    f.grant(true, "Group", "engineering", "dashboard", "viewer");
    f.grant(true, "Group", "oncall", "dashboard", "admin");
    f.grant(true, "Group", "backend", "store");

    auto access = model::effective_access(f.d, "alice");
    REQUIRE(labels(access) ==
            std::vector<std::string>{"dashboard/admin", "dashboard/viewer", "store"});
    REQUIRE(access[1].reasons.size() == 1);
    REQUIRE(access[1].reasons[0].path == std::vector<std::string>{"backend", "engineering"});
    REQUIRE(access[0].reasons[0].path == std::vector<std::string>{"oncall"});
    REQUIRE(model::all_groups_of(f.d, "alice") ==
            std::vector<std::string>{"backend", "engineering", "oncall"});

    SECTION("a direct grant stays next to the inherited one, listed first") {
        f.grant(true, "User", "alice", "dashboard", "viewer");
        access = model::effective_access(f.d, "alice");
        REQUIRE(access[1].grant.label() == "dashboard/viewer");
        REQUIRE(access[1].reasons.size() == 2);
        REQUIRE(access[1].reasons[0].direct());
        REQUIRE(access[1].reasons[1].path == std::vector<std::string>{"backend", "engineering"});
        SECTION("revoking the group's grant leaves the direct one") {
            f.grant(false, "Group", "engineering", "dashboard", "viewer");
            access = model::effective_access(f.d, "alice");
            REQUIRE(labels(access) ==
                    std::vector<std::string>{"dashboard/admin", "dashboard/viewer", "store"});
            REQUIRE(access[1].reasons.size() == 1);
            REQUIRE(access[1].reasons[0].direct());
        }
    }
    SECTION("leaving the nested group takes its grants and those above it") {
        f.apply("GroupMembersChanged", "Group/backend",
                {{"id", "backend"}, {"added", json::array()}, {"removed", {"alice"}}});
        REQUIRE(labels(model::effective_access(f.d, "alice")) ==
                std::vector<std::string>{"dashboard/admin"});
    }
    SECTION("deleting a group deletes its grants") {
        f.apply("GroupDeleted", "Group/oncall", {{"id", "oncall"}});
        REQUIRE(f.d.access().grants_of("Group/oncall") == nullptr);
        REQUIRE(labels(model::effective_access(f.d, "alice")) ==
                std::vector<std::string>{"dashboard/viewer", "store"});
    }
    SECTION("a membership cycle is walked once") {
        f.add("backend", "engineering", "Group");
        REQUIRE(labels(model::effective_access(f.d, "alice")) ==
                std::vector<std::string>{"dashboard/admin", "dashboard/viewer", "store"});
    }
    SECTION("a deleted user has no access and its direct grants are gone") {
        f.grant(true, "User", "alice", "store", "clerk");
        f.apply("UserDeleted", "User/alice", {{"id", "alice"}});
        REQUIRE(model::effective_access(f.d, "alice").empty());
        REQUIRE(f.d.access().grants_of("User/alice") == nullptr);
    }
}

TEST_CASE("granting twice is one grant, revoking what was never granted changes nothing",
          "[model][access]") {
    fixture f;
    f.user("bob");
    f.grant(true, "User", "bob", "store", "clerk");
    f.grant(true, "User", "bob", "store", "clerk");
    REQUIRE(f.d.access().grants_of("User/bob")->size() == 1);
    f.grant(false, "User", "bob", "store", "manager");
    REQUIRE(f.d.access().grants_of("User/bob")->size() == 1);
    f.grant(false, "User", "bob", "store", "clerk");
    REQUIRE(f.d.access().grants_of("User/bob") == nullptr);
}

TEST_CASE("devices are found by id, owner and serial, and follow their events", "[model][access]") {
    fixture f;
    f.user("carol");
    f.device("DeviceRegistered", "d1", "carol");
    f.device("DeviceRegistered", "d2", "carol");
    f.device("DeviceRegistered", "d3", "");
    const auto& a = f.d.access();
    REQUIRE(a.devices_of("carol").size() == 2);
    REQUIRE(a.device_by_serial("sn-d3")->id == "d3");
    REQUIRE(a.device("d1")->version == 1);
    f.device("DeviceUpdated", "d1", "", "locked");
    REQUIRE(a.device("d1")->owner.empty());
    REQUIRE(a.device("d1")->policy == "locked");
    REQUIRE(a.device("d1")->version == 2);
    REQUIRE(a.devices_of("carol").size() == 1);
    f.apply("DeviceRemoved", "Device/d2", {{"id", "d2"}}, "admin");
    REQUIRE(a.devices_of("carol").empty());
    REQUIRE(a.device_by_serial("SN-d2") == nullptr);
    REQUIRE(model::device_json(*a.device("d1"))["owner"].is_null());
}

TEST_CASE("sources, token scopes, grants and devices survive a snapshot", "[model][access]") {
    fixture f;
    f.user("dave", "admin");
    f.user("erin");
    f.group("staff", json::array({{{"value", "dave"}, {"type", "User"}}}));
    f.grant(true, "Group", "staff", "dashboard", "viewer");
    f.device("DeviceRegistered", "d9", "dave");
    f.apply("TokenIssued", "Token/t1",
            {{"id", "t1"},
             {"name", "ops"},
             {"hash", "sha256:00"},
             {"created", "2027-01-01T00:00:00.000000Z"},
             {"expires", nullptr},
             {"scope", "admin"}},
            "admin");
    REQUIRE(f.d.user("dave")->local);
    REQUIRE_FALSE(f.d.user("erin")->local);
    REQUIRE(f.d.token("t1")->scope == "admin");
    auto copy = model::directory::deserialize(f.d.serialize());
    REQUIRE(copy.has_value());
    REQUIRE(*copy == f.d);
    REQUIRE(copy->user("dave")->local);
    REQUIRE(copy->token("t1")->scope == "admin");
    REQUIRE(labels(model::effective_access(*copy, "dave")) ==
            std::vector<std::string>{"dashboard/viewer"});
    REQUIRE(copy->access().devices_of("dave").size() == 1);
    f.grant(false, "Group", "staff", "dashboard", "viewer");
    REQUIRE_FALSE(*copy == f.d);
}
