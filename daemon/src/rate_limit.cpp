#include "rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace scimsync::daemon {

void rate_limiter::configure(double rate, double burst) {
    std::lock_guard lk(mu_);
    rate_ = std::max(rate, 0.0);
    burst_ = std::max(burst, 1.0);
    for (auto& [key, b] : buckets_) b.tokens = std::min(b.tokens, burst_);
}

std::optional<std::chrono::seconds> rate_limiter::take(const std::string& key,
                                                       clock::time_point now) {
    std::lock_guard lk(mu_);
    if (rate_ <= 0) return std::nullopt;
    auto [it, fresh] = buckets_.try_emplace(key);
    bucket& b = it->second;
    if (fresh) {
        b.tokens = burst_;
    } else {
        const double elapsed = std::chrono::duration<double>(now - b.last).count();
        b.tokens = std::min(burst_, b.tokens + std::max(elapsed, 0.0) * rate_);
    }
    b.last = now;
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return std::nullopt;
    }
    const double wait = (1 - b.tokens) / rate_;
    return std::chrono::seconds(std::max<long long>(1, static_cast<long long>(std::ceil(wait))));
}

}  // namespace scimsync::daemon
