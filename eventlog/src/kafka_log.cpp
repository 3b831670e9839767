#include "scimsync/eventlog/kafka_log.hpp"

#include <librdkafka/rdkafka.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "format.hpp"
#include "sha256.hpp"

namespace scimsync::eventlog {

namespace {

using steady = std::chrono::steady_clock;

// Record headers. The batch tag makes an append of several events atomic for readers:
// writer id (8 bytes, random per open), batch number (4), index in the batch (2), count (2),
// all little-endian.
constexpr const char* batch_header = "scimsync-batch";
constexpr std::size_t batch_header_size = 16;
// On the record at offset 0 only: the log's genesis value (32 bytes), when it is not the
// default (a copy of a file log keeps the file log's random genesis).
constexpr const char* genesis_header = "scimsync-genesis";

// Follower bookkeeping: a restart point every this many events, and recent heads kept for
// LogCheckpoint checks and chain_head_at().
constexpr std::uint64_t point_every = 4096;
constexpr std::size_t recent_heads = 16384;
// A reader waits this long for a record the follower has already seen before it gives up for
// now (returns "no more"; the caller retries later).
constexpr auto reader_patience = std::chrono::seconds(10);

const digest& default_genesis() {
    static const digest g = sha256::of("scimsync kafka log genesis v1");
    return g;
}

struct batch_tag {
    std::uint64_t writer = 0;
    std::uint32_t batch = 0;
    std::uint16_t index = 0;
    std::uint16_t count = 1;
};

std::string encode_tag(const batch_tag& t) {
    std::string out(batch_header_size, '\0');
    format::put_u64(out.data(), t.writer);
    format::put_u32(out.data() + 8, t.batch);
    format::put_u16(out.data() + 12, t.index);
    format::put_u16(out.data() + 14, t.count);
    return out;
}

std::optional<std::array<std::uint8_t, 32>> from_hex32(std::string_view hex) {
    if (hex.size() != 64) return std::nullopt;
    std::array<std::uint8_t, 32> out{};
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < 32; ++i) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = std::uint8_t(hi << 4 | lo);
    }
    return out;
}

struct rk_deleter {
    void operator()(rd_kafka_t* rk) const {
        if (rk != nullptr) rd_kafka_destroy(rk);
    }
};
using rk_handle = std::unique_ptr<rd_kafka_t, rk_deleter>;

// A librdkafka configuration from the options. `role` is "producer" or "consumer".
result<rd_kafka_conf_t*> make_conf(const kafka_log_options& o, bool producer) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    auto set = [&](const std::string& k, const std::string& v, bool secret) -> std::string {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK)
            return "";
        return "librdkafka setting " + k + (secret ? ": refused" : std::string(": ") + err);
    };
    // librdkafka's own log lines would go to stderr unformatted and repeat every reconnect;
    // what matters reaches us as errors (error_cb, failed deliveries, consumer errors).
    rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
    std::vector<std::pair<std::string, std::string>> ours = {
        {"bootstrap.servers", o.brokers},
    };
    if (producer) {
        ours.insert(ours.end(), {
                                    {"enable.idempotence", "true"},
                                    {"acks", "all"},
                                    // Our callers already batch; waiting longer only adds latency.
                                    {"linger.ms", "1"},
                                    {"message.timeout.ms", std::to_string(o.delivery_timeout.count())},
                                    {"queue.buffering.max.messages", "1000000"},
                                });
    } else {
        std::array<std::uint8_t, 8> r{};
        (void)RAND_bytes(r.data(), int(r.size()));
        std::string id = "scimsync-reader-";
        for (auto b : r) id += "0123456789abcdef"[b & 15];
        ours.insert(ours.end(), {
                                    // assign() only: the group is never joined or committed to.
                                    {"group.id", id},
                                    {"enable.auto.commit", "false"},
                                    {"enable.auto.offset.store", "false"},
                                    {"enable.partition.eof", "true"},
                                    {"auto.offset.reset", "error"},
                                    {"isolation.level", "read_committed"},
                                    {"fetch.wait.max.ms", "100"},
                                    {"check.crcs", "true"},
                                });
    }
    for (const auto& [k, v] : ours) {
        if (auto why = set(k, v, false); !why.empty()) {
            rd_kafka_conf_destroy(conf);
            return fail(errc::invalid_argument, why);
        }
    }
    for (const auto& [k, v] : o.properties) {
        if (auto why = set(k, v, true); !why.empty()) {
            rd_kafka_conf_destroy(conf);
            return fail(errc::invalid_argument, why + " (check log.kafka.properties)");
        }
    }
    return conf;
}

result<rk_handle> make_consumer(const kafka_log_options& o) {
    auto conf = make_conf(o, false);
    if (!conf) return std::unexpected(conf.error());
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, err, sizeof err);
    if (rk == nullptr) {
        rd_kafka_conf_destroy(*conf);
        return fail(errc::io_error, std::string("cannot create a Kafka consumer: ") + err);
    }
    rd_kafka_poll_set_consumer(rk);
    return rk_handle(rk);
}

