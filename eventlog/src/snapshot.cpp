#include <algorithm>

#include "format.hpp"
#include "io.hpp"
#include "scimsync/eventlog/projector.hpp"
#include "sha256.hpp"

// Snapshot file layout (all integers little-endian):
//   "SCIMSNAP" | u32 format (2) | u32 schema_version | u64 at | 32 chain_head | i64 created_us
//   | u16 name_len | name | body | u64 body_len | 32 SHA-256 of every byte before it
// The body's length follows the body so that a snapshot is hashed and written as the projector
// produces it, without first holding the whole body. Format 1 (still read) had the length
// before the body: | u16 name_len | name | u64 body_len | body | 32 SHA-256.

namespace scimsync::eventlog {

namespace fs = std::filesystem;

namespace {

constexpr char snap_magic[8] = {'S', 'C', 'I', 'M', 'S', 'N', 'A', 'P'};
constexpr std::uint32_t snap_format = 2;
constexpr std::uint32_t snap_format_length_first = 1;
// Pieces from the projector are gathered to this size before they are hashed and written.
constexpr std::size_t write_chunk = std::size_t(1) << 20;

std::string snapshot_name(seq_no at) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.snap", static_cast<unsigned long long>(at.value));
    return buf;
}

// Parses the fixed part of either format. `body_offset` receives where the body starts and
// `body_len_at` where its length is: right before the body (format 1) or 40 bytes before the
// end of the file (format 2, marked by 0).
std::optional<snapshot_info> parse_header(std::string_view b, std::size_t& body_offset,
                                          std::size_t& body_len_at) {
    if (b.size() < 8 + 4 + 4 + 8 + 32 + 8 + 2 || std::memcmp(b.data(), snap_magic, 8) != 0)
        return std::nullopt;
    const std::uint32_t fmt = format::get_u32(b.data() + 8);
    if (fmt != snap_format && fmt != snap_format_length_first) return std::nullopt;
    snapshot_info info;
    info.schema_version = format::get_u32(b.data() + 12);
    info.at = seq_no{format::get_u64(b.data() + 16)};
    std::memcpy(info.chain_head.data(), b.data() + 24, 32);
    info.created =
        utc_time(std::chrono::microseconds(std::int64_t(format::get_u64(b.data() + 56))));
    const std::size_t name_len = format::get_u16(b.data() + 64);
    if (b.size() < 66 + name_len) return std::nullopt;
    info.projector.assign(b.data() + 66, name_len);
    body_offset = 66 + name_len;
    body_len_at = 0;
    if (fmt == snap_format_length_first) {
        if (b.size() < 66 + name_len + 8) return std::nullopt;
        body_len_at = body_offset;
        body_offset += 8;
    }
    return info;
}

// Hashes and writes a snapshot file front to back, gathering small pieces into chunks; the
// first write error is kept and later writes are skipped.
class chunked_writer {
public:
    explicit chunked_writer(const io::file& f) : f_(f) { pending_.reserve(write_chunk); }
    void put(std::string_view piece) {
        if (pending_.size() + piece.size() < write_chunk) {
            pending_.append(piece);
            return;
        }
        flush();
        if (piece.size() >= write_chunk)
            emit(piece);
        else
            pending_.append(piece);
    }
    void flush() {
        emit(pending_);
        pending_.clear();
    }
    // Writes what is pending; the hash of everything written.
    digest finish() {
        flush();
        return hasher_.finish();
    }
    const result<void>& status() const { return status_; }

private:
    void emit(std::string_view bytes) {
        if (bytes.empty() || !status_) return;
        hasher_.update(bytes);
        status_ = f_.pwrite_all(bytes, offset_);
        offset_ += bytes.size();
    }

    const io::file& f_;
    sha256::hasher hasher_;
    std::string pending_;
    std::uint64_t offset_ = 0;
    result<void> status_;
};

}  // namespace

snapshot_store::snapshot_store(fs::path dir, std::size_t keep)
    : dir_(std::move(dir)), keep_(keep) {}

result<std::optional<snapshot_info>> snapshot_store::write(const projector& p, seq_no at,
                                                           const digest& head, utc_time now) const {
    const std::string name = p.name();
    const fs::path pdir = dir_ / name;
    std::error_code ec;
    fs::create_directories(pdir, ec);
    if (ec) return fail(errc::io_error, "cannot create " + pdir.string() + ": " + ec.message());
    const fs::path file = pdir / snapshot_name(at);
    std::string header(66, '\0');
    std::memcpy(header.data(), snap_magic, 8);
    format::put_u32(header.data() + 8, snap_format);
    format::put_u32(header.data() + 12, p.schema_version());
    format::put_u64(header.data() + 16, at.value);
    std::memcpy(header.data() + 24, head.data(), 32);
    format::put_u64(header.data() + 56, std::uint64_t(now.time_since_epoch().count()));
    format::put_u16(header.data() + 64, std::uint16_t(name.size()));
    header += name;
    auto written = io::write_atomically(
        file,
        [&](const io::file& f) -> result<bool> {
            chunked_writer out(f);
            out.put(header);
            std::uint64_t body_len = 0;
            const bool taken = p.write_snapshot([&](std::string_view piece) {
                body_len += piece.size();
                out.put(piece);
            });
            char len[8];
            format::put_u64(len, body_len);
            out.put(std::string_view(len, 8));
            const digest sum = out.finish();
            if (!out.status()) return std::unexpected(out.status().error());
            if (!taken) return false;
            const std::string_view trailer(reinterpret_cast<const char*>(sum.data()), sum.size());
            if (auto w = f.pwrite_all(trailer, header.size() + body_len + 8); !w)
                return std::unexpected(w.error());
            return true;
        },
        true);
    if (!written) return std::unexpected(written.error());
    if (!*written) return std::optional<snapshot_info>();

    auto all = list(name);
    for (std::size_t i = keep_; i < all.size(); ++i) fs::remove(all[i].file, ec);
    return std::optional<snapshot_info>(
        snapshot_info{name, p.schema_version(), at, head, now, file});
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
        std::size_t body_offset = 0;
        std::size_t body_len_at = 0;
        auto info = parse_header(head, body_offset, body_len_at);
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
    auto bad = [&](const std::string& why) {
        return fail(errc::corrupt, "snapshot " + info.file.string() + ": " + why);
    };
    std::size_t body_offset = 0;
    std::size_t body_len_at = 0;
    if (!parse_header(all, body_offset, body_len_at)) return bad("unreadable header");
    // Format 2 keeps the length after the body, format 1 before it; both end with the hash.
    const std::size_t trailer = body_len_at == 0 ? 40 : 32;
    if (body_len_at == 0 && all.size() >= body_offset + trailer) body_len_at = all.size() - 40;
    if (body_len_at == 0 || all.size() < body_len_at + 8)
        return bad("length does not match the file");
    const std::uint64_t body_len = format::get_u64(all.data() + body_len_at);
    if (body_offset + body_len + trailer != all.size())
        return bad("length does not match the file");
    const digest sum = sha256::of(std::string_view(all).substr(0, all.size() - 32));
    if (std::memcmp(sum.data(), all.data() + all.size() - 32, 32) != 0)
        return bad("SHA-256 mismatch");
    all.resize(body_offset + body_len);
    all.erase(0, body_offset);
    return all;
}

}  // namespace scimsync::eventlog
