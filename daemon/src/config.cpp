#include "scimsync/daemon/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "logging.hpp"
#include "scimsync/bridge/dn.hpp"
#include "scimsync/bridge/entry.hpp"
#include "scimsync/eventlog/kafka_log.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/scim/schema.hpp"
#include "scimsync/policies/http_client.hpp"

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

// Where a setting went wrong, for the one-line error: the file and line, or the environment
// variable that set it.
struct locator {
    const std::filesystem::path& file;
    const std::map<std::string, std::string>* from_environment = nullptr;  // key -> variable

    std::string operator()(const toml::source_region& where, std::string_view key,
                           std::string_view problem) const {
        std::ostringstream out;
        if (from_environment != nullptr) {
            if (auto it = from_environment->find(std::string(key)); it != from_environment->end()) {
                out << "environment variable " << it->second << ": " << key << ": " << problem;
                return out.str();
            }
        }
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

// The [ldap] settings as read; turned into an ldap_config once the whole file is read (the
// suffix decides the default bases, whatever order the keys come in).
struct ldap_draft {
    bool present = false;
    std::string url, bind_dn, suffix = "dc=example,dc=com";
    std::string password_file;
    std::optional<std::string> devices_base, roles_base;
    std::optional<std::string> users_base, users_rdn, groups_base, group_class, empty_member,
        deactivate_mode, deactivate_attribute, deactivate_value, deactivate_base, drift_default,
        accesslog_base;
    std::optional<std::vector<std::string>> object_classes;
    std::vector<std::pair<std::string, std::optional<bridge::attribute_rule>>> attributes;
    std::vector<std::pair<std::string, std::string>> drift;
    std::int64_t window = 64;
    bool passwords = false;
    bool ingest = true;
    std::int64_t timeout_ms = 5000;
};

setter bool_setter(bool& target) {
    return [&target](const toml::node& n) -> std::expected<void, std::string> {
        const auto* b = n.as_boolean();
        if (b == nullptr)
            return std::unexpected(std::string("expected true or false, got ") + type_name(n));
        target = b->get();
        return {};
    };
}

setter optional_string(std::optional<std::string>& target) {
    return string_setter([&target](const std::string& v) -> std::expected<void, std::string> {
        if (v.empty()) return std::unexpected("must not be empty");
        target = v;
        return {};
    });
}

std::expected<std::string, std::string> read_secret_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::unexpected("cannot read " + p.string() + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    std::string secret = text.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) return std::unexpected(p.string() + " is empty");
    return secret;
}

// [policies]: the deletion threshold, [policies.connectors.<name>] and
// [policies.populations.<name>]. Errors name the key; the caller adds file and line.
std::expected<policies::http_call, std::string> http_call_of(const toml::node& n,
                                                             const std::string& at) {
    const auto* t = n.as_table();
    if (t == nullptr)
        return std::unexpected(at +
                               ": expected { method = \"...\", url = \"...\", body = \"...\" }");
    policies::http_call call;
    for (const auto& [k, v] : *t) {
        const std::string key(k.str());
        const auto text = v.value<std::string>();
        if (!text || (key != "method" && key != "url" && key != "body"))
            return std::unexpected(at + "." + key +
                                   ": unknown key or not a string (method, url, body)");
        (key == "method" ? call.method : key == "url" ? call.url : call.body) = *text;
    }
    static const std::set<std::string> methods{"GET", "POST", "PUT", "PATCH", "DELETE"};
    if (!methods.contains(call.method))
        return std::unexpected(at + ".method: expected GET, POST, PUT, PATCH or DELETE");
    std::string why;
    if (!policies::parse_http_url(call.url, &why)) return std::unexpected(at + ".url: " + why);
    for (const auto* text : {&call.url, &call.body})
        if (auto bad = policies::unknown_placeholder(*text); !bad.empty())
            return std::unexpected(at + ": unknown placeholder {{" + bad +
                                   "}} (known: user.id, user.userName, user.externalId, "
                                   "user.email, role, population, decision)");
    return call;
}

void add_policy_keys(std::map<std::string, setter, std::less<>>& keys, policies::policy_config& c) {
    keys["policies.max_removals"] = integer_setter(c.max_removals, 1, 1'000'000);
    keys["policies.window_minutes"] =
        [&c](const toml::node& n) -> std::expected<void, std::string> {
        const auto v = n.value<std::int64_t>();
        if (!v || *v < 1 || *v > 10'080)
            return std::unexpected("expected an integer from 1 to 10080 (a week)");
        c.window = std::chrono::minutes(*v);
        return {};
    };
    keys["policies.connectors"] = [&c](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            policies::connector_def def;
            def.name = std::string(k.str());
            const std::string at =
                "line " + std::to_string(v.source().begin.line) + ": " + def.name;
            const auto* body = v.as_table();
            if (body == nullptr) return std::unexpected(at + ": expected a table");
            for (const auto& [dk, dv] : *body) {
                const std::string key(dk.str());
                const auto number = dv.value<std::int64_t>();
                if (key == "create" || key == "remove") {
                    auto call = http_call_of(dv, at + "." + key);
                    if (!call) return std::unexpected(call.error());
                    (key == "create" ? def.create : def.remove) = std::move(*call);
                } else if (key == "auth_header_file" && dv.is_string()) {
                    auto secret = read_secret_file(*dv.value<std::string>());
                    if (!secret)
                        return std::unexpected(at + ".auth_header_file: " + secret.error());
                    if (secret->find(':') == std::string::npos)
                        return std::unexpected(at +
                                               ".auth_header_file: the file must hold one "
                                               "header line, \"Name: value\"");
                    def.auth_header = std::move(*secret);
                } else if (key == "ca_file" && dv.is_string()) {
                    def.ca_file = *dv.value<std::string>();
                    std::ifstream probe(def.ca_file);
                    if (!probe)
                        return std::unexpected(at + ".ca_file: cannot read " + def.ca_file + ": " +
                                               std::strerror(errno));
                } else if (key == "timeout_ms" && number && *number >= 100 && *number <= 600'000) {
                    def.timeout = std::chrono::milliseconds(*number);
                } else if (key == "report_after_attempts" && number && *number >= 1 &&
                           *number <= 1000) {
                    def.report_after_attempts = int(*number);
                } else if (key == "backoff_initial_ms" && number && *number >= 1 &&
                           *number <= 600'000) {
                    def.backoff_initial = std::chrono::milliseconds(*number);
                } else if (key == "backoff_max_ms" && number && *number >= 1 &&
                           *number <= 3'600'000) {
                    def.backoff_max = std::chrono::milliseconds(*number);
                } else {
                    return std::unexpected(
                        at + "." + key +
                        ": unknown key or bad value (create, remove, auth_header_file, ca_file, "
                        "timeout_ms 100..600000, report_after_attempts 1..1000, "
                        "backoff_initial_ms, backoff_max_ms)");
                }
            }
            if (!def.create && !def.remove)
                return std::unexpected(at + ": a connector needs a create or a remove call");
            c.connectors[def.name] = std::move(def);
        }
        return {};
    };
    keys["policies.populations"] = [&c](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            policies::population_def p;
            p.name = std::string(k.str());
            const std::string at = "line " + std::to_string(v.source().begin.line) + ": " + p.name;
            const auto* body = v.as_table();
            if (body == nullptr) return std::unexpected(at + ": expected a table");
            for (const auto& [dk, dv] : *body) {
                const std::string key(dk.str());
                const auto text = dv.value<std::string>();
                if (key == "group" && text) {
                    p.group = *text;
                } else if (key == "filter" && text) {
                    p.filter = *text;
                } else if (key == "on_create" && text && (*text == "none" || *text == "create")) {
                    p.create_account = *text == "create";
                } else if (key == "role" && text) {
                    p.create_role = *text;
                } else if (key == "on_deactivate" && text && policies::parse_action(*text)) {
                    p.on_deactivate = *policies::parse_action(*text);
                } else if (key == "device_policy" && text) {
                    p.device_policy = *text;
                } else if (key == "ldap" && dv.is_boolean()) {
                    p.ldap = *dv.value<bool>();
                } else if (key == "connectors" && dv.is_array()) {
                    for (const auto& e : *dv.as_array()) {
                        const auto name = e.value<std::string>();
                        if (!name) return std::unexpected(at + ".connectors: expected strings");
                        p.connectors.push_back(*name);
                    }
                } else {
                    return std::unexpected(
                        at + "." + key +
                        ": unknown key or bad value (group, filter, on_create = \"none\" | "
                        "\"create\", role, on_deactivate = \"nothing\" | \"unassign\" | "
                        "\"change_policy\" | \"remove_user\" | \"remove_user_and_devices\", "
                        "device_policy, connectors, ldap = true | false)");
                }
            }
            c.populations.push_back(std::move(p));
        }
        return {};
    };
}