std::string void_data(std::string_view reason, const event& original) {
    nlohmann::json j;
    j["reason"] = reason;
    j["stream"] = original.stream;
    j["type"] = original.type;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Where a cursor starts: the next seq it hands out, the head after the one before it, and the
// time of that one (times never decrease along seq).
struct chain_point {
    seq_no next{1};
    digest head{};
    utc_time last_time{};
};

// Reads the partition from a chain point, recomputes and checks the chain, resolves batches
// (a torn one becomes LogVoid events), clamps times and checks LogCheckpoint heads. The one
// place that decides what the topic's records mean: the follower and every reader use it.
class cursor {
public:
    // `contents`: hand out whole events (readers); without it only seq, time, version and
    // type (the follower, which tracks the position and checks the chain).
    static result<std::unique_ptr<cursor>> start(const kafka_log_options& o, chain_point at,
                                                 bool contents = true) {
        auto c = std::unique_ptr<cursor>(new cursor(o, at));
        c->contents_ = contents;
        auto rk = make_consumer(o);
        if (!rk) return std::unexpected(rk.error());
        c->rk_ = std::move(*rk);
        c->queue_.reset(rd_kafka_queue_get_consumer(c->rk_.get()));
        rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, o.topic.c_str(), 0)->offset =
            std::int64_t(at.next.value - 1);
        const auto err = rd_kafka_assign(c->rk_.get(), parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err)
            return fail(errc::io_error, "cannot read Kafka topic " + o.topic + ": " +
                                            rd_kafka_err2str(err));
        return c;
    }

    ~cursor() {
        for (std::size_t i = batch_pos_; i < batch_.size(); ++i)
            if (batch_[i] != nullptr) rd_kafka_message_destroy(batch_[i]);
        queue_.reset();
        if (rk_) rd_kafka_consumer_close(rk_.get());
    }

    // The next event in seq order into `out`: true, or false when none could be resolved
    // before `deadline` (the topic has nothing more yet, or the broker is unreachable).
    result<bool> next(event& out, steady::time_point deadline) {
        while (ready_empty()) {
            auto got = pull(deadline);
            if (!got) return std::unexpected(got.error());
            if (!*got) return false;
        }
        // Swapped, not moved: the slot keeps out's old buffers for the next decode.
        std::swap(out, ready_[ready_pos_].e);
        const digest head = ready_[ready_pos_].head;
        ++ready_pos_;
        out.time = std::max(out.time, last_time_);
        last_time_ = out.time;
        pos_.next = out.seq.next();
        pos_.head = head;
        pos_.last_time = out.time;
        return true;
    }

    // After the last handed-out event. A valid restart point only when at_boundary().
    const chain_point& position() const { return pos_; }
    bool at_boundary() const { return ready_empty() && open_.empty(); }
    // Records received but not yet resolvable (an append still arriving, or torn).
    bool holding() const { return !open_.empty(); }
    std::uint64_t next_offset() const { return next_offset_; }
    const kafka_read_counts& counts() const { return counts_; }
    // The genesis value, once the record at offset 0 has been read (or given).
    std::optional<digest> genesis() const { return genesis_; }
    // The head after `seq` if this cursor computed it recently.
    std::optional<digest> recent_head(seq_no seq) const {
        if (seq.value < ring_first_ || seq.value >= ring_first_ + ring_.size()) return std::nullopt;
        return ring_[std::size_t(seq.value - ring_first_)];
    }

private:
    cursor(const kafka_log_options& o, chain_point at)
        : opt_(o), pos_(at), last_time_(at.last_time), next_offset_(at.next.value - 1),
          head_(at.head), ring_first_(at.next.value) {}

    struct resolved {
        event e;
        digest head;
    };
    struct held {
        event e;
        digest head;
    };

    // Takes the next message: from what the last batch brought, or a new batch of up to
    // `batch_max` (one queue operation for many messages). False when none came in time.
    rd_kafka_message_t* next_message(steady::time_point deadline) {
        if (batch_pos_ < batch_.size()) return std::exchange(batch_[batch_pos_++], nullptr);
        // Wait for one message, then take whatever else is already here without waiting
        // (consume_batch waits until the batch is full or the timeout passes).
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        const int ms = int(std::clamp<std::int64_t>(left.count(), 0, 1000));
        rd_kafka_message_t* first = rd_kafka_consumer_poll(rk_.get(), ms);
        if (first == nullptr) return nullptr;
        batch_.resize(batch_max);
        const ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), 0, batch_.data(), batch_max);
        batch_.resize(std::size_t(std::max<ssize_t>(n, 0)));
        batch_pos_ = 0;
        return first;
    }

    result<bool> pull(steady::time_point deadline) {
        while (true) {
            rd_kafka_message_t* m = next_message(deadline);
            if (m == nullptr) {
                if (steady::now() >= deadline) return false;
                continue;
            }
            std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(
                m, rd_kafka_message_destroy);
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (steady::now() >= deadline) return false;
                continue;
            }
            if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                    m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                    return fail(errc::corrupt,
                                "Kafka topic " + opt_.topic + " no longer holds offset " +
                                    std::to_string(next_offset_) +
                                    " (retention or deletion removed history; the topic needs "
                                    "retention.ms=-1)",
                                seq_no{next_offset_ + 1});
                if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                    return fail(errc::io_error, std::string("Kafka consumer: ") +
                                                    rd_kafka_message_errstr(m));
                // Transport trouble: librdkafka reconnects by itself; wait and retry.
                if (steady::now() >= deadline) return false;
                continue;
            }
            if (m->offset < 0 || std::uint64_t(m->offset) != next_offset_)
                return fail(errc::corrupt,
                            "Kafka topic " + opt_.topic + " gave offset " +
                                std::to_string(m->offset) + " where " +
                                std::to_string(next_offset_) +
                                " was next (offsets must be dense: no compaction, no "
                                "transactions)",
                            seq_no{next_offset_ + 1});
            if (auto r = take(*m); !r) return std::unexpected(r.error());
            return true;
        }
    }

    result<void> take(const rd_kafka_message_t& m) {
        const seq_no seq{std::uint64_t(m.offset) + 1};
        ++next_offset_;
        rd_kafka_headers_t* hdrs = nullptr;
        batch_tag tag;
        bool tagged = false;
        if (rd_kafka_message_headers(&m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const void* v = nullptr;
            std::size_t n = 0;
            if (rd_kafka_header_get_last(hdrs, batch_header, &v, &n) ==
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (n != batch_header_size)
                    return fail(errc::corrupt, "record at seq " + std::to_string(seq.value) +
                                                   " has a malformed batch header", seq);
                const char* p = static_cast<const char*>(v);
                tag = {format::get_u64(p), format::get_u32(p + 8), format::get_u16(p + 12),
                       format::get_u16(p + 14)};
                tagged = true;
            }
            if (seq.value == 1 && rd_kafka_header_get_last(hdrs, genesis_header, &v, &n) ==
                                      RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (n != 32)
                    return fail(errc::corrupt, "the first record has a malformed genesis", seq);
                digest g{};
                std::memcpy(g.data(), v, 32);
                genesis_ = g;
            }
        }
        if (seq.value == 1) {
            if (!genesis_) genesis_ = default_genesis();
            head_ = *genesis_;
        }
        if (!tagged) tag = batch_tag{};  // a record without a tag is a batch of its own
        if (tag.count == 0 || tag.index >= tag.count)
            return fail(errc::corrupt, "record at seq " + std::to_string(seq.value) +
                                           " has an impossible batch header", seq);

        const std::string_view value(static_cast<const char*>(m.payload), m.len);
        // The common case, a one-event append with nothing held before it, is decoded where
        // it is handed out from; anything else waits in open_ until its batch is resolved.
        const bool alone = open_.empty() && tag.count == 1;
        event& e = alone ? ready_push().e : scratch_;
        if (auto why = contents_ ? format::decode_event(value, e)
                                 : format::decode_event_head(value, e);
            !why.empty()) {
            if (alone) --ready_len_;
            return fail(errc::corrupt, "record at seq " + std::to_string(seq.value) +
                                           " of Kafka topic " + opt_.topic +
                                           " is not an event: " + why,
                        seq);
        }
        if (!contents_ && e.type == log_checkpoint_type) (void)format::decode_event(value, e);
        e.seq = seq;
        head_ = sha256::chain(hasher_, head_, seq.value, sha256::leaf(hasher_, value));
        remember_head(seq, head_);
        if (alone) {
            ready_[ready_len_ - 1].head = head_;
            if (e.type == log_checkpoint_type) {
                if (auto r = check_checkpoint(e); !r) return r;
            }
            return {};
        }

        if (!open_.empty()) {
            if (tag.writer == open_tag_.writer && tag.batch == open_tag_.batch &&
                tag.index == open_.size()) {
                open_.push_back({std::move(e), head_});
                if (open_.size() == open_tag_.count) return release(false);
                return {};
            }
            if (auto r = release(true); !r) return r;  // torn: another record came in between
            if (tag.count == 1 && tag.index == 0) {
                auto& slot = ready_push();
                std::swap(slot.e, e);
                slot.head = head_;
                if (slot.e.type == log_checkpoint_type) return check_checkpoint(slot.e);
                return {};
            }
        }
        if (tag.index != 0) {
            // The rest of an append whose start was interrupted: void on its own.
            open_tag_ = tag;
            open_.push_back({std::move(e), head_});
            return release(true);
        }
        open_tag_ = tag;
        open_.push_back({std::move(e), head_});
        return {};
    }

    // Moves the held records to the ready queue: as they are, or as LogVoid events.
    result<void> release(bool torn) {
        for (auto& h : open_) {
            if (torn) {
                h.e.data = void_data("torn append: its records are not all present back to "
                                     "back in the log",
                                     h.e);
                h.e.type = std::string(log_void_type);
                h.e.version = 1;
                ++counts_.voided;
            } else if (h.e.type == log_checkpoint_type) {
                if (auto r = check_checkpoint(h.e); !r) return r;
            }
            auto& slot = ready_push();
            std::swap(slot.e, h.e);
            slot.head = h.head;
        }
        open_.clear();
        return {};
    }

    result<void> check_checkpoint(const event& e) {
        const auto j = nlohmann::json::parse(e.data, nullptr, false);
        const auto at = j.is_object() ? j.find("seq") : j.end();
        const auto head = j.is_object() ? j.find("head") : j.end();
        std::optional<digest> claimed;
        if (head != j.end() && head->is_string()) claimed = from_hex32(head->get<std::string>());
        if (at == j.end() || !at->is_number_unsigned() || !claimed)
            return fail(errc::corrupt,
                        "LogCheckpoint at seq " + std::to_string(e.seq.value) + " is malformed",
                        e.seq);
        const seq_no s{at->get<std::uint64_t>()};
        if (s >= e.seq)
            return fail(errc::corrupt,
                        "LogCheckpoint at seq " + std::to_string(e.seq.value) +
                            " claims a head for a later seq " + std::to_string(s.value),
                        e.seq);
        const auto mine = s.value == 0 && genesis_ ? std::optional<digest>(*genesis_)
                                                   : recent_head(s);
        if (!mine) return {};  // computed before this cursor started: checked by a full read
        if (*mine != *claimed)
            return fail(errc::corrupt,
                        "hash chain break: LogCheckpoint at seq " + std::to_string(e.seq.value) +
                            " says the head after seq " + std::to_string(s.value) + " is " +
                            to_hex(*claimed) + ", the records give " + to_hex(*mine),
                        seq_no{s.value});
        ++counts_.checkpoints_checked;
        return {};
    }

    void remember_head(seq_no seq, const digest& h) {
        if (ring_.size() == recent_heads) {
            ring_.pop_front();
            ++ring_first_;
        }
        ring_.push_back(h);
        (void)seq;
    }

    struct queue_deleter {
        void operator()(rd_kafka_queue_t* q) const {
            if (q != nullptr) rd_kafka_queue_destroy(q);
        }
    };
    static constexpr std::size_t batch_max = 256;

    const kafka_log_options& opt_;
    rk_handle rk_;
    std::unique_ptr<rd_kafka_queue_t, queue_deleter> queue_;  // the consumer's queue
    std::vector<rd_kafka_message_t*> batch_;  // taken from the queue, handed out from batch_pos_
    std::size_t batch_pos_ = 0;
    chain_point pos_;
    utc_time last_time_{};
    std::uint64_t next_offset_ = 0;
    digest head_{};
    std::optional<digest> genesis_;
    sha256::hasher hasher_;
    // Resolved events waiting to be handed out, [ready_pos_, ready_len_) of ready_. The slots
    // are reused, strings and all, so decoding allocates nothing once they have grown.
    bool ready_empty() const { return ready_pos_ == ready_len_; }
    resolved& ready_push() {
        if (ready_empty()) ready_pos_ = ready_len_ = 0;
        if (ready_len_ == ready_.size()) ready_.emplace_back();
        return ready_[ready_len_++];
    }
    std::vector<resolved> ready_;
    std::size_t ready_pos_ = 0;
    std::size_t ready_len_ = 0;
    std::vector<held> open_;
    event scratch_;  // decoding target for records that are held
    bool contents_ = true;
    batch_tag open_tag_;
    kafka_read_counts counts_;
    std::deque<digest> ring_;
    std::uint64_t ring_first_ = 1;  // seq of ring_.front()
};

