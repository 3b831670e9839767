#include "scimsync/bridge/mirror.hpp"

#include <fcntl.h>
#include <ldap.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "scimsync/bridge/dn.hpp"
#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/access.hpp"
#include "scimsync/model/events.hpp"

namespace scimsync::bridge {

using model::lower;

namespace el = eventlog;
namespace names = model::event_names;
using nlohmann::json;
using clock = std::chrono::steady_clock;

namespace {

// The key under which a DN is looked up: libldap's normal form, so that the DN slapd reports
// (accesslog, searches) finds the DN we built, whatever escaping either side used.
std::string dn_key(std::string_view dn) {
    return normalize_dn(dn).value_or(lower(dn));
}

enum class entity_kind { user, group, device, role };

struct entity {
    entity_kind kind = entity_kind::user;
    std::string id;
};

// One LDAP write, tagged with the event it comes from.
struct write_op {
    enum kind { add, modify, remove, rename } op = modify;
    std::uint64_t seq = 0;
    std::string dn;
    ldap_entry entry;                // add
    std::vector<modification> mods;  // modify
    bool permissive = false;
    std::string new_rdn, new_superior, new_dn;  // rename
    std::optional<entity> subject;              // the user/group the write is about
    // runtime
    std::uint64_t id = 0;
    bool sent = false;
    bool done = false;
    bool fallback_used = false;
    int msgid = 0;

    std::vector<std::string> key_cache;  // lower-cased DNs this write touches
    const std::vector<std::string>& keys() {
        if (key_cache.empty()) {
            key_cache.push_back(lower(dn));
            if (op == rename) key_cache.push_back(lower(new_dn));
        }
        return key_cache;
    }
    std::string describe() const {
        static const char* verbs[] = {"add", "modify", "delete", "rename"};
        return std::string(verbs[op]) + " " + dn;
    }
};

std::string now_text() {
    return el::format_time(el::system_utc_now());
}

}  // namespace

json mirror_status::to_json() const {
    return json{
        {"running", running},
        {"connected", connected},
        {"checkpoint", checkpoint},
        {"folded", folded},
        {"log_head", log_head},
        {"lag_events", log_head > checkpoint ? log_head - checkpoint : 0},
        {"queued_writes", queued},
        {"writes", writes},
        {"failed_writes", failed},
        {"reconnects", reconnects},
        {"last_error", last_error.empty() ? json(nullptr) : json(last_error)},
        {"last_error_time", last_error_time.empty() ? json(nullptr) : json(last_error_time)}};
}

json reconcile_report::to_json() const {
    json d = json::array();
    for (const auto& x : drifted) {
        d.push_back(json{{"dn", x.dn},
                         {"attribute", x.attribute},
                         {"expected", x.expected},
                         {"actual", x.actual}});
    }
    return json{{"dry_run", dry_run},
                {"at", at},
                {"checked", checked},
                {"missing", missing},
                {"extra", extra},
                {"drift", d},
                {"differences", missing.size() + extra.size() + drifted.size()}};
}

struct mirror::impl {
    const el::log& log;
    entry_builder builder;
    mirror_options options;

    // --- fold state (mirror thread only, except under mu for reconcile requests) ---
    model::directory dir;
    std::unordered_map<std::string, std::string> dn_of;  // entity id -> DN of its entry
    std::unordered_map<std::string, entity> by_dn;       // lower(DN) -> entity
    // Users whose entry a deprovisioning policy removed (PolicyApplied with ldap_removed):
    // no entry until they are active again.
    std::unordered_set<std::string> removed_by_policy;
    // Roles as groups: grant label -> the users (with entries) holding it, and per user the DN
    // and labels its role member values were written with.
    std::map<std::string, std::set<std::string>> role_members;
    struct role_holder {
        std::string dn;
        std::set<std::string> labels;
    };
    std::unordered_map<std::string, role_holder> role_view;
    std::unordered_map<std::string, std::size_t> ldap_members;  // group id -> members with entries
    std::unordered_map<std::string, std::unordered_set<std::string>> reports;  // manager -> users
    std::unordered_map<std::string, std::string> manager_of;  // user -> manager ids (joined)
    std::uint64_t folded = 0;
    std::uint64_t start_checkpoint = 0;

    // --- writes ---
    std::deque<write_op> ops;
    std::uint64_t next_op_id = 1;
    std::unordered_map<int, std::uint64_t> inflight;  // msgid -> op id
    std::unordered_map<std::string, int> busy_keys;   // lower(DN) -> in-flight writes
    std::unique_ptr<ldap_connection> conn;
    std::unique_ptr<el::reader> reader;
    clock::time_point next_connect{};
    std::chrono::milliseconds backoff{0};
    clock::time_point last_checkpoint_write{};
    std::uint64_t stored_checkpoint = 0;

    // --- shared with other threads ---
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    mirror_status st;
    std::atomic<bool> stop{false};
    std::thread thread;
    struct reconcile_request {
        bool dry_run = true;
        std::promise<std::expected<reconcile_report, std::string>> done;
    };
    std::deque<std::shared_ptr<reconcile_request>> reconciles;
    std::shared_ptr<reconcile_request> fixing;  // mirror thread only
    reconcile_report fixing_report;

    impl(const el::log& l, entry_builder b, mirror_options o)
        : log(l), builder(std::move(b)), options(std::move(o)) {}

    void notice(const std::string& line) const {
        if (options.notice) options.notice("ldap mirror: " + line);
    }

    std::filesystem::path checkpoint_file() const {
        return options.state_dir / "mirror.checkpoint";
    }

    // ---------------------------------------------------------------- checkpoint file
    el::result<std::uint64_t> read_checkpoint() const {
        std::error_code ec;
        if (!std::filesystem::exists(checkpoint_file(), ec)) return 0;
        std::ifstream in(checkpoint_file());
        std::uint64_t v = 0;
        std::string rest;
        if (!(in >> v) || (in >> rest)) {
            return el::fail(el::errc::corrupt,
                            checkpoint_file().string() + ": not a sequence number");
        }
        return v;
    }

