// scimsyncctl: talks to a running scimsyncd over the admin socket, and audits a log directory
// offline (no daemon needed) with `log verify | stats | dump`.
//
// Exit codes (DESIGN.md): 0 success, 1 the check found a problem or the daemon could not do
// what was asked (or is not running), 2 usage or configuration error. Errors are one line on
// stderr; machine output (--json) goes to stdout.

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "ctl_access.hpp"
#include "ctl_audit.hpp"
#include "progress.hpp"
#include "scimsync/daemon/admin_client.hpp"
#include "scimsync/daemon/config.hpp"
#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/eventlog/file_log.hpp"
#include "scimsync/eventlog/kafka_log.hpp"
#include "scimsync/eventlog/verify.hpp"

namespace {

namespace el = scimsync::eventlog;
namespace sd = scimsync::daemon;

constexpr int exit_ok = 0;
constexpr int exit_problem = 1;
constexpr int exit_usage = 2;

void say(const std::string& line) {
    std::cerr << "scimsyncctl: " << line << '\n' << std::flush;
}

struct global_options {
    std::string socket{sd::default_admin_socket};
    std::string data_dir{sd::default_data_dir};
    bool json = false;
    // The offline log commands read a Kafka topic instead of the data directory's files when
    // these are set (from --config's [log] section, or --kafka-brokers/--kafka-topic).
    std::optional<el::kafka_log_options> kafka;

    std::filesystem::path log_dir() const { return std::filesystem::path(data_dir) / "log"; }
    // "the log in DIR" or "Kafka topic T", for messages.
    std::string log_name() const {
        return kafka ? "Kafka topic " + kafka->topic : "the log in " + log_dir().string();
    }
};

// Opens the Kafka log read-only for the offline commands (it reads the topic to its end and
// checks the chain while opening).
el::result<std::unique_ptr<el::kafka_log>> open_kafka(const global_options& g) {
    auto o = *g.kafka;
    o.read_only = true;
    o.notice = [](const std::string& line) { say("log: " + line); };
    return el::kafka_log::open(std::move(o));
}

std::string duration_text(std::int64_t seconds) {
    const std::int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
                       s = seconds % 60;
    std::string out;
    if (d > 0) out += std::to_string(d) + "d ";
    if (d > 0 || h > 0) out += std::to_string(h) + "h ";
    if (d > 0 || h > 0 || m > 0) out += std::to_string(m) + "m ";
    return out + std::to_string(s) + "s";
}

// A JSON value shown to a human: strings without quotes.
std::string plain(const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}

int cmd_status(const global_options& g) {
    auto r = sd::admin_call(g.socket, "status");
    if (!r) {
        say(r.error().message);
        return exit_problem;
    }
    const auto& s = *r;
    if (g.json) {
        std::cout << s.dump() << '\n';
        return exit_ok;
    }
    std::cout << "scimsyncd " << plain(s.value("version", nlohmann::json("?"))) << " is running\n"
              << "  listen      " << plain(s.value("listen", nlohmann::json(""))) << '\n'
              << "  data dir    " << plain(s.value("data_dir", nlohmann::json(""))) << '\n'
              << "  durability  " << plain(s.value("durability", nlohmann::json(""))) << '\n'
              << "  last seq    " << plain(s.value("last_seq", nlohmann::json(0))) << '\n'
              << "  uptime      " << duration_text(s.value("uptime_s", std::int64_t{0})) << '\n';
    return exit_ok;
}

// Runs one admin command; prints `human(result)` or the JSON result. A refusal by the daemon
// (bad name, unknown token id) is a usage error; not reaching it is a problem.
int admin_command(const global_options& g, const std::string& cmd, const nlohmann::json& args,
                  const std::function<void(const nlohmann::json&)>& human) {
    auto r = sd::admin_call(g.socket, cmd, args);
    if (!r) {
        say(r.error().message);
        return r.error().what == sd::admin_error::kind::command ? exit_usage : exit_problem;
    }
    if (g.json)
        std::cout << r->dump() << '\n';
    else
        human(*r);
    return exit_ok;
}

std::string text_or(const nlohmann::json& j, const char* key, const char* fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// The offline commands need an existing log directory; a wrong --data-dir is a usage error.
bool log_dir_exists(const global_options& g) {
    std::error_code ec;
    if (std::filesystem::is_directory(g.log_dir(), ec)) return true;
    say("no log directory at " + g.log_dir().string() + " (set --data-dir)");
    return false;
}

bool stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) == 1;
}

