#include <catch2/catch.hpp>
#include <map>

#include "format.hpp"
#include "log_fixture.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace el = scimsync::eventlog;
namespace fs = std::filesystem;
using namespace scimsync::testing;

namespace {

// A small multi-segment log, closed, and for every byte of every segment the sequence number
// that a problem at that byte must be reported against.
struct layout {
    std::vector<fs::path> segments;
    std::vector<std::vector<std::uint64_t>> seq_at;  // [segment][offset]
};

layout build_small_log(const fs::path& dir) {
    auto opt = log_options(dir, el::durability::none);
    opt.segment_bytes = 1024;
    {
        auto log = open_log(opt);
        for (std::uint64_t i = 1; i <= 24; i += 2)
            REQUIRE(log->append(sample_batch(i, i % 4 == 1 ? 2 : 1, 100))->last.value > 0);
    }
    layout out;
    out.segments = segment_files(dir);
    for (const auto& seg : out.segments) {
        const std::string bytes = read_file(seg);
        std::vector<std::uint64_t> seqs(bytes.size());
        const auto base = el::format::parse_segment_file_name(seg.filename().string())->value;
        std::fill(seqs.begin(), seqs.begin() + 64, base);
        std::size_t pos = 64;
        while (pos < bytes.size()) {
            const auto h = el::format::read_frame_header(bytes.data() + pos);
            std::fill(seqs.begin() + long(pos), seqs.begin() + long(pos + h.total_size()),
                      h.first_seq.value);
            pos += h.total_size();
        }
        out.seq_at.push_back(std::move(seqs));
    }
    return out;
}

}  // namespace

TEST_CASE("verify passes a clean multi-segment log and reports its size", "[eventlog][verify]") {
    temp_dir dir;
    const auto l = build_small_log(dir.path());
    REQUIRE(l.segments.size() >= 3);
    std::uint64_t calls = 0;
    auto rep = el::verify_log(dir.path(), [&](std::uint64_t, std::uint64_t) { ++calls; });
    REQUIRE(rep.has_value());
    REQUIRE_FALSE(rep->problem.has_value());
    REQUIRE(rep->segments == l.segments.size());
    REQUIRE(rep->events == 18);
    REQUIRE(rep->last_good.value == 18);
    REQUIRE(calls >= 1);
}

TEST_CASE("flipping any single byte of any segment is detected and names the record",
          "[eventlog][verify][tamper]") {
    temp_dir dir;
    const auto l = build_small_log(dir.path());
    for (std::size_t s = 0; s < l.segments.size(); ++s) {
        const std::string original = read_file(l.segments[s]);
        for (std::size_t off = 0; off < original.size(); ++off) {
            std::string bad = original;
            bad[off] = char(bad[off] ^ 0x01);
            write_file(l.segments[s], bad);
            auto rep = el::verify_log(dir.path());
            CAPTURE(s, off);
            REQUIRE(rep.has_value());
            REQUIRE(rep->problem.has_value());
            REQUIRE(rep->problem->seq.value == l.seq_at[s][off]);
            REQUIRE(rep->problem->segment == l.segments[s]);
        }
        write_file(l.segments[s], original);
    }
    REQUIRE_FALSE(el::verify_log(dir.path())->problem.has_value());
}

TEST_CASE("a dropped record is detected as a sequence gap", "[eventlog][verify][tamper]") {
    temp_dir dir;
    const auto l = build_small_log(dir.path());
    std::string bytes = read_file(l.segments[0]);
    const auto first = el::format::read_frame_header(bytes.data() + 64);
    bytes.erase(64, first.total_size());
    write_file(l.segments[0], bytes);
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep->problem.has_value());
    REQUIRE(rep->problem->seq.value == 1);
    REQUIRE_THAT(rep->problem->what, Catch::Contains("sequence gap"));
}

TEST_CASE("two records swapped are detected", "[eventlog][verify][tamper]") {
    temp_dir dir;
    const auto l = build_small_log(dir.path());
    const std::string bytes = read_file(l.segments[0]);
    const auto a = el::format::read_frame_header(bytes.data() + 64);
    const auto b = el::format::read_frame_header(bytes.data() + 64 + a.total_size());
    const std::string fa = bytes.substr(64, a.total_size());
    const std::string fb = bytes.substr(64 + a.total_size(), b.total_size());
    write_file(l.segments[0],
               bytes.substr(0, 64) + fb + fa + bytes.substr(64 + a.total_size() + b.total_size()));
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep->problem.has_value());
    REQUIRE(rep->problem->seq.value == 1);
}

TEST_CASE("a record rewritten with a fresh CRC still breaks the hash chain",
          "[eventlog][verify][tamper]") {
    temp_dir dir;
    const auto l = build_small_log(dir.path());
    std::string bytes = read_file(l.segments[0]);
    const auto h = el::format::read_frame_header(bytes.data() + 64);
    // Change one character of the first event's data and recompute the frame CRC, as a
    // careful forger would; the chain head stored in the frame no longer matches.
    const std::size_t data_pos = bytes.find("\"pad\":\"", 64) + 7;
    bytes[data_pos] = bytes[data_pos] == 'z' ? 'y' : 'z';
    std::string frame = bytes.substr(64, h.total_size());
    el::format::put_u32(frame.data() + 4, el::format::frame_crc(frame));
    bytes.replace(64, frame.size(), frame);
    write_file(l.segments[0], bytes);
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep->problem.has_value());
    REQUIRE(rep->problem->seq.value == 1);
    REQUIRE_THAT(rep->problem->what, Catch::Contains("hash chain"));
}

TEST_CASE("stats count events by type and source and the streams touched", "[eventlog][stats]") {
    temp_dir dir;
    {
        auto log = open_log(log_options(dir.path()));
        REQUIRE(log->append(sample_batch(1, 30)).has_value());
    }
    auto st = el::compute_stats(dir.path());
    REQUIRE(st.has_value());
    REQUIRE(st->events == 30);
    REQUIRE(st->first_seq.value == 1);
    REQUIRE(st->last_seq.value == 30);
    REQUIRE(st->by_type.at("UserCreated") == 10);
    REQUIRE(st->by_source.at("scim") == 30);
    REQUIRE(st->streams == 30);  // n % 50 for n in 1..30
}

TEST_CASE("verify on a directory without a log says so", "[eventlog][verify]") {
    temp_dir dir;
    REQUIRE(el::verify_log(dir.path() / "missing").error().code == el::errc::not_found);
    REQUIRE(el::verify_log(dir.path()).error().code == el::errc::not_found);
}
