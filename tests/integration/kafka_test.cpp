// Several scimsyncd instances on one Kafka topic (librdkafka's mock cluster, 3 brokers, in this
// process; a real cluster when SCIMSYNC_KAFKA_BROKERS is set): each builds its views from the
// topic, reads its own writes, and conflicting writes made at the same moment on two daemons
// are decided by the topic's order, the same way on both.

#include <barrier>
#include <catch2/catch.hpp>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon_process.hpp"
#include "kafka_fixture.hpp"
#include "net_client.hpp"
#include "support/test_support.hpp"

using namespace scimsync::testing;
using nlohmann::json;

namespace {

kafka_cluster& cluster() {
    static kafka_cluster c;
    return c;
}

std::string kafka_config(const std::string& topic) {
    return "[log]\nbackend = \"kafka\"\n[log.kafka]\nbrokers = \"" + cluster().bootstraps() +
           "\"\ntopic = \"" + topic + "\"\n";
}

// One scimsyncd on the shared topic, with its own data directory and admin socket.
struct node {
    temp_dir dir;
    std::string topic;
    std::optional<daemon_process> daemon;

    explicit node(std::string t) : topic(std::move(t)) {
        write_file(dir.path() / "scimsyncd.toml", kafka_config(topic));
        start();
    }
    void start() {
        daemon_options o;
        o.dir = dir.path();
        o.durability = "";
        daemon.emplace(o, std::chrono::seconds(60));
    }
    void restart() {
        REQUIRE(daemon->stop().value().code == 0);
        daemon.reset();
        start();
    }
    process_output ctl(std::vector<std::string> args) const { return daemon->ctl(std::move(args)); }
};

// Where a client connects.
struct endpoint {
    std::string host;
    std::uint16_t port;
};
endpoint node_like(const daemon_process& d) {
    return {d.host(), d.port()};
}

struct client {
    http_connection conn;
    std::string token;
    client(const node& n, std::string t)
        : conn(n.daemon->host(), n.daemon->port()), token(std::move(t)) {}
    client(const endpoint& e, std::string t) : conn(e.host, e.port), token(std::move(t)) {}
    http_reply call(const std::string& method, const std::string& path, const json& body = nullptr,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
        headers.emplace_back("Authorization", "Bearer " + token);
        if (!body.is_null()) headers.emplace_back("Content-Type", "application/scim+json");
        return conn.request(method, "/scim/v2" + path,
                            body.is_null() ? std::string() : body.dump(), headers,
                            std::chrono::seconds(30));
    }
};

json new_user(const std::string& name) {
    return {{"schemas", {user_schema}}, {"userName", name}, {"active", true}};
}

// The users a daemon finds for a userName (filter), as ids.
std::vector<std::string> ids_named(client& c, const std::string& name) {
    auto r = c.call("GET", "/Users?filter=userName%20eq%20%22" + name + "%22");
    REQUIRE(r.status == 200);
    const auto list = json::parse(r.body);
    std::vector<std::string> out;
    for (const auto& u : list["Resources"]) out.push_back(u["id"]);
    return out;
}

// The user as a daemon shows it, without the parts that name the daemon (meta.location).
json comparable(const std::string& body) {
    auto j = json::parse(body);
    j["meta"].erase("location");
    return j;
}

// Runs `a` and `b` at the same moment on two threads.
template <class A, class B>
void at_once(A a, B b) {
    std::barrier start(2);
    std::thread t([&] {
        start.arrive_and_wait();
        b();
    });
    start.arrive_and_wait();
    a();
    t.join();
}

std::map<std::string, std::uint64_t> types_in_topic(const node& n) {
    auto s = n.ctl({"--config", (n.dir.path() / "scimsyncd.toml").string(), "log", "stats",
                    "--json"});
    INFO(s.err);
    REQUIRE(s.code() == 0);
    return json::parse(s.out)["by_type"].get<std::map<std::string, std::uint64_t>>();
}

}  // namespace

