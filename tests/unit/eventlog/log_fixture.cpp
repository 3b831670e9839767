#include "log_fixture.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>

namespace scimsync::testing {

namespace el = scimsync::eventlog;

el::event sample_event(std::uint64_t n, std::size_t bytes) {
    el::event e;
    e.type = n % 3 == 0 ? "UserCreated" : (n % 3 == 1 ? "UserReplaced" : "GroupMembersChanged");
    e.version = 1;
    e.source = "scim";
    e.actor = "token-" + std::to_string(n % 7);
    e.request_id = "req-" + std::to_string(n);
    e.stream = "User/" + std::to_string(n % 50);
    std::string pad(bytes > 80 ? bytes - 80 : 1, char('a' + n % 26));
    e.data = "{\"n\":" + std::to_string(n) + ",\"pad\":\"" + pad + "\"}";
    return e;
}

std::vector<el::event> sample_batch(std::uint64_t first, std::size_t count, std::size_t bytes) {
    std::vector<el::event> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(sample_event(first + i, bytes));
    return out;
}

el::file_log_options log_options(const std::filesystem::path& dir, el::durability mode) {
    el::file_log_options o;
    o.dir = dir;
    o.mode = mode;
    return o;
}

std::unique_ptr<el::file_log> open_log(el::file_log_options options) {
    auto l = el::file_log::open(std::move(options));
    INFO((l ? std::string() : l.error().message));
    REQUIRE(l.has_value());
    return std::move(*l);
}

std::vector<el::event> read_all(const el::log& l, el::seq_no first) {
    auto r = l.read_from(first);
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r.has_value());
    std::vector<el::event> out;
    el::event e;
    while (true) {
        auto got = (*r)->next(e);
        INFO((got ? std::string() : got.error().message));
        REQUIRE(got.has_value());
        if (!*got) break;
        out.push_back(e);
    }
    return out;
}

std::vector<std::filesystem::path> segment_files(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".log") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

void flip_byte(const std::filesystem::path& file, std::uint64_t offset) {
    ::chmod(file.c_str(), 0640);  // sealed segments are read-only
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekg(std::streamoff(offset));
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x5a);
    f.seekp(std::streamoff(offset));
    f.write(&c, 1);
}

void truncate_file(const std::filesystem::path& file, std::uint64_t size) {
    std::filesystem::resize_file(file, size);
}

void append_bytes(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream f(file, std::ios::binary | std::ios::app);
    f << bytes;
}

}  // namespace scimsync::testing
