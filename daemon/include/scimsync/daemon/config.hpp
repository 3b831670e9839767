#pragma once
// scimsyncd's settings: defaults suited to a systemd install, a TOML file on top, flags on top
// of that. The TOML keys are documented in docs/ (the configuration reference).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scimsync/bridge/ldap_client.hpp"
#include "scimsync/bridge/mapping.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/model/access.hpp"
#include "scimsync/policies/policy.hpp"

namespace scimsync::daemon {

inline constexpr std::string_view default_config_path = "/etc/scimsync/scimsyncd.toml";
inline constexpr std::string_view default_data_dir = "/var/lib/scimsync";
inline constexpr std::string_view default_admin_socket = "/run/scimsync/admin.sock";

struct listen_address {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal, without brackets
    std::uint16_t port = 8080;
};

// "HOST:PORT" or "[V6]:PORT"; HOST must be an IP literal. Error: what is wrong, one line.
std::expected<listen_address, std::string> parse_listen(std::string_view text);
// The inverse, with IPv6 in brackets.
std::string to_string(const listen_address& a);

// The LDAP bridge ([ldap] in the config file). Present only when the file sets ldap.url.
struct ldap_config {
    bridge::ldap_settings connection;  // the password comes from bind_password_file
    std::filesystem::path bind_password_file;
    bridge::mapping mapping;
    std::size_t window = 64;
    bool ingest = true;
    std::string accesslog_base = "cn=accesslog";
};

// Where the log lives ([log] backend = "file" | "kafka").
enum class log_backend { file, kafka };

// [log.kafka]: the log on a Kafka topic shared by several daemons (eventlog/kafka_log.hpp).
struct kafka_config {
    std::string brokers;
    std::string topic;
    // librdkafka settings passed through ([log.kafka.properties]); checked by librdkafka at
    // load time, values never printed.
    std::vector<std::pair<std::string, std::string>> properties;
    // sasl.password read from this file at start (so the config file holds no secret).
    std::filesystem::path sasl_password_file;
    std::chrono::milliseconds delivery_timeout{30'000};
    std::chrono::milliseconds open_timeout{30'000};
    std::uint64_t checkpoint_every_events = 10'000;
};

// [tokens.<name>]: a bearer token kept in a file (scim_service.hpp, config_token).
struct token_file {
    std::string name;
    std::filesystem::path file;
    std::string scope = "scim";
};

struct daemon_config {
    std::filesystem::path data_dir{default_data_dir};
    listen_address listen;
    std::filesystem::path admin_socket{default_admin_socket};
    log_backend backend = log_backend::file;
    kafka_config kafka;
    eventlog::durability durability = eventlog::durability::batch;
    std::uint64_t segment_bytes = 128ull << 20;
    std::uint64_t snapshot_every_events = 100'000;
    double snapshot_growth = 1.0;  // see scim_options::snapshot_growth
    std::size_t body_limit_bytes = 1u << 20;
    std::chrono::seconds read_timeout{30};
    unsigned threads = 2;
    std::optional<ldap_config> ldap;
    model::access_catalogue access;  // [access.services.<name>]
    policies::policy_config policies;  // [policies], populations and connectors
    std::vector<token_file> tokens;    // [tokens.<name>]

    // [logging]
    std::string log_level = "info";  // error | warning | info | debug
    bool log_requests = true;        // one line per HTTP request
    // [http] rate limit per bearer token: requests per second (0: none) and burst.
    double rate_limit_per_token = 0;
    double rate_limit_burst = 0;     // 0: one second's worth
    // [health]: /readyz fails while a projector is further behind the log than this (0: not
    // checked).
    std::uint64_t views_max_lag = 10'000;
    std::uint64_t ldap_max_lag = 0;
    std::uint64_t policies_max_lag = 0;
    // [http.tls]: HTTPS on the listener when both are set.
    std::filesystem::path tls_cert_file;
    std::filesystem::path tls_key_file;

    // Each top-level table of the file as TOML text, to tell which parts a reload changed.
    std::map<std::string, std::string> sections;
    std::filesystem::path log_dir() const { return data_dir / "log"; }
};

// Applies the settings found in the TOML file `file` on top of `config`. Unknown keys, wrong
// types and out-of-range values are errors. The error is one line naming the file, the line and
// the key: "FILE:LINE: KEY: what is wrong". Relative paths in the file are kept as written.
std::expected<void, std::string> apply_config_file(const std::filesystem::path& file,
                                                   daemon_config& config);

// The configuration file (if any) with environment overrides on top, for containers:
// SCIMSYNC_<KEY> with the key's dots as "__", in capitals (SCIMSYNC_LISTEN,
// SCIMSYNC_LOG__BACKEND, SCIMSYNC_LOG__KAFKA__BROKERS). A value is read as a TOML value when it
// is one (8080, true, "quoted"), else as text. Errors name the file and line, or the variable.
// SCIMSYNC_KAFKA_*, SCIMSYNC_DEMO_* and SCIMSYNC_SKIP_ASAN belong to the tests and scripts.
std::expected<void, std::string> load_config(const std::optional<std::filesystem::path>& file,
                                             char** environ, daemon_config& config);

}  // namespace scimsync::daemon
