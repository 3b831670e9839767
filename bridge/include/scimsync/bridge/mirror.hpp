#pragma once
// The LDAP mirror: a projector that keeps an OpenLDAP subtree equal to the views.
//
// One thread reads the log from the mirror's checkpoint, folds each event into its own
// directory (the state "before" and "after" the event), turns the difference into LDAP
// writes (add, modify of the changed attributes only, modrdn, delete, member value deltas) and
// sends them pipelined on one connection, up to `window` outstanding. Writes to the same DN are
// never in flight together, so LDAP sees them in log order. Every write is idempotent when
// replayed (add that finds the entry replaces its attributes, delete that finds nothing is done,
// member values go with the Permissive Modify control, a rename whose source is gone re-asserts
// the entry). The checkpoint (the highest seq whose writes all completed) is stored durably;
// after a crash or an LDAP outage the mirror resumes from it and converges.
//
// Start-up (on the mirror's thread: the daemon serves meanwhile) folds the log from the
// beginning up to the checkpoint without writing (the mirror keeps no snapshot of its own yet),
// then writes from there.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <expected>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "scimsync/bridge/entry.hpp"
#include "scimsync/bridge/ldap_client.hpp"
#include "scimsync/eventlog/log.hpp"
#include "scimsync/model/directory.hpp"

namespace scimsync::bridge {

struct mirror_options {
    ldap_settings ldap;
    std::filesystem::path state_dir;  // holds mirror.checkpoint
    std::size_t window = 64;          // outstanding writes on the connection
    std::size_t max_queued = 20'000;  // writes computed ahead of LDAP before reading pauses
    std::chrono::milliseconds retry_min{100};
    std::chrono::milliseconds retry_max{5'000};
    std::function<void(const std::string&)> notice;
};

struct mirror_status {
    bool running = false;
    bool connected = false;
    std::uint64_t checkpoint = 0;  // every write of events <= this is done in LDAP
    std::uint64_t folded = 0;      // events read and turned into writes
    std::uint64_t log_head = 0;
    std::uint64_t queued = 0;  // writes not yet confirmed
    std::uint64_t writes = 0;  // confirmed writes since start
    std::uint64_t failed = 0;  // writes LDAP refused for good (see last_error)
    std::uint64_t reconnects = 0;
    std::string last_error;  // "" when none
    std::string last_error_time;

    nlohmann::json to_json() const;
};

// What reconcile found (and fixed unless dry_run).
struct reconcile_report {
    std::vector<std::string> missing;  // DNs the views have and LDAP lacks
    std::vector<std::string> extra;    // DNs under managed OUs the views do not have
    struct drift {
        std::string dn;
        std::string attribute;
        std::vector<std::string> expected;
        std::vector<std::string> actual;
    };
    std::vector<drift> drifted;
    bool dry_run = true;
    std::uint64_t at = 0;  // the log position compared against
    std::uint64_t checked = 0;

    nlohmann::json to_json() const;
};

class mirror {
public:
    mirror(const eventlog::log& log, entry_builder builder, mirror_options options);
    ~mirror();

    // Reads the checkpoint and starts the thread (which first folds the log up to the
    // checkpoint). Errors: an unreadable checkpoint or one beyond the log's end (fail closed).
    eventlog::result<void> start();
    // Finishes the writes in flight (briefly), stores the checkpoint and stops.
    void stop();

    mirror_status status() const;
    // Blocks until every event up to `seq` is written to LDAP, or the deadline passes.
    bool wait_for(std::uint64_t seq, std::chrono::steady_clock::time_point deadline) const;

    // Compares the managed subtrees with the views once the mirror caught up, and fixes every
    // difference unless dry_run. Runs on the mirror thread; the caller blocks.
    std::expected<reconcile_report, std::string> reconcile(bool dry_run,
                                                           std::chrono::milliseconds timeout);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace scimsync::bridge
