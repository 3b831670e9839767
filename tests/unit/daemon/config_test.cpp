#include <catch2/catch.hpp>

#include "scimsync/daemon/config.hpp"
#include "support/test_support.hpp"

namespace sd = scimsync::daemon;
using scimsync::testing::temp_dir;
using scimsync::testing::write_file;

TEST_CASE("listen addresses accept IPv4 and bracketed IPv6 and refuse host names",
          "[daemon][config]") {
    REQUIRE(sd::parse_listen("127.0.0.1:0")->port == 0);
    REQUIRE(sd::parse_listen("[::1]:8080")->host == "::1");
    REQUIRE(sd::to_string(*sd::parse_listen("[::1]:8080")) == "[::1]:8080");
    REQUIRE_FALSE(sd::parse_listen("localhost:80").has_value());
    REQUIRE_FALSE(sd::parse_listen("127.0.0.1").has_value());
    REQUIRE_FALSE(sd::parse_listen("127.0.0.1:70000").has_value());
}

TEST_CASE("the shipped example configuration is accepted and matches the defaults",
          "[daemon][config]") {
    sd::daemon_config from_file;
    auto r = sd::apply_config_file(
        std::filesystem::path(SCIMSYNC_SOURCE_DIR) / "systemd" / "scimsyncd.toml.example",
        from_file);
    INFO((r ? std::string() : r.error()));
    REQUIRE(r.has_value());
    const sd::daemon_config defaults;
    REQUIRE(from_file.data_dir == defaults.data_dir);
    REQUIRE(from_file.admin_socket == defaults.admin_socket);
    REQUIRE(sd::to_string(from_file.listen) == sd::to_string(defaults.listen));
    REQUIRE(from_file.durability == defaults.durability);
    REQUIRE(from_file.segment_bytes == defaults.segment_bytes);
    REQUIRE(from_file.snapshot_every_events == defaults.snapshot_every_events);
    REQUIRE(from_file.snapshot_growth == defaults.snapshot_growth);
    REQUIRE(from_file.body_limit_bytes == defaults.body_limit_bytes);
    REQUIRE(from_file.read_timeout == defaults.read_timeout);
    REQUIRE(from_file.threads == defaults.threads);
    REQUIRE(from_file.backend == defaults.backend);
    REQUIRE(from_file.rate_limit_per_token == defaults.rate_limit_per_token);
    REQUIRE(from_file.rate_limit_burst == defaults.rate_limit_burst);
    REQUIRE(from_file.log_level == defaults.log_level);
    REQUIRE(from_file.log_requests == defaults.log_requests);
    REQUIRE(from_file.views_max_lag == defaults.views_max_lag);
    REQUIRE(from_file.ldap_max_lag == defaults.ldap_max_lag);
    REQUIRE(from_file.policies_max_lag == defaults.policies_max_lag);
    REQUIRE(from_file.tls_cert_file.empty());
    REQUIRE(from_file.tokens.empty());
}

TEST_CASE("a bad configuration names file, line and key and changes nothing", "[daemon][config]") {
    temp_dir dir;
    const auto file = dir.path() / "bad.toml";
    write_file(file, "data_dir = \"/srv/x\"\n\n[log]\ndurability = \"sometimes\"\n");
    sd::daemon_config config;
    const auto before = config.data_dir;
    auto r = sd::apply_config_file(file, config);
    REQUIRE_FALSE(r.has_value());
    REQUIRE_THAT(r.error(),
                 Catch::StartsWith(file.string() + ":4:") && Catch::Contains("log.durability"));
    REQUIRE(config.data_dir == before);

    write_file(file, "[http]\nthreds = 4\n");
    r = sd::apply_config_file(file, config);
    REQUIRE_THAT(r.error(), Catch::Contains(":2:") && Catch::Contains("http.threds"));

    write_file(file, "[log]\nsnapshot_growth = -1\n");
    r = sd::apply_config_file(file, config);
    REQUIRE_THAT(r.error(), Catch::Contains(":2:") && Catch::Contains("log.snapshot_growth"));
    REQUIRE(config.snapshot_growth == 1.0);
    write_file(file, "[log]\nsnapshot_growth = 0.25\n");
    REQUIRE(sd::apply_config_file(file, config).has_value());
    REQUIRE(config.snapshot_growth == 0.25);
}
