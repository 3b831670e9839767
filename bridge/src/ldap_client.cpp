#include "scimsync/bridge/ldap_client.hpp"

#include <ldap.h>

#include <cstring>

namespace scimsync::bridge {

namespace {

// berval arrays and LDAPMod lists that point into strings owned by the caller.
struct mod_list {
    std::vector<LDAPMod> mods;
    std::vector<std::vector<berval>> values;
    std::vector<std::vector<berval*>> value_ptrs;
    std::vector<LDAPMod*> ptrs;

    void add(int op, const std::string& attribute, const std::vector<std::string>& vals) {
        values.emplace_back();
        for (const auto& v : vals)
            values.back().push_back(berval{v.size(), const_cast<char*>(v.data())});
        mods.push_back(LDAPMod{});
        LDAPMod& m = mods.back();
        m.mod_op = op | LDAP_MOD_BVALUES;
        m.mod_type = const_cast<char*>(attribute.c_str());
    }
    LDAPMod** finish() {
        value_ptrs.resize(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            for (auto& b : values[i]) value_ptrs[i].push_back(&b);
            value_ptrs[i].push_back(nullptr);
            mods[i].mod_bvalues = value_ptrs[i].size() > 1 ? value_ptrs[i].data() : nullptr;
        }
        ptrs.clear();
        for (auto& m : mods) ptrs.push_back(&m);
        ptrs.push_back(nullptr);
        return ptrs.data();
    }
};

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

ldap_error make_error(int code, const std::string& context) {
    return ldap_error{code, context + ": " + ldap_err2string(code)};
}

}  // namespace

bool ldap_error::transient() const {
    return code == LDAP_SERVER_DOWN || code == LDAP_CONNECT_ERROR || code == LDAP_TIMEOUT ||
           code == LDAP_BUSY || code == LDAP_UNAVAILABLE || code == LDAP_TIMELIMIT_EXCEEDED ||
           code == LDAP_LOCAL_ERROR || code == LDAP_NO_MEMORY || code == LDAP_ADMINLIMIT_EXCEEDED;
}

std::expected<std::unique_ptr<ldap_connection>, ldap_error> ldap_connection::open(
    const ldap_settings& s) {
    LDAP* ld = nullptr;
    int rc = ldap_initialize(&ld, s.url.c_str());
    if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "ldap url " + s.url));
    std::unique_ptr<ldap_connection> c(new ldap_connection(ld));
    const int version = LDAP_VERSION3;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    timeval tv = to_timeval(s.timeout);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    berval cred{s.bind_password.size(), const_cast<char*>(s.bind_password.data())};
    rc = ldap_sasl_bind_s(ld, s.bind_dn.empty() ? nullptr : s.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                          &cred, nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
        return std::unexpected(make_error(rc, "bind to " + s.url + " as \"" + s.bind_dn + "\""));
    }
    return c;
}

ldap_connection::~ldap_connection() {
    if (ld_ != nullptr) ldap_unbind_ext_s(ld_, nullptr, nullptr);
}

ldap_error ldap_connection::last_error(int code) const {
    return make_error(code, "ldap");
}

std::expected<int, ldap_error> ldap_connection::add(const ldap_entry& entry) {
    mod_list l;
    for (const auto& [name, values] : entry.attrs) l.add(LDAP_MOD_ADD, name, values);
    int msgid = 0;
    const int rc = ldap_add_ext(ld_, entry.dn.c_str(), l.finish(), nullptr, nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "add " + entry.dn));
    return msgid;
}

std::expected<int, ldap_error> ldap_connection::modify(const std::string& dn,
                                                       const std::vector<modification>& mods,
                                                       bool permissive) {
    mod_list l;
    for (const auto& m : mods) {
        const int op = m.op == modification::add      ? LDAP_MOD_ADD
                       : m.op == modification::remove ? LDAP_MOD_DELETE
                                                      : LDAP_MOD_REPLACE;
        l.add(op, m.attribute, m.values);
    }
    LDAPControl permissive_control{const_cast<char*>(LDAP_CONTROL_X_PERMISSIVE_MODIFY),
                                   berval{0, nullptr}, 0};
    LDAPControl* controls[] = {&permissive_control, nullptr};
    int msgid = 0;
    const int rc = ldap_modify_ext(ld_, dn.c_str(), l.finish(), permissive ? controls : nullptr,
                                   nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "modify " + dn));
    return msgid;
}

std::expected<int, ldap_error> ldap_connection::remove(const std::string& dn) {
    int msgid = 0;
    const int rc = ldap_delete_ext(ld_, dn.c_str(), nullptr, nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "delete " + dn));
    return msgid;
}