int cmd_log_verify_kafka(const global_options& g) {
    auto opened = open_kafka(g);
    if (!opened) {
        const auto& e = opened.error();
        if (e.code == el::errc::corrupt) {
            if (g.json)
                std::cout << nlohmann::json{{"ok", false},
                                            {"topic", g.kafka->topic},
                                            {"problem", {{"seq", e.seq.value}, {"what", e.message}}}}
                                 .dump()
                          << '\n';
            say("log verify: first bad seq " + std::to_string(e.seq.value) + ": " + e.message);
        } else {
            say("log verify: " + e.message);
        }
        return exit_problem;
    }
    auto& log = **opened;
    const auto last = log.last_seq();
    const auto head = log.chain_head_at(last);
    if (!head) {
        say("log verify: " + head.error().message);
        return exit_problem;
    }
    const auto counts = log.counts();
    if (g.json) {
        nlohmann::ordered_json j;
        j["ok"] = true;
        j["topic"] = g.kafka->topic;
        j["events"] = last.value;
        j["last_good_seq"] = last.value;
        j["chain_head"] = el::to_hex(*head);
        j["checkpoints_checked"] = counts.checkpoints_checked;
        j["voided"] = counts.voided;
        j["problem"] = nullptr;
        std::cout << j.dump() << '\n';
    } else {
        std::cout << "log verify: ok: Kafka topic " << g.kafka->topic << ", " << last.value
                  << " event(s); " << counts.checkpoints_checked
                  << " checkpoint(s) matched the chain; " << counts.voided
                  << " event(s) of torn appends void; chain head " << el::to_hex(*head) << '\n';
    }
    return exit_ok;
}

int cmd_log_verify(const global_options& g) {
    if (g.kafka) return cmd_log_verify_kafka(g);
    if (!log_dir_exists(g)) return exit_usage;
    sd::progress_meter meter("verifying", stderr_is_terminal());
    auto r = el::verify_log(g.log_dir(), meter.callback());
    meter.finish();
    if (!r) {
        say("log verify: " + r.error().message);
        return exit_problem;
    }
    const auto& rep = *r;
    if (g.json) {
        nlohmann::ordered_json j;
        j["ok"] = !rep.problem.has_value();
        j["segments"] = rep.segments;
        j["frames"] = rep.frames;
        j["events"] = rep.events;
        j["bytes"] = rep.bytes;
        j["last_good_seq"] = rep.last_good.value;
        j["chain_head"] = el::to_hex(rep.chain_head);
        if (rep.problem) {
            j["problem"] = {{"seq", rep.problem->seq.value},
                            {"segment", rep.problem->segment.string()},
                            {"offset", rep.problem->offset},
                            {"what", rep.problem->what}};
        } else {
            j["problem"] = nullptr;
        }
        std::cout << j.dump() << '\n';
    }
    if (rep.problem) {
        const auto& p = *rep.problem;
        say("log verify: first bad seq " + std::to_string(p.seq.value) + ": " + p.what +
            " in segment " + p.segment.string() + " at offset " + std::to_string(p.offset));
        return exit_problem;
    }
    if (!g.json) {
        std::cout << "log verify: ok: " << rep.segments << " segment(s), " << rep.events
                  << " event(s) in " << rep.frames << " frame(s), " << rep.bytes
                  << " bytes; last seq " << rep.last_good.value << "; chain head "
                  << el::to_hex(rep.chain_head) << '\n';
    }
    return exit_ok;
}