    void write_checkpoint(std::uint64_t seq) {
        if (seq == stored_checkpoint) return;
        const auto tmp = options.state_dir / "mirror.checkpoint.tmp";
        const std::string text = std::to_string(seq) + "\n";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok =
            fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ok = ok && ::fdatasync(fd) == 0;
        if (fd >= 0) ::close(fd);
        ok = ok && ::rename(tmp.c_str(), checkpoint_file().c_str()) == 0;
        if (ok) {
            const int dfd = ::open(options.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                ::fsync(dfd);
                ::close(dfd);
            }
            stored_checkpoint = seq;
        } else {
            record_error("cannot store the checkpoint in " + checkpoint_file().string());
        }
        last_checkpoint_write = clock::now();
    }

    std::uint64_t current_checkpoint() const {
        // Never below where this run started: LDAP had those effects before it.
        if (ops.empty()) return std::max(folded, start_checkpoint);
        return std::max(ops.front().seq - 1, start_checkpoint);
    }

    void record_error(const std::string& what) {
        std::lock_guard lk(mu);
        st.last_error = what;
        st.last_error_time = now_text();
    }

    // ---------------------------------------------------------------- entries from the fold
    user_dn_fn dn_lookup() const {
        return [this](std::string_view id) -> std::optional<std::string> {
            const auto it = dn_of.find(std::string(id));
            if (it == dn_of.end()) return std::nullopt;
            return it->second;
        };
    }

    std::optional<ldap_entry> user_entry(const std::string& id) const {
        const auto* u = dir.user(id);
        if (u == nullptr || removed_by_policy.contains(id)) return std::nullopt;
        const auto res = json::parse(u->json, nullptr, false);
        if (!res.is_object()) return std::nullopt;
        return builder.user_entry(res, u->password_hash, dn_lookup());
    }

    std::optional<std::string> user_dn_now(const std::string& id) const {
        const auto* u = dir.user(id);
        if (u == nullptr || removed_by_policy.contains(id)) return std::nullopt;
        const auto res = json::parse(u->json, nullptr, false);
        if (!res.is_object()) return std::nullopt;
        return builder.user_dn(res);
    }

    std::optional<ldap_entry> group_entry(const std::string& id) const {
        const auto* g = dir.group(id);
        if (g == nullptr) return std::nullopt;
        auto res = json::parse(g->json, nullptr, false);
        if (!res.is_object()) return std::nullopt;
        res["id"] = id;
        std::vector<std::string> dns;
        if (const auto* m = dir.members(id)) {
            for (const auto& [member, type] : *m) {
                if (const auto it = dn_of.find(member); it != dn_of.end())
                    dns.push_back(it->second);
            }
        }
        return builder.group_entry(res, std::move(dns));
    }

    std::optional<ldap_entry> device_entry(const std::string& id) const {
        const auto* d = dir.access().device(id);
        if (d == nullptr) return std::nullopt;
        std::optional<std::string> owner;
        if (const auto it = dn_of.find(d->owner); !d->owner.empty() && it != dn_of.end())
            owner = it->second;
        return builder.device_entry(*d, owner);
    }

    std::optional<ldap_entry> role_entry(const std::string& label) const {
        const auto it = role_members.find(label);
        if (it == role_members.end() || it->second.empty()) return std::nullopt;
        std::vector<std::string> dns;
        for (const auto& uid : it->second)
            if (const auto dn = role_view.find(uid); dn != role_view.end())
                dns.push_back(dn->second.dn);
        return builder.role_entry(label, std::move(dns));
    }

    std::optional<ldap_entry> entity_entry(const entity& e) const {
        switch (e.kind) {
            case entity_kind::user:
                return user_entry(e.id);
            case entity_kind::group:
                return group_entry(e.id);
            case entity_kind::device:
                return device_entry(e.id);
            case entity_kind::role:
                return role_entry(e.id);
        }
        return std::nullopt;
    }

    // Every user in `group_id`, nested groups included.
    void users_under(const std::string& group_id, std::set<std::string>& out) const {
        std::unordered_set<std::string> seen{group_id};
        std::vector<std::string> todo{group_id};
        while (!todo.empty()) {
            const std::string g = std::move(todo.back());
            todo.pop_back();
            if (const auto* members = dir.members(g))
                for (const auto& [id, type] : *members) {
                    if (type == "User")
                        out.insert(id);
                    else if (seen.insert(id).second)
                        todo.push_back(id);
                }
        }
    }

    // The users whose roles an event may change: `before` is called before the directory
    // folds it (members it takes away), `after` once it did (members it brings).
    void role_users(const el::event& e, bool before, std::set<std::string>& out) const {
        if (builder.config().roles_base.empty()) return;
        const bool relevant = e.type == names::user_created || e.type == names::user_replaced ||
                              e.type == names::user_deleted || e.type == names::group_created ||
                              e.type == names::group_deleted ||
                              e.type == names::group_members_changed ||
                              e.type == names::access_granted || e.type == names::access_revoked ||
                              e.type == names::policy_applied;
        if (!relevant) return;
        const auto data = json::parse(e.data, nullptr, false);
        if (!data.is_object()) return;
        const std::string id = data.value("id", std::string());
        const auto member_users = [&](const json& list) {
            if (!list.is_array()) return;
            for (const auto& m : list) {
                const std::string mid = m.is_string()   ? m.get<std::string>()
                                        : m.is_object() ? m.value("value", std::string())
                                                        : std::string();
                if (dir.user(mid) != nullptr) out.insert(mid);
                if (dir.group(mid) != nullptr) users_under(mid, out);
            }
        };
        if (before) {
            if (e.type == names::group_deleted) users_under(id, out);
            if (e.type == names::group_members_changed) member_users(data.value("removed", json()));
            return;
        }
        if (e.type == names::user_created || e.type == names::user_replaced ||
            e.type == names::user_deleted)
            out.insert(id);
        if (e.type == names::policy_applied && data.value("ldap_removed", false))
            out.insert(data.value("user", std::string()));
        if (e.type == names::group_created) users_under(id, out);
        if (e.type == names::group_members_changed) member_users(data.value("added", json()));
        if (e.type == names::access_granted || e.type == names::access_revoked) {
            const auto subject = data.value("subject", json::object());
            const std::string sid = subject.value("id", std::string());
            if (subject.value("type", std::string()) == "User")
                out.insert(sid);
            else
                users_under(sid, out);
        }
    }

