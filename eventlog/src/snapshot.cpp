#include <algorithm>

#include "format.hpp"
#include "io.hpp"
#include "scimsync/eventlog/projector.hpp"
#include "sha256.hpp"

// Snapshot file layout (all integers little-endian):
//   "SCIMSNAP" | u32 format (1) | u32 schema_version | u64 at | 32 chain_head | i64 created_us
//   | u16 name_len | name | u64 body_len | body | 32 SHA-256 of every byte before it

namespace scimsync::eventlog {

namespace fs = std::filesystem;

namespace {

constexpr char snap_magic[8] = {'S', 'C', 'I', 'M', 'S', 'N', 'A', 'P'};
constexpr std::uint32_t snap_format = 1;

std::string snapshot_name(seq_no at) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.snap", static_cast<unsigned long long>(at.value));
    return buf;
}

// Parses the fixed part; `body_offset` receives where the body starts.
std::optional<snapshot_info> parse_header(std::string_view b, std::uint64_t& body_len,
                                          std::size_t& body_offset) {
    if (b.size() < 8 + 4 + 4 + 8 + 32 + 8 + 2 || std::memcmp(b.data(), snap_magic, 8) != 0)
        return std::nullopt;
    if (format::get_u32(b.data() + 8) != snap_format) return std::nullopt;
    snapshot_info info;
    info.schema_version = format::get_u32(b.data() + 12);
    info.at = seq_no{format::get_u64(b.data() + 16)};
    std::memcpy(info.chain_head.data(), b.data() + 24, 32);
    info.created =
        utc_time(std::chrono::microseconds(std::int64_t(format::get_u64(b.data() + 56))));
    const std::size_t name_len = format::get_u16(b.data() + 64);
    if (b.size() < 66 + name_len + 8) return std::nullopt;
    info.projector.assign(b.data() + 66, name_len);
    body_len = format::get_u64(b.data() + 66 + name_len);
    body_offset = 66 + name_len + 8;
    return info;
}

}  // namespace

snapshot_store::snapshot_store(fs::path dir, std::size_t keep)
    : dir_(std::move(dir)), keep_(keep) {}

result<snapshot_info> snapshot_store::write(const projector& p, seq_no at, const digest& head,
                                            std::string_view body, utc_time now) const {
    const std::string name = p.name();
    const fs::path pdir = dir_ / name;
    std::error_code ec;
    fs::create_directories(pdir, ec);
    if (ec) return fail(errc::io_error, "cannot create " + pdir.string() + ": " + ec.message());
    std::string out(66, '\0');
    std::memcpy(out.data(), snap_magic, 8);
    format::put_u32(out.data() + 8, snap_format);
    format::put_u32(out.data() + 12, p.schema_version());
    format::put_u64(out.data() + 16, at.value);
    std::memcpy(out.data() + 24, head.data(), 32);
    format::put_u64(out.data() + 56, std::uint64_t(now.time_since_epoch().count()));
    format::put_u16(out.data() + 64, std::uint16_t(name.size()));
    out += name;
    char len[8];
    format::put_u64(len, body.size());
    out.append(len, 8);
    out.append(body);
    const digest sum = sha256::of(out);
    out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
    const fs::path file = pdir / snapshot_name(at);
    if (auto r = io::write_atomically(file, out, true); !r) return std::unexpected(r.error());

    auto all = list(name);
    for (std::size_t i = keep_; i < all.size(); ++i) fs::remove(all[i].file, ec);
    snapshot_info info{name, p.schema_version(), at, head, now, file};
    return info;
}

std::vector<snapshot_info> snapshot_store::list(const std::string& projector) const {
    std::vector<snapshot_info> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_ / projector, ec)) {
        if (entry.path().extension() != ".snap") continue;
        auto f = io::file::open_read(entry.path());
        if (!f) continue;
        std::string head(66 + 256 + 8, '\0');
        auto n = f->pread(head.data(), head.size(), 0);
        if (!n) continue;
        head.resize(*n);
        std::uint64_t body_len = 0;
        std::size_t body_offset = 0;
        auto info = parse_header(head, body_len, body_offset);
        if (!info || info->projector != projector) continue;
        info->file = entry.path();
        out.push_back(std::move(*info));
    }
    std::sort(out.begin(), out.end(),
              [](const snapshot_info& a, const snapshot_info& b) { return a.at > b.at; });
    return out;
}

result<std::string> snapshot_store::read_body(const snapshot_info& info) const {
    auto f = io::file::open_read(info.file);
    if (!f) return std::unexpected(f.error());
    auto size = f->size();
    if (!size) return std::unexpected(size.error());
    std::string all(*size, '\0');
    auto n = f->pread(all.data(), all.size(), 0);
    if (!n) return std::unexpected(n.error());
    std::uint64_t body_len = 0;
    std::size_t body_offset = 0;
    auto bad = [&](const std::string& why) {
        return fail(errc::corrupt, "snapshot " + info.file.string() + ": " + why);
    };
    if (!parse_header(all, body_len, body_offset)) return bad("unreadable header");
    if (body_offset + body_len + 32 != all.size()) return bad("length does not match the file");
    const digest sum = sha256::of(std::string_view(all).substr(0, all.size() - 32));
    if (std::memcmp(sum.data(), all.data() + all.size() - 32, 32) != 0)
        return bad("SHA-256 mismatch");
    return all.substr(body_offset, body_len);
}

}  // namespace scimsync::eventlog
