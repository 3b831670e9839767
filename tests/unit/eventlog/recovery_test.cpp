#include <catch2/catch.hpp>

#include "format.hpp"
#include "log_fixture.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace el = scimsync::eventlog;
namespace fs = std::filesystem;
using namespace scimsync::testing;

namespace {

struct torn_setup {
    fs::path segment;
    std::uint64_t last_frame_start = 0;
    std::uint64_t last_frame_end = 0;
};

// Records 1..n, each its own append; then the commit hint is rolled back to n-1, as it is when
// the process dies before the hint caught up with the last (never acknowledged) record.
torn_setup make_log_with_unacknowledged_tail(const fs::path& dir, std::uint64_t n) {
    {
        auto log = open_log(log_options(dir, el::durability::batch));
        for (std::uint64_t i = 1; i < n; ++i) REQUIRE(log->append(sample_batch(i, 1)).has_value());
    }
    const std::string hint = read_file(dir / "commit.chk");
    torn_setup t;
    t.segment = segment_files(dir).back();
    t.last_frame_start = fs::file_size(t.segment);
    {
        auto log = open_log(log_options(dir, el::durability::batch));
        REQUIRE(log->append(sample_batch(n, 1)).has_value());
    }
    t.last_frame_end = fs::file_size(t.segment);
    write_file(dir / "commit.chk", hint);
    return t;
}

void copy_dir(const fs::path& from, const fs::path& to) {
    fs::remove_all(to);
    fs::copy(from, to, fs::copy_options::recursive);
}

void require_intact_prefix(const fs::path& dir, std::uint64_t last) {
    auto log = open_log(log_options(dir, el::durability::batch));
    REQUIRE(log->last_seq().value == last);
    auto all = read_all(*log);
    REQUIRE(all.size() == last);
    for (std::uint64_t i = 0; i < last; ++i) REQUIRE(all[i].data == sample_event(i + 1).data);
    // The log is writable again and the next event takes the dropped one's number.
    REQUIRE(log->append(sample_batch(last + 1, 1))->first.value == last + 1);
    log->close();
    auto rep = el::verify_log(dir);
    INFO((rep->problem ? rep->problem->what : std::string()));
    REQUIRE_FALSE(rep->problem.has_value());
}

}  // namespace

TEST_CASE("a record torn at any byte offset is dropped and every earlier record survives",
          "[eventlog][recovery]") {
    temp_dir dir;
    const fs::path orig = dir.path() / "orig";
    const auto t = make_log_with_unacknowledged_tail(orig, 8);
    const fs::path work = dir.path() / "work";
    for (std::uint64_t cut = t.last_frame_start; cut < t.last_frame_end; ++cut) {
        CAPTURE(cut);
        copy_dir(orig, work);
        truncate_file(work / t.segment.filename(), cut);
        std::string notice;
        auto opt = log_options(work, el::durability::batch);
        opt.notice = [&](const std::string& s) { notice = s; };
        {
            auto log = open_log(opt);
            REQUIRE(log->recovery().truncated_bytes == cut - t.last_frame_start);
            if (cut > t.last_frame_start) REQUIRE(notice.find("torn tail") != std::string::npos);
        }
        require_intact_prefix(work, 7);
    }
}

TEST_CASE("a zero-filled tail (preallocated or extended file) is treated as end of log",
          "[eventlog][recovery]") {
    temp_dir dir;
    const auto t = make_log_with_unacknowledged_tail(dir.path(), 5);
    append_bytes(t.segment, std::string(4096, '\0'));
    require_intact_prefix(dir.path(), 5);
}

TEST_CASE("random garbage after the last record is dropped as a torn tail",
          "[eventlog][recovery]") {
    temp_dir dir;
    const auto t = make_log_with_unacknowledged_tail(dir.path(), 5);
    append_bytes(t.segment, "nonsense block ADDED \x01\x02\xff garbage");
    require_intact_prefix(dir.path(), 5);
}

TEST_CASE("a torn record that zeroes and cuts the header is dropped", "[eventlog][recovery]") {
    temp_dir dir;
    const auto t = make_log_with_unacknowledged_tail(dir.path(), 5);
    truncate_file(t.segment, t.last_frame_start + 30);
    flip_byte(t.segment, t.last_frame_start + 2);
    require_intact_prefix(dir.path(), 4);
}

