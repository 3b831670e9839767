#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "log_fixture.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace el = scimsync::eventlog;
using namespace scimsync::testing;

namespace {
el::utc_time fixed_clock_value{std::chrono::microseconds(1'800'000'000'000'000)};
el::utc_time fixed_clock() {
    return fixed_clock_value;
}
}  // namespace

TEST_CASE("appended events come back identical, in order, with consecutive seqs",
          "[eventlog][file_log]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path(), el::durability::batch));
    auto r1 = log->append(sample_batch(1, 3));
    REQUIRE(r1.has_value());
    REQUIRE(r1->first.value == 1);
    REQUIRE(r1->last.value == 3);
    auto r2 = log->append(sample_batch(4, 2));
    REQUIRE(r2->first.value == 4);
    REQUIRE(log->last_seq().value == 5);
    auto all = read_all(*log);
    REQUIRE(all.size() == 5);
    for (std::size_t i = 0; i < all.size(); ++i) {
        auto expected = sample_event(i + 1);
        expected.seq = el::seq_no{i + 1};
        expected.time = all[i].time;
        REQUIRE(all[i] == expected);
    }
}

TEST_CASE("events of one append share one time stamp and times never go backwards",
          "[eventlog][file_log]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.clock = &fixed_clock;
    auto log = open_log(opt);
    REQUIRE(log->append(sample_batch(1, 2)).has_value());
    fixed_clock_value -= std::chrono::hours(1);  // the wall clock steps back
    REQUIRE(log->append(sample_batch(3, 1)).has_value());
    auto all = read_all(*log);
    REQUIRE(all[0].time == all[1].time);
    REQUIRE(all[2].time >= all[1].time);
}

TEST_CASE("the log reopens where it left off and continues the chain", "[eventlog][file_log]") {
    temp_dir dir;
    {
        auto log = open_log(log_options(dir.path(), el::durability::batch));
        REQUIRE(log->append(sample_batch(1, 10)).has_value());
    }
    auto log = open_log(log_options(dir.path(), el::durability::batch));
    REQUIRE(log->recovery().last_seq.value == 10);
    REQUIRE(log->recovery().truncated_bytes == 0);
    REQUIRE(log->append(sample_batch(11, 5))->first.value == 11);
    log->close();
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep.has_value());
    REQUIRE_FALSE(rep->problem.has_value());
    REQUIRE(rep->events == 15);
}

TEST_CASE("segments roll at the configured size and the chain spans them",
          "[eventlog][file_log][rotation]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 4096;
    {
        auto log = open_log(opt);
        for (std::uint64_t i = 1; i <= 200; i += 2)
            REQUIRE(log->append(sample_batch(i, 2)).has_value());
        REQUIRE(read_all(*log).size() == 200);
    }
    const auto segs = segment_files(dir.path());
    REQUIRE(segs.size() > 5);
    for (std::size_t i = 0; i + 1 < segs.size(); ++i)
        REQUIRE(std::filesystem::file_size(segs[i]) <= 4096 + 68);
    auto rep = el::verify_log(dir.path());
    REQUIRE_FALSE(rep->problem.has_value());
    REQUIRE(rep->segments == segs.size());
    REQUIRE(rep->events == 200);
    auto log = open_log(opt);
    REQUIRE(log->last_seq().value == 200);
    auto all = read_all(*log);
    REQUIRE(all.size() == 200);
    REQUIRE(all.back().data == sample_event(200).data);
}

TEST_CASE("segments also roll when they get older than the maximum age",
          "[eventlog][file_log][rotation]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.clock = &fixed_clock;
    opt.segment_max_age = std::chrono::seconds(60);
    auto log = open_log(opt);
    REQUIRE(log->append(sample_batch(1, 1)).has_value());
    fixed_clock_value += std::chrono::minutes(2);
    REQUIRE(log->append(sample_batch(2, 1)).has_value());
    REQUIRE(segment_files(dir.path()).size() == 2);
    REQUIRE(read_all(*log).size() == 2);
}

TEST_CASE("reading from any sequence number starts exactly there, across segments",
          "[eventlog][file_log][seek]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 16 * 1024;
    {
        auto log = open_log(opt);
        for (std::uint64_t i = 1; i <= 1000; i += 4)
            REQUIRE(log->append(sample_batch(i, 4)).has_value());
    }
    SECTION("with the segment indexes present") {}
    SECTION("with the segment indexes deleted (they are rebuilt)") {
        for (const auto& e : std::filesystem::directory_iterator(dir.path()))
            if (e.path().extension() == ".idx") std::filesystem::remove(e.path());
    }
    SECTION("with a segment index full of nonsense (it is ignored)") {
        for (const auto& e : std::filesystem::directory_iterator(dir.path()))
            if (e.path().extension() == ".idx") write_file(e.path(), std::string(64, '\x07'));
    }
    auto log = open_log(opt);
    REQUIRE(segment_files(dir.path()).size() > 3);
    for (std::uint64_t s : {1ull, 2ull, 3ull, 4ull, 5ull, 97ull, 333ull, 512ull, 999ull, 1000ull}) {
        auto r = log->read_from(el::seq_no{s});
        REQUIRE(r.has_value());
        el::event e;
        REQUIRE(*(*r)->next(e));
        REQUIRE(e.seq.value == s);
        REQUIRE(e.data == sample_event(s).data);
    }
    auto past = log->read_from(el::seq_no{1001});
    el::event e;
    REQUIRE_FALSE(*(*past)->next(e));
}

TEST_CASE("a reader at the end picks up events appended later", "[eventlog][file_log]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 4096;
    auto log = open_log(opt);
    REQUIRE(log->append(sample_batch(1, 3)).has_value());
    auto r = log->read_from(el::seq_no{1});
    el::event e;
    std::uint64_t seen = 0;
    while (*(*r)->next(e)) ++seen;
    REQUIRE(seen == 3);
    for (std::uint64_t i = 4; i <= 100; ++i) REQUIRE(log->append(sample_batch(i, 1)).has_value());
    while (*(*r)->next(e)) REQUIRE(e.seq.value == ++seen);
    REQUIRE(seen == 100);
}

TEST_CASE("wait_for wakes when a later event becomes durable", "[eventlog][file_log]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path(), el::durability::batch));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::thread appender([&] { (void)log->append(sample_batch(1, 1)); });
    const auto seen = log->wait_for(el::seq_no{0}, deadline);
    appender.join();
    REQUIRE(seen.value == 1);
}

TEST_CASE(
    "an empty append, a typeless event and an oversized event are refused and append "
    "nothing",
    "[eventlog][file_log]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path(), el::durability::batch));
    REQUIRE(log->append({}).error().code == el::errc::invalid_argument);
    auto typeless = sample_batch(1, 1);
    typeless[0].type.clear();
    REQUIRE(log->append(typeless).error().code == el::errc::invalid_argument);
    auto huge = sample_batch(1, 2);
    huge[1].data.assign(el::max_event_bytes + 1, 'x');
    auto r = log->append(huge);
    REQUIRE(r.error().code == el::errc::too_large);
    REQUIRE(log->last_seq().value == 0);
    REQUIRE(log->append(sample_batch(1, 1))->first.value == 1);
}

TEST_CASE("a batch too big for one frame is refused whole", "[eventlog][file_log]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path()));
    auto many = sample_batch(1, 10, 600 * 1024);  // ~6 MiB > 4 MiB frame limit
    REQUIRE(log->append(many).error().code == el::errc::too_large);
    REQUIRE(log->last_seq().value == 0);
}

TEST_CASE("first_at_or_after finds the first event at or after a time", "[eventlog][file_log]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.clock = &fixed_clock;
    opt.segment_bytes = 4096;
    auto log = open_log(opt);
    const auto t0 = fixed_clock_value;
    for (std::uint64_t i = 1; i <= 60; ++i) {
        fixed_clock_value = t0 + std::chrono::seconds(i);
        REQUIRE(log->append(sample_batch(i, 1)).has_value());
    }
    REQUIRE(log->first_at_or_after(t0)->value == 1);
    REQUIRE(log->first_at_or_after(t0 + std::chrono::seconds(30))->value == 30);
    REQUIRE(log->first_at_or_after(t0 + std::chrono::milliseconds(30'500))->value == 31);
    REQUIRE(log->first_at_or_after(t0 + std::chrono::seconds(61))->value == 61);
}

TEST_CASE("chain_head_at agrees with the head verify computes", "[eventlog][file_log]") {
    temp_dir dir;
    auto opt = log_options(dir.path());
    opt.segment_bytes = 4096;
    auto log = open_log(opt);
    for (std::uint64_t i = 1; i <= 90; i += 3) REQUIRE(log->append(sample_batch(i, 3)).has_value());
    log->close();
    auto rep = el::verify_log(dir.path());
    REQUIRE(rep->last_good.value == 90);
    auto ro = el::file_log::open({.dir = dir.path(), .read_only = true});
    REQUIRE(ro.has_value());
    REQUIRE(*(*ro)->chain_head_at(el::seq_no{90}) == rep->chain_head);
    // Heads inside a frame differ from each other and from the frame's final head.
    REQUIRE(*(*ro)->chain_head_at(el::seq_no{88}) != *(*ro)->chain_head_at(el::seq_no{89}));
    REQUIRE((*ro)->chain_head_at(el::seq_no{91}).error().code == el::errc::not_found);
}

TEST_CASE("a read-only open refuses appends", "[eventlog][file_log]") {
    temp_dir dir;
    {
        auto log = open_log(log_options(dir.path()));
        (void)log->append(sample_batch(1, 1));
    }
    auto ro = el::file_log::open({.dir = dir.path(), .read_only = true});
    REQUIRE(ro.has_value());
    REQUIRE((*ro)->append(sample_batch(2, 1)).error().code == el::errc::invalid_argument);
    REQUIRE(el::file_log::open({.dir = dir.path() / "nope", .read_only = true}).error().code ==
            el::errc::not_found);
}

TEST_CASE("appends after close are refused with closed", "[eventlog][file_log]") {
    temp_dir dir;
    auto log = open_log(log_options(dir.path()));
    log->close();
    REQUIRE(log->append(sample_batch(1, 1)).error().code == el::errc::closed);
}

TEST_CASE("durability always syncs once per append, batch at most once per append",
          "[eventlog][file_log]") {
    temp_dir dir;
    {
        auto log = open_log(log_options(dir.path() / "a", el::durability::always));
        for (int i = 0; i < 5; ++i) REQUIRE(log->append(sample_batch(1, 2)).has_value());
        REQUIRE(log->sync_count() == 5);
    }
    {
        auto log = open_log(log_options(dir.path() / "n", el::durability::none));
        for (int i = 0; i < 5; ++i) REQUIRE(log->append(sample_batch(1, 2)).has_value());
        REQUIRE(log->sync_count() == 0);
    }
}

TEST_CASE("a second writer on the same log is refused while the first holds it",
          "[eventlog][file_log][lock]") {
    temp_dir dir;
    auto first = open_log(log_options(dir.path()));
    auto second = el::file_log::open(log_options(dir.path()));
    REQUIRE_FALSE(second.has_value());
    REQUIRE(second.error().code == el::errc::locked);
    REQUIRE_THAT(second.error().message, Catch::Contains(dir.path().string()));
    // Readers (auditor tools) are not blocked by the writer's lock.
    REQUIRE(el::file_log::open({.dir = dir.path(), .read_only = true}).has_value());
    first.reset();
    REQUIRE(el::file_log::open(log_options(dir.path())).has_value());
}

TEST_CASE("after a failed write the log refuses appends until reopened, and nothing is lost",
          "[eventlog][file_log][failure]") {
    temp_dir dir;
    std::vector<el::error> fatal_calls;
    auto opt = log_options(dir.path(), el::durability::batch);
    // No zeros ahead of the data (the housekeeper writes them at its own pace): the file ends
    // where the data does, so the size limit below fails the very next write.
    opt.preallocate_bytes = 0;
    opt.on_fatal = [&](const el::error& e) { fatal_calls.push_back(e); };
    auto log = open_log(opt);
    REQUIRE(log->append(sample_batch(1, 3)).has_value());
    REQUIRE_FALSE(log->write_failure().has_value());

    // A real write failure: a file-size limit makes the next pwrite fail with EFBIG.
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    const auto seg = segment_files(dir.path()).back();
    rlimit tight = old;
    tight.rlim_cur = std::filesystem::file_size(seg) + 10;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
    auto failed = log->append(sample_batch(4, 2, 700 * 1024));
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
    std::signal(SIGXFSZ, old_handler);

    REQUIRE_FALSE(failed.has_value());
    REQUIRE(failed.error().code == el::errc::failed);
    REQUIRE(log->write_failure().has_value());
    REQUIRE(fatal_calls.size() == 1);
    // Sticky: even a small append that would fit now is refused.
    REQUIRE(log->append(sample_batch(4, 1)).error().code == el::errc::failed);
    REQUIRE(fatal_calls.size() == 1);
    log.reset();
    // Reopening runs recovery; every acknowledged event is there and the log takes writes.
    auto again = open_log(log_options(dir.path(), el::durability::batch));
    REQUIRE(again->last_seq().value == 3);
    REQUIRE(again->append(sample_batch(4, 1))->first.value == 4);
}

TEST_CASE("while the log is open, the commit hint follows what is durable and zeros stay ahead "
          "of the data, without a close",
          "[eventlog][file_log][housekeeping]") {
    temp_dir dir;
    auto opt = log_options(dir.path(), el::durability::batch);
    opt.preallocate_bytes = 64 * 1024;
    auto log = open_log(opt);
    const auto seg = segment_files(dir.path()).back();
    // The first record's end: the segment holds it and then only zeros.
    REQUIRE(log->append(sample_batch(1, 1)).has_value());
    auto hint_says = [&]() -> std::uint64_t {
        if (!std::filesystem::exists(dir.path() / "commit.chk")) return 0;
        const auto bytes = read_file(dir.path() / "commit.chk");
        if (bytes.size() != 16) return 0;
        std::uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
        return v;
    };
    REQUIRE(eventually([&] { return hint_says() == 1; }));
    // Far more than the preallocation, in many appends: the file keeps growing ahead of the
    // data, and each append can be read back as it was written.
    for (std::uint64_t i = 2; i <= 200; ++i)
        REQUIRE(log->append(sample_batch(i, 1, 2048)).has_value());
    REQUIRE(eventually([&] { return hint_says() == 200; }));
    REQUIRE(read_all(*log).size() == 200);
    std::uintmax_t size_open = 0;
    REQUIRE(eventually([&] {
        const auto size = size_open = std::filesystem::file_size(seg);
        const std::string bytes = read_file(seg);
        // The data ends where the zeros begin: the tail past the last record is all zeros and at
        // least one preallocation long.
        const auto last_nonzero = bytes.find_last_not_of('\0');
        return last_nonzero != std::string::npos && size - (last_nonzero + 1) >= 64 * 1024;
    }));
    // A clean close trims the zeros and leaves a log that verifies.
    log.reset();
    REQUIRE(std::filesystem::file_size(seg) + 64 * 1024 <= size_open);
    auto again = open_log(log_options(dir.path(), el::durability::batch));
    REQUIRE(again->last_seq().value == 200);
}
