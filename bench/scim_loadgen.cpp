// scim_loadgen: a closed-loop HTTP/1.1 load generator for the SCIM benchmark (bench/scim_load.sh).
//
//   scim_loadgen --url http://127.0.0.1:PORT --scenario NAME [--connections 64] [--threads 1]
//                [--seconds 10] [--token T] [--users N] [--members M] [--run R]
//
// Each connection sends one request, waits for the whole answer, and sends the next (as wrk
// does); requests/s counts the answers completed within the run, latency runs from the first
// byte written to the last byte read. It makes the same requests as the wrk scripts in
// bench/wrk/ (the scenarios below) without a Lua call per request: on a two-core machine the
// load generator shares the cores with the daemon, and what it spends is taken from the
// figures. It costs 11-16 us of CPU per request against wrk's 14-18, mostly the kernel's
// (bench/README.md, scim_load, 2026-12-05 later). Answers are parsed by Beast's parser.
//
// Prints one "name value" pair per line: requests, seconds, requests_per_second, p50_ms,
// p90_ms, p99_ms, p999_ms, max_ms, non_2xx, errors, connections_closed (by the server, which
// leaves fewer connections for the rest of the run). The first non-2xx answer goes to stderr.

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

enum class scenario { healthz, get_user, filter_user, post_user, patch_user, add_member };

std::optional<scenario> scenario_named(const std::string& s) {
    if (s == "healthz") return scenario::healthz;
    if (s == "get_user") return scenario::get_user;
    if (s == "filter_user") return scenario::filter_user;
    if (s == "post_user") return scenario::post_user;
    if (s == "patch_user") return scenario::patch_user;
    if (s == "add_member") return scenario::add_member;
    return std::nullopt;
}

struct options {
    std::string host;
    std::string port;
    scenario what = scenario::healthz;
    std::size_t connections = 64;
    std::size_t threads = 1;
    double seconds = 10;
    std::string token;
    std::uint64_t users = 1;
    std::uint64_t members = 0;
    std::uint64_t run = 1;
};

// Each run (1, 2, ...) changes its own users and each thread its own share of them, so that
// every write is a real change: run r, thread t, request n of that thread works on
// (r - 1) * run_stride + t * run_stride / threads + n (modulo the users it may pick from).
constexpr std::uint64_t run_stride = 300'000;

// What one thread needs to make its requests; touched by that thread only.
struct request_maker {
    const options* opt = nullptr;
    std::size_t thread = 0;
    std::uint64_t n = 0;
    std::mt19937_64 rng;
    std::string host_header;

    std::uint64_t next_index() {
        return (opt->run - 1) * run_stride + thread * (run_stride / opt->threads) + n++;
    }
    std::uint64_t random_user() {
        return std::uniform_int_distribution<std::uint64_t>(0, opt->users - 1)(rng);
    }

    // The whole request, head and body. `added`: the connection's own memory, for add_member:
    // the member its last request added, which its next request removes again.
    void make(std::string& out, std::optional<std::uint64_t>& added) {
        out.clear();
        std::string target;
        std::string body;
        const char* method = "GET";
        bool scim = true;
        switch (opt->what) {
            case scenario::healthz:
                target = "/healthz";
                scim = false;
                break;
            case scenario::get_user:
                target = "/scim/v2/Users/u-" + std::to_string(random_user());
                break;
            case scenario::filter_user:
                target = "/scim/v2/Users?filter=userName%20eq%20%22user" +
                         std::to_string(random_user()) + "%40example.com%22";
                break;
            case scenario::post_user:
                method = "POST";
                target = "/scim/v2/Users";
                body = R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new-)" +
                       std::to_string(opt->run) + "-" + std::to_string(thread + 1) + "-" +
                       std::to_string(n++) +
                       R"(@example.com","name":{"givenName":"Barbara","familyName":"Jensen"},)"
                       R"("emails":[{"value":"bjensen@example.com","primary":true}],"active":true})";
                break;
            case scenario::patch_user:
                method = "PATCH";
                target = "/scim/v2/Users/u-" + std::to_string(next_index() % opt->users);
                body = R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],)"
                       R"("Operations":[{"op":"replace","value":{"active":false}}]})";
                break;
            case scenario::add_member: {
                // Adds a user who is not a member, then removes that user again with the
                // connection's next request: the group grows by at most one member per
                // connection a run, and the users outside it never run out.
                method = "PATCH";
                target = "/scim/v2/Groups/g-big";
                if (added) {
                    body = R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],)"
                           R"("Operations":[{"op":"remove","path":"members[value eq \"u-)" +
                           std::to_string(*added) + R"(\"]"}]})";
                    added.reset();
                } else {
                    added = opt->members + next_index() % (opt->users - opt->members);
                    body = R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],)"
                           R"("Operations":[{"op":"add","path":"members","value":[{"value":"u-)" +
                           std::to_string(*added) + R"("}]}]})";
                }
                break;
            }
        }
        out += method;
        out += ' ';
        out += target;
        out += " HTTP/1.1\r\n";
        out += host_header;
        if (scim) {
            out += "Authorization: Bearer ";
            out += opt->token;
            out += "\r\n";
        }
        if (!body.empty()) {
            out += "Content-Type: application/scim+json\r\nContent-Length: ";
            out += std::to_string(body.size());
            out += "\r\n";
        }
        out += "\r\n";
        out += body;
    }
};

