// The auditor's offline commands, `scimsyncctl log verify | stats | dump`, run against a log
// written by the real FileLog, with and without a daemon on the same data directory.

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "daemon_process.hpp"
#include "net_client.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using namespace std::chrono;
using namespace std::chrono_literals;
namespace el = scimsync::eventlog;
using nlohmann::json;

namespace {

// The log's clock during write_events(): event i is stamped 2026-11-22T10:00:0i.123456Z.
std::atomic<std::int64_t> fake_now_us{0};
el::utc_time fake_clock() {
    return el::utc_time(microseconds(fake_now_us.load()));
}

el::utc_time event_time(int i) {
    return el::utc_time(sys_days{2026y / 11 / 22} + 10h + seconds(i) + microseconds(123456));
}

// Appends `count` events to DATA_DIR/log, one per append (so one frame each). Odd events are
// UserCreated from scim, even ones GroupCreated from admin.
void write_events(const std::filesystem::path& data_dir, int count) {
    const auto set_clock = [](el::utc_time t) {
        fake_now_us = duration_cast<microseconds>(t.time_since_epoch()).count();
    };
    // The segment is created at open and stamped with the clock; times never go backwards.
    set_clock(event_time(0));
    el::file_log_options o;
    o.dir = data_dir / "log";
    o.mode = el::durability::none;
    o.clock = &fake_clock;
    auto log = el::file_log::open(std::move(o));
    REQUIRE(log);
    for (int i = 1; i <= count; ++i) {
        set_clock(event_time(i));
        el::event e;
        const bool user = i % 2 == 1;
        e.type = user ? "UserCreated" : "GroupCreated";
        e.source = user ? "scim" : "admin";
        e.actor = user ? "token:okta" : "root";
        e.request_id = "req-" + std::to_string(i);
        e.stream = (user ? "User/u" : "Group/g") + std::to_string(i);
        // Valid facts per the event catalogue: the daemon folds these into its directory.
        const std::string id = (user ? "u" : "g") + std::to_string(i);
        e.data = user ? R"({"id":")" + id + R"(","password_hash":null,"resource":{"id":")" + id +
                            R"(","userName":"user)" + std::to_string(i) + R"("}})"
                      : R"({"id":")" + id + R"(","members":[],"resource":{"displayName":"group)" +
                            std::to_string(i) + R"(","id":")" + id + R"("}})";
        auto r = (*log)->append({e});
        REQUIRE(r);
        REQUIRE(r->first.value == static_cast<std::uint64_t>(i));
    }
    (*log)->close();
}

std::vector<std::filesystem::path> segments(const std::filesystem::path& data_dir) {
    std::vector<std::filesystem::path> out;
    for (const auto& entry : std::filesystem::directory_iterator(data_dir / "log")) {
        if (entry.path().extension() == ".log") out.push_back(entry.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void flip_byte(const std::filesystem::path& file, std::uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x40));
    REQUIRE(f);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        out.push_back(text.substr(start, nl - start));
    }
    if (start < text.size()) out.push_back(text.substr(start));
    return out;
}

std::vector<std::uint64_t> dumped_seqs(const std::string& out) {
    std::vector<std::uint64_t> seqs;
    for (const auto& line : lines_of(out)) seqs.push_back(json::parse(line)["seq"]);
    return seqs;
}

struct log_dir {
    temp_dir dir{"scimsyncctl-it"};
    std::filesystem::path data() const { return dir.path() / "data"; }

    explicit log_dir(int events) { write_events(data(), events); }