int cmd_log_stats(const global_options& g) {
    if (!g.kafka && !log_dir_exists(g)) return exit_usage;
    sd::progress_meter meter("reading", stderr_is_terminal());
    el::result<el::log_stats> r = el::log_stats{};
    if (g.kafka) {
        auto opened = open_kafka(g);
        if (!opened) {
            say("log stats: " + opened.error().message);
            return exit_problem;
        }
        r = el::compute_stats(**opened, meter.callback());
    } else {
        r = el::compute_stats(g.log_dir(), meter.callback());
    }
    meter.finish();
    if (!r) {
        say("log stats: " + r.error().message);
        return exit_problem;
    }
    const auto& st = *r;
    const bool any = st.events > 0;
    if (g.json) {
        nlohmann::ordered_json j;
        j["segments"] = st.segments;
        j["bytes"] = st.bytes;
        j["events"] = st.events;
        j["first_seq"] = st.first_seq.value;
        j["last_seq"] = st.last_seq.value;
        j["first_time"] = any ? nlohmann::ordered_json(el::format_time(st.first_time)) : nullptr;
        j["last_time"] = any ? nlohmann::ordered_json(el::format_time(st.last_time)) : nullptr;
        j["streams"] = st.streams;
        j["by_type"] = st.by_type;
        j["by_source"] = st.by_source;
        std::cout << j.dump() << '\n';
        return exit_ok;
    }
    const auto row = [](const std::string& k, const std::string& v) {
        std::printf("%-12s %s\n", k.c_str(), v.c_str());
    };
    row("segments", std::to_string(st.segments));
    row("bytes", std::to_string(st.bytes));
    row("events", std::to_string(st.events));
    row("first seq", any ? std::to_string(st.first_seq.value) : "-");
    row("last seq", any ? std::to_string(st.last_seq.value) : "-");
    row("first time", any ? el::format_time(st.first_time) : "-");
    row("last time", any ? el::format_time(st.last_time) : "-");
    row("streams", std::to_string(st.streams));
    const auto table = [](const char* title, const std::map<std::string, std::uint64_t>& m) {
        if (m.empty()) return;
        std::size_t width = 0;
        for (const auto& [k, n] : m) width = std::max(width, k.size());
        std::printf("%s\n", title);
        for (const auto& [k, n] : m) {
            std::printf("  %-*s %llu\n", static_cast<int>(width), k.c_str(),
                        static_cast<unsigned long long>(n));
        }
    };
    table("events by type", st.by_type);
    table("events by source", st.by_source);
    return exit_ok;
}

struct dump_options {
    std::optional<std::uint64_t> from, to;
    std::optional<std::string> since, until;
};