// One thread's results; merged after the run.
struct tally {
    std::vector<std::uint32_t> latency_us;
    std::uint64_t non_2xx = 0;
    std::uint64_t errors = 0;
    std::uint64_t closed = 0;  // connections the server closed: the run went on with fewer
};

std::once_flag first_failure;

// One keep-alive connection, driven by its thread's io_context only.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(asio::io_context& io, request_maker& maker, tally& t)
        : socket_(io), maker_(maker), tally_(t) {
        // Beast reads max(512, free capacity) bytes at a time; without room an answer over
        // 512 bytes would take two reads every time.
        buffer_.reserve(16384);
    }

    bool connect(const tcp::resolver::results_type& where) {
        boost::system::error_code ec;
        asio::connect(socket_, where, ec);
        if (!ec) socket_.set_option(tcp::no_delay(true), ec);
        return !ec;
    }

    // Starts the request loop, which counts answers completed by `end`.
    void start(clock_type::time_point end) {
        end_ = end;
        send();
    }
    void close() {
        boost::system::error_code ec;
        socket_.close(ec);
    }

private:
    void send() {
        maker_.make(request_, added_);
        sent_ = clock_type::now();
        asio::async_write(socket_, asio::buffer(request_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                              if (ec) return self->fail();
                              self->receive();
                          });
    }

    void receive() {
        parser_.emplace();
        parser_->body_limit(64u << 20);
        http::async_read(socket_, buffer_, *parser_,
                         [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                             self->received(ec);
                         });
    }

    void received(boost::system::error_code ec) {
        const auto now = clock_type::now();
        if (ec) return fail();
        if (now > end_) return;  // finished after the run: not counted
        const auto& res = parser_->get();
        tally_.latency_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - sent_).count()));
        if (res.result_int() < 200 || res.result_int() > 299) {
            ++tally_.non_2xx;
            std::call_once(first_failure, [&] {
                std::fprintf(stderr, "first non-2xx answer: %u %.300s\n", res.result_int(),
                             res.body().c_str());
            });
        }
        if (!res.keep_alive()) {
            ++tally_.closed;  // reported: the rest of the run had one connection fewer
            return;
        }
        send();
    }

    void fail() {
        if (clock_type::now() <= end_) ++tally_.errors;
    }

    tcp::socket socket_;
    request_maker& maker_;
    tally& tally_;
    clock_type::time_point end_ = clock_type::time_point::max();
    std::string request_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    clock_type::time_point sent_;
    std::optional<std::uint64_t> added_;  // add_member: the member to remove next
};

bool parse_url(const std::string& url, options& o) {
    if (!url.starts_with("http://")) return false;
    std::string rest = url.substr(7);
    rest = rest.substr(0, rest.find('/'));
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
    o.host = rest.substr(0, colon);
    o.port = rest.substr(colon + 1);
    return true;
}

double percentile_ms(const std::vector<std::uint32_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)] / 1000.0;
}

