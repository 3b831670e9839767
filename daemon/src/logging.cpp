#include "logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace scimsync::daemon {

namespace {

constexpr std::size_t flush_at = 64 * 1024;

// JOURNAL_STREAM is "DEVICE:INODE" of the journal's stream; stderr goes there when they match.
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (js == nullptr) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

std::expected<log_level, std::string> parse_log_level(std::string_view text) {
    if (text == "error") return log_level::error;
    if (text == "warning") return log_level::warning;
    if (text == "info") return log_level::info;
    if (text == "debug") return log_level::debug;
    return std::unexpected("expected error, warning, info or debug, got \"" + std::string(text) +
                           "\"");
}

const char* to_string(log_level l) {
    switch (l) {
        case log_level::error:
            return "error";
        case log_level::warning:
            return "warning";
        case log_level::info:
            return "info";
        case log_level::debug:
            return "debug";
    }
    return "info";
}

std::string logfmt_value(std::string_view v) {
    bool bare = !v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            bare = false;
    if (bare) return std::string(v);
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out + "\"";
}

logger::logger() : journal_(stderr_is_journal()) {}

logger::~logger() {
    flush();
}

void logger::emit_locked(std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // nowhere to report it
        text.remove_prefix(std::size_t(n));
    }
}

void logger::write(log_level l, std::string_view message) {
    if (static_cast<int>(l) > static_cast<int>(level_.load())) return;
    std::string line;
    line.reserve(message.size() + 16);
    if (journal_) {
        line += '<';
        line += char('0' + static_cast<int>(l));
        line += '>';
    } else {
        line += "scimsyncd: ";
    }
    line += message;
    line += '\n';
    std::lock_guard lk(mu_);
    if (!pending_.empty()) {
        emit_locked(pending_);
        pending_.clear();
    }
    emit_locked(line);
}

void logger::request(std::string_view line) {
    if (!requests_.load() || static_cast<int>(log_level::info) > static_cast<int>(level_.load()))
        return;
    std::lock_guard lk(mu_);
    pending_ += journal_ ? "<6>" : "scimsyncd: ";
    pending_ += line;
    pending_ += '\n';
    if (pending_.size() >= flush_at) {
        emit_locked(pending_);
        pending_.clear();
    }
}

void logger::flush() {
    std::lock_guard lk(mu_);
    if (pending_.empty()) return;
    emit_locked(pending_);
    pending_.clear();
}

}  // namespace scimsync::daemon
