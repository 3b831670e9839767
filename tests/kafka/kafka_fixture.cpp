#include "kafka_fixture.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace scimsync::testing {

namespace {

rd_kafka_t* make_producer(const std::string& bootstraps) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto set = [&](const char* k, const char* v) {
        if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
            throw std::runtime_error(std::string("kafka fixture: ") + err);
    };
    if (!bootstraps.empty()) set("bootstrap.servers", bootstraps.c_str());
    set("log_level", "3");
    set("enable.idempotence", "true");
    set("linger.ms", "0");
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == nullptr) throw std::runtime_error(std::string("kafka fixture: ") + err);
    return rk;
}

std::string random_suffix() {
    static std::atomic<unsigned> n{0};
    std::random_device rd;
    return std::to_string(rd() % 1000000) + "-" + std::to_string(n++);
}

}  // namespace

kafka_cluster::kafka_cluster(int brokers) {
    if (const char* real = std::getenv("SCIMSYNC_KAFKA_BROKERS"); real != nullptr && *real) {
        bootstraps_ = real;
        host_ = make_producer(bootstraps_);
        return;
    }
    host_ = make_producer("");
    mock_ = rd_kafka_mock_cluster_new(host_, brokers);
    if (mock_ == nullptr) throw std::runtime_error("kafka fixture: cannot start a mock cluster");
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mock_);
}

kafka_cluster::~kafka_cluster() {
    if (mock_ != nullptr) rd_kafka_mock_cluster_destroy(mock_);
    if (host_ != nullptr) rd_kafka_destroy(host_);
}

std::string kafka_cluster::create_topic(const std::string& prefix, int partitions) {
    const std::string name = prefix + "-" + random_suffix();
    if (mock_ != nullptr) {
        if (auto err = rd_kafka_mock_topic_create(mock_, name.c_str(), partitions, 3))
            throw std::runtime_error(std::string("kafka fixture: ") + rd_kafka_err2str(err));
        return name;
    }
    char err[512];
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(name.c_str(), partitions, -1, err, sizeof err);
    if (t == nullptr) throw std::runtime_error(std::string("kafka fixture: ") + err);
    rd_kafka_NewTopic_set_config(t, "retention.ms", "-1");
    rd_kafka_queue_t* q = rd_kafka_queue_new(host_);
    rd_kafka_CreateTopics(host_, &t, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
    std::string why;
    if (ev == nullptr) {
        why = "CreateTopics timed out";
    } else if (rd_kafka_event_error(ev)) {
        why = rd_kafka_event_error_string(ev);
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t** res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        if (n == 1 && rd_kafka_topic_result_error(res[0]))
            why = rd_kafka_topic_result_error_string(res[0]);
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(t);
    if (!why.empty()) throw std::runtime_error("kafka fixture: cannot create " + name + ": " + why);
    return name;
}

void kafka_cluster::broker_down(int id) {
    if (mock_ != nullptr) rd_kafka_mock_broker_set_down(mock_, id);
}

void kafka_cluster::broker_up(int id) {
    if (mock_ != nullptr) rd_kafka_mock_broker_set_up(mock_, id);
}

void kafka_cluster::set_leader(const std::string& topic, int id) {
    if (mock_ != nullptr) rd_kafka_mock_partition_set_leader(mock_, topic.c_str(), 0, id);
}

void kafka_cluster::set_rtt(int ms) {
    if (mock_ == nullptr) return;
    for (int id = 1; id <= 3; ++id) rd_kafka_mock_broker_set_rtt(mock_, id, ms);
}

long long kafka_cluster::produce(const std::string& topic, const std::string& value,
                                 const std::vector<header>& headers) {
    rd_kafka_t* p = make_producer(bootstraps_);
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size() + 1);
    for (const auto& h : headers)
        rd_kafka_header_add(hdrs, h.name.c_str(), -1, h.value.data(), h.value.size());
    auto err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs);
        rd_kafka_destroy(p);
        throw std::runtime_error(std::string("kafka fixture: produce: ") + rd_kafka_err2str(err));
    }
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
    // The offset: the partition's end minus one, read back (the fixture produces alone).
    rd_kafka_t* q = make_producer(bootstraps_);
    int64_t low = 0, high = 0;
    err = rd_kafka_query_watermark_offsets(q, topic.c_str(), 0, &low, &high, 30000);
    rd_kafka_destroy(q);
    if (err) throw std::runtime_error(std::string("kafka fixture: ") + rd_kafka_err2str(err));
    return high - 1;
}

}  // namespace scimsync::testing
