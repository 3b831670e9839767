// scim_preload: writes a directory of N users and one group of M members straight into a log
// (as the events the SCIM service would have written), for the SCIM load benchmark.
//
//   scim_preload DATA_DIR USERS GROUP_MEMBERS
//
// Prints the group's id; user i has id "u-<i>" and userName "user<i>@example.com".

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scimsync/eventlog/file_log.hpp"

namespace el = scimsync::eventlog;
using nlohmann::json;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: scim_preload DATA_DIR USERS GROUP_MEMBERS\n");
        return 2;
    }
    const std::string dir = argv[1];
    const std::uint64_t users = std::stoull(argv[2]);
    const std::uint64_t members = std::min<std::uint64_t>(std::stoull(argv[3]), users);
    auto log = el::file_log::open({.dir = dir + "/log", .mode = el::durability::none});
    if (!log) {
        std::fprintf(stderr, "%s\n", log.error().message.c_str());
        return 1;
    }
    auto event = [](const char* type, std::string stream, json data) {
        el::event e;
        e.type = type;
        e.source = "scim";
        e.actor = "bench";
        e.stream = std::move(stream);
        e.data = data.dump();
        return e;
    };
    std::vector<el::event> batch;
    auto flush = [&] {
        if (batch.empty()) return;
        if (!(*log)->append(std::move(batch))) std::exit(1);
        batch.clear();
    };
    for (std::uint64_t i = 0; i < users; ++i) {
        const std::string id = "u-" + std::to_string(i);
        const std::string name = "user" + std::to_string(i) + "@example.com";
        json res{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                 {"id", id},
                 {"userName", name},
                 {"externalId", "ext-" + std::to_string(i)},
                 {"name", {{"givenName", "Given" + std::to_string(i)}, {"familyName", "Family"}}},
                 {"emails", {{{"value", name}, {"type", "work"}, {"primary", true}}}},
                 {"active", true}};
        batch.push_back(event("UserCreated", "User/" + id,
                              {{"id", id}, {"resource", res}, {"password_hash", nullptr}}));
        if (batch.size() == 500) flush();
    }
    flush();
    const std::string gid = "g-big";
    batch.push_back(event("GroupCreated", "Group/" + gid,
                          {{"id", gid},
                           {"resource",
                            {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
                             {"id", gid},
                             {"displayName", "Everyone"}}},
                           {"members", json::array()}}));
    flush();
    json added = json::array();
    for (std::uint64_t i = 0; i < members; ++i) {
        added.push_back({{"value", "u-" + std::to_string(i)}, {"type", "User"}});
        if (added.size() == 2000 || i + 1 == members) {
            batch.push_back(event("GroupMembersChanged", "Group/" + gid,
                                  {{"id", gid}, {"added", added}, {"removed", json::array()}}));
            added = json::array();
            flush();
        }
    }
    (*log)->close();
    std::printf("%s\n", gid.c_str());
}