    // Recomputes the roles of `users` and writes the member values that changed; a role's
    // entry exists while it has members.
    void refresh_roles(std::uint64_t seq, bool emit, const std::set<std::string>& users) {
        if (builder.config().roles_base.empty() || users.empty()) return;
        struct change {
            std::size_t before = 0;
            std::vector<std::string> added, removed;
        };
        std::map<std::string, change> changes;
        const auto touch = [&](const std::string& label) -> change& {
            auto [it, fresh] = changes.try_emplace(label);
            if (fresh) it->second.before = role_members[label].size();
            return it->second;
        };
        for (const auto& uid : users) {
            role_holder now;
            if (const auto dn = dn_of.find(uid); dn != dn_of.end() && dir.user(uid) != nullptr) {
                now.dn = dn->second;
                for (const auto& g : model::effective_access(dir, uid))
                    now.labels.insert(g.grant.label());
            }
            const auto old_it = role_view.find(uid);
            const role_holder old = old_it == role_view.end() ? role_holder{} : old_it->second;
            for (const auto& label : old.labels)
                if (!now.labels.contains(label) || old.dn != now.dn) {
                    touch(label).removed.push_back(old.dn);
                    role_members[label].erase(uid);
                }
            for (const auto& label : now.labels)
                if (!old.labels.contains(label) || old.dn != now.dn) {
                    touch(label).added.push_back(now.dn);
                    role_members[label].insert(uid);
                }
            if (now.labels.empty())
                role_view.erase(uid);
            else
                role_view[uid] = std::move(now);
        }
        const std::string attr = builder.config().member_attribute();
        for (auto& [label, c] : changes) {
            const std::size_t after = role_members[label].size();
            if (after == 0) role_members.erase(label);
            if (!emit) continue;
            const entity subject{entity_kind::role, label};
            if (c.before == 0 && after > 0) {
                if (auto entry = role_entry(label)) emit_add(seq, std::move(*entry), subject);
            } else if (c.before > 0 && after == 0) {
                emit_delete(seq, builder.role_dn(label));
            } else if (c.before > 0) {
                std::vector<modification> mods;
                if (!c.added.empty()) mods.push_back({modification::add, attr, c.added});
                if (!c.removed.empty()) mods.push_back({modification::remove, attr, c.removed});
                emit_modify(seq, builder.role_dn(label), std::move(mods), subject, true);
            }
        }
    }

    // A user's DN changed (or the entry came or went): its devices' owner values follow.
    void fix_device_owners(std::uint64_t seq, const std::string& user_id) {
        if (builder.config().devices_base.empty()) return;
        for (const auto* d : dir.access().devices_of(user_id)) {
            const auto e = device_entry(d->id);
            if (!e) continue;
            const auto owner = e->attrs.find("owner");
            emit_modify(seq, e->dn,
                        {owner == e->attrs.end()
                             ? modification{modification::remove, "owner", {}}
                             : modification{modification::replace, "owner", owner->second}},
                        entity{entity_kind::device, d->id}, true);
        }
    }

    void set_dn(const entity& e, const std::optional<std::string>& dn) {
        if (const auto it = dn_of.find(e.id); it != dn_of.end()) {
            by_dn.erase(dn_key(it->second));
            dn_of.erase(it);
        }
        if (dn) {
            dn_of[e.id] = *dn;
            by_dn[dn_key(*dn)] = e;
        }
    }

    std::size_t count_ldap_members(const std::string& group_id) const {
        std::size_t n = 0;
        if (const auto* m = dir.members(group_id)) {
            for (const auto& [member, type] : *m) n += dn_of.contains(member) ? 1 : 0;
        }
        return n;
    }

    // ---------------------------------------------------------------- emitting writes
    void push(write_op op) {
        op.id = next_op_id++;
        ops.push_back(std::move(op));
    }

    void emit_add(std::uint64_t seq, ldap_entry e, entity subject) {
        write_op op;
        op.op = write_op::add;
        op.seq = seq;
        op.dn = e.dn;
        op.entry = std::move(e);
        op.subject = std::move(subject);
        push(std::move(op));
    }

    void emit_modify(std::uint64_t seq, const std::string& dn, std::vector<modification> mods,
                     std::optional<entity> subject, bool permissive) {
        if (mods.empty()) return;
        write_op op;
        op.op = write_op::modify;
        op.seq = seq;
        op.dn = dn;
        op.mods = std::move(mods);
        op.permissive = permissive;
        op.subject = std::move(subject);
        push(std::move(op));
    }

    void emit_delete(std::uint64_t seq, const std::string& dn) {
        write_op op;
        op.op = write_op::remove;
        op.seq = seq;
        op.dn = dn;
        push(std::move(op));
    }

    void emit_rename(std::uint64_t seq, const std::string& from, const std::string& to,
                     entity subject) {
        write_op op;
        op.op = write_op::rename;
        op.seq = seq;
        op.dn = from;
        op.new_dn = to;
        op.new_rdn = first_rdn(to);
        const std::string parent = parent_dn(to);
        if (lower(parent) != lower(parent_dn(from))) op.new_superior = parent;
        op.subject = std::move(subject);
        push(std::move(op));
    }

    // An entity's entry went from `before` to `after`: add, delete, rename and/or modify.
    void emit_change(std::uint64_t seq, const std::optional<ldap_entry>& before,
                     const std::optional<ldap_entry>& after, const entity& subject) {
        if (!before && !after) return;
        if (!before) return emit_add(seq, *after, subject);
        if (!after) return emit_delete(seq, before->dn);
        if (before->dn != after->dn) emit_rename(seq, before->dn, after->dn, subject);
        // The rename already set the new RDN value (deleteoldrdn): the modify re-states it.
        emit_modify(seq, after->dn, diff(before->attrs, after->attrs), subject, true);
    }