TEST_CASE("a damaged record followed by valid records refuses to open and names the place",
          "[eventlog][recovery]") {
    temp_dir dir;
    const auto t = make_log_with_unacknowledged_tail(dir.path(), 10);
    // Lose the hint entirely: the decision must still come from the valid records after it.
    fs::remove(dir.path() / "commit.chk");
    // Frame 1 starts right after the 64-byte segment header; damage its payload.
    flip_byte(t.segment, 64 + 70);
    auto log = el::file_log::open(log_options(dir.path(), el::durability::batch));
    REQUIRE_FALSE(log.has_value());
    REQUIRE(log.error().code == el::errc::corrupt);
    REQUIRE(log.error().seq.value == 1);
    REQUIRE_THAT(log.error().message, Catch::Contains(t.segment.filename().string()) &&
                                          Catch::Contains("offset 64") && Catch::Contains("seq 1"));
    // Nothing was truncated.
    REQUIRE(fs::file_size(t.segment) == t.last_frame_end);
}

TEST_CASE("damage to the last acknowledged record fails closed instead of dropping it",
          "[eventlog][recovery]") {
    temp_dir dir;
    {
        auto log = open_log(log_options(dir.path(), el::durability::batch));
        for (std::uint64_t i = 1; i <= 4; ++i) REQUIRE(log->append(sample_batch(i, 1)).has_value());
    }  // clean close: commit.chk says 4 is durable
    const auto seg = segment_files(dir.path()).back();
    flip_byte(seg, fs::file_size(seg) - 10);
    auto log = el::file_log::open(log_options(dir.path(), el::durability::batch));
    REQUIRE_FALSE(log.has_value());
    REQUIRE(log.error().code == el::errc::corrupt);
    REQUIRE(log.error().seq.value == 4);
    REQUIRE_THAT(log.error().message, Catch::Contains("acknowledged"));
}

TEST_CASE("a read-only open reports a torn tail but leaves the file alone",
          "[eventlog][recovery]") {
    temp_dir dir;
    const auto t = make_log_with_unacknowledged_tail(dir.path(), 5);
    truncate_file(t.segment, t.last_frame_end - 3);
    auto ro = el::file_log::open({.dir = dir.path(), .read_only = true});
    REQUIRE(ro.has_value());
    REQUIRE((*ro)->last_seq().value == 4);
    REQUIRE((*ro)->recovery().truncated_bytes == t.last_frame_end - 3 - t.last_frame_start);
    REQUIRE(fs::file_size(t.segment) == t.last_frame_end - 3);
}

TEST_CASE("a crash between sealing a segment and creating the next one is completed on open",
          "[eventlog][recovery][rotation]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 4096;
    {
        auto log = open_log(opt);
        while (segment_files(dir.path()).size() < 3)
            REQUIRE(log->append(sample_batch(log->last_seq().value + 1, 1)).has_value());
    }
    // Rolling seals the old segment, then creates the next one and writes the frame that
    // triggered the roll. Deleting the newest segment leaves the state of a crash after the
    // seal but before its successor existed (durability none: no commit hint to contradict).
    auto segs = segment_files(dir.path());
    const auto last =
        el::seq_no{el::format::parse_segment_file_name(segs.back().filename().string())->value - 1};
    fs::remove(segs.back());
    auto log = open_log(opt);
    REQUIRE(segment_files(dir.path()).size() == 3);
    REQUIRE(log->last_seq() == last);
    REQUIRE(log->append(sample_batch(last.value + 1, 1))->first == last.next());
    log->close();
    REQUIRE_FALSE(el::verify_log(dir.path())->problem.has_value());
}

TEST_CASE("a missing middle segment is reported as a broken chain", "[eventlog][recovery]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 4096;
    {
        auto log = open_log(opt);
        while (segment_files(dir.path()).size() < 4)
            REQUIRE(log->append(sample_batch(log->last_seq().value + 1, 1)).has_value());
    }
    fs::remove(segment_files(dir.path())[1]);
    auto log = el::file_log::open(opt);
    REQUIRE_FALSE(log.has_value());
    REQUIRE(log.error().code == el::errc::corrupt);
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep->problem.has_value());
    REQUIRE_THAT(rep->problem->what, Catch::Contains("chain"));
}
