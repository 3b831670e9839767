#pragma once
// Requests per second per client (bearer token), as a token bucket: `rate` per second on
// average, bursts of up to `burst`. A refused request learns how long to wait (Retry-After).
// Entra pauses and retries on 429 with Retry-After; Okta backs off too.
//
// Thread-safety: every member may be called from any thread.

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace scimsync::daemon {

class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    // rate 0: no limit.
    void configure(double rate, double burst);

    // nullopt: go ahead (one token taken). Else how long until one would be available.
    std::optional<std::chrono::seconds> take(const std::string& key, clock::time_point now);

private:
    struct bucket {
        double tokens = 0;
        clock::time_point last;
    };
    std::mutex mu_;
    double rate_ = 0;
    double burst_ = 0;
    std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace scimsync::daemon