int cmd_log_dump(const global_options& g, const dump_options& d) {
    std::optional<el::utc_time> since, until;
    if (d.since) {
        auto t = el::parse_time(*d.since);
        if (!t) {
            say("--since: " + t.error().message);
            return exit_usage;
        }
        since = *t;
    }
    if (d.until) {
        auto t = el::parse_time(*d.until);
        if (!t) {
            say("--until: " + t.error().message);
            return exit_usage;
        }
        until = *t;
    }
    if (d.from && d.to && *d.from > *d.to) {
        say("--from " + std::to_string(*d.from) + " is after --to " + std::to_string(*d.to));
        return exit_usage;
    }
    if (!g.kafka && !log_dir_exists(g)) return exit_usage;

    std::unique_ptr<el::log> opened_log;
    el::file_log* file = nullptr;
    if (g.kafka) {
        auto k = open_kafka(g);
        if (!k) {
            say("log dump: " + k.error().message);
            return exit_problem;
        }
        opened_log = std::move(*k);
    } else {
        auto f = el::file_log::open(el::file_log_options{
            .dir = g.log_dir(),
            .read_only = true,
            .notice = [](const std::string& line) { say("log: " + line); },
        });
        if (!f) {
            say("log dump: " + f.error().message);
            return exit_problem;
        }
        file = f->get();
        opened_log = std::move(*f);
    }
    auto& log = *opened_log;

    // The first seq whose time is >= t: the file log's index, or a scan of the topic. Times
    // never decrease along the sequence in either.
    auto first_at = [&](el::utc_time t) -> el::result<el::seq_no> {
        if (file != nullptr) return file->first_at_or_after(t);
        auto r = log.read_from(el::seq_no{1});
        if (!r) return std::unexpected(r.error());
        el::event e;
        while (true) {
            auto more = (*r)->next(e);
            if (!more) return std::unexpected(more.error());
            if (!*more) return log.last_seq().next();
            if (e.time >= t) return e.seq;
        }
    };

    // [first, end) in sequence numbers.
    std::uint64_t first = std::max<std::uint64_t>(d.from.value_or(1), 1);
    std::uint64_t end = log.last_seq().value + 1;
    if (d.to) end = std::min(end, *d.to + 1);
    if (since) {
        auto s = first_at(*since);
        if (!s) {
            say("log dump: " + s.error().message);
            return exit_problem;
        }
        first = std::max(first, s->value);
    }
    if (until) {
        auto u = first_at(*until);
        if (!u) {
            say("log dump: " + u.error().message);
            return exit_problem;
        }
        end = std::min(end, u->value);
    }
    if (first >= end) return exit_ok;

    auto reader = log.read_from(el::seq_no{first});
    if (!reader) {
        say("log dump: " + reader.error().message);
        return exit_problem;
    }
    // Progress only when the events go somewhere else; on a shared terminal it would garble
    // the output.
    sd::progress_meter meter("dumping", stderr_is_terminal() && ::isatty(STDOUT_FILENO) != 1,
                             sd::progress_meter::unit::events);
    el::event e;
    while (true) {
        auto more = (*reader)->next(e);
        if (!more) {
            meter.finish();
            std::cout.flush();
            say("log dump: " + more.error().message);
            return exit_problem;
        }
        if (!*more || e.seq.value >= end) break;
        // Data is opaque to the log, so a damaged or foreign log may hold invalid UTF-8.
        std::cout << el::to_json(e).dump(-1, ' ', false,
                                         nlohmann::ordered_json::error_handler_t::replace)
                  << '\n';
        meter.update(e.seq.value - first + 1, end - first);
    }
    meter.finish();
    std::cout.flush();
    if (!std::cout) {
        say("log dump: cannot write to standard output");
        return exit_problem;
    }
    return exit_ok;
}

