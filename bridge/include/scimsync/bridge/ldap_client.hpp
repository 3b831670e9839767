#pragma once
// A thin owner of one libldap connection: connect and simple-bind, then asynchronous,
// pipelined writes (each call sends a request and returns its message id; results are reaped
// in any order with next_result) and paged searches. Not thread-safe: one thread per
// connection. The bind password never appears in an error.

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scimsync/bridge/entry.hpp"

typedef struct ldap LDAP;

namespace scimsync::bridge {

struct ldap_settings {
    std::string url = "ldap://127.0.0.1:389";
    std::string bind_dn;
    std::string bind_password;                // secret: never logged, never in errors
    std::chrono::milliseconds timeout{5000};  // connect, bind and synchronous searches
};

struct ldap_error {
    int code = 0;  // an LDAP result code (negative: client-side, e.g. LDAP_SERVER_DOWN)
    std::string message;
    // The connection is gone or the server is unavailable: reconnect and retry later.
    bool transient() const;
};

struct op_result {
    int msgid = 0;
    int code = 0;
    std::string message;  // diagnostic message from the server, if any
};

class ldap_connection {
public:
    static std::expected<std::unique_ptr<ldap_connection>, ldap_error> open(
        const ldap_settings& settings);
    ~ldap_connection();
    ldap_connection(const ldap_connection&) = delete;
    ldap_connection& operator=(const ldap_connection&) = delete;

    std::expected<int, ldap_error> add(const ldap_entry& entry);
    // `permissive` sends the Permissive Modify control: adding a value that exists or deleting
    // one that does not is not an error (so replayed value changes are harmless).
    std::expected<int, ldap_error> modify(const std::string& dn,
                                          const std::vector<modification>& mods, bool permissive);
    std::expected<int, ldap_error> remove(const std::string& dn);
    std::expected<int, ldap_error> rename(const std::string& dn, const std::string& new_rdn,
                                          const std::string& new_superior);

    // The next completed write, waiting at most `wait`; nullopt when none arrived in time.
    // An error here means the connection is unusable.
    std::expected<std::optional<op_result>, ldap_error> next_result(std::chrono::milliseconds wait);

    // Synchronous paged subtree search. nullopt-free: a missing base gives an empty list.
    std::expected<std::vector<ldap_entry>, ldap_error> search(
        const std::string& base, const std::string& filter,
        const std::vector<std::string>& attributes, bool subtree = true);

    LDAP* handle() { return ld_; }
    ldap_error last_error(int code) const;

private:
    explicit ldap_connection(LDAP* ld) : ld_(ld) {}
    LDAP* ld_ = nullptr;
};

}  // namespace scimsync::bridge
