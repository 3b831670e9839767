#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "scimsync/daemon/admin_commands.hpp"

namespace sd = scimsync::daemon;

TEST_CASE("admin requests that are not valid get ok:false and a reason", "[daemon][admin]") {
    sd::command_registry commands;
    commands.add("echo", [](const nlohmann::json& args) -> sd::command_result { return args; });
    auto ok = nlohmann::json::parse(commands.handle_line(R"({"cmd":"echo","args":{"a":1}})"));
    REQUIRE(ok["ok"] == true);
    REQUIRE(ok["result"]["a"] == 1);
    for (const char* bad :
         {"not json", R"({"cmd":"nope"})", R"({"args":{}})", R"({"cmd":"echo","args":[1]})"}) {
        CAPTURE(bad);
        auto reply = nlohmann::json::parse(commands.handle_line(bad));
        REQUIRE(reply["ok"] == false);
        REQUIRE_FALSE(reply["error"].get<std::string>().empty());
    }
}