// One append in flight: completed when librdkafka reported on every record of it.
// Delivery reports may arrive (on the poll thread, or inside rd_kafka_flush on another)
// before the producing thread has produced the rest, so the counters are taken under `mu`.
struct batch_state {
    std::mutex mu;
    std::uint16_t count = 0;
    std::uint32_t outstanding = 0;      // records not yet reported or written off
    std::uint16_t reported = 0;         // delivery reports come in produce order (one partition)
    std::vector<std::int64_t> offsets;  // -1 until reported (or when never produced)
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::string why;
    utc_time time{};
    append_handler done;
};

}  // namespace

std::string check_kafka_property(const std::string& name, const std::string& value) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    const auto r = rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err);
    rd_kafka_conf_destroy(conf);
    if (r == RD_KAFKA_CONF_OK) return "";
    if (r == RD_KAFKA_CONF_UNKNOWN) return "librdkafka has no setting named " + name;
    return "librdkafka refuses this value for " + name;
}

struct kafka_log::impl {
    kafka_log_options opt;
    rk_handle producer;
    std::uint64_t writer_id = 0;
    std::uint32_t next_batch = 0;
    std::mutex produce_mu;  // one append's records go to librdkafka back to back
    utc_time last_stamp{};
    bool genesis_pending = false;  // guarded by produce_mu

