#include "scimsync/daemon/config.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include <toml++/toml.h>

namespace scimsync::daemon {

namespace {

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

const char* type_name(const toml::node& n) {
    switch (n.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        default:
            return "nothing";
    }
}

// Where a setting went wrong, for the one-line error.
struct locator {
    const std::filesystem::path& file;

    std::string operator()(const toml::source_region& where, std::string_view key,
                           std::string_view problem) const {
        std::ostringstream out;
        out << file.string() << ':' << where.begin.line << ": " << key << ": " << problem;
        return out.str();
    }
};

using setter = std::function<std::expected<void, std::string>(const toml::node&)>;

setter string_setter(std::function<std::expected<void, std::string>(const std::string&)> apply) {
    return [apply = std::move(apply)](const toml::node& n) -> std::expected<void, std::string> {
        const auto* s = n.as_string();
        if (s == nullptr)
            return std::unexpected(std::string("expected a string, got ") + type_name(n));
        return apply(s->get());
    };
}

template <class T>
setter integer_setter(T& target, std::int64_t min, std::int64_t max) {
    return [&target, min, max](const toml::node& n) -> std::expected<void, std::string> {
        const auto* i = n.as_integer();
        if (i == nullptr || i->get() < min || i->get() > max) {
            std::string got = i == nullptr ? type_name(n) : std::to_string(i->get());
            return std::unexpected("expected an integer from " + std::to_string(min) + " to " +
                                   std::to_string(max) + ", got " + got);
        }
        target = static_cast<T>(i->get());
        return {};
    };
}

std::expected<void, std::string> apply_table(const toml::table& table, std::string_view prefix,
                                             const std::map<std::string, setter, std::less<>>& keys,
                                             const locator& at) {
    for (const auto& [key, node] : table) {
        const std::string name = std::string(prefix) + std::string(key.str());
        const auto it = keys.find(name);
        if (it == keys.end()) {
            bool known_table = false;
            for (const auto& [k, s] : keys) known_table = known_table || k.starts_with(name + ".");
            if (!known_table) return std::unexpected(at(key.source(), name, "unknown key"));
            const auto* sub = node.as_table();
            if (sub == nullptr) {
                return std::unexpected(at(node.source(), name,
                                          std::string("expected a table, got ") + type_name(node)));
            }
            if (auto r = apply_table(*sub, name + ".", keys, at); !r) return r;
            continue;
        }
        if (auto r = it->second(node); !r) {
            return std::unexpected(at(node.source(), name, r.error()));
        }
    }
    return {};
}

}  // namespace

std::expected<listen_address, std::string> parse_listen(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return std::unexpected("expected HOST:PORT, got \"" + std::string(text) + "\"");
    }
    std::string host(text.substr(0, colon));
    const auto port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
        if (!is_ipv6(host)) {
            return std::unexpected("\"" + host + "\" is not an IPv6 address");
        }
    } else if (!is_ipv4(host)) {
        return std::unexpected("expected IP:PORT with an IPv4 address or [IPv6], got \"" +
                               std::string(text) + "\"");
    }
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
        port > 65535) {
        return std::unexpected("expected a port from 0 to 65535, got \"" + std::string(port_text) +
                               "\"");
    }
    return listen_address{std::move(host), static_cast<std::uint16_t>(port)};
}

std::string to_string(const listen_address& a) {
    const bool v6 = a.host.find(':') != std::string::npos;
    return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

std::expected<void, std::string> apply_config_file(const std::filesystem::path& file,
                                                   daemon_config& config) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return std::unexpected(file.string() +
                               ": cannot read config file: " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();

    toml::table table;
    try {
        table = toml::parse(text.str(), file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << file.string() << ':' << e.source().begin.line << ':' << e.source().begin.column
            << ": " << e.description();
        return std::unexpected(out.str());
    }

    // Settings are applied to a copy so that a bad file leaves `config` untouched.
    daemon_config next = config;
    std::int64_t timeout_s = next.read_timeout.count();
    std::map<std::string, setter, std::less<>> keys;
    keys["data_dir"] = string_setter([&](const std::string& s) -> std::expected<void, std::string> {
        if (s.empty()) return std::unexpected("must not be empty");
        next.data_dir = s;
        return {};
    });
    keys["admin_socket"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            if (s.empty()) return std::unexpected("must not be empty");
            next.admin_socket = s;
            return {};
        });
    keys["listen"] = string_setter([&](const std::string& s) -> std::expected<void, std::string> {
        auto a = parse_listen(s);
        if (!a) return std::unexpected(a.error());
        next.listen = std::move(*a);
        return {};
    });
    keys["log.durability"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            auto d = eventlog::parse_durability(s);
            if (!d) return std::unexpected(d.error().message);
            next.durability = *d;
            return {};
        });
    keys["log.segment_bytes"] = integer_setter(next.segment_bytes, 4096, std::int64_t{1} << 40);
    keys["http.body_limit_bytes"] = integer_setter(next.body_limit_bytes, 1, std::int64_t{1} << 30);
    keys["http.read_timeout_s"] = integer_setter(timeout_s, 1, 3600);
    keys["http.threads"] = integer_setter(next.threads, 1, 64);

    if (auto r = apply_table(table, "", keys, locator{file}); !r) return r;
    next.read_timeout = std::chrono::seconds(timeout_s);
    config = std::move(next);
    return {};
}

}  // namespace scimsync::daemon
