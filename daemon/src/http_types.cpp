#include "scimsync/daemon/http_types.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace scimsync::daemon {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return std::ranges::equal(
        a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

}  // namespace

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

}  // namespace scimsync::daemon
