#pragma once
// A throwaway OpenLDAP server for tests and benchmarks: slapd from the Debian package, run as
// our direct child in a fresh temp dir on a random loopback port, with the mdb backend, the
// core/cosine/inetorgperson/nis schemas, syncprov, and the accesslog overlay writing to
// cn=accesslog (the bridge's change feed). Seeded with the suffix and ou=people, ou=groups,
// ou=disabled. stop()/start() keep the data (outage tests); the destructor stops it and removes
// everything. No system slapd or /etc/ldap configuration is touched.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "scimsync/bridge/ldap_client.hpp"

namespace scimsync::testing {

struct slapd_options {
    std::string suffix = "dc=example,dc=com";
    bool nosync = true;     // dbnosync: tests do not need slapd's fsyncs (INFRA.md §4)
    bool accesslog = true;  // accesslog overlay + syncprov on cn=accesslog
};

class slapd_server {
public:
    // Throws std::runtime_error (with slapd's output) if it does not come up.
    explicit slapd_server(slapd_options o = {});
    ~slapd_server();
    slapd_server(const slapd_server&) = delete;
    slapd_server& operator=(const slapd_server&) = delete;

    std::string url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
    std::string suffix() const { return options_.suffix; }
    std::string admin_dn() const { return "cn=admin," + options_.suffix; }
    std::string admin_password() const { return "secret"; }
    // A second identity that is not the bridge: "cn=operator,<suffix>" (a rootdn-equivalent
    // through an ACL), for hand-made changes that ingestion must pick up.
    std::string operator_dn() const { return "cn=operator," + options_.suffix; }
    std::string operator_password() const { return "operator-secret"; }
    const std::filesystem::path& dir() const { return dir_; }
    bool running() const { return pid_ > 0; }

    void stop();   // SIGTERM and wait; the data stays
    void start();  // on the same port and data

    bridge::ldap_settings admin_settings() const;
    // Synchronous helpers on a fresh admin connection (throw on error).
    std::vector<bridge::ldap_entry> search(const std::string& base, const std::string& filter,
                                           const std::vector<std::string>& attributes = {"*"});
    void add(const bridge::ldap_entry& entry);

private:
    void write_config();
    bool launch();  // false if slapd exited at once (port taken)

    slapd_options options_;
    std::filesystem::path dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace scimsync::testing
