#include "scimsync/bridge/ingest.hpp"

#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "scimsync/bridge/dn.hpp"
#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/events.hpp"

namespace scimsync::bridge {

using model::lower;

namespace el = eventlog;
using nlohmann::json;
using clock = std::chrono::steady_clock;

namespace {

const std::string* first(const accesslog_entry& e, std::string_view name) {
    const auto it = e.find(name);
    if (it == e.end() || it->second.empty()) return nullptr;
    return &it->second.front();
}

// Attributes slapd maintains itself; they change on every write and are never drift.
bool operational(std::string_view name) {
    static const std::set<std::string, std::less<>> ops{
        "entrycsn",          "entryuuid",       "modifiersname", "modifytimestamp",
        "creatorsname",      "createtimestamp", "entrydn",       "structuralobjectclass",
        "subschemasubentry", "hassubordinates", "contextcsn"};
    return ops.contains(lower(name));
}

// Whether `s` can be JSON text (well-formed UTF-8), by the same check the event's dump makes.
bool valid_utf8(const std::string& s) {
    try {
        (void)json(s).dump();
        return true;
    } catch (const json::exception&) {
        return false;
    }
}

bool secret_attribute(std::string_view name) {
    return lower(name) == "userpassword";
}

}  // namespace

json ingest_status::to_json() const {
    return json{
        {"running", running},
        {"connected", connected},
        {"persisting", persisting},
        {"ingested", ingested},
        {"own_writes_skipped", own_skipped},
        {"outside_skipped", outside_skipped},
        {"last_error", last_error.empty() ? json(nullptr) : json(last_error)},
        {"last_error_time", last_error_time.empty() ? json(nullptr) : json(last_error_time)}};
}

ingest_decision decide(const entry_builder& builder, const std::string& self_dn,
                       const std::string& accesslog_dn, const accesslog_entry& entry) {
    ingest_decision d;
    const auto* type = first(entry, "reqType");
    const auto* target = first(entry, "reqDN");
    if (type == nullptr || target == nullptr) {
        d.why = ingest_decision::not_a_write;
        return d;
    }
    const std::string change = lower(*type);
    if (change != "add" && change != "modify" && change != "delete" && change != "modrdn") {
        d.why = ingest_decision::not_a_write;
        return d;
    }
    const auto& cfg = builder.config();
    const bool in_people =
        is_below(*target, cfg.people_base) ||
        (cfg.on_deactivate == deactivate_mode::move && is_below(*target, cfg.disabled_base));
    const bool in_groups = is_below(*target, cfg.groups_base);
    if (!in_people && !in_groups) {
        d.why = ingest_decision::outside;
        return d;
    }
    const auto* author = first(entry, "reqAuthzID");
    const std::string modifier = author != nullptr ? *author : "";
    if (!self_dn.empty() && normalize_dn(modifier) == normalize_dn(self_dn)) {
        d.why = ingest_decision::own_write;
        return d;
    }
    const auto& managed =
        in_groups ? builder.managed_group_attributes() : builder.managed_user_attributes();

    // reqMod values: "attr:+ value", "attr:- value", "attr:-", "attr:= value", "attr:=".
    json attributes = json::array();
    json drift = json::object();
    if (const auto mods = entry.find("reqMod"); mods != entry.end()) {
        for (const auto& m : mods->second) {
            const auto colon = m.find(':');
            if (colon == std::string::npos || colon + 1 >= m.size()) continue;
            const std::string name = m.substr(0, colon);
            if (operational(name)) continue;
            const char opc = m[colon + 1];
            const std::string op = opc == '+'   ? "add"
                                   : opc == '-' ? "delete"
                                   : opc == '=' ? "replace"
                                                : "other";
            std::optional<std::string> value;
            if (m.size() > colon + 2)
                value = m.substr(colon + 3 <= m.size() ? colon + 3 : m.size());
            if (attributes.empty() || attributes.back()["name"] != name ||
                attributes.back()["op"] != op) {
                attributes.push_back(json{{"name", name}, {"op", op}, {"values", json::array()}});
                if (secret_attribute(name)) attributes.back()["redacted"] = true;
            }
            if (value && !secret_attribute(name)) {
                // Binary values (a jpegPhoto, a certificate) are noted, not recorded.
                if (valid_utf8(*value))
                    attributes.back()["values"].push_back(*value);
                else
                    attributes.back()["binary"] = true;
            }
            const bool ours = managed.contains(lower(name));
            drift[name] =
                std::string(to_string(ours ? cfg.policy_for(name) : drift_policy::accept));
        }
    }
    json data{{"dn", *target},
              {"change", change},
              {"attributes", std::move(attributes)},
              {"modifier", modifier},
              {"csn", first(entry, "entryCSN") ? *first(entry, "entryCSN") : ""},
              {"accesslog_entry", accesslog_dn},
              {"entry_uuid", first(entry, "reqEntryUUID") ? *first(entry, "reqEntryUUID") : ""},
              {"new_dn", nullptr},
              {"drift", change == "modify" ? std::move(drift) : json::object()},
              {"repair_entry", false}};
    if (change == "modrdn") {
        const auto* rdn = first(entry, "reqNewRDN");
        const auto* sup = first(entry, "reqNewSuperior");
        if (rdn != nullptr)
            data["new_dn"] = *rdn + "," + (sup != nullptr ? *sup : parent_dn(*target));
    }
    // Ties the change to a SCIM user when the entry's RDN is the userName (the default), so
    // that the view can show the attributes LDAP owns.
    if (is_child_of(*target, cfg.people_base) ||
        (cfg.on_deactivate == deactivate_mode::move && is_child_of(*target, cfg.disabled_base))) {
        const auto rule = std::find_if(
            cfg.user_attributes.begin(), cfg.user_attributes.end(),
            [&](const attribute_rule& r) { return lower(r.ldap) == lower(cfg.user_rdn); });
        const auto ava = first_ava(*target);
        if (rule != cfg.user_attributes.end() && lower(rule->scim_path) == "username" && ava &&
            lower(ava->first) == lower(cfg.user_rdn)) {
            data["user_name"] = ava->second;
        }
    }
    if (change == "delete" || change == "modrdn")
        data["repair_entry"] = cfg.default_drift == drift_policy::repair;
    d.data = std::move(data);
    return d;
}

struct ingester::impl {
    el::log& log;
    const entry_builder& builder;
    ingest_options options;

