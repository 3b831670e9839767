#pragma once
// The admin protocol's command table. The admin socket (server.cpp) reads one JSON object per
// line, {"cmd":"<name>","args":{...}}, and writes one JSON line back: {"ok":true,"result":{...}}
// or {"ok":false,"error":"<one line>"}. Commands are registered by name; adding one never
// touches socket code.

#include <expected>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace scimsync::daemon {

// The Unix user at the other end of a connected Unix socket (SO_PEERCRED): its name, or
// "uid=N" when the name cannot be looked up; "" when the kernel does not say.
std::string socket_peer_name(int fd);

// The actor a command's events are recorded with: "admin-socket:<user>" for a request from the
// admin socket, "admin-socket" when the caller is unknown (a command called in-process).
std::string socket_actor(const nlohmann::json& args);

// A command's answer: the result object, or a one-line error for the client to print. Runs on
// an io thread (one request at a time per connection), so it must not block for long. Errors
// must never contain secrets.
using command_result = std::expected<nlohmann::json, std::string>;
using command_fn = std::function<command_result(const nlohmann::json& args)>;

class command_registry {
public:
    // Registers `name`; registering a name twice is a programming error (throws).
    void add(std::string name, command_fn fn);

    // Parses one request line (without the newline) and returns the response line (without the
    // newline). Never throws: malformed requests, unknown commands and throwing commands all
    // become {"ok":false,...}. `caller` (the connected Unix user, see socket_peer_name) goes into
    // args["caller"], replacing anything the client put there; empty leaves args as sent.
    std::string handle_line(std::string_view line, const std::string& caller = {}) const;

    // Runs one command as if it had arrived on the socket.
    command_result call(std::string_view name, const nlohmann::json& args) const;

    std::vector<std::string> names() const;

private:
    std::map<std::string, command_fn, std::less<>> commands_;
};

}  // namespace scimsync::daemon
