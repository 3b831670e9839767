#include <catch2/catch.hpp>
#include <random>

#include "crc32c.hpp"
#include "format.hpp"

namespace el = scimsync::eventlog;
namespace fmt = scimsync::eventlog::format;

TEST_CASE("CRC32C matches the published check value", "[eventlog][format]") {
    const std::string check = "123456789";
    REQUIRE(el::crc::value(check.data(), check.size()) == 0xE3069283u);
    REQUIRE(el::crc::portable_extend(0, check.data(), check.size()) == 0xE3069283u);
}

TEST_CASE("hardware CRC32C agrees with the portable one at every length and split",
          "[eventlog][format]") {
    std::mt19937 rng(7);
    std::string data(1000, '\0');
    for (auto& c : data) c = char(rng());
    for (std::size_t n = 0; n < data.size(); n += 13) {
        const auto whole = el::crc::value(data.data(), n);
        REQUIRE(whole == el::crc::portable_extend(0, data.data(), n));
        const std::size_t split = n / 3;
        REQUIRE(el::crc::extend(el::crc::value(data.data(), split), data.data() + split,
                                n - split) == whole);
    }
}

TEST_CASE("masking a CRC is reversible and changes the value", "[eventlog][format]") {
    for (std::uint32_t v : {0u, 1u, 0xE3069283u, 0xffffffffu}) {
        REQUIRE(el::crc::unmask(el::crc::mask(v)) == v);
        REQUIRE(el::crc::mask(v) != v);
    }
}

TEST_CASE("varints round-trip and over-long encodings are refused", "[eventlog][format]") {
    for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 32, ~0ull}) {
        std::string s;
        fmt::append_varint(s, v);
        std::size_t pos = 0;
        auto back = fmt::read_varint(s, pos);
        REQUIRE(back.has_value());
        REQUIRE(*back == v);
        REQUIRE(pos == s.size());
    }
    std::string endless(11, char(0x80));
    std::size_t pos = 0;
    REQUIRE_FALSE(fmt::read_varint(endless, pos).has_value());
}

TEST_CASE("an encoded event decodes to the same envelope", "[eventlog][format]") {
    el::event e;
    e.time = el::utc_time(std::chrono::microseconds(1'700'000'000'123'456));
    e.type = "UserCreated";
    e.version = 3;
    e.source = "scim";
    e.actor = "token:okta";
    e.request_id = "r-1";
    e.stream = "User/2819c223";
    e.data = R"({"userName":"bjensen","émoji":"✓"})";
    std::string bytes;
    fmt::encode_event(bytes, e);
    REQUIRE(bytes.size() <= fmt::encoded_size_bound(e));
    el::event back;
    REQUIRE(fmt::decode_event(bytes, back).empty());
    REQUIRE(back == e);
}

TEST_CASE("a truncated or padded event record is rejected, not misread", "[eventlog][format]") {
    el::event e;
    e.type = "T";
    e.data = "{}";
    std::string bytes;
    fmt::encode_event(bytes, e);
    el::event back;
    for (std::size_t n = 0; n < bytes.size(); ++n)
        REQUIRE_FALSE(fmt::decode_event(std::string_view(bytes).substr(0, n), back).empty());
    REQUIRE_FALSE(fmt::decode_event(bytes + "x", back).empty());
}

TEST_CASE("a segment header round-trips and any flipped byte is caught", "[eventlog][format]") {
    fmt::segment_header h;
    h.base = el::seq_no{42};
    h.created = el::utc_time(std::chrono::microseconds(123));
    h.chain_head_before.fill(7);
    const std::string bytes = fmt::encode_segment_header(h);
    REQUIRE(bytes.size() == fmt::segment_header_size);
    std::string why;
    auto back = fmt::decode_segment_header(bytes, why);
    REQUIRE(back.has_value());
    REQUIRE(back->base == h.base);
    REQUIRE(back->chain_head_before == h.chain_head_before);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string bad = bytes;
        bad[i] = char(bad[i] ^ 1);
        REQUIRE_FALSE(fmt::decode_segment_header(bad, why).has_value());
    }
}

TEST_CASE("segment file names sort by first sequence number", "[eventlog][format]") {
    REQUIRE(fmt::segment_file_name(el::seq_no{1}) == "00000000000000000001.log");
    REQUIRE(fmt::parse_segment_file_name("00000000000000000042.log")->value == 42);
    REQUIRE_FALSE(fmt::parse_segment_file_name("0000000000000000042.log").has_value());
    REQUIRE_FALSE(fmt::parse_segment_file_name("00000000000000000042.idx").has_value());
}
