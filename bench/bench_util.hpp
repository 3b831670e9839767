#pragma once
// Shared bits of the benchmarks: argument reading, temp dirs, medians, a 300-byte event.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "scimsync/eventlog/event.hpp"

namespace scimsync::bench {

// "--name value" from argv, or `fallback`.
std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback);

// A fresh directory for the run (under --dir, default $TMPDIR or /tmp), removed on exit.
class scratch_dir {
public:
    explicit scratch_dir(const std::string& parent);
    ~scratch_dir();
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A realistic event whose encoded envelope is about `bytes` long.
eventlog::event make_event(std::uint64_t n, std::size_t bytes = 300);

// Event number `seq` as the SCIM service records it (source "scim", a bench token as actor,
// times a microsecond apart), for folding straight into a directory.
eventlog::event scim_event(std::uint64_t seq, const char* type, std::string stream,
                           std::string data);

double median(std::vector<double> v);
double seconds_since(std::chrono::steady_clock::time_point t0);

}  // namespace scimsync::bench