std::expected<int, ldap_error> ldap_connection::rename(const std::string& dn,
                                                       const std::string& new_rdn,
                                                       const std::string& new_superior) {
    int msgid = 0;
    const int rc = ldap_rename(ld_, dn.c_str(), new_rdn.c_str(),
                               new_superior.empty() ? nullptr : new_superior.c_str(), 1, nullptr,
                               nullptr, &msgid);
    if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "rename " + dn));
    return msgid;
}

std::expected<std::optional<op_result>, ldap_error> ldap_connection::next_result(
    std::chrono::milliseconds wait) {
    timeval tv = to_timeval(wait);
    LDAPMessage* msg = nullptr;
    const int type = ldap_result(ld_, LDAP_RES_ANY, LDAP_MSG_ONE, &tv, &msg);
    if (type == 0) return std::nullopt;
    if (type < 0) {
        int code = LDAP_SERVER_DOWN;
        ldap_get_option(ld_, LDAP_OPT_RESULT_CODE, &code);
        if (code == LDAP_SUCCESS) code = LDAP_SERVER_DOWN;
        return std::unexpected(make_error(code, "ldap result"));
    }
    op_result r;
    r.msgid = ldap_msgid(msg);
    char* diag = nullptr;
    const int rc = ldap_parse_result(ld_, msg, &r.code, nullptr, &diag, nullptr, nullptr, 1);
    if (rc != LDAP_SUCCESS) r.code = rc;
    if (diag != nullptr) {
        r.message = diag;
        ldap_memfree(diag);
    }
    return r;
}

std::expected<std::vector<ldap_entry>, ldap_error> ldap_connection::search(
    const std::string& base, const std::string& filter, const std::vector<std::string>& attributes,
    bool subtree) {
    std::vector<ldap_entry> out;
    std::vector<char*> attrs;
    for (const auto& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);
    berval* cookie = nullptr;
    for (;;) {
        LDAPControl* page = nullptr;
        int rc = ldap_create_page_control(ld_, 1000, cookie, 0, &page);
        if (cookie != nullptr) ber_bvfree(cookie);
        cookie = nullptr;
        if (rc != LDAP_SUCCESS) return std::unexpected(make_error(rc, "search " + base));
        LDAPControl* controls[] = {page, nullptr};
        LDAPMessage* res = nullptr;
        rc = ldap_search_ext_s(ld_, base.c_str(),
                               subtree ? LDAP_SCOPE_SUBTREE : LDAP_SCOPE_ONELEVEL, filter.c_str(),
                               attrs.data(), 0, controls, nullptr, nullptr, LDAP_NO_LIMIT, &res);
        ldap_control_free(page);
        if (rc == LDAP_NO_SUCH_OBJECT) {
            ldap_msgfree(res);
            return out;
        }
        if (rc != LDAP_SUCCESS) {
            ldap_msgfree(res);
            return std::unexpected(make_error(rc, "search " + base));
        }
        for (LDAPMessage* e = ldap_first_entry(ld_, res); e != nullptr;
             e = ldap_next_entry(ld_, e)) {
            ldap_entry entry;
            char* dn = ldap_get_dn(ld_, e);
            entry.dn = dn != nullptr ? dn : "";
            ldap_memfree(dn);
            BerElement* ber = nullptr;
            for (char* a = ldap_first_attribute(ld_, e, &ber); a != nullptr;
                 a = ldap_next_attribute(ld_, e, ber)) {
                berval** vals = ldap_get_values_len(ld_, e, a);
                auto& target = entry.attrs[a];
                for (int i = 0; vals != nullptr && vals[i] != nullptr; ++i)
                    target.emplace_back(vals[i]->bv_val, vals[i]->bv_len);
                ldap_value_free_len(vals);
                ldap_memfree(a);
            }
            if (ber != nullptr) ber_free(ber, 0);
            out.push_back(std::move(entry));
        }
        LDAPControl** returned = nullptr;
        int code = 0;
        ldap_parse_result(ld_, res, &code, nullptr, nullptr, nullptr, &returned, 1);
        if (returned == nullptr) break;
        LDAPControl* pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, nullptr);
        ber_int_t estimate = 0;
        berval next{};
        if (pr == nullptr ||
            ldap_parse_pageresponse_control(ld_, pr, &estimate, &next) != LDAP_SUCCESS ||
            next.bv_len == 0) {
            if (next.bv_val != nullptr) ber_memfree(next.bv_val);
            ldap_controls_free(returned);
            break;
        }
        cookie = ber_bvdup(&next);
        ber_memfree(next.bv_val);
        ldap_controls_free(returned);
    }
    return out;
}

}  // namespace scimsync::bridge
