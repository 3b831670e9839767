#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "scimsync/model/probe_map.hpp"

using scimsync::model::probe_map;

namespace {

template <class M>
std::map<std::string, int> contents(const M& m) {
    std::map<std::string, int> out;
    for (const auto& [k, v] : m) REQUIRE(out.emplace(k, v).second);  // each key once
    return out;
}

}  // namespace

// Churn against std::unordered_map, through growth and many erased markers, is the sharded
// map's test run over probe maps (sharded_map_test.cpp): before the split that is one probe
// map, after it 64.

TEST_CASE("a probe map finds by string view and keeps entries in place while it grows",
          "[probe_map]") {
    probe_map<int> m;
    auto [first, inserted] = m.try_emplace("first", 1);
    REQUIRE(inserted);
    const std::string* key = &first->first;
    int* value = &first->second;
    for (int i = 0; i < 50'000; ++i) m.try_emplace("key-" + std::to_string(i), i);
    // Grown many times over: the entry has not moved.
    REQUIRE(&m.find(std::string_view("first"))->second == value);
    REQUIRE(&m.find("first")->first == key);
    REQUIRE(*value == 1);
    REQUIRE(m.find(std::string_view("absent")) == m.end());
    const auto [lo, hi] = m.equal_range("key-7");
    REQUIRE(lo != m.end());
    REQUIRE(lo->second == 7);
    REQUIRE(std::next(lo) == hi);
    const auto [alo, ahi] = m.equal_range("key-x");
    REQUIRE(alo == m.end());
    REQUIRE(ahi == m.end());
}

TEST_CASE("erasing from a probe map while iterating visits every other entry once",
          "[probe_map]") {
    probe_map<int> m;
    for (int i = 0; i < 10'000; ++i) m.try_emplace(std::to_string(i), i);
    std::map<std::string, int> kept;
    for (auto it = m.begin(); it != m.end();) {
        if (it->second % 3 == 0) {
            it = m.erase(it);
        } else {
            REQUIRE(kept.emplace(it->first, it->second).second);
            ++it;
        }
    }
    REQUIRE(m.size() == kept.size());
    REQUIRE(kept.size() == 10'000 - 3'334);
    REQUIRE(contents(m) == kept);
    // The erased keys are gone and can come back.
    REQUIRE_FALSE(m.contains("3"));
    REQUIRE(m.try_emplace("3", 42).second);
    REQUIRE(m.find("3")->second == 42);
}

TEST_CASE("a probe map copies deeply, moves, swaps and clears", "[probe_map]") {
    probe_map<std::string> a;
    for (int i = 0; i < 1'000; ++i) a.try_emplace("u" + std::to_string(i), "v" + std::to_string(i));
    for (int i = 0; i < 1'000; i += 2) a.erase("u" + std::to_string(i));  // markers copy too
    probe_map<std::string> b(a);
    REQUIRE(b.size() == 500);
    REQUIRE(&b.find("u1")->second != &a.find("u1")->second);
    b["u1"] = "changed";
    REQUIRE(a.find("u1")->second == "v1");
    REQUIRE_FALSE(b.contains("u0"));
    REQUIRE(b.try_emplace("u0", "back").second);

    probe_map<std::string> c(std::move(b));
    REQUIRE(c.size() == 501);
    REQUIRE(b.empty());  // NOLINT(bugprone-use-after-move): a moved-from map is empty
    REQUIRE(b.find("u1") == b.end());
    b = c;
    REQUIRE(b.size() == 501);
    c = std::move(a);
    REQUIRE(c.size() == 500);
    REQUIRE(c.find("u1")->second == "v1");
    c.swap(b);
    REQUIRE(c.find("u1")->second == "changed");
    c.clear();
    REQUIRE(c.empty());
    REQUIRE(c.begin() == c.end());
    REQUIRE(c.try_emplace("again", "yes").second);
}

TEST_CASE("probe map nodes move between maps, and reserve leaves room without rehashing",
          "[probe_map]") {
    probe_map<int> from, to;
    for (int i = 0; i < 100; ++i) from.try_emplace(std::to_string(i), i);
    const int* where = &from.find("42")->second;
    auto node = from.extract(from.find("42"));
    REQUIRE(node.key() == "42");
    REQUIRE(from.size() == 99);
    REQUIRE_FALSE(from.contains("42"));
    REQUIRE(to.insert(std::move(node)));
    REQUIRE(&to.find("42")->second == where);  // the entry itself moved, not a copy

    to.try_emplace("7", -1);
    std::size_t taken = 0;
    from.drain([&](probe_map<int>::node_type&& n) {
        ++taken;
        if (!to.insert(std::move(n))) REQUIRE(n.key() == "7");  // present: the node keeps it
    });
    REQUIRE(taken == 99);
    REQUIRE(from.empty());
    REQUIRE(to.size() == 100);
    REQUIRE(to.find("7")->second == -1);

    probe_map<int> r;
    r.reserve(10'000);
    r.try_emplace("anchor", 0);
    const auto anchor = r.find("anchor");
    for (int i = 1; i < 10'000; ++i) r.try_emplace(std::to_string(i), i);
    // No growth happened: an iterator from before is still good.
    REQUIRE(anchor->first == "anchor");
    REQUIRE(anchor == r.find("anchor"));
}
