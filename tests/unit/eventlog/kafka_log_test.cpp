// KafkaLog against librdkafka's mock cluster (3 brokers), or a real cluster when
// SCIMSYNC_KAFKA_BROKERS is set (the cases that need to stop brokers then only warn).

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "format.hpp"
#include "kafka_fixture.hpp"
#include "log_fixture.hpp"
#include "scimsync/eventlog/kafka_log.hpp"
#include "scimsync/eventlog/projector.hpp"
#include "sha256.hpp"

namespace el = scimsync::eventlog;
using namespace scimsync::testing;

namespace {

std::chrono::steady_clock::time_point soon() {
    return std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

kafka_cluster& cluster() {
    static kafka_cluster c;
    return c;
}

el::kafka_log_options options_for(const std::string& topic) {
    el::kafka_log_options o;
    o.brokers = cluster().bootstraps();
    o.topic = topic;
    o.open_timeout = std::chrono::seconds(30);
    return o;
}

std::unique_ptr<el::kafka_log> open_kafka(el::kafka_log_options o) {
    auto l = el::kafka_log::open(std::move(o));
    INFO((l ? std::string() : l.error().message));
    REQUIRE(l.has_value());
    return std::move(*l);
}

// Appends and waits until the log's own follower has read the append back.
el::append_result append_seen(el::kafka_log& log, std::vector<el::event> batch) {
    auto r = log.append(std::move(batch));
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r.has_value());
    REQUIRE(log.wait_for(el::seq_no{r->last.value - 1}, soon()) >= r->last);
    return *r;
}

// The chain over `events` as the file log defines it, from `genesis`.
el::digest chain_over(const std::vector<el::event>& events, const el::digest& genesis) {
    el::sha256::hasher h;
    el::digest head = genesis;
    for (const auto& e : events) {
        std::string bytes;
        el::format::encode_event(bytes, e);
        head = el::sha256::chain(h, head, e.seq.value, el::sha256::leaf(h, bytes));
    }
    return head;
}

std::string tag(std::uint64_t writer, std::uint32_t batch, std::uint16_t index,
                std::uint16_t count) {
    std::string t(16, '\0');
    el::format::put_u64(t.data(), writer);
    el::format::put_u32(t.data() + 8, batch);
    el::format::put_u16(t.data() + 12, index);
    el::format::put_u16(t.data() + 14, count);
    return t;
}

std::string encoded(const el::event& e) {
    std::string out;
    el::format::encode_event(out, e);
    return out;
}

class counter final : public el::projector {
public:
    std::string name() const override { return "counter"; }
    std::uint32_t schema_version() const override { return 1; }
    el::seq_no checkpoint() const override { return at; }
    el::result<void> apply(const el::event& e) override {
        seen.push_back(e.seq.value);
        ++per_stream[e.stream];
        at = e.seq;
        return {};
    }
    std::optional<std::string> snapshot() const override {
        std::ostringstream out;
        for (const auto& [k, v] : per_stream) out << k << ' ' << v << '\n';
        return out.str();
    }
    el::result<void> restore(std::string_view body, el::seq_no s) override {
        per_stream.clear();
        std::istringstream in{std::string(body)};
        std::string k;
        std::uint64_t v = 0;
        while (in >> k >> v) per_stream[k] = v;
        at = s;
        restored_from = s;
        return {};
    }
    el::seq_no at, restored_from;
    std::map<std::string, std::uint64_t> per_stream;
    std::vector<std::uint64_t> seen;
};

}  // namespace

TEST_CASE("events appended to a Kafka log read back in order, numbered by offset, chained as in "
          "the file log",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("roundtrip");
    auto log = open_kafka(options_for(topic));
    REQUIRE(log->last_seq().value == 0);
    const auto a = append_seen(*log, sample_batch(1, 3));
    REQUIRE(a.first.value == 1);
    REQUIRE(a.last.value == 3);
    const auto b = append_seen(*log, sample_batch(4, 1));
    REQUIRE(b.first.value == 4);

    const auto all = read_all(*log);
    REQUIRE(all.size() == 4);
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto want = sample_event(i + 1);
        REQUIRE(all[i].seq.value == i + 1);
        REQUIRE(all[i].type == want.type);
        REQUIRE(all[i].data == want.data);
        REQUIRE(all[i].stream == want.stream);
        REQUIRE(all[i].request_id == want.request_id);
    }
    REQUIRE(all[0].time == a.time);
    REQUIRE(all[3].time >= all[2].time);
    const auto genesis = log->chain_head_at(el::seq_no{0});
    REQUIRE(genesis.has_value());
    REQUIRE(log->chain_head_at(el::seq_no{4}).value() == chain_over(all, *genesis));
    REQUIRE(log->chain_head_at(el::seq_no{2}).value() ==
            chain_over({all[0], all[1]}, *genesis));
    const auto from3 = read_all(*log, el::seq_no{3});
    REQUIRE(from3.size() == 2);
    REQUIRE(from3.front().seq.value == 3);
}