    mutable std::mutex mu;
    std::condition_variable cv;
    ingest_status st;
    std::atomic<bool> stop{false};
    std::thread thread;

    std::string cookie;  // the newest cookie whose changes are all in the log
    std::uint64_t cookie_log_seq = 0;
    bool cookie_dirty = false;
    clock::time_point cookie_written{};
    bool skip_history = false;             // first start: the refresh phase is the past
    std::set<std::string> already_in_log;  // accesslog entries appended after the stored cookie

    impl(el::log& l, const entry_builder& b, ingest_options o)
        : log(l), builder(b), options(std::move(o)) {}

    void notice(const std::string& line) const {
        if (options.notice) options.notice("ldap ingest: " + line);
    }
    void record_error(const std::string& what) {
        std::lock_guard lk(mu);
        st.last_error = what;
        st.last_error_time = el::format_time(el::system_utc_now());
    }
    std::filesystem::path cookie_file() const { return options.state_dir / "sync.cookie"; }

    el::result<void> load_cookie() {
        std::error_code ec;
        if (!std::filesystem::exists(cookie_file(), ec)) {
            skip_history = true;
            return {};
        }
        std::ifstream in(cookie_file());
        std::stringstream text;
        text << in.rdbuf();
        const auto j = json::parse(text.str(), nullptr, false);
        if (!j.is_object() || !j.contains("cookie") || !j["cookie"].is_string() ||
            !j.contains("log_seq") || !j["log_seq"].is_number_unsigned()) {
            return el::fail(el::errc::corrupt, cookie_file().string() +
                                                   ": not a sync cookie file (delete it to "
                                                   "start ingesting from now on)");
        }
        cookie = j["cookie"].get<std::string>();
        cookie_log_seq = j["log_seq"].get<std::uint64_t>();
        // Changes appended after that position may come again: remember them.
        auto reader = log.read_from(el::seq_no{cookie_log_seq + 1});
        if (!reader) return std::unexpected(reader.error());
        el::event e;
        for (;;) {
            auto got = (*reader)->next(e);
            if (!got) return std::unexpected(got.error());
            if (!*got) break;
            if (e.type != model::event_names::ldap_entry_changed) continue;
            const auto d = json::parse(e.data, nullptr, false);
            if (d.is_object() && d.contains("accesslog_entry") && d["accesslog_entry"].is_string())
                already_in_log.insert(lower(d["accesslog_entry"].get<std::string>()));
        }
        return {};
    }