// The [ldap] keys. Errors from here name the key; the caller adds file and line.
void add_ldap_keys(std::map<std::string, setter, std::less<>>& keys, ldap_draft& d) {
    const auto mark = [&d](setter inner) -> setter {
        return [&d, inner = std::move(inner)](const toml::node& n) {
            d.present = true;
            return inner(n);
        };
    };
    keys["ldap.url"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            if (!v.starts_with("ldap://") && !v.starts_with("ldaps://") &&
                !v.starts_with("ldapi://"))
                return std::unexpected("expected an ldap://, ldaps:// or ldapi:// URL, got \"" + v +
                                       "\"");
            d.url = v;
            return {};
        }));
    keys["ldap.bind_dn"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            d.bind_dn = v;
            return {};
        }));
    keys["ldap.bind_password_file"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            if (v.empty()) return std::unexpected("must not be empty");
            d.password_file = v;
            return {};
        }));
    keys["ldap.suffix"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            if (!bridge::normalize_dn(v) || v.empty())
                return std::unexpected("\"" + v + "\" is not a valid DN");
            d.suffix = v;
            return {};
        }));
    keys["ldap.accesslog_base"] = mark(optional_string(d.accesslog_base));
    keys["ldap.window"] = mark(integer_setter(d.window, 1, 4096));
    keys["ldap.timeout_ms"] = mark(integer_setter(d.timeout_ms, 100, 600'000));
    keys["ldap.passwords"] = mark(bool_setter(d.passwords));
    keys["ldap.ingest"] = mark(bool_setter(d.ingest));
    keys["ldap.users.base"] = mark(optional_string(d.users_base));
    keys["ldap.users.rdn"] = mark(optional_string(d.users_rdn));
    keys["ldap.users.object_classes"] =
        mark([&d](const toml::node& n) -> std::expected<void, std::string> {
            const auto* a = n.as_array();
            if (a == nullptr)
                return std::unexpected(std::string("expected an array of strings, got ") +
                                       type_name(n));
            std::vector<std::string> classes;
            for (const auto& item : *a) {
                const auto* s = item.as_string();
                if (s == nullptr) return std::unexpected("expected an array of strings");
                classes.push_back(s->get());
            }
            d.object_classes = std::move(classes);
            return {};
        });
    keys["ldap.groups.base"] = mark(optional_string(d.groups_base));
    // "" turns device (role) mirroring off.
    keys["ldap.devices.base"] = mark(string_setter([&d](const std::string& v) {
        d.devices_base = v;
        return std::expected<void, std::string>{};
    }));
    keys["ldap.roles.base"] = mark(string_setter([&d](const std::string& v) {
        d.roles_base = v;
        return std::expected<void, std::string>{};
    }));
    keys["ldap.groups.object_class"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            if (v != "groupOfNames" && v != "groupOfUniqueNames")
                return std::unexpected("expected groupOfNames or groupOfUniqueNames, got \"" + v +
                                       "\"");
            d.group_class = v;
            return {};
        }));
    keys["ldap.groups.empty_member"] = mark(optional_string(d.empty_member));
    keys["ldap.deactivate.mode"] =
        mark(string_setter([&d](const std::string& v) -> std::expected<void, std::string> {
            if (auto m = bridge::parse_deactivate_mode(v); !m) return std::unexpected(m.error());
            d.deactivate_mode = v;
            return {};
        }));
    keys["ldap.deactivate.attribute"] = mark(optional_string(d.deactivate_attribute));
    keys["ldap.deactivate.value"] = mark(optional_string(d.deactivate_value));
    keys["ldap.deactivate.base"] = mark(optional_string(d.deactivate_base));
    // LDAP attribute = "SCIM path", or { path = "...", dn = true } for user references, or ""
    // to drop one of the default rules.
    keys["ldap.attributes"] = mark([&d](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            const std::string attr(k.str());
            if (const auto* s = v.as_string()) {
                if (s->get().empty()) {
                    d.attributes.emplace_back(attr, std::nullopt);
                } else {
                    d.attributes.emplace_back(attr, bridge::attribute_rule{attr, s->get(), false});
                }
                continue;
            }
            const auto* rule = v.as_table();
            if (rule == nullptr || !(*rule)["path"].is_string())
                return std::unexpected(
                    attr + ": expected a SCIM path string or { path = \"...\", dn = true }");
            for (const auto& [rk, rv] : *rule) {
                if (rk.str() != "path" && rk.str() != "dn")
                    return std::unexpected(attr + "." + std::string(rk.str()) + ": unknown key");
            }
            const bool dn = (*rule)["dn"].value_or(false);
            d.attributes.emplace_back(
                attr, bridge::attribute_rule{attr, *(*rule)["path"].value<std::string>(), dn});
        }
        return {};
    });
    keys["ldap.drift"] = mark([&d](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            const std::string attr(k.str());
            const auto* s = v.as_string();
            if (s == nullptr) return std::unexpected(attr + ": expected repair, report or accept");
            if (auto p = bridge::parse_drift_policy(s->get()); !p)
                return std::unexpected(attr + ": " + p.error());
            if (attr == "default")
                d.drift_default = s->get();
            else
                d.drift.emplace_back(attr, s->get());
        }
        return {};
    });
}