// Copies the whole log between the data directory's files and a Kafka topic, event for event:
// same order and numbers, same times, same genesis, so the copy's chain heads equal the
// original's (a torn append read from Kafka is copied as the LogVoid events readers see, which
// changes the heads from there on; the command says so).
int cmd_log_copy(const global_options& g, const std::string& from, const std::string& to) {
    if (from == to || (from != "file" && from != "kafka") || (to != "file" && to != "kafka")) {
        say("log copy: --from and --to are file and kafka, one each");
        return exit_usage;
    }
    if (!g.kafka) {
        say("log copy: name the topic with --config (log.kafka) or --kafka-brokers and "
            "--kafka-topic");
        return exit_usage;
    }
    auto notice = [](const std::string& line) { say("log: " + line); };
    std::unique_ptr<el::log> source, target;
    if (from == "file") {
        if (!log_dir_exists(g)) return exit_usage;
        auto f = el::file_log::open({.dir = g.log_dir(), .read_only = true, .notice = notice});
        if (!f) {
            say("log copy: " + f.error().message);
            return exit_problem;
        }
        source = std::move(*f);
    } else {
        auto k = open_kafka(g);
        if (!k) {
            say("log copy: " + k.error().message);
            return exit_problem;
        }
        source = std::move(*k);
    }
    const auto genesis = source->chain_head_at(el::seq_no{0});
    if (!genesis) {
        say("log copy: " + genesis.error().message);
        return exit_problem;
    }
    if (to == "kafka") {
        auto o = *g.kafka;
        o.genesis = *genesis;
        o.keep_event_times = true;
        o.checkpoint_every = 0;
        o.notice = notice;
        auto k = el::kafka_log::open(std::move(o));
        if (!k) {
            say("log copy: " + k.error().message);
            return exit_problem;
        }
        target = std::move(*k);
    } else {
        std::error_code ec;
        if (std::filesystem::exists(g.log_dir(), ec) && !std::filesystem::is_empty(g.log_dir(), ec)) {
            say("log copy: " + g.log_dir().string() +
                " already holds a log; copy into an empty data directory");
            return exit_usage;
        }
        auto f = el::file_log::open({.dir = g.log_dir(),
                                     .mode = el::durability::batch,
                                     .genesis = *genesis,
                                     .keep_event_times = true,
                                     .notice = notice});
        if (!f) {
            say("log copy: " + f.error().message);
            return exit_problem;
        }
        target = std::move(*f);
    }
    if (target->last_seq().value != 0) {
        say("log copy: the target " + std::string(to == "kafka" ? "topic" : "log") +
            " is not empty; copy into an empty one");
        return exit_usage;
    }

    const el::seq_no last = source->last_seq();
    auto reader = source->read_from(el::seq_no{1});
    if (!reader) {
        say("log copy: " + reader.error().message);
        return exit_problem;
    }
    sd::progress_meter meter("copying", stderr_is_terminal(), sd::progress_meter::unit::events);
    // Appends of up to 500 events, up to 64 in flight: the target keeps their order.
    std::mutex mu;
    std::condition_variable cv;
    std::size_t in_flight = 0;
    std::optional<el::error> failed;
    std::vector<el::event> batch;
    std::uint64_t copied = 0;
    auto flush = [&] {
        if (batch.empty()) return;
        {
            std::unique_lock lk(mu);
            cv.wait(lk, [&] { return in_flight < 64 || failed; });
            ++in_flight;
        }
        target->async_append(std::move(batch), [&](el::result<el::append_result> r) {
            std::lock_guard lk(mu);
            --in_flight;
            if (!r && !failed) failed = r.error();
            cv.notify_all();
        });
        batch.clear();
    };
    el::event e;
    while (copied < last.value) {
        auto more = (*reader)->next(e);
        if (!more) {
            say("log copy: " + more.error().message);
            return exit_problem;
        }
        if (!*more) break;
        batch.push_back(e);
        ++copied;
        if (batch.size() == 500) flush();
        meter.update(copied, last.value);
        std::lock_guard lk(mu);
        if (failed) break;
    }
    flush();
    {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return in_flight == 0; });
    }
    meter.finish();
    if (failed) {
        say("log copy: writing the copy failed: " + failed->message);
        return exit_problem;
    }
    if (copied != last.value) {
        say("log copy: the source stopped delivering after seq " + std::to_string(copied) +
            " of " + std::to_string(last.value) + "; the copy is incomplete");
        return exit_problem;
    }
    // The target's own reading must reach the end before its head can be asked for.
    if (target->wait_for(el::seq_no{last.value - 1},
                         std::chrono::steady_clock::now() + std::chrono::seconds(60)) < last) {
        say("log copy: the copy does not read back to seq " + std::to_string(last.value));
        return exit_problem;
    }
    const auto a = source->chain_head_at(last), b = target->chain_head_at(last);
    if (!a || !b) {
        say("log copy: " + (a ? b.error() : a.error()).message);
        return exit_problem;
    }
    target->close();
    const bool same = *a == *b;
    if (g.json) {
        std::cout << nlohmann::json{{"events", copied},
                                    {"from", from},
                                    {"to", to},
                                    {"chain_head", el::to_hex(*b)},
                                    {"same_chain_head", same}}
                         .dump()
                  << '\n';
    } else {
        std::cout << "log copy: " << copied << " event(s) from " << from << " to " << to
                  << (same ? "; the chain heads agree: " + el::to_hex(*b)
                           : "; the chain heads differ (the source holds torn appends or times "
                             "that went back, which readers see changed)")
                  << '\n';
    }
    return exit_ok;
}

