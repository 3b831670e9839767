#include "bench_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace scimsync::bench {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == name) return argv[i + 1];
    return fallback;
}

scratch_dir::scratch_dir(const std::string& parent) {
    std::string base = parent;
    if (base.empty()) {
        const char* t = std::getenv("TMPDIR");
        base = t && *t ? t : "/tmp";
    }
    std::string templ = base + "/scimsync-bench.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp " + templ);
    path_ = templ;
}

scratch_dir::~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

eventlog::event make_event(std::uint64_t n, std::size_t bytes) {
    eventlog::event e;
    e.type = "UserReplaced";
    e.source = "scim";
    e.actor = "token:3f2a9c";
    e.request_id = "req-" + std::to_string(n);
    e.stream = "User/" + std::to_string(100000 + n % 100000);
    const std::string head = "{\"id\":\"" + std::to_string(n) +
                             "\",\"resource\":{\"active\":true,\"userName\":\"user" +
                             std::to_string(n) + "@example.com\",\"title\":\"";
    const std::size_t fixed = 11 + e.type.size() + e.source.size() + e.actor.size() +
                              e.request_id.size() + e.stream.size() + head.size() + 3 + 6;
    e.data = head + std::string(bytes > fixed ? bytes - fixed : 1, 'x') + "\"}}";
    return e;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

eventlog::event scim_event(std::uint64_t seq, const char* type, std::string stream,
                           std::string data) {
    eventlog::event e;
    e.seq = eventlog::seq_no{seq};
    e.time = eventlog::utc_time(std::chrono::microseconds(1'800'000'000'000'000 + seq));
    e.type = type;
    e.stream = std::move(stream);
    e.source = "scim";
    e.actor = "token:bench";
    e.data = std::move(data);
    return e;
}

}  // namespace scimsync::bench