    // Member value changes on the groups listing `member_id`, after its DN went from `old_dn`
    // to `new_dn` (either may be absent).
    void fix_memberships(std::uint64_t seq, const std::vector<std::string>& group_ids,
                         const std::optional<std::string>& old_dn,
                         const std::optional<std::string>& new_dn) {
        if (old_dn == new_dn) return;
        const std::string attr = builder.config().member_attribute();
        for (const auto& gid : group_ids) {
            const auto git = dn_of.find(gid);
            if (git == dn_of.end()) continue;
            const std::size_t before = ldap_members[gid];
            const std::size_t after = before - (old_dn ? 1 : 0) + (new_dn ? 1 : 0);
            ldap_members[gid] = after;
            std::vector<modification> mods;
            if (new_dn) mods.push_back({modification::add, attr, {*new_dn}});
            if (old_dn) mods.push_back({modification::remove, attr, {*old_dn}});
            const std::string placeholder = builder.empty_member_for(git->second);
            if (after == 0) mods.insert(mods.begin(), {modification::add, attr, {placeholder}});
            if (before == 0 && after > 0)
                mods.push_back({modification::remove, attr, {placeholder}});
            emit_modify(seq, git->second, std::move(mods), entity{entity_kind::group, gid}, true);
        }
    }

    // Users whose manager is `manager_id` get their manager attribute re-stated.
    void fix_reports(std::uint64_t seq, const std::string& manager_id) {
        const auto it = reports.find(manager_id);
        if (it == reports.end()) return;
        for (const auto& uid : it->second) {
            const auto dn = dn_of.find(uid);
            if (dn == dn_of.end()) continue;
            const auto e = user_entry(uid);
            if (!e) continue;
            for (const auto& r : builder.config().user_attributes) {
                if (!r.as_user_dn) continue;
                const auto v = e->attrs.find(r.ldap);
                if (v == e->attrs.end())
                    emit_modify(seq, dn->second, {{modification::remove, r.ldap, {}}},
                                entity{entity_kind::user, uid}, true);
                else
                    emit_modify(seq, dn->second, {{modification::replace, r.ldap, v->second}},
                                entity{entity_kind::user, uid}, true);
            }
        }
    }

    void index_manager(const std::string& uid, const std::vector<std::string>& managers) {
        if (const auto it = manager_of.find(uid); it != manager_of.end()) {
            std::istringstream in(it->second);
            for (std::string m; std::getline(in, m, '\n');) {
                if (auto r = reports.find(m); r != reports.end()) {
                    r->second.erase(uid);
                    if (r->second.empty()) reports.erase(r);
                }
            }
            manager_of.erase(it);
        }
        if (managers.empty()) return;
        std::string joined;
        for (const auto& m : managers) {
            reports[m].insert(uid);
            joined += m + "\n";
        }
        manager_of[uid] = std::move(joined);
    }

    std::vector<std::string> groups_of(const std::string& id) const {
        std::vector<std::string> out;
        if (const auto* g = dir.groups_of(id)) out.assign(g->begin(), g->end());
        return out;
    }

    // ---------------------------------------------------------------- folding one event
    el::result<void> fold(const el::event& e, bool emit) {
        std::set<std::string> affected;
        role_users(e, true, affected);
        if (auto r = fold_entities(e, emit); !r) return r;
        role_users(e, false, affected);
        refresh_roles(e.seq.value, emit, affected);
        return {};
    }

