// log_replay: how fast a projector can rebuild from the log.
//
//   log_replay [--events 1000000] [--runs 3] [--dir PARENT]
//
// Writes --events 300-byte events once, then reads them all back through a reader (CRC of
// every frame, the SHA-256 hash chain over every event, decoding of every envelope), first
// without and then with parsing each event's JSON data. Prints events/s (median of --runs).

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace el = scimsync::eventlog;
namespace sb = scimsync::bench;

int main(int argc, char** argv) {
    const std::uint64_t total = std::stoull(sb::arg(argc, argv, "--events", "1000000"));
    const int runs = std::stoi(sb::arg(argc, argv, "--runs", "3"));
    sb::scratch_dir dir(sb::arg(argc, argv, "--dir", ""));
    {
        el::file_log_options o;
        o.dir = dir.path();
        o.mode = el::durability::none;  // building the fixture; durability is not measured here
        auto log = el::file_log::open(o);
        if (!log) return 1;
        std::vector<el::event> batch;
        for (std::uint64_t i = 1; i <= total; ++i) {
            batch.push_back(sb::make_event(i));
            if (batch.size() == 100 || i == total) {
                if (!(*log)->append(std::move(batch))) return 1;
                batch.clear();
            }
        }
    }
    std::uint64_t bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
        if (e.path().extension() == ".log") bytes += e.file_size();
    std::printf("log_replay: %llu events, %.1f MiB of segments, median of %d runs\n",
                static_cast<unsigned long long>(total), double(bytes) / (1 << 20), runs);

    auto replay = [&](bool parse_json) {
        auto log = el::file_log::open({.dir = dir.path(), .read_only = true});
        if (!log) std::exit(1);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = (*log)->read_from(el::seq_no{1});
        if (!r) std::exit(1);
        el::event e;
        std::uint64_t n = 0, check = 0;
        while (true) {
            auto got = (*r)->next(e);
            if (!got) {
                std::fprintf(stderr, "%s\n", got.error().message.c_str());
                std::exit(1);
            }
            if (!*got) break;
            ++n;
            if (parse_json)
                check += nlohmann::json::parse(e.data).size();
            else
                check += e.data.size();
        }
        const double s = sb::seconds_since(t0);
        if (n != total || check == 0) std::exit(1);
        return double(n) / s;
    };
    auto verify = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        auto rep = el::verify_log(dir.path());
        if (!rep || rep->problem || rep->events != total) std::exit(1);
        return double(total) / sb::seconds_since(t0);
    };
    std::vector<double> raw, json, ver;
    for (int i = 0; i < runs; ++i) {
        raw.push_back(replay(false));
        json.push_back(replay(true));
        ver.push_back(verify());
    }
    std::printf("%-44s %12.0f events/s\n", "read + CRC + chain + decode envelope", sb::median(raw));
    std::printf("%-44s %12.0f events/s\n", "... and parse each event's JSON data",
                sb::median(json));
    std::printf("%-44s %12.0f events/s\n", "log verify (CRC + chain, no decode)", sb::median(ver));
}