TEST_CASE("a Kafka log opened again on the topic sees every event and the same chain head",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("reopen");
    el::digest head{};
    {
        auto log = open_kafka(options_for(topic));
        for (std::uint64_t i = 0; i < 20; ++i) append_seen(*log, sample_batch(1 + i * 5, 5));
        head = log->chain_head_at(log->last_seq()).value();
        log->close();
    }
    auto again = open_kafka(options_for(topic));
    // close() wrote a LogCheckpoint after the 100 events; reading it back checked its head.
    REQUIRE(again->last_seq().value == 101);
    REQUIRE(again->counts().checkpoints_checked >= 1);
    REQUIRE(again->chain_head_at(el::seq_no{100}).value() == head);
    const auto all = read_all(*again);
    REQUIRE(all.size() == 101);
    REQUIRE(all.back().type == el::log_checkpoint_type);
    REQUIRE(all.back().data.find(el::to_hex(head)) != std::string::npos);
}

TEST_CASE("a projector on a Kafka log resumes from its snapshot and applies only the tail",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("resume");
    temp_dir dir;
    el::runner_options ro;
    ro.snapshots.emplace(dir.path() / "snapshots");
    auto log = open_kafka(options_for(topic));
    append_seen(*log, sample_batch(1, 30));
    {
        counter p;
        el::projector_runner runner(*log, p, ro);
        REQUIRE(runner.start().has_value());
        REQUIRE(runner.wait_until(el::seq_no{30}, soon()));
        REQUIRE(runner.snapshot_now().has_value());
        runner.stop();
    }
    append_seen(*log, sample_batch(31, 12));
    counter resumed;
    el::projector_runner runner(*log, resumed, ro);
    REQUIRE(runner.start().has_value());
    REQUIRE(resumed.restored_from.value == 30);
    REQUIRE(resumed.seen.size() == 12);
    REQUIRE(resumed.seen.front() == 31);
    // It goes on following the topic.
    append_seen(*log, sample_batch(43, 2));
    REQUIRE(runner.wait_until(el::seq_no{44}, soon()));
    runner.stop();
    REQUIRE(resumed.seen.back() == 44);
}

TEST_CASE("appends made while the partition leader is down complete once it is back, each "
          "event exactly once and in order",
          "[eventlog][kafka]") {
    if (!cluster().is_mock()) {
        WARN("needs the mock cluster to stop a broker");
        return;
    }
    const auto topic = cluster().create_topic("outage");
    cluster().set_leader(topic, 1);
    auto log = open_kafka(options_for(topic));
    append_seen(*log, sample_batch(1, 10));

    std::mutex mu;
    std::map<std::uint64_t, el::seq_no> acked;  // sample number -> seq it got
    std::atomic<int> failed{0};
    std::atomic<int> pending{0};
    auto send = [&](std::uint64_t n) {
        ++pending;
        log->async_append(sample_batch(n, 1), [&, n](el::result<el::append_result> r) {
            {
                std::lock_guard lk(mu);
                if (r) acked[n] = r->first;
                else ++failed;
            }
            --pending;
        });
    };
    for (std::uint64_t n = 11; n <= 20; ++n) send(n);
    cluster().broker_down(1);
    for (std::uint64_t n = 21; n <= 40; ++n) send(n);
    cluster().broker_up(1);
    for (std::uint64_t n = 41; n <= 50; ++n) send(n);
    REQUIRE(eventually([&] { return pending.load() == 0; }, std::chrono::seconds(60)));
    REQUIRE(failed.load() == 0);
    REQUIRE(acked.size() == 40);
    REQUIRE(log->wait_for(el::seq_no{49}, soon()).value == 50);

    const auto all = read_all(*log);
    REQUIRE(all.size() == 50);
    std::set<std::string> seen;
    for (const auto& e : all) REQUIRE(seen.insert(e.data).second);  // no duplicates
    for (const auto& [n, seq] : acked) REQUIRE(all[seq.value - 1].data == sample_event(n).data);
    for (std::size_t i = 0; i < 10; ++i) REQUIRE(all[i].data == sample_event(i + 1).data);
}

