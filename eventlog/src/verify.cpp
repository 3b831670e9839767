#include "scimsync/eventlog/verify.hpp"

#include <algorithm>
#include <unordered_set>

#include "scan.hpp"
#include "scimsync/eventlog/file_log.hpp"

namespace scimsync::eventlog {

namespace {

// Frames between progress callbacks: often enough for a smooth bar, rare enough to be free.
constexpr std::uint64_t progress_every = 4096;

}  // namespace

result<verify_report> verify_log(const std::filesystem::path& dir, const progress_fn& progress) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        return fail(errc::not_found, "no log directory at " + dir.string());
    auto segments = scan::list_segments(dir);
    if (!segments) return std::unexpected(segments.error());
    if (segments->empty()) return fail(errc::not_found, "no log segments in " + dir.string());

    verify_report rep;
    std::uint64_t total = 0;
    for (const auto& s : *segments) total += std::filesystem::file_size(s.path, ec);
    scan::chain_state chain;
    sha256::hasher hasher;
    std::vector<std::string_view> events;
    auto problem = [&](const scan::segment_file& s, std::uint64_t offset, std::string what) {
        rep.problem = verify_problem{chain.next, s.path, offset, std::move(what)};
        rep.last_good = seq_no{chain.next.value - 1};
        rep.chain_head = chain.head;
        return rep;
    };

    for (std::size_t i = 0; i < segments->size(); ++i) {
        const auto& seg = (*segments)[i];
        const bool newest = i + 1 == segments->size();
        if (i == 0) chain.next = seg.base;
        auto f = io::file::open_read(seg.path);
        if (!f) return std::unexpected(f.error());
        auto size = f->size();
        if (!size) return std::unexpected(size.error());
        auto header = scan::read_segment_header(*f, seg.base);
        if (!header) return problem(seg, 0, header.error().message);
        if (i == 0) {
            chain.head = header->chain_head_before;
        } else if (seg.base != chain.next || header->chain_head_before != chain.head) {
            return problem(seg, 0, "segment does not continue the previous segment's chain");
        }
        ++rep.segments;
        scan::segment_reader sr(std::move(*f));
        std::uint64_t pos = format::segment_header_size;
        bool sealed = false;
        while (pos < *size) {
            auto r = sr.read_at(pos, *size);
            if (!r) return std::unexpected(r.error());
            if (r->st == scan::status::end) {
                auto rest = sr.bytes(pos, std::size_t(*size - pos), *size);
                if (!rest) return std::unexpected(rest.error());
                if (!std::all_of(rest->begin(), rest->end(), [](char c) { return c == 0; }))
                    return problem(seg, pos, "zeroed record header followed by data");
                pos = *size;
                break;
            }
            if (r->st == scan::status::bad)
                return problem(seg, pos,
                               r->why + (newest ? " (a torn tail if the daemon "
                                                  "crashed while writing it)"
                                                : ""));
            if (auto why = scan::check_content(*r, chain, hasher, events); !why.empty())
                return problem(seg, pos, why);
            ++rep.frames;
            rep.events += r->h.event_count;
            pos += r->h.total_size();
            if (progress && rep.frames % progress_every == 0) progress(rep.bytes + pos, total);
            if (r->h.type == format::frame_type::seal) {
                sealed = true;
                if (pos != *size) return problem(seg, pos, "data after the SEAL record");
            }
        }
        if (!newest && !sealed)
            return problem(seg, *size, "segment before the newest is not sealed");
        rep.bytes += *size;
    }
    if (progress) progress(total, total);
    rep.last_good = seq_no{chain.next.value - 1};
    rep.chain_head = chain.head;
    return rep;
}

result<log_stats> compute_stats(const std::filesystem::path& dir, const progress_fn& progress) {
    auto log = file_log::open({.dir = dir, .read_only = true});
    if (!log) return std::unexpected(log.error());
    auto stats = compute_stats(**log, progress);
    if (!stats) return stats;
    auto segments = scan::list_segments(dir);
    if (!segments) return std::unexpected(segments.error());
    stats->segments = segments->size();
    std::error_code ec;
    for (const auto& s : *segments) stats->bytes += std::filesystem::file_size(s.path, ec);
    return stats;
}

result<log_stats> compute_stats(const log& l, const progress_fn& progress) {
    log_stats stats;
    const seq_no last = l.last_seq();
    auto r = l.read_from(seq_no{1});
    if (!r) return std::unexpected(r.error());
    std::unordered_set<std::string> streams;
    event e;
    while (true) {
        auto got = (*r)->next(e);
        if (!got) return std::unexpected(got.error());
        if (!*got || e.seq > last) break;
        if (stats.events == 0) {
            stats.first_seq = e.seq;
            stats.first_time = e.time;
        }
        ++stats.events;
        stats.last_seq = e.seq;
        stats.last_time = e.time;
        ++stats.by_type[e.type];
        ++stats.by_source[e.source];
        if (!e.stream.empty()) streams.insert(e.stream);
        if (progress && stats.events % (progress_every * 16) == 0)
            progress(e.seq.value, last.value);
    }
    if (progress) progress(last.value, last.value);
    stats.streams = streams.size();
    return stats;
}

}  // namespace scimsync::eventlog
