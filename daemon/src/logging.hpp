#pragma once
// scimsyncd's own log: one line per message on stderr, which systemd hands to journald.
// Lines start with a syslog priority prefix ("<6>") when stderr is the journal (JOURNAL_STREAM
// matches it), so `journalctl -p warning` works; otherwise "scimsyncd: ". Request lines are
// logfmt (key=value) and are batched: written when the buffer fills, when any other line is
// written (order is kept) and on flush() (the daemon calls it every second). Nothing that
// reaches this log may hold a secret: callers pass token names, never tokens.
//
// Thread-safety: every member may be called from any thread.

#include <atomic>
#include <expected>
#include <mutex>
#include <string>
#include <string_view>

namespace scimsync::daemon {

enum class log_level { error = 3, warning = 4, info = 6, debug = 7 };  // syslog priorities
std::expected<log_level, std::string> parse_log_level(std::string_view text);
const char* to_string(log_level l);

class logger {
public:
    logger();
    ~logger();

    void set_level(log_level l) { level_.store(l); }
    log_level level() const { return level_.load(); }
    void set_requests(bool on) { requests_.store(on); }
    bool requests() const { return requests_.load(); }

    void write(log_level l, std::string_view message);
    void error(std::string_view m) { write(log_level::error, m); }
    void warning(std::string_view m) { write(log_level::warning, m); }
    void info(std::string_view m) { write(log_level::info, m); }
    void debug(std::string_view m) { write(log_level::debug, m); }

    // One request, logfmt: "request method=GET path=/scim/v2/Users status=200 ...".
    void request(std::string_view line);
    void flush();

private:
    void emit_locked(std::string_view text);  // writes all of it to stderr

    std::atomic<log_level> level_{log_level::info};
    std::atomic<bool> requests_{true};
    bool journal_ = false;
    std::mutex mu_;
    std::string pending_;  // request lines not yet written
};

// A logfmt value: bare when it is safe, else quoted with \" and \\ escaped.
std::string logfmt_value(std::string_view v);

}  // namespace scimsync::daemon