TEST_CASE("two daemons on one Kafka topic serve the same directory, each reading its own writes",
          "[integration][kafka]") {
    const auto topic = cluster().create_topic("shared");
    node a(topic), b(topic);
    auto created = a.ctl({"token", "create", "--name", "okta", "--json"});
    REQUIRE(created.code() == 0);
    const std::string token = json::parse(created.out)["token"];
    client ca(a, token), cb(b, token);
    // B learns the token from the topic.
    REQUIRE(eventually([&] { return cb.call("GET", "/Users").status == 200; },
                       std::chrono::seconds(30)));

    // Read-your-writes on the daemon that took the write, then the other one catches up.
    auto made = ca.call("POST", "/Users", new_user("bjensen@example.com"));
    REQUIRE(made.status == 201);
    const std::string id = json::parse(made.body)["id"];
    auto own = ca.call("GET", "/Users/" + id);
    REQUIRE(own.status == 200);
    REQUIRE(eventually([&] { return cb.call("GET", "/Users/" + id).status == 200; },
                       std::chrono::seconds(30)));
    REQUIRE(comparable(cb.call("GET", "/Users/" + id).body) == comparable(own.body));

    // A write on B, read back on B at once.
    auto patched = cb.call("PATCH", "/Users/" + id,
                           {{"schemas", {patch_op}},
                            {"Operations", {{{"op", "replace"}, {"path", "active"}, {"value", false}}}}});
    REQUIRE(patched.status == 200);
    REQUIRE(json::parse(cb.call("GET", "/Users/" + id).body)["active"] == false);

    // A restarted daemon rebuilds the same directory from the topic (and its snapshot).
    a.restart();
    client again(a, token);
    REQUIRE(eventually([&] {
        auto r = again.call("GET", "/Users/" + id);
        return r.status == 200 && json::parse(r.body)["active"] == false;
    }, std::chrono::seconds(30)));
    REQUIRE(comparable(again.call("GET", "/Users/" + id).body) ==
            comparable(cb.call("GET", "/Users/" + id).body));
}

TEST_CASE("the same userName posted to two daemons at once gets one 201 and one 409, decided by "
          "the order of the topic, and both daemons agree",
          "[integration][kafka]") {
    const auto topic = cluster().create_topic("race");
    node a(topic), b(topic);
    auto created = a.ctl({"token", "create", "--name", "okta", "--json"});
    REQUIRE(created.code() == 0);
    const std::string token = json::parse(created.out)["token"];
    client ca(a, token), cb(b, token);
    REQUIRE(eventually([&] { return cb.call("GET", "/Users").status == 200; },
                       std::chrono::seconds(30)));

    // Slow brokers: neither daemon can have read the other's write when it decides, so both
    // pass their own checks and the topic's order has to decide.
    cluster().set_rtt(100);
    constexpr int rounds = 3;
    for (int i = 0; i < rounds; ++i) {
        const std::string name = "race-" + std::to_string(i) + "@example.com";
        http_reply ra, rb;
        at_once([&] { ra = ca.call("POST", "/Users", new_user(name)); },
                [&] { rb = cb.call("POST", "/Users", new_user(name)); });
        CAPTURE(name, ra.status, ra.body, rb.status, rb.body);
        REQUIRE(((ra.status == 201 && rb.status == 409) || (ra.status == 409 && rb.status == 201)));
        const auto& loser = ra.status == 409 ? ra : rb;
        REQUIRE(json::parse(loser.body)["scimType"] == "uniqueness");
        const auto& winner = ra.status == 201 ? ra : rb;
        const std::string wid = json::parse(winner.body)["id"];
        for (client* c : {&ca, &cb})
            REQUIRE(eventually([&] { return ids_named(*c, name) == std::vector<std::string>{wid}; },
                               std::chrono::seconds(30)));
    }
    cluster().set_rtt(0);
    // Both creates of every round are in the topic; the loser's had no effect on any reader.
    REQUIRE(types_in_topic(a)["UserCreated"] == 2 * rounds);
}

