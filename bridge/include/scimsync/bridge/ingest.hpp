#pragma once
// LDAP → log: a syncrepl (RFC 4533 refreshAndPersist) consumer on slapd's accesslog
// (cn=accesslog). Every successful write under a managed subtree that the bridge did not make
// itself becomes an LdapEntryChanged event: DN, change type, the changed attributes (never the
// values of userPassword), the author (reqAuthzID), the CSN and the drift decision from the
// mapping's policy. The mirror then re-asserts what the policy says to repair.
//
// Written with ldap_search_ext + the sync request control + ldap_result (Debian's libldap-dev
// ships no ldap_sync.h). The sync cookie is stored in STATE_DIR/sync.cookie with the log
// position it goes with; after a restart the consumer resumes from it, and changes already in
// the log since that position are recognised by their accesslog entry and not appended twice.
// On the very first start (no cookie) the accesslog's history is skipped: only changes made
// from then on are ingested.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scimsync/bridge/entry.hpp"
#include "scimsync/bridge/ldap_client.hpp"
#include "scimsync/eventlog/log.hpp"

namespace scimsync::bridge {

struct ingest_options {
    ldap_settings ldap;  // its own connection (the sync stream never shares the write one)
    std::string accesslog_base = "cn=accesslog";
    std::filesystem::path state_dir;  // holds sync.cookie
    std::chrono::milliseconds retry_min{100};
    std::chrono::milliseconds retry_max{5'000};
    std::function<void(const std::string&)> notice;
};

struct ingest_status {
    bool running = false;
    bool connected = false;
    bool persisting = false;        // refresh done: changes arrive as they happen
    std::uint64_t ingested = 0;     // LdapEntryChanged events appended since start
    std::uint64_t own_skipped = 0;  // the bridge's own writes, recognised and skipped
    std::uint64_t outside_skipped = 0;
    std::string last_error;
    std::string last_error_time;

    nlohmann::json to_json() const;
};

// One accesslog entry as read from LDAP (attribute -> values).
using accesslog_entry = attribute_values;

// Turns one accesslog entry into the data of an LdapEntryChanged event, or nullopt when it is
// not ingested (outside the managed subtrees, made by `self_dn`, or not a write). Pure.
struct ingest_decision {
    std::optional<nlohmann::json> data;  // the event data
    enum reason { ingest, own_write, outside, not_a_write } why = ingest;
};
ingest_decision decide(const entry_builder& builder, const std::string& self_dn,
                       const std::string& accesslog_dn, const accesslog_entry& entry);

class ingester {
public:
    ingester(eventlog::log& log, const entry_builder& builder, ingest_options options);
    ~ingester();
    eventlog::result<void> start();
    void stop();
    ingest_status status() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::bridge
