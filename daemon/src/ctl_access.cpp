#include "ctl_access.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "scimsync/daemon/admin_client.hpp"
#include "scimsync/daemon/scim_service.hpp"
#include "scimsync/policies/policy.hpp"

namespace scimsync::daemon::ctl {

using json = nlohmann::json;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_problem = 1;
constexpr int exit_usage = 2;

void say(const std::string& line) {
    std::cerr << "scimsyncctl: " << line << '\n' << std::flush;
}

std::string escape_segment(std::string_view s) {
    return policies::url_escape(s);
}

struct reply {
    int status = 0;
    json body;
};

// One admin API request through the socket. nullopt (with a message said) when the daemon
// cannot be reached.
std::optional<reply> request(const std::string& socket, const std::string& method,
                             const std::string& path, const json& body = nullptr) {
    json args{{"method", method}, {"path", std::string(admin_api_base) + path}};
    if (!body.is_null()) args["body"] = body;
    auto r = admin_call(socket, "admin.http", args);
    if (!r) {
        say(r.error().message);
        return std::nullopt;
    }
    return reply{r->value("status", 0), r->value("body", json())};
}

std::string detail_of(const reply& r) {
    if (r.body.is_object() && r.body.contains("detail") && r.body["detail"].is_string())
        return r.body["detail"].get<std::string>();
    return "the daemon answered " + std::to_string(r.status);
}

// Prints the answer (JSON, or `human`) and maps the status to an exit code.
int finish(const std::optional<reply>& r, bool as_json,
           const std::function<void(const json&)>& human) {
    if (!r) return exit_problem;
    if (r->status >= 400) {
        if (as_json) std::cout << r->body.dump() << '\n';
        say(detail_of(*r));
        return exit_problem;
    }
    if (as_json)
        std::cout << (r->body.is_null() ? json::object() : r->body).dump() << '\n';
    else
        human(r->body);
    return exit_ok;
}

std::string text(const json& j, const char* key, const char* fallback = "") {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::string joined(const json& list) {
    std::string out;
    if (!list.is_array()) return out;
    for (const auto& v : list)
        out += (out.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
    return out.empty() ? "-" : out;
}

// The id of a user named by id or userName, or of a group named by id or displayName.
std::optional<std::string> user_id(const std::string& socket, const std::string& key) {
    auto r = request(socket, "GET", "/access/users/" + escape_segment(key));
    if (!r) return std::nullopt;
    if (r->status != 200) {
        say(detail_of(*r));
        return std::nullopt;
    }
    return text(r->body, "id");
}

std::optional<std::string> group_id(const std::string& socket, const std::string& key) {
    auto r = request(socket, "GET", "/Groups/" + escape_segment(key) + "?attributes=id");
    if (!r) return std::nullopt;
    if (r->status == 200) return text(r->body, "id");
    std::string quoted;
    for (char c : key) {
        if (c == '"' || c == '\\') quoted.push_back('\\');
        quoted.push_back(c);
    }
    r = request(
        socket, "GET",
        "/Groups?attributes=id&filter=" + escape_segment("displayName eq \"" + quoted + "\""));
    if (!r) return std::nullopt;
    if (r->status == 200 && r->body.value("totalResults", 0) == 1)
        return text(r->body["Resources"][0], "id");
    say("no group with id or displayName \"" + key + "\"");
    return std::nullopt;
}

void print_device(const json& d) {
    std::printf("%-36s %-24s %-16s %-10s %-36s %s\n", text(d, "id").c_str(),
                text(d, "name").c_str(), text(d, "serial").c_str(), text(d, "platform").c_str(),
                text(d, "owner", "-").c_str(), text(d, "policy", "-").c_str());
}

}  // namespace

struct access_commands::options {
    CLI::App* admin = nullptr;
    std::string method, path, data;

    CLI::App *catalogue = nullptr, *users = nullptr, *groups = nullptr, *explain = nullptr,
             *grant = nullptr, *revoke = nullptr;
    std::size_t start = 1, count = 100;
    std::string subject_user, subject_group, service, role, who;

    CLI::App *dev_list = nullptr, *dev_register = nullptr, *dev_update = nullptr,
             *dev_remove = nullptr;
    std::string dev_id, dev_name, dev_serial, dev_platform, dev_owner, dev_policy;
    bool dev_unassign = false;

    CLI::App *user_create = nullptr, *user_activate = nullptr, *user_deactivate = nullptr,
             *user_delete = nullptr;
    std::string user_name, display_name, given_name, family_name, email;

    CLI::App *group_create = nullptr, *group_add = nullptr, *group_remove = nullptr,
             *group_delete = nullptr;
    std::string group_name, member;
    std::vector<std::string> members;

    CLI::App *policy_status = nullptr, *policy_preview = nullptr, *policy_resume = nullptr;
};

access_commands::access_commands(CLI::App& app) : o_(std::make_shared<options>()) {
    auto& o = *o_;
    o.admin = app.add_subcommand(
        "admin", "send one admin API request (METHOD PATH under /admin/v1) as the socket's user");
    o.admin->add_option("method", o.method, "GET, POST, PUT, PATCH or DELETE")->required();
    o.admin->add_option("path", o.path, "e.g. /access/users or /Users/ID")->required();
    o.admin->add_option("--data", o.data, "JSON body");

    auto* access = app.add_subcommand("access", "services, roles and who has them");
    access->require_subcommand(1);
    o.catalogue = access->add_subcommand("catalogue", "the configured services and their roles");
    o.users = access->add_subcommand(
        "users", "every user, local and SCIM: source, status, groups, effective access");
    o.groups =
        access->add_subcommand("groups", "every group: source, member count, access granted");
    for (auto* list : {o.users, o.groups}) {
        list->add_option("--start", o.start, "first item (1-based)");
        list->add_option("--count", o.count, "items per page (at most 1000)");
    }
    o.explain =
        access->add_subcommand("explain", "a user's effective access and where it comes from");
    o.explain->add_option("user", o.who, "user id or userName")->required();
    o.grant = access->add_subcommand("grant", "grant service access or a role");
    o.revoke = access->add_subcommand("revoke", "take back service access or a role");
    for (auto* cmd : {o.grant, o.revoke}) {
        auto* u = cmd->add_option("--user", o.subject_user, "user id or userName");
        auto* g = cmd->add_option("--group", o.subject_group, "group id or displayName");
        u->excludes(g);
        cmd->add_option("--service", o.service, "service name (see access catalogue)")->required();
        cmd->add_option("--role", o.role, "one of the service's roles; none: service access");
    }

    auto* device = app.add_subcommand("device", "devices and who holds them");
    device->require_subcommand(1);
    o.dev_list = device->add_subcommand("list", "list devices");
    o.dev_list->add_option("--owner", o.dev_owner, "only this user's (id or userName)");
    o.dev_register = device->add_subcommand("register", "register a device");
    o.dev_register->add_option("--name", o.dev_name, "display name")->required();
    o.dev_register->add_option("--serial", o.dev_serial, "serial number (unique)")->required();
    o.dev_register->add_option("--platform", o.dev_platform, "e.g. macos, windows, ios");
    o.dev_register->add_option("--owner", o.dev_owner, "user id or userName");
    o.dev_register->add_option("--policy", o.dev_policy, "device policy name");
    o.dev_update = device->add_subcommand("update", "change a device's name, owner or policy");
    o.dev_update->add_option("id", o.dev_id, "device id")->required();
    o.dev_update->add_option("--name", o.dev_name, "display name");
    auto* owner = o.dev_update->add_option("--owner", o.dev_owner, "user id or userName");
    o.dev_update->add_flag("--unassign", o.dev_unassign, "remove the owner")->excludes(owner);
    o.dev_update->add_option("--policy", o.dev_policy, "device policy name");
    o.dev_remove = device->add_subcommand("remove", "remove a device");
    o.dev_remove->add_option("id", o.dev_id, "device id")->required();

    auto* user =
        app.add_subcommand("user", "local users (created here, not by the identity provider)");
    user->require_subcommand(1);
    o.user_create = user->add_subcommand("create", "create a local user");
    o.user_create->add_option("--user-name", o.user_name, "userName (unique)")->required();
    o.user_create->add_option("--display-name", o.display_name, "displayName");
    o.user_create->add_option("--given-name", o.given_name, "name.givenName");
    o.user_create->add_option("--family-name", o.family_name, "name.familyName");
    o.user_create->add_option("--email", o.email, "work email");
    o.user_activate = user->add_subcommand("activate", "set active=true on a local user");
    o.user_deactivate = user->add_subcommand("deactivate", "set active=false on a local user");
    o.user_delete = user->add_subcommand("delete", "delete a local user");
    for (auto* cmd : {o.user_activate, o.user_deactivate, o.user_delete})
        cmd->add_option("user", o.who, "user id or userName")->required();

    auto* group = app.add_subcommand("group", "local groups (created here)");
    group->require_subcommand(1);
    o.group_create = group->add_subcommand("create", "create a local group");
    o.group_create->add_option("--name", o.group_name, "displayName (unique)")->required();
    o.group_create->add_option("--member", o.members, "user or group (id or name), repeatable");
    o.group_add = group->add_subcommand("add-member", "add a user or group to a local group");
    o.group_remove = group->add_subcommand("remove-member", "remove a member from a local group");
    for (auto* cmd : {o.group_add, o.group_remove}) {
        cmd->add_option("group", o.group_name, "group id or displayName")->required();
        cmd->add_option("member", o.member, "user (id or userName) or group (id or name)")
            ->required();
    }
    o.group_delete = group->add_subcommand("delete", "delete a local group");
    o.group_delete->add_option("group", o.group_name, "group id or displayName")->required();

    auto* policy = app.add_subcommand("policy", "deprovisioning policies");
    policy->require_subcommand(1);
    o.policy_status = policy->add_subcommand(
        "status", "populations, paused removals, held and failed decisions, the last error");
    o.policy_preview = policy->add_subcommand(
        "preview", "what deactivating a user would do now, without doing it");
    o.policy_preview->add_option("user", o.who, "user id or userName")->required();
    o.policy_resume = policy->add_subcommand(
        "resume", "carry out the removals held since the deletion threshold tripped");
}

std::optional<int> access_commands::run(const std::string& socket, bool as_json) const {
    const auto& o = *o_;
    auto print_json = [](const json& j) { std::cout << j.dump(2) << '\n'; };

    if (o.admin->parsed()) {
        json body = nullptr;
        if (!o.data.empty()) {
            body = json::parse(o.data, nullptr, false);
            if (body.is_discarded()) {
                say("--data is not valid JSON");
                return exit_usage;
            }
        }
        std::string method = o.method;
        for (auto& c : method) c = char(std::toupper(static_cast<unsigned char>(c)));
        std::string path = o.path;
        if (path.starts_with(admin_api_base)) path.erase(0, admin_api_base.size());
        return finish(request(socket, method, path, body), true, print_json);
    }
    if (o.catalogue->parsed())
        return finish(request(socket, "GET", "/access/catalogue"), as_json, [](const json& b) {
            for (const auto& s : b.value("services", json::array()))
                std::cout << text(s, "name") << "  roles: " << joined(s.value("roles", json()))
                          << (text(s, "description").empty() ? "" : "  — " + text(s, "description"))
                          << '\n';
        });
    if (o.users->parsed() || o.groups->parsed()) {
        const bool users = o.users->parsed();
        const std::string path = std::string(users ? "/access/users" : "/access/groups") +
                                 "?startIndex=" + std::to_string(o.start) +
                                 "&count=" + std::to_string(o.count);
        return finish(request(socket, "GET", path), as_json, [users](const json& b) {
            if (users) {
                std::printf("%-36s %-32s %-6s %-8s %-30s %s\n", "ID", "USERNAME", "SOURCE",
                            "STATUS", "GROUPS", "ACCESS");
                for (const auto& u : b.value("users", json::array()))
                    std::printf("%-36s %-32s %-6s %-8s %-30s %s\n", text(u, "id").c_str(),
                                text(u, "userName").c_str(), text(u, "source").c_str(),
                                u.value("active", true) ? "active" : "inactive",
                                joined(u.value("groups", json())).c_str(),
                                joined(u.value("access", json())).c_str());
            } else {
                std::printf("%-36s %-32s %-6s %8s  %s\n", "ID", "DISPLAYNAME", "SOURCE", "MEMBERS",
                            "ACCESS");
                for (const auto& g : b.value("groups", json::array()))
                    std::printf("%-36s %-32s %-6s %8zu  %s\n", text(g, "id").c_str(),
                                text(g, "displayName").c_str(), text(g, "source").c_str(),
                                g.value("members", std::size_t{0}),
                                joined(g.value("access", json())).c_str());
            }
            std::cout << b.value("totalResults", 0) << " in all\n";
        });
    }
    if (o.explain->parsed())
        return finish(request(socket, "GET", "/access/users/" + escape_segment(o.who)), as_json,
                      [](const json& b) {
                          std::cout << text(b, "userName") << " (" << text(b, "id") << ", "
                                    << text(b, "source") << ", "
                                    << (b.value("active", true) ? "active" : "inactive") << ")\n";
                          for (const auto& a : b.value("access", json::array())) {
                              std::cout << "  " << text(a, "grant") << '\n';
                              for (const auto& v : a.value("via", json::array())) {
                                  if (v.value("direct", false)) {
                                      std::cout << "      granted to the user directly\n";
                                      continue;
                                  }
                                  std::string path;
                                  for (const auto& g : v.value("groups", json::array()))
                                      path += (path.empty() ? "" : " -> ") + text(g, "displayName");
                                  std::cout << "      through " << path << '\n';
                              }
                          }
                          if (b.value("access", json::array()).empty())
                              std::cout << "  no access\n";
                      });
    if (o.grant->parsed() || o.revoke->parsed()) {
        if (o.subject_user.empty() == o.subject_group.empty()) {
            say("name the subject with --user or --group");
            return exit_usage;
        }
        json body{{"service", o.service}};
        if (!o.role.empty()) body["role"] = o.role;
        if (!o.subject_user.empty()) body["user"] = o.subject_user;
        if (!o.subject_group.empty()) body["group"] = o.subject_group;
        const bool give = o.grant->parsed();
        return finish(request(socket, "POST", give ? "/access/grant" : "/access/revoke", body),
                      as_json, [give](const json& b) {
                          std::cout << text(b, "grant")
                                    << (give ? " granted to " : " revoked from ")
                                    << text(b, "subject")
                                    << (b.value("changed", true) ? "" : " (no change)") << '\n';
                      });
    }
    if (o.dev_list->parsed()) {
        std::string path = "/devices";
        if (!o.dev_owner.empty()) path += "?owner=" + escape_segment(o.dev_owner);
        return finish(request(socket, "GET", path), as_json, [](const json& b) {
            std::printf("%-36s %-24s %-16s %-10s %-36s %s\n", "ID", "NAME", "SERIAL", "PLATFORM",
                        "OWNER", "POLICY");
            for (const auto& d : b.value("devices", json::array())) print_device(d);
        });
    }
    if (o.dev_register->parsed() || o.dev_update->parsed()) {
        json body = json::object();
        if (!o.dev_name.empty()) body["name"] = o.dev_name;
        if (!o.dev_serial.empty()) body["serial"] = o.dev_serial;
        if (!o.dev_platform.empty()) body["platform"] = o.dev_platform;
        if (!o.dev_owner.empty()) body["owner"] = o.dev_owner;
        if (o.dev_unassign) body["owner"] = nullptr;
        if (!o.dev_policy.empty()) body["policy"] = o.dev_policy;
        const bool create = o.dev_register->parsed();
        return finish(request(socket, create ? "POST" : "PATCH",
                              create ? "/devices" : "/devices/" + escape_segment(o.dev_id), body),
                      as_json, [](const json& b) { print_device(b); });
    }
    if (o.dev_remove->parsed())
        return finish(request(socket, "DELETE", "/devices/" + escape_segment(o.dev_id)), as_json,
                      [&](const json&) { std::cout << "device " << o.dev_id << " removed\n"; });

    if (o.user_create->parsed()) {
        json body{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                  {"userName", o.user_name},
                  {"active", true}};
        if (!o.display_name.empty()) body["displayName"] = o.display_name;
        if (!o.given_name.empty()) body["name"]["givenName"] = o.given_name;
        if (!o.family_name.empty()) body["name"]["familyName"] = o.family_name;
        if (!o.email.empty())
            body["emails"] = {{{"value", o.email}, {"type", "work"}, {"primary", true}}};
        return finish(request(socket, "POST", "/Users", body), as_json, [](const json& b) {
            std::cout << "local user " << text(b, "userName") << " created: " << text(b, "id")
                      << '\n';
        });
    }
    if (o.user_activate->parsed() || o.user_deactivate->parsed() || o.user_delete->parsed()) {
        auto id = user_id(socket, o.who);
        if (!id) return exit_problem;
        if (o.user_delete->parsed())
            return finish(request(socket, "DELETE", "/Users/" + escape_segment(*id)), as_json,
                          [&](const json&) { std::cout << "user " << o.who << " deleted\n"; });
        const bool active = o.user_activate->parsed();
        json patch{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                   {"Operations", {{{"op", "replace"}, {"path", "active"}, {"value", active}}}}};
        return finish(request(socket, "PATCH", "/Users/" + escape_segment(*id), patch), as_json,
                      [&](const json&) {
                          std::cout << "user " << o.who
                                    << (active ? " activated\n" : " deactivated\n");
                      });
    }
    if (o.group_create->parsed()) {
        json members = json::array();
        for (const auto& m : o.members) {
            auto id = user_id(socket, m);
            if (!id) id = group_id(socket, m);
            if (!id) return exit_problem;
            members.push_back({{"value", *id}});
        }
        json body{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
                  {"displayName", o.group_name},
                  {"members", members}};
        return finish(request(socket, "POST", "/Groups", body), as_json, [](const json& b) {
            std::cout << "local group " << text(b, "displayName") << " created: " << text(b, "id")
                      << '\n';
        });
    }
    if (o.group_add->parsed() || o.group_remove->parsed() || o.group_delete->parsed()) {
        auto gid = group_id(socket, o.group_name);
        if (!gid) return exit_problem;
        if (o.group_delete->parsed())
            return finish(
                request(socket, "DELETE", "/Groups/" + escape_segment(*gid)), as_json,
                [&](const json&) { std::cout << "group " << o.group_name << " deleted\n"; });
        auto mid = user_id(socket, o.member);
        if (!mid) mid = group_id(socket, o.member);
        if (!mid) return exit_problem;
        const bool add = o.group_add->parsed();
        json op = add ? json{{"op", "add"}, {"path", "members"}, {"value", {{{"value", *mid}}}}}
                      : json{{"op", "remove"}, {"path", "members[value eq \"" + *mid + "\"]"}};
        json patch{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                   {"Operations", {op}}};
        return finish(request(socket, "PATCH", "/Groups/" + escape_segment(*gid), patch), as_json,
                      [&](const json&) {
                          std::cout << o.member << (add ? " added to " : " removed from ")
                                    << o.group_name << '\n';
                      });
    }
    if (o.policy_status->parsed())
        return finish(request(socket, "GET", "/policies/status"), as_json, [](const json& b) {
            std::cout << "removals: "
                      << (b.value("paused", false) ? "PAUSED (" + text(b, "paused_reason") +
                                                         "); run scimsyncctl policy resume"
                                                   : std::string("running"))
                      << "\nheld " << b.value("held", 0) << ", decided " << b.value("decided", 0)
                      << ", applied " << b.value("applied", 0) << ", failed "
                      << b.value("failed", 0) << ", lag " << b.value("lag_events", 0)
                      << " events\n";
            for (const auto& p : b.value("populations", json::array()))
                std::cout << "  " << text(p, "name") << ": " << p.value("members", 0)
                          << " members, on_create " << text(p, "on_create") << ", on_deactivate "
                          << text(p, "on_deactivate") << '\n';
            if (!text(b, "last_error").empty())
                std::cout << "last error: " << text(b, "last_error") << '\n';
        });
    if (o.policy_preview->parsed())
        return finish(request(socket, "GET", "/policies/preview/" + escape_segment(o.who)), as_json,
                      [](const json& b) {
                          const auto& ds = b.value("decisions", json::array());
                          if (ds.empty())
                              std::cout << "the user is in no population: nothing would happen\n";
                          for (const auto& d : ds) {
                              std::cout << text(d, "population") << ": " << text(d, "action");
                              if (text(d, "action") == "change_policy")
                                  std::cout << " -> " << text(d, "device_policy");
                              std::cout
                                  << (d.value("held", false) ? " (held: removals are paused)" : "")
                                  << "\n  devices: " << joined(d.value("devices", json())) << '\n';
                              for (const auto& c : d.value("calls", json::array()))
                                  std::cout << "  " << text(c, "connector") << ": "
                                            << text(c, "method") << ' ' << text(c, "url") << '\n';
                          }
                      });
    if (o.policy_resume->parsed())
        return finish(request(socket, "POST", "/policies/resume", json::object()), as_json,
                      [](const json& b) {
                          std::cout << (b.value("resumed", false)
                                            ? "removals resumed; held decisions are carried out\n"
                                            : "removals were not paused\n");
                      });
    return std::nullopt;
}

}  // namespace scimsync::daemon::ctl