TEST_CASE("the same ETag used on two daemons at once lets one change win and gives the other 412, "
          "and a PATCH without If-Match lands on top of the other daemon's change",
          "[integration][kafka]") {
    const auto topic = cluster().create_topic("etag");
    node a(topic), b(topic);
    auto created = a.ctl({"token", "create", "--name", "entra", "--json"});
    REQUIRE(created.code() == 0);
    const std::string token = json::parse(created.out)["token"];
    client ca(a, token), cb(b, token);
    auto made = ca.call("POST", "/Users", new_user("etag@example.com"));
    REQUIRE(made.status == 201);
    const std::string id = json::parse(made.body)["id"];
    const std::string etag = *made.header("ETag");
    REQUIRE(eventually([&] { return cb.call("GET", "/Users/" + id).status == 200; },
                       std::chrono::seconds(30)));

    auto set = [](const std::string& path, const json& value) {
        return json{{"schemas", {patch_op}},
                    {"Operations", {{{"op", "replace"}, {"path", path}, {"value", value}}}}};
    };
    cluster().set_rtt(100);
    http_reply ra, rb;
    at_once([&] { ra = ca.call("PATCH", "/Users/" + id, set("title", "from A"), {{"If-Match", etag}}); },
            [&] { rb = cb.call("PATCH", "/Users/" + id, set("title", "from B"), {{"If-Match", etag}}); });
    CAPTURE(ra.status, ra.body, rb.status, rb.body);
    REQUIRE(((ra.status == 200 && rb.status == 412) || (ra.status == 412 && rb.status == 200)));
    const std::string won = ra.status == 200 ? "from A" : "from B";

    // Without If-Match both changes land: the one overtaken runs again on the newer version.
    at_once([&] { ra = ca.call("PATCH", "/Users/" + id, set("displayName", "Babs")); },
            [&] { rb = cb.call("PATCH", "/Users/" + id, set("nickName", "bj")); });
    cluster().set_rtt(0);
    CAPTURE(ra.status, ra.body, rb.status, rb.body);
    REQUIRE(ra.status == 200);
    REQUIRE(rb.status == 200);
    for (client* c : {&ca, &cb}) {
        REQUIRE(eventually([&] {
            auto u = json::parse(c->call("GET", "/Users/" + id).body);
            return u.value("title", "") == won && u.value("displayName", "") == "Babs" &&
                   u.value("nickName", "") == "bj";
        }, std::chrono::seconds(30)));
    }
    REQUIRE(comparable(ca.call("GET", "/Users/" + id).body) ==
            comparable(cb.call("GET", "/Users/" + id).body));
}

TEST_CASE("a Kafka log that is misconfigured or missing stops the daemon with a message naming it",
          "[integration][kafka]") {
    temp_dir dir;
    write_file(dir.path() / "incomplete.toml", "[log]\nbackend = \"kafka\"\n");
    auto r = run_binary("scimsyncd", {"--config", (dir.path() / "incomplete.toml").string(),
                                      "--data-dir", (dir.path() / "d1").string(), "--listen",
                                      "127.0.0.1:0", "--admin-socket",
                                      (dir.path() / "a1.sock").string()});
    REQUIRE(r.code() == 2);
    REQUIRE_THAT(r.err, Catch::Contains("incomplete.toml:1") &&
                            Catch::Contains("needs log.kafka.brokers and log.kafka.topic"));

    write_file(dir.path() / "badprop.toml",
               kafka_config("x") + "[log.kafka.properties]\n\"security.protocol\" = \"hunter2\"\n");
    r = run_binary("scimsyncd", {"--config", (dir.path() / "badprop.toml").string(), "--data-dir",
                                 (dir.path() / "d2").string(), "--listen", "127.0.0.1:0",
                                 "--admin-socket", (dir.path() / "a2.sock").string()});
    REQUIRE(r.code() == 2);
    REQUIRE_THAT(r.err, Catch::Contains("badprop.toml:") && Catch::Contains("security.protocol"));
    REQUIRE(r.err.find("hunter2") == std::string::npos);

    write_file(dir.path() / "missing.toml", kafka_config("no-such-topic"));
    r = run_binary("scimsyncd", {"--config", (dir.path() / "missing.toml").string(), "--data-dir",
                                 (dir.path() / "d3").string(), "--listen", "127.0.0.1:0",
                                 "--admin-socket", (dir.path() / "a3.sock").string()},
                   std::chrono::seconds(60));
    REQUIRE(r.code() == 1);
    REQUIRE_THAT(r.err, Catch::Contains("no-such-topic") && Catch::Contains("does not exist"));
}