int usage(const char* why) {
    std::fprintf(stderr,
                 "scim_loadgen: %s\nusage: scim_loadgen --url http://HOST:PORT --scenario "
                 "healthz|get_user|filter_user|post_user|patch_user|add_member [--connections "
                 "64] [--threads 1] [--seconds 10] [--token T] [--users N] [--members M] "
                 "[--run R]\n",
                 why);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    namespace b = scimsync::bench;
    options opt;
    if (!parse_url(b::arg(argc, argv, "--url", ""), opt))
        return usage("--url must be http://HOST:PORT");
    const auto what = scenario_named(b::arg(argc, argv, "--scenario", ""));
    if (!what) return usage("unknown --scenario");
    opt.what = *what;
    try {
        opt.connections = std::stoul(b::arg(argc, argv, "--connections", "64"));
        opt.threads = std::stoul(b::arg(argc, argv, "--threads", "1"));
        opt.seconds = std::stod(b::arg(argc, argv, "--seconds", "10"));
        opt.users = std::stoull(b::arg(argc, argv, "--users", "1"));
        opt.members = std::stoull(b::arg(argc, argv, "--members", "0"));
        opt.run = std::stoull(b::arg(argc, argv, "--run", "1"));
    } catch (const std::exception&) {
        return usage("--connections, --threads, --seconds, --users, --members and --run take "
                     "numbers");
    }
    opt.token = b::arg(argc, argv, "--token", "");
    if (opt.connections == 0 || opt.threads == 0 || opt.threads > opt.connections ||
        opt.seconds <= 0 || opt.users == 0 || opt.run == 0)
        return usage("need connections >= threads >= 1, seconds > 0, users >= 1, run >= 1");
    if (opt.what == scenario::add_member && opt.members >= opt.users)
        return usage("add_member needs --members below --users");

    std::vector<std::unique_ptr<asio::io_context>> ios;
    std::vector<request_maker> makers(opt.threads);
    std::vector<tally> tallies(opt.threads);
    for (std::size_t t = 0; t < opt.threads; ++t) {
        ios.push_back(std::make_unique<asio::io_context>(1));
        makers[t].opt = &opt;
        makers[t].thread = t;
        makers[t].rng.seed(opt.run * 1'000'003 + t);
        makers[t].host_header = "Host: " + opt.host + ":" + opt.port + "\r\n";
        tallies[t].latency_us.reserve(1u << 20);
    }

    // Every connection is open before the clock starts, as with wrk.
    tcp::resolver resolver(*ios[0]);
    boost::system::error_code ec;
    const auto where = resolver.resolve(opt.host, opt.port, ec);
    if (ec) return usage(("cannot resolve " + opt.host + ": " + ec.message()).c_str());
    std::vector<std::vector<std::shared_ptr<connection>>> conns(opt.threads);
    for (std::size_t c = 0; c < opt.connections; ++c) {
        const std::size_t t = c % opt.threads;
        auto conn = std::make_shared<connection>(*ios[t], makers[t], tallies[t]);
        if (!conn->connect(where)) return usage(("cannot connect to " + opt.host + ":" +
                                                 opt.port).c_str());
        conns[t].push_back(std::move(conn));
    }

    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(opt.seconds));
    std::vector<std::unique_ptr<asio::steady_timer>> timers;
    for (std::size_t t = 0; t < opt.threads; ++t) {
        for (auto& c : conns[t]) c->start(end);
        // At the end, whatever is still in flight is dropped (it would not be counted).
        timers.push_back(std::make_unique<asio::steady_timer>(*ios[t], end));
        timers.back()->async_wait([&list = conns[t]](boost::system::error_code) {
            for (auto& c : list) c->close();
        });
    }
    std::vector<std::thread> workers;
    for (std::size_t t = 1; t < opt.threads; ++t) workers.emplace_back([&io = *ios[t]] { io.run(); });
    ios[0]->run();
    for (auto& w : workers) w.join();

    tally all;
    for (auto& t : tallies) {
        all.latency_us.insert(all.latency_us.end(), t.latency_us.begin(), t.latency_us.end());
        all.non_2xx += t.non_2xx;
        all.errors += t.errors;
        all.closed += t.closed;
    }
    std::sort(all.latency_us.begin(), all.latency_us.end());
    const auto n = all.latency_us.size();
    std::printf("requests %zu\n", n);
    std::printf("seconds %.3f\n", opt.seconds);
    std::printf("requests_per_second %.1f\n", static_cast<double>(n) / opt.seconds);
    std::printf("p50_ms %.3f\n", percentile_ms(all.latency_us, 0.50));
    std::printf("p90_ms %.3f\n", percentile_ms(all.latency_us, 0.90));
    std::printf("p99_ms %.3f\n", percentile_ms(all.latency_us, 0.99));
    std::printf("p999_ms %.3f\n", percentile_ms(all.latency_us, 0.999));
    std::printf("max_ms %.3f\n", n == 0 ? 0.0 : all.latency_us.back() / 1000.0);
    std::printf("non_2xx %llu\n", static_cast<unsigned long long>(all.non_2xx));
    std::printf("errors %llu\n", static_cast<unsigned long long>(all.errors));
    std::printf("connections_closed %llu\n", static_cast<unsigned long long>(all.closed));
    return n == 0 ? 1 : 0;
}
