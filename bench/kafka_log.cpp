// kafka_log: the Kafka backend of the log against raw librdkafka, in the same run, on
// librdkafka's mock cluster (3 brokers, replication factor 3), or on the cluster named by
// SCIMSYNC_KAFKA_BROKERS.
//
//   kafka_log [--events 10000] [--topics 20] [--runs 5] [--bytes 300]
//
// Per run and per topic, the same events (encoded exactly as the log stores them):
// - raw produce: one idempotent acks=all producer, every record produced at once, until every
//   delivery report arrived;
// - append: kafka_log::async_append of each event as its own append (as the daemon appends one
//   request's events), every append issued at once, until every completion arrived;
// - raw consume: a consumer assigned to the partition from offset 0 until the last record;
// - replay: a kafka_log reader from seq 1 to the last event (decode, hash chain, batches).
// The mock keeps only about 5 MiB per partition, so each topic stays below that; the events
// of a run are spread over --topics topics, one after the other. Raw and log go first in turn.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "format.hpp"
#include "kafka_fixture.hpp"
#include "scimsync/eventlog/kafka_log.hpp"

namespace el = scimsync::eventlog;
namespace sb = scimsync::bench;
using steady = std::chrono::steady_clock;

namespace {

rd_kafka_t* client(rd_kafka_type_t type, const std::string& brokers,
                   std::vector<std::pair<std::string, std::string>> extra) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    extra.insert(extra.begin(), {"bootstrap.servers", brokers});
    for (const auto& [k, v] : extra)
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
            throw std::runtime_error(err);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
            if (m->err) throw std::runtime_error(rd_kafka_err2str(m->err));
            auto* left = static_cast<std::atomic<std::size_t>*>(m->_private);
            --*left;
        });
    }
    rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
    if (rk == nullptr) throw std::runtime_error(err);
    if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
    return rk;
}

double raw_produce(const std::string& brokers, const std::string& topic,
                   const std::vector<std::pair<std::string, std::string>>& records) {
    rd_kafka_t* p = client(RD_KAFKA_PRODUCER, brokers,
                           {{"enable.idempotence", "true"},
                            {"acks", "all"},
                            {"linger.ms", "1"},
                            {"queue.buffering.max.messages", "1000000"}});
    std::atomic<std::size_t> left{records.size()};
    // Connected to the partition's leader before the clock starts, as kafka_log::open is.
    std::int64_t low = 0, high = 0;
    if (auto err = rd_kafka_query_watermark_offsets(p, topic.c_str(), 0, &low, &high, 10000))
        throw std::runtime_error(rd_kafka_err2str(err));
    const auto t0 = steady::now();
    for (const auto& [key, value] : records) {
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_KEY(key.data(), key.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_OPAQUE(&left), RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 1);
        rd_kafka_poll(p, 0);
    }
    while (left.load() > 0) rd_kafka_poll(p, 1);
    const double s = sb::seconds_since(t0);
    rd_kafka_destroy(p);
    return s;
}

// From creating the consumer, as a kafka_log reader does, to the last record.
double raw_consume(const std::string& brokers, const std::string& topic, std::size_t count) {
    const auto t0 = steady::now();
    rd_kafka_t* c = client(RD_KAFKA_CONSUMER, brokers,
                           {{"group.id", "bench-raw"},
                            {"enable.auto.commit", "false"},
                            {"fetch.wait.max.ms", "100"}});
    auto* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = 0;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    std::size_t got = 0;
    std::size_t bytes = 0;
    while (got < count) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 1000);
        if (m == nullptr) continue;
        if (!m->err) {
            ++got;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    const double s = sb::seconds_since(t0);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    if (bytes == 0) throw std::runtime_error("nothing consumed");
    return s;
}

std::unique_ptr<el::kafka_log> open_log(const std::string& brokers, const std::string& topic) {
    el::kafka_log_options o;
    o.brokers = brokers;
    o.topic = topic;
    auto l = el::kafka_log::open(std::move(o));
    if (!l) throw std::runtime_error(l.error().message);
    return std::move(*l);
}

