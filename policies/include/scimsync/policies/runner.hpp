#pragma once
// The policy projector: follows the log on its own thread, feeds the engine, and carries out
// each decision at least once: PolicyDecided first (the intent, in the log before any effect),
// then the effects (device events through the daemon's command path, HTTP connector calls with
// an idempotency key derived from the decision, retried with exponential backoff), then
// PolicyApplied (or PolicyFailed). A restart resumes from the checkpoint file and finishes
// what was decided but not applied. More removals than the threshold within the window pause
// removals (PolicyPaused) until an operator resumes them (PolicyResumed).

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "scimsync/eventlog/log.hpp"
#include "scimsync/policies/policy.hpp"

namespace scimsync::policies {

struct runner_options {
    policy_config config;
    std::filesystem::path state_dir;  // holds the checkpoint
    // Appends what `decide` returns, deciding against the daemon's current directory under its
    // command mutex (so device changes are checked against the newest state), and returns once
    // the events are durable. `decide` may return no events.
    using decide_fn = std::function<std::vector<eventlog::event>(const model::directory&)>;
    std::function<eventlog::result<void>(decide_fn)> submit;
    std::function<void(const std::string&)> notice;
};

class runner {
public:
    runner(const eventlog::log& log, runner_options options);
    ~runner();

    // Reads the checkpoint, replays the log up to it (no effects), then follows on a thread.
    eventlog::result<void> start();
    void stop();

    nlohmann::json status() const;
    // What deactivating this user (id or userName) would do now, without doing it.
    eventlog::result<nlohmann::json> preview(const std::string& user) const;
    // Appends PolicyResumed (source admin); held removals then run.
    eventlog::result<bool> resume(const std::string& actor);
    // Blocks until every event up to `seq` was handled (its decisions applied or held).
    bool wait_until(eventlog::seq_no seq, std::chrono::steady_clock::time_point deadline) const;

private:
    void follow();
    eventlog::result<void> handle(const eventlog::event& e, bool live);
    void fold_policy_event(const eventlog::event& e);
    void process(decision d, eventlog::utc_time when);
    // Carries out one decision; false when interrupted by stop() (to be redone on restart).
    bool execute(const decision& d);
    std::optional<std::string> call_connector(const decision& d, const connector_def& c,
                                              const http_call& call, bool& gave_up);
    eventlog::result<void> append(std::vector<eventlog::event> events);
    eventlog::event policy_event(const char* type, const std::string& stream,
                                 const nlohmann::json& data, const std::string& actor) const;
    bool trips_threshold(eventlog::utc_time when);
    // Decisions that call nothing outside (no connector) are written in batches: PolicyDecided,
    // the device events and PolicyApplied of up to `batch_limit` decisions in one append.
    bool local(const decision& d) const;
    bool flush_batch();
    // The device events `d` causes, decided against `dir` plus what earlier decisions of the
    // same append already changed (`overlay`); returns the effects.
    std::vector<std::string> device_events(const model::directory& dir, const decision& d,
                                           std::map<std::string, model::device_state>& overlay,
                                           std::vector<eventlog::event>& out) const;
    eventlog::event applied_event(const decision& d, std::vector<std::string> effects) const;
    void save_checkpoint(std::uint64_t seq);
    bool sleep_for(std::chrono::milliseconds d);  // false when stopping

    const eventlog::log& log_;
    runner_options options_;
    engine engine_;
    std::uint64_t checkpoint_ = 0;  // decisions of source events up to here are handled

    mutable std::mutex mu_;  // guards everything below and the engine for status/preview
    mutable std::condition_variable cv_;
    std::uint64_t handled_ = 0;
    bool paused_ = false;
    std::string paused_reason_;
    std::map<std::uint64_t, std::map<std::string, decision>> held_;  // by source seq, then id
    std::set<std::string> recorded_;   // PolicyDecided in the log (after the checkpoint)
    std::set<std::string> completed_;  // PolicyApplied / final PolicyFailed (after it)
    std::set<std::string> counted_;    // removals already in the window
    std::deque<eventlog::utc_time> removals_;
    std::uint64_t decided_total_ = 0, applied_total_ = 0, failed_total_ = 0;
    std::string last_error_;
    std::string working_on_;
    std::vector<decision> batch_;  // local decisions not yet written (runner thread only)
    std::uint64_t batch_seq_ = 0;  // the newest event whose decisions are in the batch

    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace scimsync::policies