    void store_cookie(bool force) {
        if (!cookie_dirty || cookie.empty()) return;
        if (!force && clock::now() - cookie_written < std::chrono::seconds(1)) return;
        const auto tmp = options.state_dir / "sync.cookie.tmp";
        const std::string text =
            json{{"cookie", cookie}, {"log_seq", cookie_log_seq}}.dump() + "\n";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok =
            fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ok = ok && ::fdatasync(fd) == 0;
        if (fd >= 0) ::close(fd);
        ok = ok && ::rename(tmp.c_str(), cookie_file().c_str()) == 0;
        if (!ok) record_error("cannot store the sync cookie in " + cookie_file().string());
        cookie_dirty = !ok;
        cookie_written = clock::now();
    }

    void set_cookie(std::string c) {
        if (c.empty() || c == cookie) return;
        cookie = std::move(c);
        cookie_log_seq = log.last_seq().value;
        cookie_dirty = true;
    }

    // One accesslog entry delivered by syncrepl.
    bool process(LDAP* ld, LDAPMessage* msg, bool refreshing) {
        accesslog_entry entry;
        char* dn = ldap_get_dn(ld, msg);
        const std::string entry_dn = dn != nullptr ? dn : "";
        ldap_memfree(dn);
        BerElement* ber = nullptr;
        for (char* a = ldap_first_attribute(ld, msg, &ber); a != nullptr;
             a = ldap_next_attribute(ld, msg, ber)) {
            berval** vals = ldap_get_values_len(ld, msg, a);
            auto& target = entry[a];
            for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i)
                target.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
            ldap_value_free_len(vals);
            ldap_memfree(a);
        }
        if (ber != nullptr) ber_free(ber, 0);
        if (refreshing && skip_history) return true;
        if (already_in_log.contains(lower(entry_dn))) return true;
        const auto d = decide(builder, options.ldap.bind_dn, entry_dn, entry);
        if (!d.data) {
            std::lock_guard lk(mu);
            if (d.why == ingest_decision::own_write) ++st.own_skipped;
            if (d.why == ingest_decision::outside) ++st.outside_skipped;
            return true;
        }
        el::event e;
        e.type = model::event_names::ldap_entry_changed;
        e.version = model::catalogue().find(e.type)->version;
        e.source = "ldap";
        e.actor = (*d.data)["modifier"].get<std::string>();
        const std::string uuid = (*d.data)["entry_uuid"].get<std::string>();
        e.stream = "LdapEntry/" + (uuid.empty() ? std::string("unknown") : uuid);
        e.data = d.data->dump();
        if (auto v = model::catalogue().validate(e); !v) {
            record_error("accesslog entry " + entry_dn + ": " + v.error().message);
            return true;
        }
        auto r = log.append({std::move(e)});
        if (!r) {
            record_error("cannot append the LDAP change: " + r.error().message);
            return false;  // not acknowledged: the cookie does not move, it comes again
        }
        std::lock_guard lk(mu);
        ++st.ingested;
        return true;
    }

