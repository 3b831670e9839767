#include "scimsync/daemon/access_api.hpp"

#include <algorithm>
#include <future>

#include <nlohmann/json.hpp>

#include "scimsync/model/events.hpp"
#include "secrets.hpp"

namespace scimsync::daemon {

namespace el = scimsync::eventlog;
namespace names = scimsync::model::event_names;
using json = nlohmann::json;

namespace {

using refusal = scim_service::refusal;

http_response answer(int status, const json& body) {
    return json_response(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

http_response refused(const refusal& r) {
    return scim_service::error(r.status, r.detail);
}

el::event admin_event(const char* type, std::string stream, const json& data,
                      const std::string& actor, const http_request& req) {
    el::event e;
    e.type = type;
    e.version = 1;
    e.source = "admin";
    e.actor = actor;
    if (auto h = req.header("x-request-id")) e.request_id = std::string(h->substr(0, 128));
    e.stream = std::move(stream);
    e.data = data.dump();
    return e;
}

std::optional<json> body_object(const http_request& req, http_response& bad) {
    auto j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        bad = scim_service::error(400, "the body must be a JSON object");
        return std::nullopt;
    }
    return j;
}

// A resource named by id, else by its unique name; nullptr when neither matches.
template <class State>
const State* find_named(const State* by_id, const State* by_name, const std::string& key,
                        std::string* id) {
    if (by_id != nullptr) {
        *id = key;
        return by_id;
    }
    if (by_name != nullptr) *id = json::parse(by_name->json).value("id", std::string());
    return by_name;
}

// A user named by id or userName.
const model::user_state* find_user(const model::directory& d, const std::string& key,
                                   std::string* id) {
    return find_named(d.user(key), d.user_by_name(key), key, id);
}

// A group named by id or displayName.
const model::group_state* find_group(const model::directory& d, const std::string& key,
                                     std::string* id) {
    return find_named(d.group(key), d.group_by_name(key), key, id);
}

std::string client_of(const model::directory& d, const model::resource_state& r) {
    if (r.local) return {};
    std::string owner = d.owner(r);
    if (owner.starts_with("token:"))
        if (const auto* t = d.token(owner.substr(6))) return t->name;
    return owner;
}

json grants_json(const std::set<model::grant>* grants) {
    json out = json::array();
    if (grants != nullptr)
        for (const auto& g : *grants) out.push_back(g.label());
    return out;
}

json user_summary(const model::directory& d, const std::string& id, const model::user_state& u) {
    const json res = json::parse(u.json);
    std::vector<std::string> names;
    for (const auto& g : model::all_groups_of(d, id))
        if (const auto* gs = d.group(g)) names.push_back(gs->display_name);
    std::sort(names.begin(), names.end());
    json groups = names;
    json access = json::array();
    for (const auto& e : model::effective_access(d, id)) access.push_back(e.grant.label());
    json j{{"id", id},
           {"userName", u.user_name},
           {"active", res.value("active", true)},
           {"source", u.local ? "local" : "scim"},
           {"groups", std::move(groups)},
           {"access", std::move(access)}};
    if (!u.local) j["client"] = client_of(d, u);
    if (res.contains("displayName")) j["displayName"] = res["displayName"];
    return j;
}

json explain(const model::directory& d, const std::string& id, const model::user_state& u) {
    json out = user_summary(d, id, u);
    json access = json::array();
    for (const auto& e : model::effective_access(d, id)) {
        json via = json::array();
        for (const auto& r : e.reasons) {
            if (r.direct()) {
                via.push_back({{"direct", true}});
                continue;
            }
            json path = json::array();
            for (const auto& g : r.path) {
                const auto* gs = d.group(g);
                path.push_back({{"id", g}, {"displayName", gs ? gs->display_name : ""}});
            }
            via.push_back({{"direct", false}, {"groups", std::move(path)}});
        }
        access.push_back({{"grant", e.grant.label()},
                          {"service", e.grant.service},
                          {"role", e.grant.role.empty() ? json(nullptr) : json(e.grant.role)},
                          {"via", std::move(via)}});
    }
    out["access"] = std::move(access);
    json devices = json::array();
    for (const auto* dev : d.access().devices_of(id)) devices.push_back(model::device_json(*dev));
    out["devices"] = std::move(devices);
    return out;
}

// startIndex (1-based) and count from the query: a page of `total` items.
std::pair<std::size_t, std::size_t> page_of(const std::map<std::string, std::string>& q,
                                            std::size_t total) {
    auto number = [&](const char* key, std::size_t fallback) {
        auto it = q.find(key);
        if (it == q.end()) return fallback;
        try {
            const long long v = std::stoll(it->second);
            return v < 0 ? std::size_t(0) : std::size_t(v);
        } catch (const std::exception&) {
            return fallback;
        }
    };
    const std::size_t start = std::max<std::size_t>(1, number("startindex", 1)) - 1;
    const std::size_t count = std::min<std::size_t>(number("count", 100), 1000);
    const std::size_t first = std::min(start, total);
    return {first, std::min(total, first + count)};
}

json list_answer(json items, const char* key, std::size_t total, std::size_t first) {
    return {{"totalResults", total},
            {"startIndex", first + 1},
            {"itemsPerPage", items.size()},
            {key, std::move(items)}};
}

// The admin lists: every id, sorted by name case-insensitively, one page (startIndex, count)
// rendered, in the list shape.
template <class NameOf, class Render>
json sorted_page(const std::vector<std::string_view>& ids, NameOf name_of, Render render,
                 const std::map<std::string, std::string>& query, const char* key) {
    std::vector<std::pair<std::string, std::string_view>> order;
    order.reserve(ids.size());
    for (const auto id : ids) order.emplace_back(model::lower(name_of(id)), id);
    std::sort(order.begin(), order.end());
    const auto [first, last] = page_of(query, order.size());
    json items = json::array();
    for (std::size_t i = first; i < last; ++i)
        items.push_back(render(std::string(order[i].second)));
    return list_answer(std::move(items), key, order.size(), first);
}

// The device fields an admin may set, checked: name, serial, platform, owner, policy.
std::optional<refusal> device_fields(const model::directory& d, const json& body,
                                     model::device_state& dev, bool creating) {
    for (const auto& [key, value] : body.items()) {
        const bool nullable = key == "owner" || key == "policy";
        if (key != "name" && key != "serial" && key != "platform" && !nullable)
            return refusal{400, "unknown device field \"" + key +
                                    "\" (fields: name, serial, platform, owner, policy)"};
        if (!(value.is_string() || (nullable && value.is_null())))
            return refusal{400, "device field \"" + key + "\" must be a string" +
                                    (nullable ? " or null" : "")};
        const std::string text = value.is_null() ? std::string() : value.get<std::string>();
        if (key == "name") dev.name = text;
        if (key == "serial") dev.serial = text;
        if (key == "platform") dev.platform = text;
        if (key == "policy") dev.policy = text;
        if (key == "owner") {
            dev.owner.clear();
            if (!text.empty() && find_user(d, text, &dev.owner) == nullptr)
                return refusal{400, "owner \"" + text + "\" is not a user here"};
        }
    }
    if (creating && (dev.name.empty() || dev.serial.empty()))
        return refusal{400, "a device needs a name and a serial"};
    if (dev.name.empty()) return refusal{400, "a device's name must not be empty"};
    if (const auto* other = d.access().device_by_serial(dev.serial);
        other != nullptr && other->id != dev.id)
        return refusal{
            409, "serial \"" + dev.serial + "\" is already registered as device " + other->id};
    return std::nullopt;
}

}  // namespace

access_api::access_api(scim_service& scim, model::access_catalogue catalogue)
    : scim_(scim),
      catalogue_(std::make_shared<const model::access_catalogue>(std::move(catalogue))) {}

void access_api::set_catalogue(model::access_catalogue catalogue) {
    auto next = std::make_shared<const model::access_catalogue>(std::move(catalogue));
    std::lock_guard lk(mu_);
    catalogue_ = std::move(next);
}

std::shared_ptr<const model::access_catalogue> access_api::catalogue() const {
    std::lock_guard lk(mu_);
    return catalogue_;
}

void access_api::add_routes(router& routes) {
    const std::string base(admin_api_base);
    scim_service* s = &scim_;
    const access_api* self = this;
    // Every route authenticates first; `fn` gets the actor.
    auto guarded = [s](auto fn) {
        return [s, fn](http_request req, respond_fn respond) {
            auto actor = s->admin_actor(req);
            if (!actor) return respond(std::move(actor.error()));
            fn(*actor, std::move(req), std::move(respond));
        };
    };

    routes.add_async("GET", base + "/access/catalogue",
                     guarded([self](const std::string&, http_request, respond_fn respond) {
                         respond(answer(200, {{"services", self->catalogue()->to_json()}}));
                     }));

    // Local and SCIM users together, by userName.
    routes.add_async(
        "GET", base + "/access/users",
        guarded([s](const std::string&, http_request req, respond_fn respond) {
            json out;
            s->read([&](const model::directory& d) {
                out = sorted_page(
                    d.user_ids(), [&](std::string_view id) { return d.user(id)->user_name; },
                    [&](const std::string& id) { return user_summary(d, id, *d.user(id)); },
                    parse_query(req.query()), "users");
            });
            respond(answer(200, out));
        }));

    routes.add_async("GET", base + "/access/users/{id}",
                     guarded([s](const std::string&, http_request req, respond_fn respond) {
                         const std::string key = req.path_params.at("id");
                         std::optional<json> out;
                         s->read([&](const model::directory& d) {
                             std::string id;
                             if (const auto* u = find_user(d, key, &id)) out = explain(d, id, *u);
                         });
                         if (!out)
                             return respond(scim_service::error(
                                 404, "no user with id or userName \"" + key + "\""));
                         respond(answer(200, *out));
                     }));

    routes.add_async("GET", base + "/access/groups",
                     guarded([s](const std::string&, http_request req, respond_fn respond) {
                         json out;
                         s->read([&](const model::directory& d) {
                             out = sorted_page(
                                 d.group_ids(),
                                 [&](std::string_view id) { return d.group(id)->display_name; },
                                 [&](const std::string& id) {
                                     const auto* g = d.group(id);
                                     const auto* members = d.members(id);
                                     json j{{"id", id},
                                            {"displayName", g->display_name},
                                            {"source", g->local ? "local" : "scim"},
                                            {"members", members ? members->size() : 0},
                                            {"access", grants_json(d.access().group_grants(id))}};
                                     if (!g->local) j["client"] = client_of(d, *g);
                                     return j;
                                 },
                                 parse_query(req.query()), "groups");
                         });
                         respond(answer(200, out));
                     }));

    // POST /access/grant and /access/revoke: {"user" | "group": id or name, "service", "role"}.
    for (const bool give : {true, false}) {
        routes.add_async(
            "POST", base + (give ? "/access/grant" : "/access/revoke"),
            guarded(
                [s, self, give](const std::string& actor, http_request req, respond_fn respond) {
                    http_response bad;
                    auto body = body_object(req, bad);
                    if (!body) return respond(std::move(bad));
                    const bool for_user = body->contains("user");
                    if (for_user == body->contains("group"))
                        return respond(scim_service::error(
                            400, "name exactly one subject: \"user\" or \"group\" (id or name)"));
                    const std::string key = body->value(for_user ? "user" : "group", std::string());
                    model::grant g{body->value("service", std::string()),
                                   (*body)["role"].is_string() ? (*body)["role"].get<std::string>()
                                                               : std::string()};
                    if (auto why = self->catalogue()->check(g); !why.empty())
                        return respond(scim_service::error(400, why));
                    auto result = std::make_shared<json>();
                    s->execute(
                        [&, result](const model::directory& d) -> scim_service::decision {
                            std::string id;
                            const bool found = for_user ? find_user(d, key, &id) != nullptr
                                                        : find_group(d, key, &id) != nullptr;
                            if (!found)
                                return std::unexpected(
                                    refusal{404, std::string(for_user ? "no user" : "no group") +
                                                     " with id or name \"" + key + "\""});
                            const std::string type = for_user ? "User" : "Group";
                            const auto* held = d.access().grants_of(type + "/" + id);
                            const bool has = held != nullptr && held->contains(g);
                            *result = {{"subject", type + "/" + id},
                                       {"grant", g.label()},
                                       {"changed", has != give}};
                            if (has == give) return std::vector<el::event>{};
                            json data{{"subject", {{"type", type}, {"id", id}}},
                                      {"service", g.service},
                                      {"role", g.role}};
                            return std::vector<el::event>{
                                admin_event(give ? names::access_granted : names::access_revoked,
                                            "Access/" + type + "/" + id, data, actor, req)};
                        },
                        [respond, result](std::optional<refusal> r) {
                            respond(r ? refused(*r) : answer(200, *result));
                        });
                }));
    }

    // ---- devices ----
    routes.add_async("GET", base + "/devices",
                     guarded([s](const std::string&, http_request req, respond_fn respond) {
                         const auto q = parse_query(req.query());
                         json items = json::array();
                         s->read([&](const model::directory& d) {
                             std::string owner;
                             if (auto it = q.find("owner"); it != q.end()) {
                                 if (find_user(d, it->second, &owner) == nullptr) return;
                                 for (const auto* dev : d.access().devices_of(owner))
                                     items.push_back(model::device_json(*dev));
                                 return;
                             }
                             for (const auto* dev : d.access().devices())
                                 items.push_back(model::device_json(*dev));
                         });
                         respond(answer(200, {{"devices", std::move(items)}}));
                     }));
    routes.add_async("GET", base + "/devices/{id}",
                     guarded([s](const std::string&, http_request req, respond_fn respond) {
                         const std::string id = req.path_params.at("id");
                         std::optional<json> out;
                         s->read([&](const model::directory& d) {
                             if (const auto* dev = d.access().device(id))
                                 out = model::device_json(*dev);
                         });
                         if (!out) return respond(scim_service::error(404, "no device " + id));
                         respond(answer(200, *out));
                     }));
    routes.add_async(
        "POST", base + "/devices",
        guarded([s](const std::string& actor, http_request req, respond_fn respond) {
            http_response bad;
            auto body = body_object(req, bad);
            if (!body) return respond(std::move(bad));
            auto dev = std::make_shared<model::device_state>();
            dev->id = secrets::uuid_v4();
            s->execute(
                [&](const model::directory& d) -> scim_service::decision {
                    if (auto why = device_fields(d, *body, *dev, true))
                        return std::unexpected(*why);
                    return std::vector<el::event>{admin_event(
                        names::device_registered, "Device/" + dev->id,
                        {{"id", dev->id}, {"device", model::device_json(*dev)}}, actor, req)};
                },
                [respond, dev](std::optional<refusal> r) {
                    respond(r ? refused(*r) : answer(201, model::device_json(*dev)));
                });
        }));
    routes.add_async(
        "PATCH", base + "/devices/{id}",
        guarded([s](const std::string& actor, http_request req, respond_fn respond) {
            http_response bad;
            auto body = body_object(req, bad);
            if (!body) return respond(std::move(bad));
            const std::string id = req.path_params.at("id");
            auto dev = std::make_shared<model::device_state>();
            s->execute(
                [&](const model::directory& d) -> scim_service::decision {
                    const auto* current = d.access().device(id);
                    if (current == nullptr) return std::unexpected(refusal{404, "no device " + id});
                    *dev = *current;
                    if (auto why = device_fields(d, *body, *dev, false))
                        return std::unexpected(*why);
                    if (*dev == *current) return std::vector<el::event>{};
                    return std::vector<el::event>{admin_event(
                        names::device_updated, "Device/" + id,
                        {{"id", id}, {"device", model::device_json(*dev)}}, actor, req)};
                },
                [respond, dev](std::optional<refusal> r) {
                    respond(r ? refused(*r) : answer(200, model::device_json(*dev)));
                });
        }));
    routes.add_async(
        "DELETE", base + "/devices/{id}",
        guarded([s](const std::string& actor, http_request req, respond_fn respond) {
            const std::string id = req.path_params.at("id");
            s->execute(
                [&](const model::directory& d) -> scim_service::decision {
                    if (d.access().device(id) == nullptr)
                        return std::unexpected(refusal{404, "no device " + id});
                    return std::vector<el::event>{admin_event(names::device_removed, "Device/" + id,
                                                              {{"id", id}}, actor, req)};
                },
                [respond](std::optional<refusal> r) {
                    if (r) return respond(refused(*r));
                    http_response ok;
                    ok.status = 204;
                    respond(std::move(ok));
                });
        }));
}

void access_api::add_commands(command_registry& commands, const router& routes) {
    const router* r = &routes;
    commands.add("admin.http", [r](const json& args) -> command_result {
        http_request req;
        req.method = args.value("method", std::string("GET"));
        req.target = args.value("path", std::string());
        if (!req.target.starts_with(admin_api_base))
            return std::unexpected("admin requests go to paths under " +
                                   std::string(admin_api_base));
        if (args.contains("body") && !args["body"].is_null()) {
            req.body = args["body"].dump();
            req.headers.emplace_back("content-type", "application/json");
        }
        req.remote = "admin-socket";
        req.trusted_actor = socket_actor(args);
        const http_response res = r->handle(std::move(req));
        json body = res.body.empty() ? json(nullptr) : json::parse(res.body, nullptr, false);
        if (body.is_discarded()) body = res.body;
        return json{{"status", res.status}, {"body", std::move(body)}};
    });
}

}  // namespace scimsync::daemon
