#include "scimsync/daemon/admin_commands.hpp"

#include <pwd.h>
#include <sys/socket.h>

#include <exception>
#include <stdexcept>
#include <vector>

namespace scimsync::daemon {

namespace {

std::string error_line(std::string_view message) {
    nlohmann::json j{{"ok", false}, {"error", message}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string socket_peer_name(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return "";
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(cred.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
        return found->pw_name;
    return "uid=" + std::to_string(cred.uid);
}

std::string socket_actor(const nlohmann::json& args) {
    const auto it = args.find("caller");
    if (it == args.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
        return "admin-socket";
    return "admin-socket:" + it->get<std::string>();
}

void command_registry::add(std::string name, command_fn fn) {
    if (commands_.contains(name)) throw std::invalid_argument("command registered twice: " + name);
    commands_.emplace(std::move(name), std::move(fn));
}

command_result command_registry::call(std::string_view name, const nlohmann::json& args) const {
    const auto it = commands_.find(name);
    if (it == commands_.end())
        return std::unexpected("unknown command \"" + std::string(name) + "\"");
    try {
        return it->second(args);
    } catch (const std::exception& e) {
        return std::unexpected(std::string(name) + " failed: " + e.what());
    }
}

std::string command_registry::handle_line(std::string_view line, const std::string& caller) const {
    nlohmann::json request;
    try {
        request = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error&) {
        return error_line("request is not valid JSON");
    }
    if (!request.is_object()) return error_line("request must be a JSON object");
    const auto cmd = request.find("cmd");
    if (cmd == request.end() || !cmd->is_string()) {
        return error_line("request needs a string member \"cmd\"");
    }
    nlohmann::json args = nlohmann::json::object();
    if (const auto a = request.find("args"); a != request.end() && !a->is_null()) {
        if (!a->is_object()) return error_line("\"args\" must be a JSON object");
        args = *a;
    }
    if (!caller.empty()) args["caller"] = caller;
    auto result = call(cmd->get<std::string>(), args);
    if (!result) return error_line(result.error());
    nlohmann::json response{{"ok", true}, {"result", std::move(*result)}};
    return response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> command_registry::names() const {
    std::vector<std::string> out;
    for (const auto& [name, fn] : commands_) out.push_back(name);
    return out;
}

}  // namespace scimsync::daemon
