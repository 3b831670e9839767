#pragma once
// The client side of the admin protocol (see admin_commands.hpp), for scimsyncctl and tests.
// Plain blocking POSIX sockets: no Asio, so tools stay cheap to build.

#include <chrono>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace scimsync::daemon {

struct admin_error {
    enum class kind {
        connect,   // nothing to talk to: no socket, refused, permission denied
        io,        // the conversation broke off or timed out
        protocol,  // the daemon answered something that is not a protocol response
        command,   // the daemon ran the command and it failed ({"ok":false})
    };
    kind what;
    std::string message;  // one line, ready to print
};

// Sends {"cmd":cmd,"args":args} and returns the "result" of the answer.
std::expected<nlohmann::json, admin_error> admin_call(
    const std::filesystem::path& socket, std::string_view cmd,
    const nlohmann::json& args = nlohmann::json::object(),
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace scimsync::daemon
