#pragma once
// KafkaLog: the log as one partition of an Apache Kafka topic, through librdkafka, so that
// several scimsyncd instances share one history. Same contract as file_log (log.hpp); the
// differences, and why, are in eventlog/README.md ("The Kafka backend").
//
// In short:
// - one record per event; the record value is the event encoded exactly as in a file-log
//   frame (FORMAT.md, "Event encoding"), the key is the stream; seq = offset + 1;
// - producer: idempotent, acks=all; an append completes once the broker acknowledged every
//   record of it;
// - the hash chain is the file log's formula over the topic's order, computed by every reader;
//   LogCheckpoint events written by the daemons carry heads that readers check (fail closed);
// - an append of several events is atomic: its records carry a batch header, and readers treat
//   a batch whose records are not all present back to back as void (each of its events is
//   handed out as a LogVoid event naming the original type; nothing of it takes effect);
// - readers clamp times so that they never decrease along seq.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scimsync/eventlog/log.hpp"

namespace scimsync::eventlog {

// Event types the Kafka backend itself writes or hands out. The model's catalogue lists them so
// that upcasting accepts them; no projector folds them.
inline constexpr std::string_view log_checkpoint_type = "LogCheckpoint";
inline constexpr std::string_view log_void_type = "LogVoid";

struct kafka_log_options {
    std::string brokers;  // bootstrap.servers, e.g. "k1:9092,k2:9092"
    std::string topic;    // must exist with exactly one partition (see docs/kafka.md)
    // Further librdkafka settings, passed through unchanged to the producer and the consumers:
    // security.protocol, sasl.*, ssl.*, client.id, ... Values are never printed.
    std::vector<std::pair<std::string, std::string>> properties;
    // How long the producer keeps retrying a record (message.timeout.ms) before the append
    // fails; a broker outage shorter than this only delays appends.
    std::chrono::milliseconds delivery_timeout{30'000};
    // How long open() waits for the cluster (metadata) and to read the topic to its end.
    std::chrono::milliseconds open_timeout{30'000};
    // A LogCheckpoint (the chain head this writer computed) after this many events read, and
    // one at close. 0: none (copying a log, whose events must stay exactly the original's).
    std::uint64_t checkpoint_every = 10'000;
    // Copying a log: appended events keep their own times (clamped so that they never
    // decrease) instead of the clock's.
    bool keep_event_times = false;
    bool read_only = false;  // tools: no producer
    clock_fn clock = &system_utc_now;
    // Only for copying a file log into an empty topic: the first record carries this genesis
    // value, so the copy has the same chain heads as the original.
    std::optional<digest> genesis;
    std::function<void(const std::string&)> notice;
    // Called once, on a librdkafka thread, when the producer hits a fatal error; from then on
    // every append fails (errc::failed) until the log is reopened.
    std::function<void(const error&)> on_fatal;
};

// Checks one librdkafka setting without connecting: "" when librdkafka accepts it, else why
// not. The value is not repeated in the message (it may be a secret).
std::string check_kafka_property(const std::string& name, const std::string& value);

// What the backend counted while reading (for `log verify` and status).
struct kafka_read_counts {
    std::uint64_t voided = 0;               // events of torn appends, handed out as LogVoid
    std::uint64_t checkpoints_checked = 0;  // LogCheckpoint heads compared and found equal
};

class kafka_log final : public log {
public:
    // Connects, checks the topic (one partition, history from offset 0), reads it to its end
    // (recomputing and checking the chain), then follows it on a background thread.
    static result<std::unique_ptr<kafka_log>> open(kafka_log_options options);
    ~kafka_log() override;

    void async_append(std::vector<event> batch, append_handler done) override;
    result<std::unique_ptr<reader>> read_from(seq_no first) const override;
    seq_no last_seq() const override;
    seq_no wait_for(seq_no after, std::chrono::steady_clock::time_point deadline) const override;
    result<digest> chain_head_at(seq_no at) const override;
    std::optional<error> write_failure() const override;
    void close() override;
    bool single_writer() const override { return false; }

    kafka_read_counts counts() const;
    const std::string& topic() const;

    struct impl;

private:
    explicit kafka_log(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

}  // namespace scimsync::eventlog