TEST_CASE("an append whose records are interleaved with another writer's is void for every reader",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("torn");
    auto e1 = sample_event(1), e2 = sample_event(2), e3 = sample_event(3);
    e1.time = e2.time = e3.time = el::system_utc_now();
    cluster().produce(topic, encoded(e1), {{"scimsync-batch", tag(7, 1, 0, 2)}});
    cluster().produce(topic, encoded(e2));  // another writer's record in between
    cluster().produce(topic, encoded(e3), {{"scimsync-batch", tag(7, 1, 1, 2)}});
    auto log = open_kafka(options_for(topic));
    REQUIRE(log->last_seq().value == 3);
    const auto all = read_all(*log);
    REQUIRE(all.size() == 3);
    REQUIRE(all[0].type == el::log_void_type);
    REQUIRE(all[0].data.find(e1.type) != std::string::npos);
    REQUIRE(all[1].type == e2.type);
    REQUIRE(all[1].data == e2.data);
    REQUIRE(all[2].type == el::log_void_type);
    REQUIRE(log->counts().voided == 2);
    // The chain covers the records as written, voided or not.
    auto original = std::vector<el::event>{e1, e2, e3};
    for (std::size_t i = 0; i < 3; ++i) original[i].seq = el::seq_no{i + 1};
    REQUIRE(log->chain_head_at(el::seq_no{3}).value() ==
            chain_over(original, log->chain_head_at(el::seq_no{0}).value()));
}

TEST_CASE("an append left incomplete at the end of the topic is held back, then voided when a "
          "writer opens the log",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("incomplete");
    auto e1 = sample_event(1);
    e1.time = el::system_utc_now();
    cluster().produce(topic, encoded(e1), {{"scimsync-batch", tag(9, 4, 0, 3)}});
    {
        auto o = options_for(topic);
        o.read_only = true;
        auto reader_only = open_kafka(o);
        REQUIRE(reader_only->last_seq().value == 0);  // cannot tell yet: more may follow
    }
    auto writer = open_kafka(options_for(topic));
    REQUIRE(writer->wait_for(el::seq_no{1}, soon()).value == 2);
    const auto all = read_all(*writer);
    REQUIRE(all.size() == 2);
    REQUIRE(all[0].type == el::log_void_type);
    REQUIRE(all[1].type == el::log_checkpoint_type);
}

TEST_CASE("a LogCheckpoint whose head the records do not give fails the log closed, naming the seq",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("badcheck");
    auto e1 = sample_event(1);
    e1.time = el::system_utc_now();
    cluster().produce(topic, encoded(e1));
    el::event c;
    c.type = std::string(el::log_checkpoint_type);
    c.source = "log";
    c.stream = "Log";
    c.time = e1.time;
    c.data = "{\"head\":\"" + std::string(64, 'a') + "\",\"seq\":1}";
    cluster().produce(topic, encoded(c));
    auto log = el::kafka_log::open(options_for(topic));
    REQUIRE_FALSE(log.has_value());
    REQUIRE(log.error().code == el::errc::corrupt);
    REQUIRE_THAT(log.error().message, Catch::Contains("hash chain break") &&
                                          Catch::Contains("head after seq 1"));
}

TEST_CASE("times read from a Kafka log never decrease, whatever the writers' clocks said",
          "[eventlog][kafka]") {
    const auto topic = cluster().create_topic("clocks");
    const auto now = el::system_utc_now();
    auto ahead = sample_event(1), behind = sample_event(2);
    ahead.time = now + std::chrono::seconds(60);
    behind.time = now;
    cluster().produce(topic, encoded(ahead));
    cluster().produce(topic, encoded(behind));
    auto log = open_kafka(options_for(topic));
    const auto all = read_all(*log);
    REQUIRE(all.size() == 2);
    REQUIRE(all[0].time == ahead.time);
    REQUIRE(all[1].time == ahead.time);
}

TEST_CASE("a Kafka topic that is missing or has several partitions is refused by name",
          "[eventlog][kafka]") {
    auto missing = el::kafka_log::open(options_for("no-such-topic-here"));
    REQUIRE_FALSE(missing.has_value());
    REQUIRE_THAT(missing.error().message, Catch::Contains("no-such-topic-here") &&
                                              Catch::Contains("does not exist"));
    const auto wide = cluster().create_topic("wide", 3);
    auto several = el::kafka_log::open(options_for(wide));
    REQUIRE_FALSE(several.has_value());
    REQUIRE_THAT(several.error().message, Catch::Contains("has 3 partitions"));
}

TEST_CASE("a librdkafka setting it refuses is named, and its value is never repeated",
          "[eventlog][kafka]") {
    REQUIRE(el::check_kafka_property("linger.ms", "5").empty());
    const auto bad = el::check_kafka_property("linger.ms", "s3cr3t-value");
    REQUIRE_THAT(bad, Catch::Contains("linger.ms"));
    REQUIRE(bad.find("s3cr3t-value") == std::string::npos);
    REQUIRE_THAT(el::check_kafka_property("no.such.setting", "x"),
                 Catch::Contains("no setting named no.such.setting"));
    auto o = options_for("whatever");
    o.properties = {{"security.protocol", "hunter2"}};
    auto l = el::kafka_log::open(o);
    REQUIRE_FALSE(l.has_value());
    REQUIRE_THAT(l.error().message, Catch::Contains("security.protocol"));
    REQUIRE(l.error().message.find("hunter2") == std::string::npos);
}
