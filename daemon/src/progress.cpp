#include "progress.hpp"

#include <cstdio>

namespace scimsync::daemon {

namespace {

std::string amount(std::uint64_t n, progress_meter::unit u) {
    char buf[32];
    if (u == progress_meter::unit::events) {
        std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
    }
    return buf;
}

}  // namespace

progress_meter::progress_meter(std::string label, bool enabled, unit u)
    : label_(std::move(label)), enabled_(enabled), unit_(u) {}

progress_meter::~progress_meter() {
    finish();
}

void progress_meter::update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_ || total == 0) return;
    const int percent = static_cast<int>(std::min<std::uint64_t>(done, total) * 100 / total);
    const auto now = std::chrono::steady_clock::now();
    if (percent == last_percent_ || now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_percent_ = percent;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s %3d%% (%s of %s)", label_.c_str(), percent,
                 amount(done, unit_).c_str(), amount(total, unit_).c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void progress_meter::finish() {
    if (!drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
}

eventlog::progress_fn progress_meter::callback() {
    return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
}

}  // namespace scimsync::daemon