std::expected<ldap_config, std::string> finish_ldap(const ldap_draft& d) {
    ldap_config c;
    if (d.url.empty()) return std::unexpected("ldap.url: required when [ldap] is configured");
    c.connection.url = d.url;
    c.connection.bind_dn = d.bind_dn;
    c.connection.timeout = std::chrono::milliseconds(d.timeout_ms);
    if (!d.password_file.empty()) {
        c.bind_password_file = d.password_file;
        auto secret = read_secret_file(d.password_file);
        if (!secret) return std::unexpected("ldap.bind_password_file: " + secret.error());
        c.connection.bind_password = std::move(*secret);
    } else if (!d.bind_dn.empty()) {
        return std::unexpected(
            "ldap.bind_password_file: required with ldap.bind_dn (the password "
            "is kept out of the config file)");
    }
    c.window = static_cast<std::size_t>(d.window);
    c.ingest = d.ingest;
    if (d.accesslog_base) c.accesslog_base = *d.accesslog_base;
    auto& m = c.mapping;
    m = bridge::default_mapping(d.suffix);
    if (d.users_base) m.people_base = *d.users_base;
    if (d.users_rdn) m.user_rdn = *d.users_rdn;
    if (d.object_classes) m.user_object_classes = *d.object_classes;
    if (d.groups_base) m.groups_base = *d.groups_base;
    if (d.devices_base) m.devices_base = *d.devices_base;
    if (d.roles_base) m.roles_base = *d.roles_base;
    if (d.group_class)
        m.group_kind = *d.group_class == "groupOfNames"
                           ? bridge::group_class::group_of_names
                           : bridge::group_class::group_of_unique_names;
    if (d.empty_member) m.empty_group_member = *d.empty_member;
    if (d.deactivate_mode) m.on_deactivate = *bridge::parse_deactivate_mode(*d.deactivate_mode);
    if (d.deactivate_attribute) m.deactivate_attribute = *d.deactivate_attribute;
    if (d.deactivate_value) m.deactivate_value = *d.deactivate_value;
    if (d.deactivate_base) m.disabled_base = *d.deactivate_base;
    m.passwords = d.passwords;
    for (const auto& [attr, rule] : d.attributes) {
        auto& rules = m.user_attributes;
        rules.erase(std::remove_if(rules.begin(), rules.end(),
                                   [&](const bridge::attribute_rule& r) {
                                       return model::scim::iequals(r.ldap, attr);
                                   }),
                    rules.end());
        if (rule) rules.push_back(*rule);
    }
    if (d.drift_default) m.default_drift = *bridge::parse_drift_policy(*d.drift_default);
    for (const auto& [attr, policy] : d.drift) {
        m.drift[model::lower(attr)] = *bridge::parse_drift_policy(policy);
    }
    if (auto r = bridge::validate(m); !r) return std::unexpected("ldap." + r.error());
    return c;
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

namespace {

std::expected<toml::table, std::string> parse_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return std::unexpected(file.string() +
                               ": cannot read config file: " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return toml::parse(text.str(), file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << file.string() << ':' << e.source().begin.line << ':' << e.source().begin.column
            << ": " << e.description();
        return std::unexpected(out.str());
    }
}

// SCIMSYNC_LOG__KAFKA__BROKERS=... -> table["log"]["kafka"]["brokers"]; `set` notes which
// variable set which key.
std::expected<void, std::string> overlay_environment(toml::table& table, char** environ,
                                                     std::map<std::string, std::string>& set) {
    constexpr std::string_view prefix = "SCIMSYNC_";
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || !entry.starts_with(prefix)) continue;
        const std::string variable(entry.substr(0, eq));
        const std::string value(entry.substr(eq + 1));
        // SCIMSYNC_KAFKA_BROKERS (the tests' real cluster) and friends are not settings.
        if (variable.starts_with("SCIMSYNC_KAFKA_") || variable.starts_with("SCIMSYNC_DEMO_") ||
            variable == "SCIMSYNC_SKIP_ASAN")
            continue;
        std::vector<std::string> path;
        std::string part;
        const std::string rest = variable.substr(prefix.size());
        for (std::size_t i = 0; i < rest.size(); ++i) {
            if (rest.compare(i, 2, "__") == 0) {
                path.push_back(std::move(part));
                part.clear();
                ++i;
            } else {
                part += char(std::tolower(static_cast<unsigned char>(rest[i])));
            }
        }
        path.push_back(std::move(part));
        if (std::any_of(path.begin(), path.end(), [](const std::string& p) { return p.empty(); }))
            return std::unexpected("environment variable " + variable +
                                   ": not a setting (SCIMSYNC_SECTION__KEY)");
        std::string key;
        toml::table* at = &table;
        for (std::size_t i = 0; i + 1 < path.size(); ++i) {
            key += path[i] + ".";
            auto* node = at->get(path[i]);
            if (node == nullptr) node = at->insert(path[i], toml::table{}).first->second.as_table();
            at = node->as_table();
            if (at == nullptr)
                return std::unexpected("environment variable " + variable + ": " +
                                       key.substr(0, key.size() - 1) + " is not a table");
        }
        key += path.back();
        // A TOML value when it reads as one (8080, true, "quoted"), else the text itself.
        try {
            auto parsed = toml::parse("v = " + value);
            at->insert_or_assign(path.back(), *parsed.get("v"));
        } catch (const toml::parse_error&) {
            at->insert_or_assign(path.back(), value);
        }
        set[key] = variable;
    }
    return {};
}