double append_all(el::kafka_log& log, const std::vector<el::event>& events) {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = events.size();
    std::size_t failed = 0;
    // Each append built before the clock starts, as the raw records are.
    std::vector<std::vector<el::event>> appends;
    for (const auto& e : events) appends.push_back({e});
    const auto t0 = steady::now();
    for (auto& one : appends) {
        log.async_append(std::move(one), [&](el::result<el::append_result> r) {
            std::lock_guard lk(mu);
            if (!r) ++failed;
            if (--left == 0) cv.notify_all();
        });
    }
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return left == 0; });
    const double s = sb::seconds_since(t0);
    if (failed > 0) throw std::runtime_error(std::to_string(failed) + " appends failed");
    return s;
}

double replay(el::kafka_log& log, std::size_t count) {
    const auto t0 = steady::now();
    auto r = log.read_from(el::seq_no{1});
    if (!r) throw std::runtime_error(r.error().message);
    el::event e;
    std::size_t got = 0;
    while (got < count) {
        auto more = (*r)->next(e);
        if (!more) throw std::runtime_error(more.error().message);
        if (*more) ++got;
    }
    return sb::seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t events = std::stoul(sb::arg(argc, argv, "--events", "10000"));
    const std::size_t topics = std::stoul(sb::arg(argc, argv, "--topics", "20"));
    const std::size_t runs = std::stoul(sb::arg(argc, argv, "--runs", "5"));
    const std::size_t bytes = std::stoul(sb::arg(argc, argv, "--bytes", "300"));
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    scimsync::testing::kafka_cluster cluster;
    std::printf("%s, %zu events of about %zu bytes per topic, %zu topics per run, %zu runs\n",
                cluster.is_mock() ? "librdkafka mock cluster (3 brokers)" : "real cluster",
                events, bytes, topics, runs);

    std::vector<el::event> batch;
    std::vector<std::pair<std::string, std::string>> records;
    for (std::size_t i = 0; i < events; ++i) {
        auto e = sb::make_event(i + 1, bytes);
        e.time = el::system_utc_now();
        std::string value;
        el::format::encode_event(value, e);
        records.emplace_back(e.stream, std::move(value));
        batch.push_back(std::move(e));
    }

    std::vector<double> produce_r, append_r, consume_r, replay_r, ratio_in, ratio_out;
    std::printf("%4s %14s %14s %8s %14s %14s %8s\n", "run", "raw produce/s", "append/s", "ratio",
                "raw consume/s", "replay/s", "ratio");
    for (std::size_t run = 1; run <= runs; ++run) {
        double tp = 0, ta = 0, tc = 0, tr = 0;
        for (std::size_t t = 0; t < topics; ++t) {
            const auto raw_topic = cluster.create_topic("bench-raw");
            const auto log_topic = cluster.create_topic("bench-log");
            auto log = open_log(cluster.bootstraps(), log_topic);
            // Whichever goes first meets a quieter cluster: alternate.
            if ((run + t) % 2 == 0) {
                tp += raw_produce(cluster.bootstraps(), raw_topic, records);
                ta += append_all(*log, batch);
            } else {
                ta += append_all(*log, batch);
                tp += raw_produce(cluster.bootstraps(), raw_topic, records);
            }
            if (log->wait_for(el::seq_no{events - 1}, steady::now() + std::chrono::seconds(60))
                    .value < events)
                throw std::runtime_error("the log did not read its appends back");
            if ((run + t) % 2 == 0) {
                tc += raw_consume(cluster.bootstraps(), raw_topic, events);
                tr += replay(*log, events);
            } else {
                tr += replay(*log, events);
                tc += raw_consume(cluster.bootstraps(), raw_topic, events);
            }
            log->close();
        }
        const double n = double(events * topics);
        produce_r.push_back(n / tp);
        append_r.push_back(n / ta);
        consume_r.push_back(n / tc);
        replay_r.push_back(n / tr);
        ratio_in.push_back(tp / ta);
        ratio_out.push_back(tc / tr);
        std::printf("%4zu %14.0f %14.0f %7.0f%% %14.0f %14.0f %7.0f%%\n", run, produce_r.back(),
                    append_r.back(), 100 * ratio_in.back(), consume_r.back(), replay_r.back(),
                    100 * ratio_out.back());
    }
    std::printf("%4s %14.0f %14.0f %7.0f%% %14.0f %14.0f %7.0f%%\n", "med", sb::median(produce_r),
                sb::median(append_r), 100 * sb::median(ratio_in), sb::median(consume_r),
                sb::median(replay_r), 100 * sb::median(ratio_out));
    return 0;
}