    static std::optional<std::string> scan_cookie(BerElement* ber) {
        ber_len_t len = 0;
        if (ber_peek_tag(ber, &len) != LDAP_TAG_SYNC_COOKIE) return std::nullopt;
        berval bv{};
        if (ber_scanf(ber, "m", &bv) == LBER_ERROR) return std::nullopt;
        return std::string(bv.bv_val, bv.bv_len);
    }

    // One session: connect, search with the sync control, consume until error or stop.
    // Returns a message when it ended for a reason worth retrying.
    std::string session() {
        auto c = ldap_connection::open(options.ldap);
        if (!c) return c.error().message;
        LDAP* ld = (*c)->handle();
        {
            std::lock_guard lk(mu);
            st.connected = true;
        }
        BerElement* ber = ber_alloc_t(LBER_USE_DER);
        berval cookie_bv{cookie.size(), cookie.data()};
        if (cookie.empty())
            ber_printf(ber, "{e}", LDAP_SYNC_REFRESH_AND_PERSIST);
        else
            ber_printf(ber, "{eO}", LDAP_SYNC_REFRESH_AND_PERSIST, &cookie_bv);
        berval value{};
        ber_flatten2(ber, &value, 0);
        LDAPControl sync{const_cast<char*>(LDAP_CONTROL_SYNC), value, 1};
        LDAPControl* controls[] = {&sync, nullptr};
        const char* attrs[] = {"reqType",        "reqDN",     "reqMod",       "reqAuthzID",
                               "reqStart",       "entryCSN",  "reqEntryUUID", "reqNewRDN",
                               "reqNewSuperior", "reqResult", nullptr};
        int msgid = 0;
        int rc = ldap_search_ext(ld, options.accesslog_base.c_str(), LDAP_SCOPE_SUBTREE,
                                 "(&(objectClass=auditWriteObject)(reqResult=0))",
                                 const_cast<char**>(attrs), 0, controls, nullptr, nullptr,
                                 LDAP_NO_LIMIT, &msgid);
        ber_free(ber, 1);
        if (rc != LDAP_SUCCESS) return std::string("sync search: ") + ldap_err2string(rc);
        bool refreshing = true;
        while (!stop) {
            timeval tv{0, 200'000};
            LDAPMessage* msg = nullptr;
            const int type = ldap_result(ld, msgid, LDAP_MSG_ONE, &tv, &msg);
            if (type == 0) {
                store_cookie(false);
                continue;
            }
            if (type < 0) return "sync stream: connection lost";
            struct msg_guard {
                LDAPMessage* m;
                ~msg_guard() { ldap_msgfree(m); }
            } guard{msg};
            if (type == LDAP_RES_SEARCH_ENTRY) {
                std::optional<std::string> entry_cookie;
                LDAPControl** ctrls = nullptr;
                int state = -1;
                if (ldap_get_entry_controls(ld, msg, &ctrls) == LDAP_SUCCESS && ctrls != nullptr) {
                    if (LDAPControl* sc =
                            ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, nullptr)) {
                        BerElement* b = ber_init(&sc->ldctl_value);
                        berval uuid{};
                        if (b != nullptr && ber_scanf(b, "{em", &state, &uuid) != LBER_ERROR)
                            entry_cookie = scan_cookie(b);
                        if (b != nullptr) ber_free(b, 1);
                    }
                    ldap_controls_free(ctrls);
                }
                // Accesslog entries are only ever added (and purged): act on additions.
                if (state == LDAP_SYNC_ADD || state == LDAP_SYNC_MODIFY) {
                    if (!process(ld, msg, refreshing)) return "appending to the log failed";
                }
                if (entry_cookie) set_cookie(*entry_cookie);
                store_cookie(false);
            } else if (type == LDAP_RES_INTERMEDIATE) {
                char* oid = nullptr;
                berval* data = nullptr;
                if (ldap_parse_intermediate(ld, msg, &oid, &data, nullptr, 0) == LDAP_SUCCESS &&
                    oid != nullptr && std::string(oid) == LDAP_SYNC_INFO && data != nullptr) {
                    BerElement* b = ber_init(data);
                    ber_len_t len = 0;
                    const ber_tag_t tag = b != nullptr ? ber_peek_tag(b, &len) : LBER_ERROR;
                    std::optional<std::string> next_cookie;
                    bool done = false;
                    if (tag == LDAP_TAG_SYNC_NEW_COOKIE) {
                        berval bv{};
                        if (ber_scanf(b, "m", &bv) != LBER_ERROR)
                            next_cookie = std::string(bv.bv_val, bv.bv_len);
                    } else if (tag == LDAP_TAG_SYNC_REFRESH_DELETE ||
                               tag == LDAP_TAG_SYNC_REFRESH_PRESENT) {
                        if (ber_scanf(b, "{") != LBER_ERROR) {
                            next_cookie = scan_cookie(b);
                            done = true;  // refreshDone defaults to TRUE
                            if (ber_peek_tag(b, &len) == LBER_BOOLEAN) {
                                ber_int_t flag = 1;
                                ber_scanf(b, "b", &flag);
                                done = flag != 0;
                            }
                        }
                    } else if (tag == LDAP_TAG_SYNC_ID_SET) {
                        if (ber_scanf(b, "{") != LBER_ERROR) next_cookie = scan_cookie(b);
                    }
                    if (b != nullptr) ber_free(b, 1);
                    if (next_cookie) set_cookie(*next_cookie);
                    if (done && refreshing) {
                        refreshing = false;
                        skip_history = false;
                        already_in_log.clear();
                        cookie_dirty = true;
                        store_cookie(true);
                        {
                            std::lock_guard lk(mu);
                            st.persisting = true;
                        }
                        notice("following the accesslog");
                    }
                }
                if (oid != nullptr) ldap_memfree(oid);
                if (data != nullptr) ber_bvfree(data);
            } else if (type == LDAP_RES_SEARCH_RESULT) {
                int code = 0;
                ldap_parse_result(ld, msg, &code, nullptr, nullptr, nullptr, nullptr, 0);
                if (code == LDAP_SYNC_REFRESH_REQUIRED) {
                    notice(
                        "the server asks for a full refresh: changes made while the sync "
                        "cookie was stale are not ingested (run `scimsyncctl ldap reconcile`)");
                    cookie.clear();
                    skip_history = true;
                    return "refresh required";
                }
                return std::string("sync search ended: ") + ldap_err2string(code);
            }
        }
        return "";
    }