    el::result<void> fold_entities(const el::event& e, bool emit) {
        const std::uint64_t seq = e.seq.value;
        const bool user_event = e.type == names::user_created || e.type == names::user_replaced ||
                                e.type == names::user_deleted;
        const bool group_event =
            e.type == names::group_created || e.type == names::group_replaced ||
            e.type == names::group_deleted || e.type == names::group_members_changed;
        if (e.type == names::ldap_entry_changed) {
            if (emit) repair(seq, e);
            return dir.apply(e);
        }
        if (e.type == names::device_registered || e.type == names::device_updated ||
            e.type == names::device_removed) {
            const auto data = json::parse(e.data, nullptr, false);
            const std::string id = data.is_object() ? data.value("id", std::string()) : "";
            const auto before = device_entry(id);
            if (auto r = dir.apply(e); !r) return r;
            if (emit) emit_change(seq, before, device_entry(id), entity{entity_kind::device, id});
            return {};
        }
        if (e.type == names::policy_applied) {
            // A policy removed the user downstream, LDAP included: the entry goes.
            const auto data = json::parse(e.data, nullptr, false);
            if (!data.is_object() || !data.value("ldap_removed", false)) return dir.apply(e);
            const std::string id = data.value("user", std::string());
            const entity subject{entity_kind::user, id};
            const auto before = user_entry(id);
            const auto parents = groups_of(id);
            removed_by_policy.insert(id);
            if (auto r = dir.apply(e); !r) return r;
            set_dn(subject, std::nullopt);
            if (entity_moved(seq, emit, parents, before, std::nullopt, subject)) {
                fix_reports(seq, id);
                fix_device_owners(seq, id);
            }
            return {};
        }
        if (!user_event && !group_event) return dir.apply(e);

        const auto data = json::parse(e.data, nullptr, false);
        const std::string id = data.is_object() ? data.value("id", std::string()) : std::string();
        if (id.empty()) return dir.apply(e);  // the directory reports the malformed event
        const entity subject{user_event ? entity_kind::user : entity_kind::group, id};

        if (user_event) {
            const auto before = user_entry(id);
            const auto parents = groups_of(id);
            if (auto r = dir.apply(e); !r) return r;
            std::optional<ldap_entry> after;
            if (const auto* u = dir.user(id); u == nullptr) {
                removed_by_policy.erase(id);
            } else if (removed_by_policy.contains(id)) {
                // Removed by a policy: back only once the identity provider reactivates it.
                const auto res = json::parse(u->json, nullptr, false);
                if (res.is_object() && res.value("active", true) == true)
                    removed_by_policy.erase(id);
            }
            if (const auto* u = removed_by_policy.contains(id) ? nullptr : dir.user(id)) {
                const auto res = json::parse(u->json, nullptr, false);
                if (res.is_object()) {
                    index_manager(id, builder.referenced_users(res));
                    // Its own DN first, so that a self-managed user resolves.
                    set_dn(subject, builder.user_dn(res));
                    after = builder.user_entry(res, u->password_hash, dn_lookup());
                } else {
                    index_manager(id, {});
                }
            } else {
                index_manager(id, {});
            }
            set_dn(subject, after ? std::optional<std::string>(after->dn) : std::nullopt);
            if (entity_moved(seq, emit, parents, before, after, subject)) {
                fix_reports(seq, id);
                fix_device_owners(seq, id);
            }
            return {};
        }

        // Groups.
        if (e.type == names::group_members_changed) {
            const auto* current = dir.members(id);
            std::vector<std::pair<std::string, bool>> changes;  // member, added?
            if (data.contains("added") && data["added"].is_array()) {
                for (const auto& m : data["added"]) {
                    const std::string mid =
                        m.is_object() ? m.value("value", std::string()) : std::string();
                    if (!mid.empty() && (current == nullptr || !current->contains(mid)))
                        changes.emplace_back(mid, true);
                }
            }
            if (data.contains("removed") && data["removed"].is_array()) {
                for (const auto& m : data["removed"]) {
                    if (m.is_string() && current != nullptr &&
                        current->contains(m.get<std::string>()))
                        changes.emplace_back(m.get<std::string>(), false);
                }
            }
            if (auto r = dir.apply(e); !r) return r;
            // Void (another writer's change came first): nothing to mirror.
            if (dir.last_void().kind != model::directory::void_kind::none) return {};
            // Members the directory skipped (deleted meanwhile) are not added either.
            const auto* now = dir.members(id);
            std::erase_if(changes, [&](const auto& c) {
                return c.second && (now == nullptr || !now->contains(c.first));
            });
            const auto git = dn_of.find(id);
            if (git == dn_of.end()) return {};
            const std::size_t before = ldap_members[id];
            std::vector<modification> adds, removes;
            const std::string attr = builder.config().member_attribute();
            std::size_t after = before;
            for (const auto& [mid, added] : changes) {
                const auto dn = dn_of.find(mid);
                if (dn == dn_of.end()) continue;
                if (added) {
                    if (adds.empty()) adds.push_back({modification::add, attr, {}});
                    adds.front().values.push_back(dn->second);
                    ++after;
                } else {
                    if (removes.empty()) removes.push_back({modification::remove, attr, {}});
                    removes.front().values.push_back(dn->second);
                    --after;
                }
            }
            ldap_members[id] = after;
            if (!emit || (adds.empty() && removes.empty())) return {};
            const std::string placeholder = builder.empty_member_for(git->second);
            std::vector<modification> mods = std::move(adds);
            if (after == 0) mods.push_back({modification::add, attr, {placeholder}});
            for (auto& m : removes) mods.push_back(std::move(m));
            if (before == 0 && after > 0)
                mods.push_back({modification::remove, attr, {placeholder}});
            emit_modify(seq, git->second, std::move(mods), subject, true);
            return {};
        }

        const auto before = group_entry(id);
        const auto parents = groups_of(id);
        if (auto r = dir.apply(e); !r) return r;
        const auto after = group_entry(id);
        set_dn(subject, after ? std::optional<std::string>(after->dn) : std::nullopt);
        if (after) {
            ldap_members[id] = count_ldap_members(id);
        } else {
            ldap_members.erase(id);
        }
        entity_moved(seq, emit, parents, before, after, subject);
        return {};
    }

    // After a user's or group's entry went from `before` to `after`: its own writes, and member
    // values in the groups listing it (`parents`) when its DN changed; without `emit`, only the
    // member counts. True when the DN changed and writes were emitted.
    bool entity_moved(std::uint64_t seq, bool emit, const std::vector<std::string>& parents,
                      const std::optional<ldap_entry>& before,
                      const std::optional<ldap_entry>& after, const entity& subject) {
        const auto old_dn = before ? std::optional<std::string>(before->dn) : std::nullopt;
        const auto new_dn = after ? std::optional<std::string>(after->dn) : std::nullopt;
        if (!emit) {
            update_member_counts(parents, old_dn, new_dn);
            return false;
        }
        emit_change(seq, before, after, subject);
        if ((old_dn ? lower(*old_dn) : "") == (new_dn ? lower(*new_dn) : "")) return false;
        fix_memberships(seq, parents, old_dn, new_dn);
        return true;
    }

    void update_member_counts(const std::vector<std::string>& parents,
                              const std::optional<std::string>& old_dn,
                              const std::optional<std::string>& new_dn) {
        if (old_dn.has_value() == new_dn.has_value()) return;
        for (const auto& gid : parents) {
            if (!dn_of.contains(gid)) continue;
            auto& n = ldap_members[gid];
            n = n - (old_dn ? 1 : 0) + (new_dn ? 1 : 0);
        }
    }

    // An LDAP-side change recorded in the log: re-assert what the drift policy said to repair.
    void repair(std::uint64_t seq, const el::event& e) {
        const auto data = json::parse(e.data, nullptr, false);
        if (!data.is_object()) return;
        const std::string change = data.value("change", std::string());
        const std::string dn = data.value("dn", std::string());
        const auto where = by_dn.find(dn_key(dn));
        if (where == by_dn.end()) return;  // not an entry the views own
        const entity subject = where->second;
        const auto expected = entity_entry(subject);
        if (!expected) return;
        const bool repair_entry = data.value("repair_entry", false);
        if (change == "delete") {
            if (repair_entry) emit_add(seq, *expected, subject);
            return;
        }
        if (change == "modrdn") {
            const std::string moved_to = data.value("new_dn", std::string());
            if (repair_entry && !moved_to.empty())
                emit_rename(seq, moved_to, expected->dn, subject);
            return;
        }
        if (change != "modify") return;
        std::vector<modification> mods;
        if (const auto d = data.find("drift"); d != data.end() && d->is_object()) {
            for (const auto& [attr, policy] : d->items()) {
                if (!policy.is_string() || policy.get<std::string>() != "repair") continue;
                const auto v = expected->attrs.find(attr);
                if (v == expected->attrs.end())
                    mods.push_back({modification::remove, attr, {}});
                else
                    mods.push_back({modification::replace, attr, v->second});
            }
        }
        emit_modify(seq, expected->dn, std::move(mods), subject, true);
    }