std::expected<void, std::string> apply_config_table(const toml::table& table,
                                                    const std::filesystem::path& file,
                                                    const std::map<std::string, std::string>* env,
                                                    daemon_config& config);

}  // namespace

std::expected<void, std::string> apply_config_file(const std::filesystem::path& file,
                                                   daemon_config& config) {
    auto table = parse_file(file);
    if (!table) return std::unexpected(table.error());
    return apply_config_table(*table, file, nullptr, config);
}

std::expected<void, std::string> load_config(const std::optional<std::filesystem::path>& file,
                                             char** environ, daemon_config& config) {
    toml::table table;
    if (file) {
        auto parsed = parse_file(*file);
        if (!parsed) return std::unexpected(parsed.error());
        table = std::move(*parsed);
    }
    std::map<std::string, std::string> env;
    if (auto r = overlay_environment(table, environ, env); !r) return r;
    return apply_config_table(table, file.value_or("(no config file)"), &env, config);
}

namespace {

std::expected<void, std::string> apply_config_table(const toml::table& table,
                                                    const std::filesystem::path& file,
                                                    const std::map<std::string, std::string>* env,
                                                    daemon_config& config) {
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
    keys["log.backend"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            if (s == "file") {
                next.backend = log_backend::file;
            } else if (s == "kafka") {
                next.backend = log_backend::kafka;
            } else {
                return std::unexpected("expected \"file\" or \"kafka\", got \"" + s + "\"");
            }
            return {};
        });
    keys["log.kafka.brokers"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            if (s.empty()) return std::unexpected("must name at least one broker (HOST:PORT,...)");
            next.kafka.brokers = s;
            return {};
        });
    keys["log.kafka.topic"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            if (s.empty()) return std::unexpected("must not be empty");
            next.kafka.topic = s;
            return {};
        });
    keys["log.kafka.sasl_password_file"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            auto secret = read_secret_file(s);
            if (!secret) return std::unexpected(secret.error());
            next.kafka.sasl_password_file = s;
            next.kafka.properties.emplace_back("sasl.password", std::move(*secret));
            return {};
        });
    std::int64_t delivery_ms = next.kafka.delivery_timeout.count();
    std::int64_t open_ms = next.kafka.open_timeout.count();
    keys["log.kafka.delivery_timeout_ms"] = integer_setter(delivery_ms, 1000, 3'600'000);
    keys["log.kafka.open_timeout_ms"] = integer_setter(open_ms, 1000, 3'600'000);
    keys["log.kafka.checkpoint_every_events"] =
        integer_setter(next.kafka.checkpoint_every_events, 1, std::int64_t{1} << 40);
    // [log.kafka.properties]: "security.protocol" = "SASL_SSL", ... (librdkafka's names)
    keys["log.kafka.properties"] =
        [&next](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            const std::string name(k.str());
            const std::string where = "line " + std::to_string(v.source().begin.line) + ": " + name;
            const auto* value = v.as_string();
            if (value == nullptr)
                return std::unexpected(where +
                                       ": expected a string (librdkafka takes every "
                                       "setting as text), got " +
                                       type_name(v));
            if (name == "bootstrap.servers" || name == "enable.idempotence" || name == "acks")
                return std::unexpected(where +
                                       ": set by scimsync itself (brokers: "
                                       "log.kafka.brokers; the producer is always "
                                       "idempotent with acks=all)");
            if (auto why = eventlog::check_kafka_property(name, value->get()); !why.empty())
                return std::unexpected(where + ": " + why);
            next.kafka.properties.emplace_back(name, value->get());
        }
        return {};
    };
    keys["log.segment_bytes"] = integer_setter(next.segment_bytes, 4096, std::int64_t{1} << 40);
    keys["log.snapshot_every_events"] =
        integer_setter(next.snapshot_every_events, 1000, std::int64_t{1} << 40);
    keys["http.body_limit_bytes"] = integer_setter(next.body_limit_bytes, 1, std::int64_t{1} << 30);
    keys["http.read_timeout_s"] = integer_setter(timeout_s, 1, 3600);
    keys["http.threads"] = integer_setter(next.threads, 1, 64);
    auto number_setter = [](double& target, double min, double max) -> setter {
        return [&target, min, max](const toml::node& n) -> std::expected<void, std::string> {
            const auto v = n.value<double>();
            if (!v || *v < min || *v > max)
                return std::unexpected("expected a number from " + std::to_string(int(min)) +
                                       " to " + std::to_string(int(max)));
            target = *v;
            return {};
        };
    };
    keys["log.snapshot_growth"] = number_setter(next.snapshot_growth, 0, 100);
    keys["http.rate_limit_per_token"] = number_setter(next.rate_limit_per_token, 0, 1e6);
    keys["http.rate_limit_burst"] = number_setter(next.rate_limit_burst, 0, 1e7);
    keys["http.tls.cert_file"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            next.tls_cert_file = s;
            return {};
        });
    keys["http.tls.key_file"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            next.tls_key_file = s;
            return {};
        });
    keys["logging.level"] =
        string_setter([&](const std::string& s) -> std::expected<void, std::string> {
            if (auto level = parse_log_level(s); !level) return std::unexpected(level.error());
            next.log_level = s;
            return {};
        });
    keys["logging.requests"] = [&](const toml::node& n) -> std::expected<void, std::string> {
        const auto b = n.value<bool>();
        if (!b) return std::unexpected(std::string("expected true or false, got ") + type_name(n));
        next.log_requests = *b;
        return {};
    };
    keys["health.views_max_lag"] = integer_setter(next.views_max_lag, 0, std::int64_t{1} << 40);
    keys["health.ldap_max_lag"] = integer_setter(next.ldap_max_lag, 0, std::int64_t{1} << 40);
    keys["health.policies_max_lag"] =
        integer_setter(next.policies_max_lag, 0, std::int64_t{1} << 40);
    // [tokens.<name>]: file = "/etc/scimsync/tokens/okta", scope = "scim" | "admin"
    keys["tokens"] = [&next](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        next.tokens.clear();
        for (const auto& [k, v] : *t) {
            const std::string name(k.str());
            const std::string where = "line " + std::to_string(v.source().begin.line) + ": " + name;
            const auto* def = v.as_table();
            if (def == nullptr)
                return std::unexpected(where + ": expected a table { file, scope }");
            token_file tf;
            tf.name = name;
            for (const auto& [dk, dv] : *def) {
                if (dk.str() == "file" && dv.is_string()) {
                    tf.file = *dv.value<std::string>();
                } else if (dk.str() == "scope" && dv.is_string()) {
                    tf.scope = *dv.value<std::string>();
                    if (tf.scope != "scim" && tf.scope != "admin")
                        return std::unexpected(where + ".scope: expected \"scim\" or \"admin\"");
                } else {
                    return std::unexpected(where + "." + std::string(dk.str()) +
                                           ": unknown key or wrong type (file and scope are "
                                           "strings)");
                }
            }
            if (tf.file.empty()) return std::unexpected(where + ".file: required");
            next.tokens.push_back(std::move(tf));
        }
        return {};
    };
    ldap_draft ldap;
    add_ldap_keys(keys, ldap);
    // [access.services.<name>]: description = "...", roles = ["viewer", "admin"]
    keys["access.services"] = [&next](const toml::node& n) -> std::expected<void, std::string> {
        const auto* t = n.as_table();
        if (t == nullptr)
            return std::unexpected(std::string("expected a table, got ") + type_name(n));
        for (const auto& [k, v] : *t) {
            const std::string name(k.str());
            const std::string where = "line " + std::to_string(v.source().begin.line) + ": " + name;
            if (name.empty() || name.find('/') != std::string::npos)
                return std::unexpected(where + ": a service name must be non-empty, without '/'");
            const auto* def = v.as_table();
            if (def == nullptr)
                return std::unexpected(where + ": expected a table { description, roles }");
            model::service_def service;
            for (const auto& [dk, dv] : *def) {
                if (dk.str() == "description" && dv.is_string()) {
                    service.description = *dv.value<std::string>();
                } else if (dk.str() == "roles" && dv.is_array()) {
                    for (const auto& r : *dv.as_array()) {
                        const auto role = r.value<std::string>();
                        if (!role || role->empty() || role->find('/') != std::string::npos)
                            return std::unexpected(
                                where + ".roles: expected non-empty strings without '/'");
                        service.roles.insert(*role);
                    }
                } else {
                    return std::unexpected(where + "." + std::string(dk.str()) +
                                           ": unknown key or wrong type (description is a string, "
                                           "roles an array of strings)");
                }
            }
            next.access.services[name] = std::move(service);
        }
        return {};
    };

    add_policy_keys(keys, next.policies);

    if (auto r = apply_table(table, "", keys, locator{file, env}); !r) return r;
    if (auto why = policies::validate(next.policies); !why.empty()) {
        const auto* section = table["policies"].node();
        const auto line = section != nullptr ? section->source().begin.line : 0;
        return std::unexpected(file.string() + ":" + std::to_string(line) + ": " + why);
    }
    if (ldap.present) {
        auto l = finish_ldap(ldap);
        if (!l) {
            const auto* section = table["ldap"].node();
            const auto line = section != nullptr ? section->source().begin.line : 0;
            return std::unexpected(file.string() + ":" + std::to_string(line) + ": " + l.error());
        }
        next.ldap = std::move(*l);
    }
    if (next.backend == log_backend::kafka &&
        (next.kafka.brokers.empty() || next.kafka.topic.empty())) {
        const auto* section = table["log"].node();
        const auto line = section != nullptr ? section->source().begin.line : 0;
        return std::unexpected(file.string() + ":" + std::to_string(line) +
                               ": log.backend = \"kafka\" needs log.kafka.brokers and "
                               "log.kafka.topic");
    }
    if (next.tls_cert_file.empty() != next.tls_key_file.empty()) {
        const auto* section = table["http"].node();
        const auto line = section != nullptr ? section->source().begin.line : 0;
        return std::unexpected(file.string() + ":" + std::to_string(line) +
                               ": http.tls needs both cert_file and key_file");
    }
    next.sections.clear();
    for (const auto& [k, v] : table) {
        std::ostringstream text;
        v.visit([&text](const auto& node) { text << node; });
        next.sections[std::string(k.str())] = text.str();
    }
    next.kafka.delivery_timeout = std::chrono::milliseconds(delivery_ms);
    next.kafka.open_timeout = std::chrono::milliseconds(open_ms);
    next.read_timeout = std::chrono::seconds(timeout_s);
    config = std::move(next);
    return {};
}

}  // namespace

}  // namespace scimsync::daemon