void print_ldap_status(const nlohmann::json& r) {
    const auto num = [](const nlohmann::json& j, const char* k) {
        return j.is_object() ? j.value(k, std::uint64_t{0}) : 0;
    };
    std::cout << "LDAP:        " << text_or(r, "url", "") << " as " << text_or(r, "bind_dn", "")
              << '\n';
    const auto& m = r.value("mirror", nlohmann::json());
    if (m.is_object()) {
        std::cout << "mirror:      "
                  << (m.value("connected", false) ? "connected" : "NOT CONNECTED")
                  << ", written up to seq " << num(m, "checkpoint") << " of " << num(m, "log_head")
                  << " (lag " << num(m, "lag_events") << " events, " << num(m, "queued_writes")
                  << " writes queued)\n"
                  << "writes:      " << num(m, "writes") << " done, " << num(m, "failed_writes")
                  << " refused, " << num(m, "reconnects") << " reconnects\n";
        if (m.contains("last_error") && m["last_error"].is_string())
            std::cout << "last error:  " << m["last_error"].get<std::string>() << " at "
                      << text_or(m, "last_error_time", "") << '\n';
    }
    const auto& i = r.value("ingest", nlohmann::json());
    if (i.is_object()) {
        std::cout << "ingest:      "
                  << (i.value("persisting", false)  ? "following the accesslog"
                      : i.value("connected", false) ? "catching up"
                                                    : "NOT CONNECTED")
                  << ", " << num(i, "ingested") << " changes ingested, "
                  << num(i, "own_writes_skipped") << " own writes skipped\n";
        if (i.contains("last_error") && i["last_error"].is_string())
            std::cout << "last error:  " << i["last_error"].get<std::string>() << '\n';
    } else {
        std::cout << "ingest:      off\n";
    }
}

