#include "scimsync/daemon/http_types.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "scimsync/model/ascii.hpp"

namespace scimsync::daemon {

using model::ascii::iequals;

std::optional<std::string_view> find_header(const http_headers& headers, std::string_view name) {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) return std::string_view(value);
    }
    return std::nullopt;
}

std::string_view http_request::path() const {
    const std::string_view t = target;
    return t.substr(0, t.find('?'));
}

std::string_view http_request::query() const {
    const std::string_view t = target;
    const auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

void http_response::set_header(std::string name, std::string value) {
    for (auto& [key, old] : headers) {
        if (iequals(key, name)) {
            old = std::move(value);
            return;
        }
    }
    headers.emplace_back(std::move(name), std::move(value));
}

http_response json_response(int status, std::string body, std::string_view content_type) {
    http_response r;
    r.status = status;
    r.headers.emplace_back("Content-Type", std::string(content_type));
    r.body = std::move(body);
    return r;
}

http_response scim_error(int status, std::string_view detail, std::string_view scim_type) {
    nlohmann::ordered_json j;
    j["schemas"] = {scim_error_schema};
    j["status"] = std::to_string(status);
    if (!scim_type.empty()) j["scimType"] = scim_type;
    j["detail"] = detail;
    // Details can quote request bytes; replace invalid UTF-8 rather than throw.
    return json_response(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                         scim_content_type);
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] == '%' && i + 2 < s.size() &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out.push_back(char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
    std::map<std::string, std::string> out;
    while (!q.empty()) {
        auto amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        auto eq = pair.find('=');
        std::string key = percent_decode(pair.substr(0, eq));
        for (char& c : key) c = model::ascii::lower(c);
        out[key] =
            eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    return out;
}

}  // namespace scimsync::daemon
