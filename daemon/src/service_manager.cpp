#include "service_manager.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace scimsync::daemon::service_manager {

namespace {

// Newlines would start another assignment in the notify message.
std::string one_line(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}

void send(const std::string& message) {
    (void)sd_notify(0, message.c_str());
}

}  // namespace

void ready(std::string_view s) {
    send("READY=1\nSTATUS=" + one_line(s));
}

void status(std::string_view s) {
    send("STATUS=" + one_line(s));
}

void reloading(std::string_view s) {
    send("RELOADING=1\nSTATUS=" + one_line(s));
}

void stopping(std::string_view s) {
    send("STOPPING=1\nSTATUS=" + one_line(s));
}

void extend_start_timeout(std::chrono::seconds more, std::string_view s) {
    send("EXTEND_TIMEOUT_USEC=" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(more).count()) +
         "\nSTATUS=" + one_line(s));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
    return std::nullopt;
}

void watchdog_ping() {
    send("WATCHDOG=1");
}

}  // namespace scimsync::daemon::service_manager