    process_output ctl(std::vector<std::string> args) const {
        args.insert(args.begin(), {"--data-dir", data().string()});
        return run_binary("scimsyncctl", std::move(args));
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// log verify

TEST_CASE("log verify exits 0 and summarises a clean log", "[integration][log]") {
    log_dir d(10);
    const auto r = d.ctl({"log", "verify"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.find("ok") != std::string::npos);
    REQUIRE(r.out.find("10 event(s)") != std::string::npos);
    REQUIRE(r.out.find("last seq 10") != std::string::npos);
    REQUIRE(r.err.empty());  // no progress bar: stderr is not a terminal
}

TEST_CASE("log verify --json prints a clean report", "[integration][log]") {
    log_dir d(10);
    const auto r = d.ctl({"log", "verify", "--json"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    const auto rep = json::parse(r.out);
    REQUIRE(rep["ok"] == true);
    REQUIRE(rep["events"] == 10);
    REQUIRE(rep["last_good_seq"] == 10);
    REQUIRE(rep["segments"] == 1);
    REQUIRE(rep["problem"].is_null());
    REQUIRE(rep["chain_head"].get<std::string>().size() == 64);
}

TEST_CASE("log verify exits 1 naming the first bad seq, segment and offset after a byte flips",
          "[integration][log]") {
    log_dir d(10);
    const auto files = segments(d.data());
    REQUIRE(files.size() == 1);
    flip_byte(files[0], std::filesystem::file_size(files[0]) / 2);

    const auto r = d.ctl({"log", "verify"});
    INFO(r.out << r.err);
    REQUIRE(r.code() == 1);
    REQUIRE(lines_of(r.err).size() == 1);
    REQUIRE(r.err.find("first bad seq ") != std::string::npos);
    REQUIRE(r.err.find(files[0].filename().string()) != std::string::npos);
    REQUIRE(r.err.find("at offset ") != std::string::npos);

    const auto j = d.ctl({"log", "verify", "--json"});
    REQUIRE(j.code() == 1);
    const auto rep = json::parse(j.out);
    REQUIRE(rep["ok"] == false);
    REQUIRE(rep["problem"]["seq"].get<std::uint64_t>() >= 1);
    REQUIRE(rep["problem"]["seq"].get<std::uint64_t>() <= 10);
    REQUIRE(rep["problem"]["segment"].get<std::string>().ends_with(files[0].filename().string()));
    REQUIRE(rep["problem"]["offset"].get<std::uint64_t>() > 0);
    REQUIRE(rep["last_good_seq"].get<std::uint64_t>() < 10);
    // The one-line message names the same seq as the report.
    REQUIRE(j.err.find("first bad seq " + std::to_string(rep["problem"]["seq"].get<int>())) !=
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// log stats

TEST_CASE("log stats --json counts events, types, sources and streams", "[integration][log]") {
    log_dir d(5);
    const auto r = d.ctl({"log", "stats", "--json"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    const auto s = json::parse(r.out);
    REQUIRE(s["events"] == 5);
    REQUIRE(s["segments"] == 1);
    REQUIRE(s["first_seq"] == 1);
    REQUIRE(s["last_seq"] == 5);
    REQUIRE(s["first_time"] == "2026-11-22T10:00:01.123456Z");
    REQUIRE(s["last_time"] == "2026-11-22T10:00:05.123456Z");
    REQUIRE(s["by_type"] == json{{"GroupCreated", 2}, {"UserCreated", 3}});
    REQUIRE(s["by_source"] == json{{"admin", 2}, {"scim", 3}});
    REQUIRE(s["streams"] == 5);
    REQUIRE(s["bytes"].get<std::uint64_t>() > 0);
}

TEST_CASE("log stats prints a table for people", "[integration][log]") {
    log_dir d(3);
    const auto r = d.ctl({"log", "stats"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.find("events       3") != std::string::npos);
    REQUIRE(r.out.find("UserCreated") != std::string::npos);
    REQUIRE(r.out.find("2026-11-22T10:00:03.123456Z") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// log dump

TEST_CASE("log dump prints one JSON line per event with the envelope keys in order",
          "[integration][log]") {
    log_dir d(3);
    const auto r = d.ctl({"log", "dump"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 3);
    const auto first = nlohmann::ordered_json::parse(lines[0]);
    std::vector<std::string> keys;
    for (const auto& [k, v] : first.items()) keys.push_back(k);
    REQUIRE(keys == std::vector<std::string>{"seq", "time", "type", "v", "source", "actor",
                                             "request_id", "stream", "data"});
    REQUIRE(first["seq"] == 1);
    REQUIRE(first["time"] == "2026-11-22T10:00:01.123456Z");
    REQUIRE(first["type"] == "UserCreated");
    REQUIRE(first["v"] == 1);
    REQUIRE(first["source"] == "scim");
    REQUIRE(first["actor"] == "token:okta");
    REQUIRE(first["request_id"] == "req-1");
    REQUIRE(first["stream"] == "User/u1");
    REQUIRE(first["data"]["resource"]["userName"] == "user1");  // embedded, not a string
    REQUIRE(dumped_seqs(r.out) == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("log dump --from and --to select an inclusive range of sequence numbers",
          "[integration][log]") {
    log_dir d(10);
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--from", "4", "--to", "6"}).out) ==
            std::vector<std::uint64_t>{4, 5, 6});
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--from", "9"}).out) ==
            std::vector<std::uint64_t>{9, 10});
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--to", "2"}).out) ==
            std::vector<std::uint64_t>{1, 2});
    const auto past = d.ctl({"log", "dump", "--from", "11"});
    REQUIRE(past.code() == 0);
    REQUIRE(past.out.empty());
    const auto backwards = d.ctl({"log", "dump", "--from", "5", "--to", "4"});
    REQUIRE(backwards.code() == 2);
}

TEST_CASE("log dump --since and --until select events by time, until exclusive",
          "[integration][log]") {
    log_dir d(10);
    const auto r = d.ctl(
        {"log", "dump", "--since", "2026-11-22T10:00:03Z", "--until", "2026-11-22T10:00:05Z"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(dumped_seqs(r.out) == std::vector<std::uint64_t>{3, 4});
    // Exact event times: since is inclusive, until exclusive.
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--since", "2026-11-22T10:00:07.123456Z"}).out) ==
            std::vector<std::uint64_t>{7, 8, 9, 10});
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--until", "2026-11-22T10:00:02.123456Z"}).out) ==
            std::vector<std::uint64_t>{1});
    // Combined with a sequence range, the narrower bound wins.
    REQUIRE(
        dumped_seqs(d.ctl({"log", "dump", "--since", "2026-11-22T10:00:03Z", "--to", "4"}).out) ==
        std::vector<std::uint64_t>{3, 4});
    // Offsets are honoured: 11:00:09+01:00 is 10:00:09Z.
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--since", "2026-11-22T11:00:09+01:00"}).out) ==
            std::vector<std::uint64_t>{9, 10});
}

TEST_CASE("log dump of an empty log prints nothing and exits 0", "[integration][log]") {
    log_dir d(0);
    const auto r = d.ctl({"log", "dump", "--json"});
    INFO(r.err);
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.empty());
}

// ---------------------------------------------------------------------------------------------
// With a daemon

TEST_CASE(
    "a daemon started on an existing log reports its last_seq, and the offline commands "
    "still work beside it",
    "[integration][log]") {
    log_dir d(7);
    daemon_process daemon(daemon_options{.dir = d.dir.path(), .data_dir = d.data()});

    const auto ready = http_get(daemon.host(), daemon.port(), "/readyz");
    REQUIRE(ready.status == 200);
    REQUIRE(json::parse(ready.body)["last_seq"] == 7);
    const auto status = daemon.ctl({"status", "--json"});
    INFO(status.err);
    REQUIRE(status.code() == 0);
    REQUIRE(json::parse(status.out)["last_seq"] == 7);

    const auto verify = d.ctl({"log", "verify", "--json"});
    INFO(verify.err);
    REQUIRE(verify.code() == 0);
    REQUIRE(json::parse(verify.out)["events"] == 7);
    REQUIRE(dumped_seqs(d.ctl({"log", "dump", "--from", "6"}).out) ==
            std::vector<std::uint64_t>{6, 7});

    REQUIRE(daemon.stop().value().code == 0);
    // A clean shutdown leaves a log that verifies.
    REQUIRE(d.ctl({"log", "verify"}).code() == 0);
}
