#include "ctl_audit.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "progress.hpp"
#include "scimsync/bridge/entry.hpp"
#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/events.hpp"

namespace scimsync::daemon::ctl {

namespace {

namespace el = scimsync::eventlog;
using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr int exit_ok = 0;
constexpr int exit_problem = 1;
constexpr int exit_usage = 2;

void say(const std::string& line) {
    std::cerr << "scimsyncctl: " << line << '\n' << std::flush;
}

// A point in the log: a sequence number, or a time (events at or before it count).
struct point {
    std::optional<std::uint64_t> seq;
    std::optional<el::utc_time> time;
};

std::expected<point, std::string> parse_point(const std::string& text) {
    point p;
    if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        std::uint64_t v = 0;
        std::from_chars(text.data(), text.data() + text.size(), v);
        p.seq = v;
        return p;
    }
    auto t = el::parse_time(text);
    if (!t)
        return std::unexpected("\"" + text + "\" is neither a sequence number nor a time (" +
                               t.error().message + ")");
    p.time = *t;
    return p;
}

bool beyond(const el::event& e, const point& p) {
    return (p.seq && e.seq.value > *p.seq) || (p.time && e.time > *p.time);
}

// Folds the log into a directory, in order, up to a point; can go on to a later point.
class folder {
public:
    explicit folder(el::log& log) : log_(log) {}

    el::result<void> advance_to(const point& p, progress_meter& meter) {
        if (!reader_) {
            auto r = log_.read_from(el::seq_no{1});
            if (!r) return std::unexpected(r.error());
            reader_ = std::move(*r);
        }
        const auto last = log_.last_seq().value;
        while (true) {
            if (!pending_) {
                el::event e;
                auto more = reader_->next(e);
                if (!more) return std::unexpected(more.error());
                if (!*more) return {};
                pending_ = std::move(e);
            }
            if (beyond(*pending_, p)) return {};
            el::event e = std::move(*pending_);
            pending_.reset();
            if (auto r = model::catalogue().upcast(e); !r) return r;
            if (auto r = dir_.apply(e); !r) return r;
            at_ = e.seq;
            time_ = e.time;
            meter.update(at_.value, last);
        }
    }