    // Follower state, guarded by mu.
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    seq_no last{};
    digest head{};
    std::optional<digest> genesis;
    std::vector<chain_point> points;
    std::optional<error> read_failure;
    std::optional<error> failure;  // sticky write failure
    kafka_read_counts counts;
    bool closed = false;

    std::unique_ptr<cursor> follower;  // owned by the follower thread once it runs
    std::uint64_t since_checkpoint = 0;  // follower thread only
    seq_no last_point{1};                // follower thread only: the newest restart point
    seq_no last_checkpointed{};
    std::atomic<bool> stop{false};
    std::thread follow_thread;
    std::thread poll_thread;
    std::atomic<int> in_flight{0};

    void notice(const std::string& s) const {
        if (opt.notice) opt.notice(s);
    }

    seq_no last_seq() const {
        std::lock_guard lk(mu);
        return last;
    }

    // Publishes the follower's progress after it handed out events up to `upto`; `fresh` are
    // the restart points it passed meanwhile.
    void advance(seq_no upto, std::vector<chain_point>& fresh) {
        {
            std::lock_guard lk(mu);
            last = upto;
            head = follower->position().head;
            if (!genesis) genesis = follower->genesis();
            counts = follower->counts();
            points.insert(points.end(), fresh.begin(), fresh.end());
        }
        fresh.clear();
        cv.notify_all();
    }

