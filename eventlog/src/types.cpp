#include <future>

#include "scimsync/eventlog/log.hpp"
#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog {

utc_time system_utc_now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
}

std::string to_hex(const digest& d) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (auto b : d) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 15]);
    }
    return out;
}

const char* to_string(errc c) {
    switch (c) {
        case errc::io_error:
            return "io_error";
        case errc::corrupt:
            return "corrupt";
        case errc::too_large:
            return "too_large";
        case errc::invalid_argument:
            return "invalid_argument";
        case errc::failed:
            return "failed";
        case errc::closed:
            return "closed";
        case errc::unknown_event:
            return "unknown_event";
        case errc::future_version:
            return "future_version";
        case errc::not_found:
            return "not_found";
        case errc::locked:
            return "locked";
    }
    return "unknown";
}

result<append_result> log::append(std::vector<event> batch) {
    std::promise<result<append_result>> done;
    auto f = done.get_future();
    async_append(std::move(batch),
                 [&done](result<append_result> r) { done.set_value(std::move(r)); });
    return f.get();
}

}  // namespace scimsync::eventlog