TEST_CASE("a file log copied into a Kafka topic and back is event for event the same, with the "
          "same chain head, and log verify checks it on both",
          "[integration][kafka][copy]") {
    temp_dir dir;
    // A file log written by a real daemon.
    {
        daemon_options o;
        o.dir = dir.path() / "original";
        std::filesystem::create_directories(o.dir);
        daemon_process d(o);
        auto created = d.ctl({"token", "create", "--name", "okta", "--json"});
        REQUIRE(created.code() == 0);
        client c(node_like(d), json::parse(created.out)["token"].get<std::string>());
        for (int i = 0; i < 20; ++i)
            REQUIRE(c.call("POST", "/Users", new_user("copy" + std::to_string(i) + "@example.com"))
                        .status == 201);
        REQUIRE(d.stop().value().code == 0);
    }
    const auto original = dir.path() / "original" / "data";
    const auto topic = cluster().create_topic("copy");
    const std::vector<std::string> kafka{"--kafka-brokers", cluster().bootstraps(),
                                         "--kafka-topic", topic};
    auto ctl = [&](const std::filesystem::path& data, std::vector<std::string> args) {
        std::vector<std::string> all{"--data-dir", data.string()};
        all.insert(all.end(), kafka.begin(), kafka.end());
        all.insert(all.end(), args.begin(), args.end());
        return run_binary("scimsyncctl", all, std::chrono::seconds(60));
    };
    auto there = ctl(original, {"log", "copy", "--from", "file", "--to", "kafka", "--json"});
    INFO(there.err);
    REQUIRE(there.code() == 0);
    REQUIRE(json::parse(there.out)["same_chain_head"] == true);
    REQUIRE(json::parse(there.out)["events"] == 21);
    // Copying into a topic that is no longer empty is refused.
    REQUIRE(ctl(original, {"log", "copy", "--from", "file", "--to", "kafka"}).code() == 2);

    const auto copy = dir.path() / "copy";
    auto back = ctl(copy, {"log", "copy", "--from", "kafka", "--to", "file", "--json"});
    INFO(back.err);
    REQUIRE(back.code() == 0);
    REQUIRE(json::parse(back.out)["same_chain_head"] == true);

    auto verify_file = [&](const std::filesystem::path& data) {
        auto v = run_binary("scimsyncctl", {"--data-dir", data.string(), "log", "verify", "--json"});
        INFO(v.err);
        REQUIRE(v.code() == 0);
        return json::parse(v.out);
    };
    auto on_kafka = ctl(copy, {"log", "verify", "--json"});
    INFO(on_kafka.err);
    REQUIRE(on_kafka.code() == 0);
    const auto k = json::parse(on_kafka.out);
    const auto f1 = verify_file(original), f2 = verify_file(copy);
    REQUIRE(k["events"] == 21);
    REQUIRE(k["chain_head"] == f1["chain_head"]);
    REQUIRE(f2["chain_head"] == f1["chain_head"]);
    auto dump = [&](const std::filesystem::path& data) {
        auto out = run_binary("scimsyncctl", {"--data-dir", data.string(), "log", "dump"});
        REQUIRE(out.code() == 0);
        return out.out;
    };
    REQUIRE(dump(copy) == dump(original));
    auto kafka_dump = ctl(copy, {"log", "dump"});
    REQUIRE(kafka_dump.code() == 0);
    REQUIRE(kafka_dump.out == dump(original));
}