    // ---------------------------------------------------------------- sending and reaping
    bool connect() {
        if (conn) return true;
        const auto now = clock::now();
        if (now < next_connect) return false;
        auto c = ldap_connection::open(options.ldap);
        if (!c) {
            backoff = std::clamp(backoff * 2, options.retry_min, options.retry_max);
            next_connect = now + backoff;
            record_error(c.error().message);
            {
                std::lock_guard lk(mu);
                ++st.reconnects;
            }
            return false;
        }
        conn = std::move(*c);
        backoff = std::chrono::milliseconds(0);
        {
            std::lock_guard lk(mu);
            st.connected = true;
        }
        notice("connected to " + options.ldap.url);
        return true;
    }

    void disconnect(const std::string& why) {
        if (!conn) return;
        conn.reset();
        inflight.clear();
        busy_keys.clear();
        for (auto& op : ops) op.sent = false;
        backoff = options.retry_min;
        next_connect = clock::now() + backoff;
        record_error(why);
        {
            std::lock_guard lk(mu);
            st.connected = false;
        }
        notice("lost the connection (" + why + "); retrying, writes resume from seq " +
               std::to_string(current_checkpoint() + 1));
    }

    bool send_one(write_op& op) {
        std::expected<int, ldap_error> r;
        switch (op.op) {
            case write_op::add:
                r = conn->add(op.entry);
                break;
            case write_op::modify:
                r = conn->modify(op.dn, op.mods, op.permissive);
                break;
            case write_op::remove:
                r = conn->remove(op.dn);
                break;
            case write_op::rename:
                r = conn->rename(op.dn, op.new_rdn, op.new_superior);
                break;
        }
        if (!r) {
            disconnect(r.error().message);
            return false;
        }
        op.sent = true;
        op.msgid = *r;
        inflight[*r] = op.id;
        for (const auto& k : op.keys()) ++busy_keys[k];
        return true;
    }

    void send_ready() {
        if (!conn) return;
        std::unordered_set<std::string> blocked;
        for (auto& op : ops) {
            if (inflight.size() >= options.window) return;
            // Writes in flight hold their DNs in busy_keys already.
            if (op.done || op.sent) continue;
            const auto& keys = op.keys();
            const bool wait = std::any_of(keys.begin(), keys.end(), [&](const std::string& k) {
                return busy_keys.contains(k) || blocked.contains(k);
            });
            if (wait) {
                for (const auto& k : keys) blocked.insert(k);
                continue;
            }
            if (!send_one(op)) return;
        }
    }

    write_op* find_op(std::uint64_t id) {
        if (ops.empty() || id < ops.front().id) return nullptr;
        const auto idx = id - ops.front().id;
        return idx < ops.size() ? &ops[idx] : nullptr;
    }

    void finish(write_op& op, bool ok) {
        op.done = true;
        {
            std::lock_guard lk(mu);
            ++(ok ? st.writes : st.failed);
        }
    }

    // Turns a write that found LDAP in an unexpected state into one that re-asserts the
    // subject's current entry; false when there is nothing to re-assert.
    bool reassert(write_op& op) {
        if (!op.subject || op.fallback_used) return false;
        const auto e = entity_entry(*op.subject);
        if (!e) return false;
        op.fallback_used = true;
        op.op = write_op::add;
        op.dn = e->dn;
        op.key_cache.clear();
        op.entry = *e;
        op.mods.clear();
        op.new_dn.clear();
        return true;
    }

    void handle(const op_result& r) {
        const auto fit = inflight.find(r.msgid);
        if (fit == inflight.end()) return;
        write_op* op = find_op(fit->second);
        inflight.erase(fit);
        if (op == nullptr) return;
        for (const auto& k : op->keys()) {
            if (auto b = busy_keys.find(k); b != busy_keys.end() && --b->second == 0)
                busy_keys.erase(b);
        }
        op->sent = false;
        const int code = r.code;
        if (code == LDAP_SUCCESS) return finish(*op, true);
        if (op->op == write_op::add && code == LDAP_ALREADY_EXISTS) {
            // The entry is there (a replay, or made by hand): make it equal instead.
            std::vector<modification> mods;
            for (const auto& [name, values] : op->entry.attrs)
                mods.push_back({modification::replace, name, values});
            op->op = write_op::modify;
            op->mods = std::move(mods);
            op->permissive = true;
            return;  // resent by send_ready
        }
        if (op->op == write_op::remove && code == LDAP_NO_SUCH_OBJECT) return finish(*op, true);
        if ((op->op == write_op::modify || op->op == write_op::rename) &&
            code == LDAP_NO_SUCH_OBJECT && reassert(*op)) {
            return;
        }
        if (op->op == write_op::rename && code == LDAP_ALREADY_EXISTS) {
            // Renamed before (a replay): the target exists; the source is a leftover or gone.
            op->op = write_op::remove;
            op->subject.reset();
            op->key_cache.clear();
            return;
        }
        const ldap_error err{code, r.message};
        if (err.transient()) {
            disconnect(op->describe() + ": " + ldap_err2string(code));
            return;
        }
        std::string what = op->describe() + ": " + ldap_err2string(code);
        if (!r.message.empty()) what += " (" + r.message + ")";
        notice(what);
        record_error(what);
        finish(*op, false);
    }

    void reap(std::chrono::milliseconds wait) {
        if (!conn || inflight.empty()) return;
        auto first = conn->next_result(wait);
        while (true) {
            if (!first) {
                disconnect(first.error().message);
                return;
            }
            if (!*first) return;
            handle(**first);
            if (!conn || inflight.empty()) return;
            first = conn->next_result(std::chrono::milliseconds(0));
        }
    }

    void retire_done() {
        while (!ops.empty() && ops.front().done) ops.pop_front();
        const auto cp = current_checkpoint();
        {
            std::lock_guard lk(mu);
            st.checkpoint = cp;
            st.folded = folded;
            st.queued = ops.size();
            st.log_head = log.last_seq().value;
        }
        cv.notify_all();
        const bool idle = ops.empty();
        if (cp != stored_checkpoint &&
            (idle || clock::now() - last_checkpoint_write > std::chrono::milliseconds(200))) {
            write_checkpoint(cp);
        }
    }