int cmd_ldap_reconcile(const global_options& g, bool dry_run, unsigned timeout_s) {
    auto r =
        sd::admin_call(g.socket, "ldap.reconcile", {{"dry_run", dry_run}, {"timeout_s", timeout_s}},
                       std::chrono::seconds(timeout_s + 10));
    if (!r) {
        say(r.error().message);
        return r.error().what == sd::admin_error::kind::command ? exit_usage : exit_problem;
    }
    const auto differences = r->value("differences", std::uint64_t{0});
    if (g.json) {
        std::cout << r->dump() << '\n';
    } else {
        const char* verb = dry_run ? "" : " (fixed)";
        for (const auto& dn : r->value("missing", nlohmann::json::array()))
            std::cout << "missing" << verb << ": " << dn.get<std::string>() << '\n';
        for (const auto& dn : r->value("extra", nlohmann::json::array()))
            std::cout << "extra" << verb << ":   " << dn.get<std::string>() << '\n';
        for (const auto& d : r->value("drift", nlohmann::json::array())) {
            std::cout << "drift" << verb << ":   " << text_or(d, "dn", "") << ": "
                      << text_or(d, "attribute", "") << " is "
                      << d.value("actual", nlohmann::json::array()).dump() << ", should be "
                      << d.value("expected", nlohmann::json::array()).dump() << '\n';
        }
        std::cout << r->value("checked", std::uint64_t{0}) << " entries checked at seq "
                  << r->value("at", std::uint64_t{0}) << ", " << differences
                  << (differences == 1 ? " difference" : " differences")
                  << (dry_run || differences == 0 ? "" : ", all fixed") << '\n';
    }
    return dry_run && differences > 0 ? exit_problem : exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"scimsyncctl: control scimsyncd and audit its log"};
    app.set_version_flag("--version", std::string("scimsyncctl ") + SCIMSYNC_VERSION);
    app.require_subcommand(1);
    // Options of the top level are accepted after any subcommand too (`status --json`).
    app.fallthrough();
    global_options g;
    app.add_option("--socket", g.socket, "admin socket of the running daemon")
        ->capture_default_str();
    app.add_option("--data-dir", g.data_dir, "data directory for offline log commands")
        ->capture_default_str();
    app.add_flag("--json", g.json, "machine-readable output on stdout");
    std::string config_file, kafka_brokers, kafka_topic;
    auto* config_opt = app.add_option(
        "--config", config_file,
        "scimsyncd's config file: the offline log commands read the log it names ([log] "
        "backend, [log.kafka]) and its data_dir");
    app.add_option("--kafka-brokers", kafka_brokers,
                   "offline log commands: read the log from this Kafka cluster");
    app.add_option("--kafka-topic", kafka_topic, "offline log commands: the log's Kafka topic");
    auto* data_dir_opt = app.get_option("--data-dir");

    auto* status = app.add_subcommand("status", "show the running daemon's state");

    auto* log = app.add_subcommand("log", "offline log commands (no daemon needed)");
    log->require_subcommand(1);
    auto* verify = log->add_subcommand(
        "verify", "check every frame, checksum and the hash chain; exit 1 on the first problem");
    auto* stats = log->add_subcommand("stats", "count segments, events, types and sources");
    auto* dump = log->add_subcommand("dump", "print events as JSON lines");
    dump_options d;
    dump->add_option("--from", d.from, "first sequence number (inclusive)");
    dump->add_option("--to", d.to, "last sequence number (inclusive)");
    dump->add_option("--since", d.since,
                     "events at or after TIME (RFC 3339, e.g. 2026-11-22T10:00:00Z, or a date)");
    dump->add_option("--until", d.until, "events before TIME (exclusive)");
    auto* copy = log->add_subcommand(
        "copy", "copy the whole log between the data directory and a Kafka topic (migration)");
    std::string copy_from, copy_to;
    copy->add_option("--from", copy_from, "file or kafka")->required();
    copy->add_option("--to", copy_to, "kafka or file: an empty topic, or an empty data directory")
        ->required();

    auto* token = app.add_subcommand(
        "token", "SCIM and admin API bearer tokens (through the running daemon)");
    token->require_subcommand(1);
    auto* token_create = token->add_subcommand(
        "create",
        "issue a token; prints the SCIM base URL and the token, which is shown only once");
    std::string token_name, token_ttl = "90d", token_id;
    token_create->add_option("--name", token_name, "a name for the client, e.g. okta")->required();
    token_create->add_option("--ttl", token_ttl, "validity: 30d, 90d, 1y, 12h or none")
        ->capture_default_str();
    std::string token_scope = "scim";
    token_create
        ->add_option("--scope", token_scope,
                     "scim (for an identity provider) or admin (for the admin API)")
        ->capture_default_str();
    auto* token_list = token->add_subcommand("list", "list tokens (never their secrets)");
    auto* token_revoke = token->add_subcommand("revoke", "revoke a token at once");
    token_revoke->add_option("id", token_id, "the token's id (from token list)")->required();
    auto* provisioning = app.add_subcommand("provisioning", "switch SCIM provisioning off or on");
    provisioning->require_subcommand(1);
    auto* prov_enable = provisioning->add_subcommand("enable", "accept SCIM requests again");
    auto* prov_disable = provisioning->add_subcommand(
        "disable", "refuse SCIM requests; nothing is changed while off");

    auto* ldap = app.add_subcommand("ldap", "the LDAP bridge (through the running daemon)");
    ldap->require_subcommand(1);
    auto* ldap_status = ldap->add_subcommand("status", "mirror lag, errors and the sync stream");
    auto* ldap_reconcile = ldap->add_subcommand(
        "reconcile",
        "compare the managed LDAP subtrees with the views and fix every difference; exit 1 "
        "when --dry-run finds differences");
    bool dry_run = false;
    unsigned reconcile_timeout = 300;
    ldap_reconcile->add_flag("--dry-run", dry_run, "only print the differences");
    ldap_reconcile->add_option("--timeout", reconcile_timeout, "seconds to wait (default 300)");

    const sd::ctl::access_commands access(app);
    const sd::ctl::audit_commands audit(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        say(e.what());
        return exit_usage;
    }

    // Where the offline log commands read: the config file's log, flags on top.
    std::optional<scimsync::bridge::mapping> ldap_mapping;
    if (config_opt->count() > 0) {
        sd::daemon_config c;
        if (auto r = sd::apply_config_file(config_file, c); !r) {
            say(r.error());
            return exit_usage;
        }
        if (data_dir_opt->count() == 0) g.data_dir = c.data_dir.string();
        if (c.ldap) ldap_mapping = c.ldap->mapping;
        if (c.backend == sd::log_backend::kafka) {
            el::kafka_log_options o;
            o.brokers = c.kafka.brokers;
            o.topic = c.kafka.topic;
            o.properties = c.kafka.properties;
            o.open_timeout = c.kafka.open_timeout;
            g.kafka = std::move(o);
        }
    }
    if (!kafka_brokers.empty() || !kafka_topic.empty()) {
        if (!g.kafka) g.kafka.emplace();
        if (!kafka_brokers.empty()) g.kafka->brokers = kafka_brokers;
        if (!kafka_topic.empty()) g.kafka->topic = kafka_topic;
        if (g.kafka->brokers.empty() || g.kafka->topic.empty()) {
            say("--kafka-brokers and --kafka-topic go together (or come from --config)");
            return exit_usage;
        }
    }

    try {
        if (status->parsed()) return cmd_status(g);
        if (verify->parsed()) return cmd_log_verify(g);
        if (stats->parsed()) return cmd_log_stats(g);
        if (dump->parsed()) return cmd_log_dump(g, d);
        if (copy->parsed()) return cmd_log_copy(g, copy_from, copy_to);
        if (token_create->parsed())
            return admin_command(g, "token.create",
                                 {{"name", token_name}, {"ttl", token_ttl}, {"scope", token_scope}},
                                 [](const nlohmann::json& r) {
                                     const bool admin = text_or(r, "scope", "") == "admin";
                                     std::cout
                                         << (admin ? "Admin API URL: " : "SCIM base URL: ")
                                         << text_or(r, "base_url", "") << '\n'
                                         << "Bearer token:  " << text_or(r, "token", "") << '\n'
                                         << "Token id:      " << text_or(r, "id", "") << '\n'
                                         << "Expires:       " << text_or(r, "expires", "never")
                                         << "\nThe token is shown only this once; paste it "
                                            "where it is needed now.\n";
                                 });
        if (token_list->parsed())
            return admin_command(
                g, "token.list", nlohmann::json::object(), [](const nlohmann::json& r) {
                    std::cout
                        << "ID            NAME              SCOPE  CREATED                      "
                           "EXPIRES                      LAST USED                    STATE\n";
                    for (const auto& t : r.value("tokens", nlohmann::json::array())) {
                        std::printf("%-13s %-17s %-6s %-28s %-28s %-28s %s\n",
                                    text_or(t, "id", "").c_str(), text_or(t, "name", "").c_str(),
                                    text_or(t, "scope", "scim").c_str(),
                                    text_or(t, "created", "").c_str(),
                                    text_or(t, "expires", "never").c_str(),
                                    text_or(t, "last_used", "-").c_str(),
                                    t.value("revoked", false) ? "revoked" : "active");
                    }
                });
        if (token_revoke->parsed())
            return admin_command(g, "token.revoke", {{"id", token_id}},
                                 [](const nlohmann::json& r) {
                                     std::cout << "token " << text_or(r, "id", "") << " revoked\n";
                                 });
        if (prov_enable->parsed() || prov_disable->parsed())
            return admin_command(
                g, prov_enable->parsed() ? "provisioning.enable" : "provisioning.disable",
                nlohmann::json::object(), [](const nlohmann::json& r) {
                    std::cout << "provisioning " << text_or(r, "provisioning", "")
                              << (r.value("changed", false) ? "" : " (it already was)") << '\n';
                });
        if (ldap_status->parsed())
            return admin_command(g, "ldap.status", nlohmann::json::object(), print_ldap_status);
        if (ldap_reconcile->parsed()) return cmd_ldap_reconcile(g, dry_run, reconcile_timeout);
        if (auto code = access.run(g.socket, g.json)) return *code;
        auto open_log = [&g]() -> el::result<std::unique_ptr<el::log>> {
            if (g.kafka) {
                auto k = open_kafka(g);
                if (!k) return std::unexpected(k.error());
                return std::unique_ptr<el::log>(std::move(*k));
            }
            if (!std::filesystem::is_directory(g.log_dir()))
                return el::fail(el::errc::not_found,
                                "no log directory at " + g.log_dir().string() + " (set --data-dir)");
            auto f = el::file_log::open(el::file_log_options{
                .dir = g.log_dir(),
                .read_only = true,
                .notice = [](const std::string& line) { say("log: " + line); },
            });
            if (!f) return std::unexpected(f.error());
            return std::unique_ptr<el::log>(std::move(*f));
        };
        if (auto code = audit.run(open_log, ldap_mapping, g.json)) return *code;
    } catch (const std::exception& e) {
        say(std::string("fatal: ") + e.what());
        return exit_problem;
    }
    say("no command given (try --help)");
    return exit_usage;
}
