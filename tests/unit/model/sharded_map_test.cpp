#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <unordered_map>

#include "scimsync/model/probe_map.hpp"
#include "scimsync/model/sharded_map.hpp"

using scimsync::model::probe_map;
using scimsync::model::sharded_map;
using map_t = sharded_map<std::unordered_map<std::string, int>>;
// The directory's shards are probe maps; the sharding must work the same over both.
using probe_t = sharded_map<probe_map<int>>;
using multi_t = sharded_map<std::unordered_multimap<std::string, std::string>>;

namespace {

template <class M>
std::map<std::string, int> contents(const M& m) {
    std::map<std::string, int> out;
    for (const auto& [k, v] : m) out.emplace(k, v);
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("a sharded map agrees with std::unordered_map through its split and back down",
                   "[sharded_map]", map_t, probe_t) {
    TestType m;
    std::unordered_map<std::string, int> ref;
    std::mt19937 rng(7);
    const int keys = 3 * static_cast<int>(map_t::split_at);
    // Grow past the split, then shrink far below it with mixed inserts, overwrites and erases.
    for (int step = 0; step < 40'000; ++step) {
        const std::string k = "key-" + std::to_string(rng() % keys);
        const bool growing = step < 25'000;
        switch (rng() % (growing ? 4 : 2)) {
            case 0: {  // erase by key
                REQUIRE(m.erase(k) == ref.erase(k));
                break;
            }
            case 1: {  // erase by iterator
                auto it = m.find(k);
                REQUIRE((it == m.end()) == !ref.contains(k));
                if (it != m.end()) {
                    m.erase(it);
                    ref.erase(k);
                }
                break;
            }
            case 2:
                m[k] = step;
                ref[k] = step;
                break;
            default: {
                const auto [it, inserted] = m.try_emplace(k, step);
                const auto [rit, rinserted] = ref.try_emplace(k, step);
                REQUIRE(inserted == rinserted);
                REQUIRE(it->second == rit->second);
            }
        }
        REQUIRE(m.size() == ref.size());
    }
    REQUIRE(contents(m) == std::map<std::string, int>(ref.begin(), ref.end()));
    std::size_t walked = 0;
    for (auto it = m.begin(); it != m.end(); ++it) ++walked;
    REQUIRE(walked == ref.size());
    for (const auto& [k, v] : ref) {
        REQUIRE(m.contains(k));
        REQUIRE(m.count(k) == 1);
        REQUIRE(m.find(k)->second == v);
    }
    REQUIRE_FALSE(m.contains("absent"));
}

TEMPLATE_TEST_CASE("erasing every entry while iterating visits each once, split or not",
                   "[sharded_map]", map_t, probe_t) {
    for (const std::size_t n : {std::size_t{10}, 2 * TestType::split_at}) {
        TestType m;
        for (std::size_t i = 0; i < n; ++i) m["k" + std::to_string(i)] = static_cast<int>(i);
        std::size_t erased = 0;
        for (auto it = m.begin(); it != m.end();) {
            it = m.erase(it);
            ++erased;
        }
        REQUIRE(erased == n);
        REQUIRE(m.empty());
        REQUIRE(m.begin() == m.end());
    }
}

TEST_CASE("sharded maps with the same entries are equal whether or not one of them split",
          "[sharded_map]") {
    map_t split, whole;
    const auto n = static_cast<int>(map_t::split_at) + 100;
    for (int i = 0; i < n; ++i) split["k" + std::to_string(i)] = i;
    for (int i = 100; i < n; ++i) split.erase("k" + std::to_string(i));  // split, now small
    for (int i = 0; i < 100; ++i) whole["k" + std::to_string(i)] = i;     // never split
    REQUIRE(split == whole);
    whole["k5"] = -1;
    REQUIRE_FALSE(split == whole);
    whole.erase("k5");
    REQUIRE_FALSE(split == whole);
}

TEST_CASE("a sharded multimap keeps every value of a key together across the split",
          "[sharded_map]") {
    multi_t m;
    const std::size_t n = 100 * 100;  // 100 keys, 100 values each: past the split
    static_assert(n > multi_t::split_at);
    for (std::size_t i = 0; i < n; ++i)
        m.emplace("ext-" + std::to_string(i % 100), "id-" + std::to_string(i));
    REQUIRE(m.size() == n);
    auto [first, last] = m.equal_range(std::string("ext-7"));
    std::size_t found = 0;
    for (auto it = first; it != last; ++it) {
        REQUIRE(it->first == "ext-7");
        ++found;
    }
    REQUIRE(found == 100);
    auto [none, none_end] = m.equal_range(std::string("ext-none"));
    REQUIRE(none == none_end);
}

TEST_CASE("a moved-from sharded map is empty and usable", "[sharded_map]") {
    map_t a;
    for (std::size_t i = 0; i < map_t::split_at + 1; ++i) a["k" + std::to_string(i)] = 1;
    map_t b = std::move(a);
    REQUIRE(b.size() == map_t::split_at + 1);
    REQUIRE(a.empty());  // NOLINT(bugprone-use-after-move): the documented state
    REQUIRE(a.begin() == a.end());
    a["again"] = 2;
    REQUIRE(a.size() == 1);
    REQUIRE(a.find("again")->second == 2);
}
