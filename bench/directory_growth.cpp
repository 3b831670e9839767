// The longest single event apply while a directory grows (issue 3, write p99): --users users
// (default 1,000,000) are created one event at a time, each with an externalId, and every
// --member-every'th (default 2) is added to one group, as an identity provider's import does.
// Each apply is timed; a hash index that outgrows its buckets rehashes inside one apply, and
// the daemon holds its directory lock for that long, so the longest apply is a floor under the
// write latency of every request waiting behind it.
//
// Then the grown directory is written as a snapshot file through the snapshot store, as a
// daemon's snapshot child writes it (streamed, hashed, fdatasync'd), serialised into one
// string, read back (hash checked), restored, and the restored directory copied (as a
// daemon's start-up copies it into its write model), each timed. The child lives about as long as
// the file write, and the parent pays a copy-on-write fault for every page it changes meanwhile.
//
// Prints, per run, the longest apply, how many took over 1 ms, the mean, and the snapshot's
// size and times; then medians.
//
//   ./build/bench/directory_growth [--users 1000000] [--member-every 2] [--runs 3] [--dir D]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "scimsync/model/directory_projector.hpp"

namespace el = scimsync::eventlog;
namespace model = scimsync::model;
using scimsync::bench::arg;
using scimsync::bench::median;
using scimsync::bench::seconds_since;

namespace {

struct figures {
    double max_ms = 0;
    double over_1ms = 0;
    double mean_us = 0;
    double write_ms = 0;
    double serialize_ms = 0;
    double snapshot_mib = 0;
    double read_ms = 0;
    double deserialize_ms = 0;
    double copy_ms = 0;
};

figures run(std::size_t users, std::size_t member_every, const std::string& parent) {
    model::directory_projector p;
    const model::directory& d = p.dir();
    std::uint64_t seq = 0;
    auto event = [&](const char* type, std::string stream, std::string data) {
        return scimsync::bench::scim_event(++seq, type, std::move(stream), std::move(data));
    };
    auto apply = [&](const el::event& e) {
        if (auto r = p.apply(e); !r) {
            std::fprintf(stderr, "apply failed: %s\n", r.error().message.c_str());
            std::exit(1);
        }
    };
    apply(event("GroupCreated", "Group/g-all",
                R"({"id":"g-all","members":[],"resource":{"displayName":"Everyone","id":"g-all",)"
                R"("schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}})"));

    figures f;
    double total_us = 0;
    std::size_t applies = 0;
    auto timed = [&](const el::event& e) {
        const auto t0 = std::chrono::steady_clock::now();
        apply(e);
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
        total_us += us;
        ++applies;
        f.max_ms = std::max(f.max_ms, us / 1000);
        if (us > 1000) ++f.over_1ms;
    };
    for (std::size_t i = 0; i < users; ++i) {
        const std::string n = std::to_string(i);
        const std::string id = "3f1c9a52-0000-4000-8000-" + std::string(12 - n.size(), '0') + n;
        // Canonical form (sorted keys, compact), as the service writes it.
        const el::event created = event(
            "UserCreated", "User/" + id,
            R"({"id":")" + id +
                R"(","password_hash":null,"resource":{"active":true,)"
                R"("emails":[{"primary":true,"type":"work","value":"user)" +
                n + R"(@example.com"}],"externalId":"ext-)" + n + R"(","id":")" + id +
                R"(","name":{"familyName":"Family","givenName":"Given)" + n +
                R"("},"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"user)" +
                n + R"(@example.com"}})");
        timed(created);
        if (member_every > 0 && i % member_every == 0)
            timed(event("GroupMembersChanged", "Group/g-all",
                        R"({"added":[{"type":"User","value":")" + id +
                            R"("}],"id":"g-all","removed":[]})"));
    }
    f.mean_us = total_us / static_cast<double>(applies);

    scimsync::bench::scratch_dir dir(parent);
    const el::snapshot_store store(dir.path());
    auto t0 = std::chrono::steady_clock::now();
    auto written = store.write(p, p.checkpoint(), el::digest{}, el::system_utc_now());
    f.write_ms = 1000 * seconds_since(t0);
    if (!written || !*written) {
        std::fprintf(stderr, "the snapshot was not written: %s\n",
                     written ? "no snapshot" : written.error().message.c_str());
        std::exit(1);
    }
    t0 = std::chrono::steady_clock::now();
    const std::string serialised = d.serialize();
    f.serialize_ms = 1000 * seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    auto body = store.read_body(**written);
    if (!body || *body != serialised) {
        std::fprintf(stderr, "the snapshot file does not hold the serialised directory\n");
        std::exit(1);
    }
    f.read_ms = 1000 * seconds_since(t0);
    f.snapshot_mib = static_cast<double>(body->size()) / (1024.0 * 1024.0);
    t0 = std::chrono::steady_clock::now();
    auto back = model::directory::deserialize(*body);
    f.deserialize_ms = 1000 * seconds_since(t0);
    if (!back || back->user_count() != d.user_count()) {
        std::fprintf(stderr, "the snapshot did not restore the directory\n");
        std::exit(1);
    }
    // The daemon's start-up then copies the restored directory into its write model.
    t0 = std::chrono::steady_clock::now();
    const model::directory copy = *back;
    f.copy_ms = 1000 * seconds_since(t0);
    if (copy.user_count() != d.user_count()) std::exit(1);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t users = std::stoul(arg(argc, argv, "--users", "1000000"));
    const std::size_t member_every = std::stoul(arg(argc, argv, "--member-every", "2"));
    const int runs = std::stoi(arg(argc, argv, "--runs", "3"));
    const std::string parent = arg(argc, argv, "--dir", "");

    std::vector<double> max_ms, over, mean, wr, ser, mib, rd, deser, cp;
    for (int r = 1; r <= runs; ++r) {
        const figures f = run(users, member_every, parent);
        std::printf(
            "run %d: %zu users, longest apply %.2f ms, %.0f applies over 1 ms, mean %.2f us; "
            "snapshot %.0f MiB, file written in %.0f ms, serialised to a string in %.0f "
            "ms, read in %.0f ms, restored in %.0f ms, copied in %.0f ms\n",
            r, users, f.max_ms, f.over_1ms, f.mean_us, f.snapshot_mib, f.write_ms, f.serialize_ms,
            f.read_ms, f.deserialize_ms, f.copy_ms);
        rd.push_back(f.read_ms);
        cp.push_back(f.copy_ms);
        wr.push_back(f.write_ms);
        max_ms.push_back(f.max_ms);
        over.push_back(f.over_1ms);
        mean.push_back(f.mean_us);
        ser.push_back(f.serialize_ms);
        mib.push_back(f.snapshot_mib);
        deser.push_back(f.deserialize_ms);
    }
    std::printf(
        "median of %d: longest apply %.2f ms, %.0f applies over 1 ms, mean apply %.2f us; "
        "snapshot %.0f MiB, file written in %.0f ms, serialised to a string in %.0f ms, "
        "read in %.0f ms, restored in %.0f ms, copied in %.0f ms\n",
        runs, median(max_ms), median(over), median(mean), median(mib), median(wr), median(ser),
        median(rd), median(deser), median(cp));
}