    // Reads the next durable event and folds it (writing or not): true when it did, nullopt at
    // the end of what the log has, false on an error (recorded; the mirror fails closed).
    std::optional<bool> fold_next(el::event& e, bool emit) {
        auto got = reader->next(e);
        if (!got) {
            record_error("reading the log: " + got.error().message);
            return false;
        }
        if (!*got) return std::nullopt;
        if (auto u = model::catalogue().upcast(e); !u) {
            record_error("event " + std::to_string(e.seq.value) + ": " + u.error().message);
            return false;
        }
        if (auto r = fold(e, emit); !r) {
            record_error("event " + std::to_string(e.seq.value) + ": " + r.error().message);
            return false;
        }
        folded = e.seq.value;
        return true;
    }

    // Reads what the log has, up to the queue limit. False on a fold error (fail closed).
    bool read_more() {
        el::event e;
        // Only as far ahead as keeps the window full: folding more now would leave LDAP idle.
        // In slices, so that LDAP works on the first writes while later events are folded.
        const std::size_t ahead = inflight.size() + 4 * options.window;
        for (int slice = 0; slice < 256 && ops.size() < std::min(options.max_queued, ahead);
             ++slice) {
            const auto r = fold_next(e, true);
            if (!r) break;
            if (!*r) return false;
        }
        return true;
    }

