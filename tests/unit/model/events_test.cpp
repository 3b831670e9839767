#include <catch2/catch.hpp>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <vector>

#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/model/events.hpp"
#include "support/test_support.hpp"

namespace el = scimsync::eventlog;
namespace fs = std::filesystem;
using scimsync::model::catalogue;
using scimsync::model::event_catalogue;
using scimsync::testing::read_file;
using scimsync::testing::temp_dir;

namespace {

el::event golden(const std::string& type, int version) {
    const fs::path file = fs::path(SCIMSYNC_TEST_DATA_DIR) / "events" / type /
                          ("v" + std::to_string(version) + ".json");
    INFO(file.string());
    REQUIRE(fs::exists(file));
    auto e = el::event_from_json(nlohmann::json::parse(read_file(file)));
    INFO((e ? std::string() : e.error().message));
    REQUIRE(e.has_value());
    return *e;
}

}  // namespace

TEST_CASE("every event type of every version has a golden file that upcasts to a valid event",
          "[model][events]") {
    for (const auto& t : catalogue().types()) {
        for (int v = 1; v <= t.version; ++v) {
            CAPTURE(t.name, v);
            auto e = golden(t.name, v);
            REQUIRE(e.version == v);
            REQUIRE(catalogue().upcast(e).has_value());
            REQUIRE(e.version == t.version);
            auto ok = catalogue().validate(e);
            INFO((ok ? std::string() : ok.error().message));
            REQUIRE(ok.has_value());
        }
    }
}

TEST_CASE("every event type round-trips through the file log unchanged", "[model][events]") {
    temp_dir dir;
    auto log = el::file_log::open({.dir = dir.path(), .mode = el::durability::none});
    REQUIRE(log.has_value());
    std::vector<el::event> written;
    for (const auto& t : catalogue().types()) written.push_back(golden(t.name, t.version));
    REQUIRE((*log)->append(written).has_value());
    auto r = (*log)->read_from(el::seq_no{1});
    el::event e;
    for (std::size_t i = 0; i < written.size(); ++i) {
        REQUIRE(*(*r)->next(e));
        CAPTURE(written[i].type);
        written[i].seq = e.seq;
        written[i].time = e.time;
        REQUIRE(e == written[i]);
        // And through the JSON line form used by `log dump`.
        auto back = el::event_from_json(el::to_json(e));
        REQUIRE(back.has_value());
        REQUIRE(*back == e);
    }
}

TEST_CASE("old versions are upcast step by step to the current one", "[model][events]") {
    event_catalogue c;
    c.add({"Sample", 3, "Sample", false, "test type", {"full_name"}},
          {{1,
            [](nlohmann::json d) {  // v1 -> v2: "name" renamed to "full_name"
                d["full_name"] = d["name"];
                d.erase("name");
                return d;
            }},
           {2, [](nlohmann::json d) {  // v2 -> v3: new field with a default
                d["tags"] = nlohmann::json::array();
                return d;
            }}});
    el::event e;
    e.type = "Sample";
    e.version = 1;
    e.stream = "Sample/1";
    e.data = R"({"name":"x"})";
    REQUIRE(c.upcast(e).has_value());
    REQUIRE(e.version == 3);
    REQUIRE(nlohmann::json::parse(e.data) ==
            nlohmann::json::parse(R"({"full_name":"x","tags":[]})"));
    REQUIRE(c.validate(e).has_value());
}

TEST_CASE("an unknown event type or a future version fails closed", "[model][events]") {
    el::event e;
    e.type = "NoSuchEvent";
    e.seq = el::seq_no{17};
    e.data = "{}";
    auto r = catalogue().upcast(e);
    REQUIRE(r.error().code == el::errc::unknown_event);
    REQUIRE_THAT(r.error().message, Catch::Contains("seq 17"));
    e.type = "UserDeleted";
    e.version = 99;
    REQUIRE(catalogue().upcast(e).error().code == el::errc::future_version);
}

TEST_CASE("validation names the missing field or the wrong stream", "[model][events]") {
    el::event e;
    e.type = "UserDeleted";
    e.stream = "User/abc";
    e.data = "{}";
    REQUIRE_THAT(catalogue().validate(e).error().message, Catch::Contains("\"id\""));
    e.data = R"({"id":"abc"})";
    REQUIRE(catalogue().validate(e).has_value());
    e.stream = "Group/abc";
    REQUIRE_THAT(catalogue().validate(e).error().message, Catch::Contains("User/<id>"));
    e.type = "ProvisioningEnabled";
    e.stream = "Provisioning";
    e.data = "{}";
    REQUIRE(catalogue().validate(e).has_value());
}

TEST_CASE("event times print and parse as RFC 3339 UTC with microseconds", "[model][events]") {
    const el::utc_time t{std::chrono::microseconds(1'795'000'000'123'456)};
    const std::string s = el::format_time(t);
    REQUIRE(s == "2026-11-18T11:06:40.123456Z");
    REQUIRE(*el::parse_time(s) == t);
    REQUIRE(*el::parse_time("2026-11-18T12:06:40.123456+01:00") == t);
    REQUIRE(el::parse_time("2026-11-18")->time_since_epoch().count() % 86'400'000'000 == 0);
    REQUIRE_FALSE(el::parse_time("2026-11-18T11:06:40").has_value());  // no zone
    REQUIRE_FALSE(el::parse_time("yesterday").has_value());
}

TEST_CASE("event times print as gmtime does, before 1970, on leap days and at day ends",
          "[model][events]") {
    // gmtime_r, the C library's calendar, printed through a stream.
    auto reference = [](el::utc_time t) {
        const std::int64_t us = t.time_since_epoch().count();
        const std::int64_t floor_secs = us >= 0 ? us / 1'000'000 : -((-us + 999'999) / 1'000'000);
        const std::time_t secs = std::time_t(floor_secs);
        std::tm tm{};
        ::gmtime_r(&secs, &tm);
        std::ostringstream out;
        out << std::setfill('0') << std::setw(4) << tm.tm_year + 1900 << '-' << std::setw(2)
            << tm.tm_mon + 1 << '-' << std::setw(2) << tm.tm_mday << 'T' << std::setw(2)
            << tm.tm_hour << ':' << std::setw(2) << tm.tm_min << ':' << std::setw(2) << tm.tm_sec
            << '.' << std::setw(6) << us - floor_secs * 1'000'000 << 'Z';
        return out.str();
    };
    const std::int64_t day = 86'400'000'000;
    std::vector<std::int64_t> at = {0,
                                    -1,
                                    1,
                                    day - 1,
                                    day,
                                    -day,
                                    -day - 1,
                                    951'782'400'000'000,       // 2000-02-29
                                    4'107'542'399'999'999,     // 2100-02-28T23:59:59.999999
                                    253'402'300'799'999'999,   // 9999-12-31T23:59:59.999999
                                    -62'167'219'200'000'000};  // 0000-01-01
    std::uint64_t x = 0x9e3779b97f4a7c15;
    for (int i = 0; i < 2000; ++i) {  // spread over years 1 to 9999
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        at.push_back(std::int64_t(x % 315'537'897'600'000'000) - 62'135'596'800'000'000);
    }
    for (const std::int64_t us : at) {
        const el::utc_time t{std::chrono::microseconds(us)};
        INFO(us);
        REQUIRE(el::format_time(t) == reference(t));
    }
}
