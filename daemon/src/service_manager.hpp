#pragma once
// Talks to systemd when it started us (Type=notify, $NOTIFY_SOCKET): readiness once the views
// are rebuilt and the listener is up, STATUS lines while replaying, watchdog keep-alives,
// RELOADING/STOPPING. Outside systemd every call does nothing.

#include <chrono>
#include <optional>
#include <string_view>

namespace scimsync::daemon::service_manager {

void ready(std::string_view status);
void status(std::string_view status);
void reloading(std::string_view status);
void stopping(std::string_view status);
// While starting takes long (a big replay): asks for `more` beyond TimeoutStartSec.
void extend_start_timeout(std::chrono::seconds more, std::string_view status);
// WatchdogSec as systemd set it for us, or nullopt when there is no watchdog.
std::optional<std::chrono::microseconds> watchdog_interval();
void watchdog_ping();

}  // namespace scimsync::daemon::service_manager