    // ---------------------------------------------------------------- reconcile
    reconcile_report compare(bool dry_run) {
        reconcile_report rep;
        rep.dry_run = dry_run;
        rep.at = folded;
        const auto& cfg = builder.config();
        std::vector<std::string> bases{cfg.people_base, cfg.groups_base};
        if (cfg.on_deactivate == deactivate_mode::move) bases.push_back(cfg.disabled_base);
        if (!cfg.devices_base.empty()) bases.push_back(cfg.devices_base);
        if (!cfg.roles_base.empty()) bases.push_back(cfg.roles_base);
        std::vector<std::string> attrs{"objectClass"};
        for (const auto& a : builder.managed_user_attributes()) attrs.push_back(a);
        for (const auto& a : builder.managed_group_attributes()) attrs.push_back(a);
        for (const auto& a : builder.managed_device_attributes()) attrs.push_back(a);
        std::unordered_map<std::string, ldap_entry> actual;
        for (const auto& base : bases) {
            auto found = conn->search(base, "(objectClass=*)", attrs);
            if (!found) throw std::runtime_error(found.error().message);
            for (auto& e : *found) {
                if (dn_key(e.dn) == dn_key(base)) continue;
                actual.emplace(dn_key(e.dn), std::move(e));
            }
        }
        const auto compare_one = [&](const ldap_entry& want, const std::set<std::string>& managed,
                                     const entity& subject) {
            ++rep.checked;
            const auto it = actual.find(dn_key(want.dn));
            if (it == actual.end()) {
                rep.missing.push_back(want.dn);
                if (!dry_run) emit_add(folded, want, subject);
                return;
            }
            const ldap_entry& have = it->second;
            std::vector<modification> mods;
            for (const auto& name : managed) {
                if (cfg.policy_for(name) == drift_policy::accept && name != "objectclass") continue;
                const auto w = want.attrs.find(name);
                const auto h = have.attrs.find(name);
                auto wv = w == want.attrs.end() ? std::vector<std::string>{} : w->second;
                auto hv = h == have.attrs.end() ? std::vector<std::string>{} : h->second;
                const bool dn_valued = name == "manager" || name == "member" ||
                                       name == "uniquemember" || name == "owner";
                const bool ci = name == "objectclass" || dn_valued;
                for (auto* v : {&wv, &hv}) {
                    for (auto& s : *v) {
                        if (dn_valued)
                            s = normalize_dn(s).value_or(lower(s));
                        else if (ci)
                            s = lower(s);
                    }
                    std::sort(v->begin(), v->end());
                }
                if (wv == hv) continue;
                const bool secret = name == "userpassword";
                rep.drifted.push_back(
                    {want.dn, name,
                     secret ? std::vector<std::string>{"(hidden)"}
                            : (w == want.attrs.end() ? std::vector<std::string>{} : w->second),
                     secret ? std::vector<std::string>{"(hidden)"}
                            : (h == have.attrs.end() ? std::vector<std::string>{} : h->second)});
                if (w == want.attrs.end())
                    mods.push_back({modification::remove, name, {}});
                else
                    mods.push_back({modification::replace, w->first, w->second});
            }
            actual.erase(it);
            if (!dry_run) emit_modify(folded, want.dn, std::move(mods), subject, true);
        };
        for (const auto uid : dir.user_ids()) {
            const std::string id(uid);
            if (auto e = user_entry(id))
                compare_one(*e, builder.managed_user_attributes(), {entity_kind::user, id});
        }
        for (const auto gid : dir.group_ids()) {
            const std::string id(gid);
            if (auto e = group_entry(id))
                compare_one(*e, builder.managed_group_attributes(), {entity_kind::group, id});
        }
        for (const auto* d : dir.access().devices())
            if (auto e = device_entry(d->id))
                compare_one(*e, builder.managed_device_attributes(), {entity_kind::device, d->id});
        for (const auto& [label, users] : role_members)
            if (auto e = role_entry(label))
                compare_one(*e, builder.managed_group_attributes(), {entity_kind::role, label});
        // What is left is in LDAP under a managed OU and not in the views. Deepest first, so
        // that a child goes before its parent.
        std::vector<std::string> extra;
        for (const auto& [k, e] : actual) extra.push_back(e.dn);
        std::sort(extra.begin(), extra.end(),
                  [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
        for (const auto& dn : extra) {
            rep.extra.push_back(dn);
            if (!dry_run) emit_delete(folded, dn);
        }
        std::sort(rep.missing.begin(), rep.missing.end());
        std::sort(rep.extra.begin(), rep.extra.end());
        return rep;
    }

    void serve_reconciles() {
        // A reconcile that fixed things answers once its writes are done.
        if (fixing && ops.empty()) {
            fixing->done.set_value(std::move(fixing_report));
            fixing.reset();
        }
        if (fixing) return;
        std::shared_ptr<reconcile_request> req;
        {
            std::lock_guard lk(mu);
            if (reconciles.empty()) return;
            // Only once every write so far is done and LDAP is reachable.
            if (!ops.empty() || !conn) return;
            req = reconciles.front();
            reconciles.pop_front();
        }
        try {
            auto report = compare(req->dry_run);
            if (req->dry_run || ops.empty()) {
                req->done.set_value(std::move(report));
            } else {
                fixing = req;
                fixing_report = std::move(report);
            }
        } catch (const std::exception& ex) {
            req->done.set_value(std::unexpected(std::string("reconcile: ") + ex.what()));
        }
    }

    // ---------------------------------------------------------------- the thread
    // Folds without writing up to the checkpoint (LDAP already has those effects). On the
    // mirror's thread, so that the daemon serves SCIM meanwhile.
    bool catch_up() {
        el::event e;
        while (folded < start_checkpoint && !stop) {
            const auto r = fold_next(e, false);
            if (!r) {
                record_error("the log ends before the mirror's checkpoint " +
                             std::to_string(start_checkpoint));
                return false;
            }
            if (!*r) return false;
        }
        std::lock_guard lk(mu);
        st.folded = folded;
        return true;
    }

    void run() {
        bool failed = !catch_up();
        if (failed) notice("stopped: " + st.last_error);
        while (!stop) {
            connect();
            if (!failed && !read_more()) {
                failed = true;
                notice("stopped: " + st.last_error);
            }
            send_ready();
            if (conn && !inflight.empty()) {
                reap(std::chrono::milliseconds(20));
            } else if (!conn && !ops.empty()) {
                // Waiting for LDAP: sleep until the next attempt, waking early on stop.
                std::unique_lock lk(mu);
                cv.wait_until(lk, next_connect, [&] { return stop.load(); });
            } else {
                retire_done();
                serve_reconciles();
                if (ops.empty()) {
                    log.wait_for(el::seq_no{folded}, clock::now() + std::chrono::milliseconds(100));
                }
                continue;
            }
            retire_done();
        }
        // Drain briefly so that a clean stop leaves little to replay.
        const auto deadline = clock::now() + std::chrono::seconds(2);
        while (conn && !ops.empty() && clock::now() < deadline) {
            send_ready();
            reap(std::chrono::milliseconds(50));
            retire_done();
        }
        retire_done();
        write_checkpoint(current_checkpoint());
        std::lock_guard lk(mu);
        for (auto& r : reconciles)
            r->done.set_value(std::unexpected(std::string("the mirror is stopping")));
        if (fixing) fixing->done.set_value(std::unexpected(std::string("the mirror is stopping")));
        reconciles.clear();
        st.running = false;
    }
};

mirror::mirror(const el::log& log, entry_builder builder, mirror_options options)
    : impl_(std::make_unique<impl>(log, std::move(builder), std::move(options))) {}

mirror::~mirror() {
    stop();
}

el::result<void> mirror::start() {
    impl& s = *impl_;
    std::error_code ec;
    std::filesystem::create_directories(s.options.state_dir, ec);
    if (ec) {
        return el::fail(el::errc::io_error,
                        "cannot create " + s.options.state_dir.string() + ": " + ec.message());
    }
    auto cp = s.read_checkpoint();
    if (!cp) return std::unexpected(cp.error());
    const auto head = s.log.last_seq().value;
    if (*cp > head) {
        return el::fail(el::errc::corrupt, s.checkpoint_file().string() +
                                               " says LDAP has events up to " +
                                               std::to_string(*cp) + " but the log ends at " +
                                               std::to_string(head) + " (wrong data directory?)");
    }
    s.start_checkpoint = *cp;
    s.stored_checkpoint = *cp;
    auto reader = s.log.read_from(el::seq_no{1});
    if (!reader) return std::unexpected(reader.error());
    s.reader = std::move(*reader);
    {
        std::lock_guard lk(s.mu);
        s.st.running = true;
        s.st.checkpoint = *cp;
        s.st.log_head = head;
    }
    s.notice("resuming after seq " + std::to_string(*cp) + " (log head " + std::to_string(head) +
             ")");
    s.thread = std::thread([&s] {
        // Fail closed, visibly: a surprise stops the mirror (status says why), not the daemon.
        try {
            s.run();
        } catch (const std::exception& ex) {
            s.record_error(std::string("stopped: ") + ex.what());
            s.notice(std::string("stopped: ") + ex.what());
            std::lock_guard lk(s.mu);
            s.st.running = false;
            s.st.connected = false;
        }
    });
    return {};
}

void mirror::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    impl_->stop = true;
    impl_->cv.notify_all();
    impl_->thread.join();
}

mirror_status mirror::status() const {
    std::lock_guard lk(impl_->mu);
    auto st = impl_->st;
    st.log_head = impl_->log.last_seq().value;
    return st;
}

bool mirror::wait_for(std::uint64_t seq, clock::time_point deadline) const {
    std::unique_lock lk(impl_->mu);
    return impl_->cv.wait_until(lk, deadline, [&] { return impl_->st.checkpoint >= seq; });
}

std::expected<reconcile_report, std::string> mirror::reconcile(bool dry_run,
                                                               std::chrono::milliseconds timeout) {
    auto req = std::make_shared<impl::reconcile_request>();
    req->dry_run = dry_run;
    auto fut = req->done.get_future();
    {
        std::lock_guard lk(impl_->mu);
        if (!impl_->st.running)
            return std::unexpected(std::string("the LDAP mirror is not running"));
        impl_->reconciles.push_back(req);
    }
    if (fut.wait_for(timeout) != std::future_status::ready) {
        std::lock_guard lk(impl_->mu);
        auto& q = impl_->reconciles;
        q.erase(std::remove(q.begin(), q.end(), req), q.end());
        return std::unexpected(std::string(
            "reconcile timed out waiting for the mirror to catch up (is LDAP reachable? see "
            "`scimsyncctl ldap status`)"));
    }
    return fut.get();
}

}  // namespace scimsync::bridge