    void run() {
        auto backoff = options.retry_min;
        while (!stop) {
            const auto started = clock::now();
            std::string why;
            try {
                why = session();
            } catch (const std::exception& ex) {
                why = std::string("sync stream: ") + ex.what();
            }
            store_cookie(true);
            {
                std::lock_guard lk(mu);
                st.connected = false;
                st.persisting = false;
            }
            if (stop) break;
            record_error(why);
            if (clock::now() - started > std::chrono::seconds(10)) backoff = options.retry_min;
            std::unique_lock lk(mu);
            cv.wait_for(lk, backoff, [&] { return stop.load(); });
            backoff = std::min(backoff * 2, options.retry_max);
        }
        std::lock_guard lk(mu);
        st.running = false;
    }
};

ingester::ingester(el::log& log, const entry_builder& builder, ingest_options options)
    : impl_(std::make_unique<impl>(log, builder, std::move(options))) {}

ingester::~ingester() {
    stop();
}

el::result<void> ingester::start() {
    std::error_code ec;
    std::filesystem::create_directories(impl_->options.state_dir, ec);
    if (ec) {
        return el::fail(el::errc::io_error,
                        "cannot create " + impl_->options.state_dir.string() + ": " + ec.message());
    }
    if (auto r = impl_->load_cookie(); !r) return r;
    {
        std::lock_guard lk(impl_->mu);
        impl_->st.running = true;
    }
    impl_->thread = std::thread([s = impl_.get()] { s->run(); });
    return {};
}

void ingester::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    impl_->stop = true;
    impl_->cv.notify_all();
    impl_->thread.join();
}

ingest_status ingester::status() const {
    std::lock_guard lk(impl_->mu);
    return impl_->st;
}

}  // namespace scimsync::bridge
