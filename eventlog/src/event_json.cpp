#include "scimsync/eventlog/event_json.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace scimsync::eventlog {

std::string format_time(utc_time t) {
    // Years 0-9999 by calendar arithmetic and digits written in place: snapshots format two
    // times per resource, and gmtime_r with snprintf cost more than the rest of the line.
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    const int year = int(ymd.year());
    if (year >= 0 && year <= 9999) {
        std::string out = "0000-00-00T00:00:00.000000Z";
        auto put = [&](std::size_t at, std::size_t width, std::uint64_t v) {
            for (std::size_t i = width; i-- > 0; v /= 10) out[at + i] = char('0' + v % 10);
        };
        const auto us = std::uint64_t((t - day).count());  // within the day
        put(0, 4, std::uint64_t(year));
        put(5, 2, unsigned(ymd.month()));
        put(8, 2, unsigned(ymd.day()));
        put(11, 2, us / 3'600'000'000);
        put(14, 2, us / 60'000'000 % 60);
        put(17, 2, us / 1'000'000 % 60);
        put(20, 6, us % 1'000'000);
        return out;
    }
    const auto us = t.time_since_epoch().count();
    std::time_t secs = std::time_t(us / 1'000'000);
    long frac = long(us % 1'000'000);
    if (frac < 0) {
        frac += 1'000'000;
        --secs;
    }
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[96];  // generous: the compiler cannot bound tm_year
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

result<utc_time> parse_time(std::string_view text) {
    auto bad = [&] {
        return fail(errc::invalid_argument,
                    "cannot read \"" + std::string(text) +
                        "\" as a time (expected e.g. 2026-03-03 or 2026-03-03T09:30:00Z)");
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    int used = 0;
    const std::string str(text);
    if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
        return bad();
    std::size_t pos = 10;
    long frac_us = 0;
    int offset_min = 0;
    if (pos < str.size()) {
        if (str[pos] != 'T' && str[pos] != 't' && str[pos] != ' ') return bad();
        if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &mi, &s, &used) != 3 ||
            used != 8)
            return bad();
        pos += 9;
        if (pos < str.size() && str[pos] == '.') {
            long scale = 100'000;
            ++pos;
            if (pos >= str.size() || !std::isdigit(static_cast<unsigned char>(str[pos])))
                return bad();
            while (pos < str.size() && std::isdigit(static_cast<unsigned char>(str[pos]))) {
                frac_us += (str[pos] - '0') * scale;
                scale /= 10;
                ++pos;
            }
        }
        if (pos == str.size()) return bad();  // a time of day needs a zone
        if (str[pos] == 'Z' || str[pos] == 'z') {
            ++pos;
        } else if (str[pos] == '+' || str[pos] == '-') {
            int oh = 0, om = 0;
            if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5)
                return bad();
            offset_min = (oh * 60 + om) * (str[pos] == '-' ? -1 : 1);
            pos += 6;
        }
        if (pos != str.size()) return bad();
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    const std::time_t secs = ::timegm(&tm) - std::time_t(offset_min) * 60;
    return utc_time(std::chrono::microseconds(std::int64_t(secs) * 1'000'000 + frac_us));
}

nlohmann::ordered_json to_json(const event& e) {
    nlohmann::ordered_json j;
    j["seq"] = e.seq.value;
    j["time"] = format_time(e.time);
    j["type"] = e.type;
    j["v"] = e.version;
    j["source"] = e.source;
    j["actor"] = e.actor;
    j["request_id"] = e.request_id;
    j["stream"] = e.stream;
    auto data = nlohmann::ordered_json::parse(e.data, nullptr, false);
    j["data"] = data.is_discarded() ? nlohmann::ordered_json(e.data) : std::move(data);
    return j;
}

result<event> event_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return fail(errc::invalid_argument, "an event must be a JSON object");
    event e;
    auto text = [&](const char* key, std::string& out, bool required) -> bool {
        auto it = j.find(key);
        if (it == j.end()) return !required;
        if (!it->is_string()) return false;
        out = it->get<std::string>();
        return true;
    };
    if (!text("type", e.type, true) || e.type.empty())
        return fail(errc::invalid_argument, "event field \"type\" must be a non-empty string");
    for (const char* key : {"source", "actor", "request_id", "stream"}) {
        std::string* slot = key == std::string_view("source")       ? &e.source
                            : key == std::string_view("actor")      ? &e.actor
                            : key == std::string_view("request_id") ? &e.request_id
                                                                    : &e.stream;
        if (!text(key, *slot, false))
            return fail(errc::invalid_argument,
                        std::string("event field \"") + key + "\" must be a string");
    }
    if (auto it = j.find("v"); it != j.end()) {
        if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
            it->get<std::uint64_t>() > 0xffff)
            return fail(errc::invalid_argument, "event field \"v\" must be an integer 1..65535");
        e.version = std::uint16_t(it->get<std::uint64_t>());
    }
    if (auto it = j.find("seq"); it != j.end() && it->is_number_unsigned())
        e.seq = seq_no{it->get<std::uint64_t>()};
    if (auto it = j.find("time"); it != j.end()) {
        if (!it->is_string())
            return fail(errc::invalid_argument, "event field \"time\" must be a string");
        auto t = parse_time(it->get<std::string>());
        if (!t) return std::unexpected(t.error());
        e.time = *t;
    }
    auto data = j.find("data");
    if (data == j.end() || !data->is_object())
        return fail(errc::invalid_argument, "event field \"data\" must be a JSON object");
    e.data = data->dump();  // nlohmann objects are ordered by key: this is the canonical form
    return e;
}

result<event> event_from_json(const nlohmann::ordered_json& j) {
    return event_from_json(nlohmann::json(j));
}

}  // namespace scimsync::eventlog