    // Notes a restart point after `e` when the follower is at a batch boundary and far enough
    // from the previous one. Follower thread only (or open(), before it starts).
    void note_point(const event& e, std::vector<chain_point>& fresh) {
        if (!follower->at_boundary()) return;
        if (e.seq.value + 1 - last_point.value < point_every) return;
        fresh.push_back(follower->position());
        last_point = e.seq.next();
    }

    void fail_writes(const error& e) {
        bool first = false;
        {
            std::lock_guard lk(mu);
            if (!failure) {
                failure = error{errc::failed, "the Kafka log stopped accepting writes after: " +
                                                  e.message};
                first = true;
            }
        }
        if (first) {
            notice(failure->message);
            if (opt.on_fatal) opt.on_fatal(*failure);
        }
    }

    void follow() {
        event e;
        std::vector<chain_point> fresh;
        while (!stop.load()) {
            auto r = follower->next(e, steady::now() + std::chrono::milliseconds(100));
            std::uint64_t n = 0;
            // Then whatever is already here, published together: one wake-up per burst.
            while (r && *r) {
                note_point(e, fresh);
                ++n;
                const seq_no upto = e.seq;
                r = n < 4096 ? follower->next(e, steady::now()) : result<bool>(false);
                if (r && !*r) advance(upto, fresh);
            }
            if (!r) {
                {
                    std::lock_guard lk(mu);
                    read_failure = r.error();
                }
                notice("reading the Kafka log failed: " + r.error().message);
                cv.notify_all();
                return;
            }
            if (n == 0) continue;
            since_checkpoint += n;
            if (producer && opt.checkpoint_every > 0 && since_checkpoint >= opt.checkpoint_every) {
                since_checkpoint = 0;
                write_checkpoint();
            }
        }
    }

    // Appends a LogCheckpoint with the head the follower computed (fire and forget: a lost
    // checkpoint only means one check fewer).
    void write_checkpoint(bool even_if_unchanged = false) {
        if (opt.checkpoint_every == 0) return;
        seq_no at;
        digest h{};
        {
            std::lock_guard lk(mu);
            if (closed || failure || (last == last_checkpointed && !even_if_unchanged)) return;
            at = last;
            h = head;
            last_checkpointed = last;
        }
        event c;
        c.type = std::string(log_checkpoint_type);
        c.version = 1;
        c.source = "log";
        c.stream = "Log";
        c.data = "{\"head\":\"" + to_hex(h) + "\",\"seq\":" + std::to_string(at.value) + "}";
        append(std::vector<event>{std::move(c)}, [](result<append_result>) {});
    }

    void append(std::vector<event> batch, append_handler done);

    static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
        auto* self = static_cast<impl*>(opaque);
        auto* st = static_cast<batch_state*>(m->_private);
        bool last = false;
        {
            std::lock_guard lk(st->mu);
            if (st->reported < st->offsets.size())
                st->offsets[st->reported++] = m->err ? -1 : m->offset;
            if (m->err && !st->err) {
                st->err = m->err;
                st->why = rd_kafka_err2str(m->err);
            }
            last = --st->outstanding == 0;
        }
        if (last) self->finish(st);
    }

    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<impl*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[512];
            rd_kafka_fatal_error(rk, buf, sizeof buf);
            self->fail_writes(error{errc::io_error, std::string("Kafka producer: ") + buf});
            return;
        }
        self->notice(std::string("kafka: ") + reason);
    }

    void finish(batch_state* st) {
        std::unique_ptr<batch_state> owned(st);
        --in_flight;
        if (st->err || st->offsets.size() != st->count ||
            std::any_of(st->offsets.begin(), st->offsets.end(), [](auto o) { return o < 0; })) {
            st->done(fail(errc::io_error,
                          "the Kafka broker did not take the append" +
                              (st->why.empty() ? std::string() : ": " + st->why)));
            return;
        }
        for (std::size_t i = 1; i < st->offsets.size(); ++i) {
            if (st->offsets[i] != st->offsets[0] + std::int64_t(i)) {
                st->done(fail(errc::io_error,
                              "the append's records were interleaved with another writer's; "
                              "readers treat it as void (nothing of it took effect)"));
                return;
            }
        }
        st->done(append_result{seq_no{std::uint64_t(st->offsets.front()) + 1},
                               seq_no{std::uint64_t(st->offsets.back()) + 1}, st->time});
    }
};

