#pragma once
// scimsyncctl's admin API commands: `admin` (any request), `access`, `device`, and local
// `user` / `group` management. All go through the running daemon's admin socket ("admin.http"),
// so they do exactly what the HTTP admin API does, as the socket's user.

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace scimsync::daemon::ctl {

class access_commands {
public:
    // Registers the subcommands on `app`.
    explicit access_commands(CLI::App& app);
    // Runs the parsed subcommand, if it is one of these: its exit code; else nullopt.
    std::optional<int> run(const std::string& socket, bool json) const;

private:
    struct options;
    std::shared_ptr<options> o_;
};

}  // namespace scimsync::daemon::ctl
