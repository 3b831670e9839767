#pragma once
// A Kafka cluster for tests: librdkafka's built-in mock cluster (3 brokers on loopback ports,
// in this process, alive as long as the object), or the real cluster named by the environment
// variable SCIMSYNC_KAFKA_BROKERS. Other processes (scimsyncd) reach either by its bootstrap
// list. Mock limits (INFRA.md 5): about 5 MiB kept per partition; tests stay well below.

#include <string>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace scimsync::testing {

class kafka_cluster {
public:
    explicit kafka_cluster(int brokers = 3);
    ~kafka_cluster();
    kafka_cluster(const kafka_cluster&) = delete;
    kafka_cluster& operator=(const kafka_cluster&) = delete;

    const std::string& bootstraps() const { return bootstraps_; }
    bool is_mock() const { return mock_ != nullptr; }

    // Creates a topic with a fresh name (prefix + random suffix), `partitions` partitions,
    // replicated on every broker of the mock (the broker default on a real cluster).
    std::string create_topic(const std::string& prefix, int partitions = 1);

    // Mock only: take a broker away or bring it back; make one broker the partition's leader.
    void broker_down(int id);
    void broker_up(int id);
    void set_leader(const std::string& topic, int id);
    // Mock only: every broker answers after `ms` milliseconds (0: at once).
    void set_rtt(int ms);

    // Produces raw records (tests that craft what another writer might have left behind).
    // Each header is name + bytes; returns the offset given to the record.
    struct header {
        std::string name;
        std::string value;
    };
    long long produce(const std::string& topic, const std::string& value,
                      const std::vector<header>& headers = {});

private:
    rd_kafka_s* host_ = nullptr;     // owns the mock cluster, or the producer for produce()
    rd_kafka_mock_cluster_s* mock_ = nullptr;
    std::string bootstraps_;
};

}  // namespace scimsync::testing