void kafka_log::impl::append(std::vector<event> batch, append_handler done) {
    if (batch.empty()) return done(fail(errc::invalid_argument, "empty batch"));
    if (batch.size() > 0xffff)
        return done(fail(errc::too_large, "an append holds at most 65535 events"));
    {
        std::lock_guard lk(mu);
        if (closed) return done(fail(errc::closed, "the log is closed"));
        if (failure) return done(std::unexpected(*failure));
    }
    if (!producer) return done(fail(errc::invalid_argument, "the log was opened read-only"));
    std::lock_guard lk(produce_mu);
    const utc_time now = opt.keep_event_times ? last_stamp : std::max(opt.clock(), last_stamp);
    utc_time stamp = now;
    std::vector<std::string> values;
    std::size_t total = 0;
    for (auto& e : batch) {
        if (opt.keep_event_times) stamp = std::max(stamp, e.time);
        e.time = stamp;
        std::string v;
        v.reserve(format::encoded_size_bound(e));
        format::encode_event(v, e);
        if (v.size() > max_event_bytes)
            return done(fail(errc::too_large, "an event of type " + e.type + " encodes to " +
                                                  std::to_string(v.size()) +
                                                  " bytes; the limit is " +
                                                  std::to_string(max_event_bytes)));
        total += v.size();
        values.push_back(std::move(v));
    }
    if (total > max_frame_bytes)
        return done(fail(errc::too_large, "the batch encodes to more than " +
                                              std::to_string(max_frame_bytes) + " bytes"));
    last_stamp = stamp;

    auto* st = new batch_state;
    st->count = std::uint16_t(batch.size());
    st->outstanding = std::uint32_t(batch.size());
    st->offsets.assign(batch.size(), -1);
    st->time = stamp;
    st->done = std::move(done);
    const batch_tag base{writer_id, next_batch++, 0, st->count};
    ++in_flight;
    std::size_t produced = 0;
    rd_kafka_resp_err_t refused = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        // A record without a batch tag is an append of its own: one-event appends (most of
        // them) carry no header at all.
        rd_kafka_headers_t* hdrs = nullptr;
        if (batch.size() > 1 || (genesis_pending && opt.genesis)) {
            hdrs = rd_kafka_headers_new(2);
            if (batch.size() > 1) {
                batch_tag tag = base;
                tag.index = std::uint16_t(i);
                const std::string t = encode_tag(tag);
                rd_kafka_header_add(hdrs, batch_header, -1, t.data(), t.size());
            }
            if (genesis_pending && opt.genesis) {
                rd_kafka_header_add(hdrs, genesis_header, -1, opt.genesis->data(), 32);
                genesis_pending = false;
            }
        }
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        // A full queue drains as the broker acknowledges; anything else is final.
        for (int attempt = 0; attempt < 200; ++attempt) {
            err = hdrs != nullptr
                      ? rd_kafka_producev(
                            producer.get(), RD_KAFKA_V_TOPIC(opt.topic.c_str()),
                            RD_KAFKA_V_PARTITION(0),
                            RD_KAFKA_V_KEY(batch[i].stream.data(), batch[i].stream.size()),
                            RD_KAFKA_V_VALUE(values[i].data(), values[i].size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(st), RD_KAFKA_V_END)
                      : rd_kafka_producev(
                            producer.get(), RD_KAFKA_V_TOPIC(opt.topic.c_str()),
                            RD_KAFKA_V_PARTITION(0),
                            RD_KAFKA_V_KEY(batch[i].stream.data(), batch[i].stream.size()),
                            RD_KAFKA_V_VALUE(values[i].data(), values[i].size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(st),
                            RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
            rd_kafka_poll(producer.get(), 10);  // let delivery reports drain the queue
        }
        if (err) {
            if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);  // librdkafka's only on success
            refused = err;
            break;
        }
        ++produced;
    }
    if (produced == batch.size()) return;
    // The records produced report through on_delivery; the rest keep their -1 and the error,
    // so the append fails, and readers void the part that was written.
    bool none_left = false;
    {
        std::lock_guard st_lock(st->mu);
        if (!st->err) {
            st->err = refused;
            st->why = rd_kafka_err2str(refused);
        }
        st->outstanding -= std::uint32_t(batch.size() - produced);
        none_left = st->outstanding == 0;
    }
    if (none_left) finish(st);
}

kafka_log::kafka_log(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

kafka_log::~kafka_log() {
    close();
}

result<std::unique_ptr<kafka_log>> kafka_log::open(kafka_log_options options) {
    if (options.brokers.empty())
        return fail(errc::invalid_argument, "log.kafka.brokers: must name at least one broker");
    if (options.topic.empty())
        return fail(errc::invalid_argument, "log.kafka.topic: must not be empty");
    if (!options.clock) options.clock = &system_utc_now;
    auto p = std::make_shared<impl>();
    p->opt = std::move(options);
    const auto deadline = steady::now() + p->opt.open_timeout;

    // A handle for metadata: the producer when writing, else a throwaway consumer.
    rk_handle meta;
    if (!p->opt.read_only) {
        auto conf = make_conf(p->opt, true);
        if (!conf) return std::unexpected(conf.error());
        rd_kafka_conf_set_opaque(*conf, p.get());
        rd_kafka_conf_set_dr_msg_cb(*conf, &impl::on_delivery);
        rd_kafka_conf_set_error_cb(*conf, &impl::on_error);
        char err[512];
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, err, sizeof err);
        if (rk == nullptr) {
            rd_kafka_conf_destroy(*conf);
            return fail(errc::io_error, std::string("cannot create a Kafka producer: ") + err);
        }
        p->producer.reset(rk);
        std::array<std::uint8_t, 8> id{};
        if (RAND_bytes(id.data(), int(id.size())) != 1)
            return fail(errc::io_error, "cannot draw random bytes for the writer id");
        p->writer_id = format::get_u64(reinterpret_cast<const char*>(id.data()));
    } else {
        auto c = make_consumer(p->opt);
        if (!c) return std::unexpected(c.error());
        meta = std::move(*c);
    }
    rd_kafka_t* mrk = p->producer ? p->producer.get() : meta.get();

    // All topics' metadata: asking for one topic by name would make a broker with
    // auto.create.topics.enable create it, with whatever partition count it defaults to.
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    while (steady::now() < deadline) {
        err = rd_kafka_metadata(mrk, 1, nullptr, &md, 2000);
        if (!err) break;
    }
    if (err)
        return fail(errc::io_error, "cannot reach the Kafka cluster at " + p->opt.brokers +
                                        " within " +
                                        std::to_string(p->opt.open_timeout.count()) +
                                        " ms: " + rd_kafka_err2str(err));
    int partitions = -1;
    for (int i = 0; i < md->topic_cnt; ++i) {
        if (p->opt.topic == md->topics[i].topic) partitions = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    if (partitions < 0)
        return fail(errc::not_found, "Kafka topic " + p->opt.topic +
                                         " does not exist; create it with one partition "
                                         "(docs/kafka.md)");
    if (partitions != 1)
        return fail(errc::invalid_argument,
                    "Kafka topic " + p->opt.topic + " has " + std::to_string(partitions) +
                        " partitions; the log needs exactly one (one total order)");
    std::int64_t low = 0, high = 0;
    err = rd_kafka_query_watermark_offsets(mrk, p->opt.topic.c_str(), 0, &low, &high,
                                           int(p->opt.open_timeout.count()));
    if (err)
        return fail(errc::io_error, "cannot read the offsets of Kafka topic " + p->opt.topic +
                                        ": " + rd_kafka_err2str(err));
    if (low != 0)
        return fail(errc::corrupt, "Kafka topic " + p->opt.topic + " starts at offset " +
                                       std::to_string(low) +
                                       ": its first records were deleted (retention?); the "
                                       "history is incomplete",
                    seq_no{1});
    meta.reset();

    auto follower =
        cursor::start(p->opt, chain_point{seq_no{1}, default_genesis(), {}}, /*contents=*/false);
    if (!follower) return std::unexpected(follower.error());
    p->follower = std::move(*follower);
    p->genesis = high == 0 ? p->opt.genesis.value_or(default_genesis()) : std::optional<digest>();
    p->genesis_pending = high == 0 && p->opt.genesis.has_value();
    p->head = p->genesis.value_or(default_genesis());
    p->points.push_back(chain_point{seq_no{1}, p->head, {}});
    // Read to the end measured above; then whatever is resolvable. An append still arriving
    // (or left incomplete) at the end stays held: the follower thread resolves it later.
    event e;
    std::vector<chain_point> fresh;
    while (true) {
        const bool read_all = p->follower->next_offset() >= std::uint64_t(high);
        const auto until = read_all ? steady::now()
                                    : std::min(deadline, steady::now() + std::chrono::milliseconds(200));
        auto r = p->follower->next(e, until);
        if (!r) return std::unexpected(r.error());
        if (*r) {
            p->note_point(e, fresh);
            p->advance(e.seq, fresh);
            continue;
        }
        if (read_all) break;
        if (steady::now() >= deadline)
            return fail(errc::io_error,
                        "reading Kafka topic " + p->opt.topic + " stopped at offset " +
                            std::to_string(p->follower->next_offset()) + " of " +
                            std::to_string(high) + " (log.kafka.open_timeout_ms)");
    }
    if (!p->genesis) p->genesis = p->follower->genesis().value_or(default_genesis());
    if (p->follower->holding() && p->producer) {
        // A writer stopped in the middle of an append: the next record anyone writes
        // resolves it (as void). Write that record now rather than leave readers waiting.
        p->notice("Kafka topic " + p->opt.topic +
                  " ends in an incomplete append; writing a checkpoint so readers resolve it");
        p->write_checkpoint(true);
    }
    if (p->producer) {
        p->poll_thread = std::thread([raw = p.get()] {
            while (!raw->stop.load()) rd_kafka_poll(raw->producer.get(), 50);
        });
    }
    p->follow_thread = std::thread([raw = p.get()] { raw->follow(); });
    return std::unique_ptr<kafka_log>(new kafka_log(std::move(p)));
}

void kafka_log::async_append(std::vector<event> batch, append_handler done) {
    impl_->append(std::move(batch), std::move(done));
}

namespace {

class kafka_reader final : public reader {
public:
    kafka_reader(std::shared_ptr<kafka_log::impl> log, std::unique_ptr<cursor> c, seq_no first)
        : log_(std::move(log)), cur_(std::move(c)), first_(first) {}

    result<bool> next(event& out) override {
        while (true) {
            // The follower's horizon, asked again only once this reader has caught up with it.
            if (cur_->position().next > horizon_) {
                horizon_ = log_->last_seq();
                if (cur_->position().next > horizon_) return false;
            }
            auto r = cur_->next(out, steady::now() + reader_patience);
            if (!r) return std::unexpected(r.error());
            if (!*r) return false;  // the broker is slow or away: the caller retries later
            if (out.seq < first_) continue;
            return true;
        }
    }

private:
    std::shared_ptr<kafka_log::impl> log_;
    std::unique_ptr<cursor> cur_;
    seq_no first_;
    seq_no horizon_{};
};

}  // namespace

result<std::unique_ptr<reader>> kafka_log::read_from(seq_no first) const {
    if (first.value == 0) first = seq_no{1};
    chain_point from;
    {
        std::lock_guard lk(impl_->mu);
        if (impl_->read_failure) return std::unexpected(*impl_->read_failure);
        auto it = std::upper_bound(impl_->points.begin(), impl_->points.end(), first,
                                   [](seq_no s, const chain_point& p) { return s < p.next; });
        from = *std::prev(it);
    }
    auto c = cursor::start(impl_->opt, from);
    if (!c) return std::unexpected(c.error());
    return std::unique_ptr<reader>(new kafka_reader(impl_, std::move(*c), first));
}

seq_no kafka_log::last_seq() const {
    std::lock_guard lk(impl_->mu);
    return impl_->last;
}

seq_no kafka_log::wait_for(seq_no after, steady::time_point deadline) const {
    std::unique_lock lk(impl_->mu);
    impl_->cv.wait_until(lk, deadline, [&] {
        return impl_->last > after || impl_->closed || impl_->read_failure.has_value();
    });
    return impl_->last;
}

result<digest> kafka_log::chain_head_at(seq_no at) const {
    chain_point from;
    {
        std::lock_guard lk(impl_->mu);
        if (at > impl_->last)
            return fail(errc::not_found,
                        "seq " + std::to_string(at.value) + " is past the end of the log");
        if (at == impl_->last) return impl_->head;
        if (at.value == 0) return impl_->genesis.value_or(default_genesis());
        auto it = std::upper_bound(impl_->points.begin(), impl_->points.end(), at.next(),
                                   [](seq_no s, const chain_point& p) { return s < p.next; });
        from = *std::prev(it);
    }
    if (from.next == at.next()) return from.head;
    auto c = cursor::start(impl_->opt, from);
    if (!c) return std::unexpected(c.error());
    event e;
    const auto deadline = steady::now() + impl_->opt.open_timeout;
    while ((*c)->position().next <= at) {
        auto r = (*c)->next(e, deadline);
        if (!r) return std::unexpected(r.error());
        if (!*r) return fail(errc::io_error, "the Kafka broker did not deliver seq " +
                                                 std::to_string(at.value) + " in time");
    }
    return (*c)->position().head;
}

std::optional<error> kafka_log::write_failure() const {
    std::lock_guard lk(impl_->mu);
    if (impl_->failure) return impl_->failure;
    return impl_->read_failure;
}

kafka_read_counts kafka_log::counts() const {
    std::lock_guard lk(impl_->mu);
    return impl_->counts;
}

const std::string& kafka_log::topic() const {
    return impl_->opt.topic;
}

void kafka_log::close() {
    if (!impl_) return;
    auto& p = *impl_;
    {
        std::lock_guard lk(p.mu);
        if (p.closed) return;
    }
    if (p.producer) {
        // A final checkpoint, so that `log verify` checks the chain up to the end.
        p.write_checkpoint();
        {
            std::lock_guard lk(p.mu);
            p.closed = true;
        }
        const auto until = steady::now() + p.opt.delivery_timeout;
        while (p.in_flight.load() > 0 && steady::now() < until) rd_kafka_flush(p.producer.get(), 100);
    } else {
        std::lock_guard lk(p.mu);
        p.closed = true;
    }
    p.cv.notify_all();
    p.stop = true;
    if (p.poll_thread.joinable()) p.poll_thread.join();
    if (p.follow_thread.joinable()) p.follow_thread.join();
    if (p.producer) {
        // Appends still unanswered after the flush (broker away past delivery_timeout) are
        // failed by librdkafka's purge, through their delivery reports.
        rd_kafka_purge(p.producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p.producer.get(), 0);
    }
    p.follower.reset();
}

}  // namespace scimsync::eventlog