    const model::directory& dir() const { return dir_; }
    el::seq_no at() const { return at_; }
    el::utc_time time() const { return time_; }

private:
    el::log& log_;
    std::unique_ptr<el::reader> reader_;
    std::optional<el::event> pending_;
    model::directory dir_;
    el::seq_no at_;
    el::utc_time time_{};
};

json meta_of(const model::resource_state& r) {
    return {{"created", el::format_time(r.created)},
            {"lastModified", el::format_time(r.last_modified)},
            {"version", "W/\"" + std::to_string(r.version) + "\""}};
}

std::vector<json> members_of(const model::directory& d, std::string_view group) {
    std::vector<json> out;
    if (const auto* m = d.members(group)) {
        std::vector<std::pair<std::string, std::string>> sorted(m->begin(), m->end());
        std::sort(sorted.begin(), sorted.end());
        for (const auto& [value, type] : sorted) out.push_back({{"value", value}, {"type", type}});
    }
    return out;
}

// The directory as JSON: users and groups as SCIM resources (members included, no secrets),
// the access grants and devices.
ordered_json state_json(const folder& f) {
    const auto& d = f.dir();
    json users = json::array(), groups = json::array();
    for (auto id : d.user_ids()) {
        const auto* u = d.user(id);
        json j = json::parse(u->json);
        j["meta"] = meta_of(*u);
        users.push_back(std::move(j));
    }
    for (auto id : d.group_ids()) {
        const auto* g = d.group(id);
        json j = json::parse(g->json);
        j["members"] = members_of(d, id);
        j["meta"] = meta_of(*g);
        groups.push_back(std::move(j));
    }
    ordered_json out;
    out["as_of"] = {{"seq", f.at().value},
                    {"time", f.at().value == 0 ? json(nullptr) : json(el::format_time(f.time()))}};
    out["users"] = users;
    out["groups"] = groups;
    out["access"] = d.access().to_json();
    return out;
}

// RFC 2849: a value that is not a SAFE-STRING goes base64 ("attr:: ...").
std::string ldif_line(const std::string& attr, const std::string& value) {
    bool safe = value.empty() || (value.front() != ' ' && value.front() != ':' &&
                                  value.front() != '<' && value.back() != ' ');
    for (unsigned char c : value)
        if (c == 0 || c == '\n' || c == '\r' || c > 0x7f) safe = false;
    if (safe) return attr + ": " + value + "\n";
    std::string out(4 * ((value.size() + 2) / 3) + 1, '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(value.data()), int(value.size()));
    out.resize(std::size_t(n));
    return attr + ":: " + out + "\n";
}

void write_ldif_entry(std::ostream& out, const bridge::ldap_entry& e) {
    out << ldif_line("dn", e.dn);
    for (const auto& [attr, values] : e.attrs)
        for (const auto& v : values) out << ldif_line(attr, v);
    out << '\n';
}

// The directory as LDIF, as the bridge's mapping would write it (no password hashes).
int write_ldif(const folder& f, const bridge::mapping& m) {
    auto builder = bridge::entry_builder::compile(m);
    if (!builder) {
        say("state: the LDAP mapping: " + builder.error());
        return exit_usage;
    }
    const auto& d = f.dir();
    auto user_dn = [&](std::string_view id) -> std::optional<std::string> {
        const auto* u = d.user(id);
        if (u == nullptr) return std::nullopt;
        return builder->user_dn(json::parse(u->json));
    };
    std::cout << "# scimsync directory as of seq " << f.at().value
              << (f.at().value ? " (" + el::format_time(f.time()) + ")" : std::string()) << "\n\n";
    for (auto id : d.user_ids()) {
        const auto* u = d.user(id);
        if (auto e = builder->user_entry(json::parse(u->json), std::nullopt, user_dn))
            write_ldif_entry(std::cout, *e);
    }
    for (auto id : d.group_ids()) {
        const auto* g = d.group(id);
        std::vector<std::string> dns;
        for (const auto& m2 : members_of(d, id)) {
            const std::string v = m2["value"];
            if (m2["type"] == "Group") {
                if (const auto* sub = d.group(v))
                    dns.push_back(builder->group_dn(json::parse(sub->json)));
            } else if (auto dn = user_dn(v)) {
                dns.push_back(*dn);
            }
        }
        write_ldif_entry(std::cout, builder->group_entry(json::parse(g->json), std::move(dns)));
    }
    return exit_ok;
}

// Who caused an event, for people: token names instead of ids.
std::string actor_name(const model::directory& d, const std::string& actor) {
    if (actor.starts_with("token:")) {
        if (const auto* t = d.token(actor.substr(6))) return t->name + " (token " + t->id + ")";
    }
    if (actor.starts_with("config-token:")) return actor.substr(13) + " (configured token)";
    return actor;
}

std::string summary_of(const el::event& e) {
    const auto data = json::parse(e.data, nullptr, false);
    if (!data.is_object()) return "";
    std::string out;
    if (auto r = data.find("resource"); r != data.end() && r->is_object()) {
        if (r->contains("userName")) out += "userName=" + r->value("userName", "");
        if (r->contains("displayName"))
            out += (out.empty() ? "" : " ") + std::string("displayName=") +
                   r->value("displayName", "");
        if (r->contains("active"))
            out += std::string(" active=") + ((*r)["active"] == true ? "true" : "false");
    }
    for (const char* k : {"added", "removed"})
        if (auto a = data.find(k); a != data.end() && a->is_array() && !a->empty())
            out += (out.empty() ? "" : " ") + std::string(k) + "=" + std::to_string(a->size());
    for (const char* k : {"service", "role", "action", "trigger", "change", "dn", "reason"})
        if (auto v = data.find(k);
            v != data.end() && v->is_string() && !v->get<std::string>().empty())
            out += (out.empty() ? "" : " ") + std::string(k) + "=" + v->get<std::string>();
    if (auto x = data.find("expect"); x != data.end()) out += " (with preconditions)";
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

struct audit_commands::options {
    CLI::App* history = nullptr;
    std::string subject;
    CLI::App* state = nullptr;
    std::string as_of;
    std::string format = "json";
    std::string suffix = "dc=example,dc=com";
    CLI::App* diff = nullptr;
    std::string from, to;
};

audit_commands::audit_commands(CLI::App& app) : o_(std::make_shared<options>()) {
    o_->history = app.add_subcommand(
        "history", "every event that touched a user or group, and who caused it (offline)");
    o_->history
        ->add_option("subject", o_->subject, "User/<id>, Group/<id>, or a userName (any case)")
        ->required();
    o_->state = app.add_subcommand("state", "the directory as it was at a point (offline)");
    o_->state->add_option("--as-of", o_->as_of, "a sequence number or an RFC 3339 time")
        ->required();
    o_->state->add_option("--format", o_->format, "json or ldif")
        ->check(CLI::IsMember({"json", "ldif"}))
        ->capture_default_str();
    o_->state
        ->add_option("--suffix", o_->suffix,
                     "LDIF without an [ldap] section in --config: the default mapping under this "
                     "suffix")
        ->capture_default_str();
    o_->diff = app.add_subcommand("diff", "what changed between two points (offline)");
    o_->diff->add_option("--from", o_->from, "a sequence number or an RFC 3339 time")->required();
    o_->diff->add_option("--to", o_->to, "a sequence number or an RFC 3339 time")->required();
}

std::optional<int> audit_commands::run(
    const std::function<el::result<std::unique_ptr<el::log>>()>& open_log,
    const std::optional<bridge::mapping>& ldap, bool as_json) const {
    const auto& o = *o_;
    if (!o.history->parsed() && !o.state->parsed() && !o.diff->parsed()) return std::nullopt;
    const bool tty = ::isatty(STDERR_FILENO) == 1;

    std::optional<point> a, b;
    if (o.state->parsed() || o.diff->parsed()) {
        auto pa = parse_point(o.state->parsed() ? o.as_of : o.from);
        if (!pa) {
            say((o.state->parsed() ? "--as-of: " : "--from: ") + pa.error());
            return exit_usage;
        }
        a = *pa;
        if (o.diff->parsed()) {
            auto pb = parse_point(o.to);
            if (!pb) {
                say("--to: " + pb.error());
                return exit_usage;
            }
            b = *pb;
        }
    }
    auto opened = open_log();
    if (!opened) {
        say(opened.error().message);
        return exit_problem;
    }
    el::log& log = **opened;
    progress_meter meter("replaying", tty, progress_meter::unit::events);
    folder f(log);

    if (o.state->parsed()) {
        if (auto r = f.advance_to(*a, meter); !r) {
            meter.finish();
            say("state: " + r.error().message);
            return exit_problem;
        }
        meter.finish();
        if (o.format == "ldif")
            return write_ldif(f, ldap ? *ldap : bridge::default_mapping(o.suffix));
        std::cout << state_json(f).dump(as_json ? -1 : 2) << '\n';
        return exit_ok;
    }

    if (o.diff->parsed()) {
        if (auto r = f.advance_to(*a, meter); !r) {
            meter.finish();
            say("diff: " + r.error().message);
            return exit_problem;
        }
        const model::directory before = f.dir();
        const auto from_seq = f.at();
        if (auto r = f.advance_to(*b, meter); !r) {
            meter.finish();
            say("diff: " + r.error().message);
            return exit_problem;
        }
        meter.finish();
        const auto& after = f.dir();
        ordered_json out;
        out["from_seq"] = from_seq.value;
        out["to_seq"] = f.at().value;
        auto resources = [&](bool users) {
            ordered_json added = json::array(), removed = json::array(), changed = json::array();
            const auto ids_before = users ? before.user_ids() : before.group_ids();
            const auto ids_after = users ? after.user_ids() : after.group_ids();
            std::set<std::string_view> all(ids_before.begin(), ids_before.end());
            all.insert(ids_after.begin(), ids_after.end());
            for (auto id : all) {
                const model::resource_state* x =
                    users ? static_cast<const model::resource_state*>(before.user(id))
                          : before.group(id);
                const model::resource_state* y =
                    users ? static_cast<const model::resource_state*>(after.user(id))
                          : after.group(id);
                const std::string name_key = users ? "userName" : "displayName";
                if (x == nullptr) {
                    added.push_back(
                        {{"id", id}, {name_key, json::parse(y->json).value(name_key, "")}});
                    continue;
                }
                if (y == nullptr) {
                    removed.push_back(
                        {{"id", id}, {name_key, json::parse(x->json).value(name_key, "")}});
                    continue;
                }
                const json jx = json::parse(x->json), jy = json::parse(y->json);
                ordered_json c{{"id", id}, {name_key, jy.value(name_key, "")}};
                json attrs = json::array();
                std::set<std::string> keys;
                for (auto it = jx.begin(); it != jx.end(); ++it) keys.insert(it.key());
                for (auto it = jy.begin(); it != jy.end(); ++it) keys.insert(it.key());
                for (const auto& k : keys) {
                    const json vx = jx.contains(k) ? jx[k] : json(nullptr);
                    const json vy = jy.contains(k) ? jy[k] : json(nullptr);
                    if (vx != vy) attrs.push_back({{"attribute", k}, {"from", vx}, {"to", vy}});
                }
                if (!attrs.empty()) c["attributes"] = attrs;
                if (!users) {
                    std::set<std::string> mx, my;
                    for (const auto& m : members_of(before, id)) mx.insert(m["value"]);
                    for (const auto& m : members_of(after, id)) my.insert(m["value"]);
                    json plus = json::array(), minus = json::array();
                    for (const auto& m : my)
                        if (!mx.contains(m)) plus.push_back(m);
                    for (const auto& m : mx)
                        if (!my.contains(m)) minus.push_back(m);
                    if (!plus.empty()) c["members_added"] = plus;
                    if (!minus.empty()) c["members_removed"] = minus;
                }
                if (c.size() > 2) changed.push_back(std::move(c));
            }
            return ordered_json{{"added", added}, {"removed", removed}, {"changed", changed}};
        };
        out["users"] = resources(true);
        out["groups"] = resources(false);
        // Direct grants (service, role) per subject, and devices by id.
        const json access_before = before.access().to_json(),
                   access_after = after.access().to_json();
        {
            ordered_json added = json::array(), removed = json::array();
            auto grants_of = [](const json& access, const std::string& subject) {
                std::set<json> held;
                if (auto it = access.at("grants").find(subject); it != access.at("grants").end())
                    for (const auto& g : *it) held.insert(g);
                return held;
            };
            std::set<std::string> subjects;
            for (const json* side : {&access_before, &access_after})
                for (auto it = side->at("grants").begin(); it != side->at("grants").end(); ++it)
                    subjects.insert(it.key());
            for (const auto& subject : subjects) {
                const auto x = grants_of(access_before, subject),
                           y = grants_of(access_after, subject);
                for (const auto& g : y)
                    if (!x.contains(g))
                        added.push_back({{"subject", subject}, {"service", g[0]}, {"role", g[1]}});
                for (const auto& g : x)
                    if (!y.contains(g))
                        removed.push_back(
                            {{"subject", subject}, {"service", g[0]}, {"role", g[1]}});
            }
            out["grants"] = ordered_json{{"added", added}, {"removed", removed}};
        }
        {
            auto by_id = [](const json& access) {
                std::map<std::string, json> devices;
                for (auto d : access.at("devices")) {
                    for (const char* k : {"created", "last_modified", "version"}) d.erase(k);
                    const std::string id = d["id"];
                    devices[id] = std::move(d);
                }
                return devices;
            };
            const auto x = by_id(access_before), y = by_id(access_after);
            ordered_json added = json::array(), removed = json::array(), changed = json::array();
            for (const auto& [id, d] : y)
                if (!x.contains(id)) added.push_back(ordered_json(d));
            for (const auto& [id, d] : x) {
                auto it = y.find(id);
                if (it == y.end()) {
                    removed.push_back(ordered_json(d));
                    continue;
                }
                json attrs = json::array();
                for (auto field = d.begin(); field != d.end(); ++field)
                    if (it->second.value(field.key(), json()) != field.value())
                        attrs.push_back({{"attribute", field.key()},
                                         {"from", field.value()},
                                         {"to", it->second.at(field.key())}});
                if (!attrs.empty())
                    changed.push_back(
                        {{"id", id}, {"name", it->second["name"]}, {"attributes", attrs}});
            }
            out["devices"] =
                ordered_json{{"added", added}, {"removed", removed}, {"changed", changed}};
        }
        if (as_json) {
            std::cout << out.dump() << '\n';
            return exit_ok;
        }
        std::cout << "changes from seq " << from_seq.value << " to seq " << f.at().value << "\n";
        for (const char* kind : {"users", "groups"}) {
            const auto& part = out[kind];
            const std::string type = std::string(kind) == "users" ? "User" : "Group";
            const std::string name_key = type == "User" ? "userName" : "displayName";
            for (const auto& x : part["added"])
                std::cout << "+ " << type << "/" << x["id"].get<std::string>() << " "
                          << x[name_key].get<std::string>() << "\n";
            for (const auto& x : part["removed"])
                std::cout << "- " << type << "/" << x["id"].get<std::string>() << " "
                          << x[name_key].get<std::string>() << "\n";
            for (const auto& x : part["changed"]) {
                std::cout << "~ " << type << "/" << x["id"].get<std::string>() << " "
                          << x[name_key].get<std::string>();
                if (x.contains("attributes"))
                    for (const auto& a2 : x["attributes"])
                        std::cout << " " << a2["attribute"].get<std::string>() << ": "
                                  << a2["from"].dump() << " -> " << a2["to"].dump();
                if (x.contains("members_added"))
                    std::cout << " members +" << x["members_added"].size();
                if (x.contains("members_removed"))
                    std::cout << " members -" << x["members_removed"].size();
                std::cout << "\n";
            }
        }
        for (const auto& [sign, list] : {std::pair{"+", "added"}, std::pair{"-", "removed"}}) {
            for (const auto& g : out["grants"][list]) {
                const std::string role = g["role"];
                std::cout << sign << " grant " << g["subject"].get<std::string>() << " "
                          << g["service"].get<std::string>() << (role.empty() ? "" : "/" + role)
                          << "\n";
            }
            for (const auto& d : out["devices"][list])
                std::cout << sign << " Device/" << d["id"].get<std::string>() << " "
                          << d["name"].get<std::string>() << "\n";
        }
        for (const auto& d : out["devices"]["changed"]) {
            std::cout << "~ Device/" << d["id"].get<std::string>() << " "
                      << d["name"].get<std::string>();
            for (const auto& field : d["attributes"])
                std::cout << " " << field["attribute"].get<std::string>() << ": "
                          << field["from"].dump() << " -> " << field["to"].dump();
            std::cout << "\n";
        }
        return exit_ok;
    }

    // history
    std::set<std::string> ids;
    std::string by_name;
    if (o.subject.starts_with("User/") || o.subject.starts_with("Group/")) {
        ids.insert(o.subject.substr(o.subject.find('/') + 1));
    } else {
        by_name = lower(o.subject);
    }
    auto reader = log.read_from(el::seq_no{1});
    if (!reader) {
        say("history: " + reader.error().message);
        return exit_problem;
    }
    model::directory d;
    json found = json::array();
    el::event e;
    const auto last = log.last_seq().value;
    while (true) {
        auto more = (*reader)->next(e);
        if (!more) {
            meter.finish();
            say("history: " + more.error().message);
            return exit_problem;
        }
        if (!*more) break;
        meter.update(e.seq.value, last);
        if (auto r = model::catalogue().upcast(e); !r) {
            meter.finish();
            say("history: " + r.error().message);
            return exit_problem;
        }
        const auto data = json::parse(e.data, nullptr, false);
        // A userName names every user that ever had it.
        if (!by_name.empty() && e.stream.starts_with("User/") && data.is_object()) {
            if (auto r = data.find("resource");
                r != data.end() && r->is_object() && lower(r->value("userName", "")) == by_name)
                ids.insert(data.value("id", ""));
        }
        bool touched = false;
        for (const auto& id : ids) {
            if (id.empty()) continue;
            if (e.stream.ends_with("/" + id) || e.data.find(id) != std::string::npos)
                touched = true;
        }
        if (!touched && !by_name.empty() && e.type == model::event_names::ldap_entry_changed &&
            data.is_object() && lower(data.value("user_name", "")) == by_name)
            touched = true;
        if (touched) {
            auto j = el::to_json(e);
            json row = json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace));
            row["actor_name"] = actor_name(d, e.actor);
            row["summary"] = summary_of(e);
            found.push_back(std::move(row));
        }
        if (auto r = d.apply(e); !r) {
            meter.finish();
            say("history: " + r.error().message);
            return exit_problem;
        }
        if (touched && d.last_void().kind != model::directory::void_kind::none)
            found.back()["void"] = d.last_void().detail;
    }
    meter.finish();
    if (as_json) {
        std::cout << found.dump() << '\n';
        return found.empty() ? exit_problem : exit_ok;
    }
    if (found.empty()) {
        say("history: no event touched " + o.subject);
        return exit_problem;
    }
    for (const auto& row : found) {
        std::cout << row["seq"].get<std::uint64_t>() << "  " << row["time"].get<std::string>()
                  << "  " << row["type"].get<std::string>() << "  by "
                  << row["source"].get<std::string>() << ":"
                  << row["actor_name"].get<std::string>();
        if (!row["request_id"].get<std::string>().empty())
            std::cout << "  request " << row["request_id"].get<std::string>();
        if (!row["summary"].get<std::string>().empty())
            std::cout << "  " << row["summary"].get<std::string>();
        if (row.contains("void"))
            std::cout << "  (no effect: " << row["void"].get<std::string>() << ")";
        std::cout << "\n";
    }
    return exit_ok;
}

}  // namespace scimsync::daemon::ctl
