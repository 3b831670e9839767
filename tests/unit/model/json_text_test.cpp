#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "scimsync/model/json_text.hpp"

namespace jt = scimsync::model::json_text;
using nlohmann::json;

TEST_CASE("whatever nlohmann dumps is canonical", "[model][json_text]") {
    const json samples[] = {
        json::object(),
        json::array(),
        {{"b", 1}, {"a", {{"z", nullptr}, {"y", json::array({true, false, -12, 0})}}}},
        {{"userName", "bjensen@example.com"}, {"name", {{"givenName", "Barbara"}}}},
        {{"escapes", "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f"}},
        {{"unicode", "Zoë Ünal 日本 😀"}},
        {{"big", 999999999999999999}, {"negative", -999999999999999999}},
    };
    for (const auto& j : samples) {
        INFO(j.dump());
        REQUIRE(jt::is_canonical(j.dump()));
    }
}

TEST_CASE("text dump() would print differently is not canonical", "[model][json_text]") {
    for (const char* text : {
             R"({"a": 1})",                    // whitespace
             R"({"b":1,"a":2})",               // keys out of order
             R"({"a":1,"a":2})",               // duplicate key
             R"({"a":1.5})",                   // not an integer
             R"({"a":1e3})",                   // exponent
             R"({"a":-0})",                    // minus zero
             R"({"a":01})",                    // leading zero
             R"({"a":"\/"})",                  // an escape dump does not write
             R"({"a":"\u0041"})",              // an escape dump does not write
             R"({"a":"\u000A"})",              // upper-case hex, and \n has a short form
             R"({"a\"b":1})",                  // an escaped key
             R"({"a":12345678901234567890})",  // beyond the integers taken as canonical
             " {}",                            // leading whitespace
         }) {
        INFO(text);
        REQUIRE_FALSE(jt::is_canonical(text));
    }
}

TEST_CASE("malformed JSON and invalid UTF-8 are not canonical", "[model][json_text]") {
    for (const std::string& text : {
             std::string(R"({"a":1)"),
             std::string(R"({"a":})"),
             std::string(R"({"a":tru})"),
             std::string(R"([1,])"),
             std::string(R"({"a":"x)"),
             std::string("{\"a\":\"\x01\"}"),
             std::string("{\"a\":\"\xC0\xAF\"}"),          // overlong
             std::string("{\"a\":\"\xED\xA0\x80\"}"),      // a surrogate
             std::string("{\"a\":\"\xF4\x90\x80\x80\"}"),  // beyond U+10FFFF
             std::string("{\"a\":\"\xE6\x97\"}"),          // truncated sequence
             std::string(R"({"a":1}x)"),
             std::string(""),
             std::string(std::string(600, '[')) + std::string(600, ']'),
         }) {
        INFO(text);
        REQUIRE_FALSE(jt::is_canonical(text));
        REQUIRE_FALSE(jt::canonical_members(text).has_value());
    }
}

TEST_CASE("the members of a canonical object are its keys and the text of their values",
          "[model][json_text]") {
    const std::string text = json{{"id", "u1"},
                                  {"password_hash", nullptr},
                                  {"resource", {{"id", "u1"}, {"userName", "a\"b"}}}}
                                 .dump();
    auto members = jt::canonical_members(text);
    REQUIRE(members.has_value());
    REQUIRE(members->size() == 3);
    REQUIRE((*members)[0].key == "id");
    REQUIRE((*members)[0].value == "\"u1\"");
    REQUIRE((*members)[1].value == "null");
    REQUIRE((*members)[2].key == "resource");
    REQUIRE(json::parse((*members)[2].value) == json{{"id", "u1"}, {"userName", "a\"b"}});
    REQUIRE_FALSE(jt::canonical_members("[1]").has_value());
}

TEST_CASE("string values decode what append_quoted and dump encode", "[model][json_text]") {
    std::mt19937 rng(7);
    for (int i = 0; i < 500; ++i) {
        std::string s;
        const int n = int(rng() % 20);
        for (int k = 0; k < n; ++k) s.push_back(char(rng() % 0x80));
        if (i % 3 == 0) s += "é日😀";
        std::string quoted;
        jt::append_quoted(quoted, s);
        REQUIRE(quoted == json(s).dump());
        REQUIRE(jt::string_value(quoted) == s);
    }
    REQUIRE_FALSE(jt::string_value("42").has_value());
}

TEST_CASE("a member added to an object text parses as the object with that member",
          "[model][json_text]") {
    REQUIRE(jt::with_member("{}", "meta", R"({"v":1})") == R"({"meta":{"v":1}})");
    REQUIRE(json::parse(jt::with_member(R"({"id":"u1","userName":"a"})", "meta", "{}")) ==
            json{{"id", "u1"}, {"userName", "a"}, {"meta", json::object()}});
}
