#pragma once
// The envelope as JSON: the line format of `scimsyncctl log dump` and of the golden event files.
//   {"seq":1,"time":"2026-11-22T10:00:00.123456Z","type":"UserCreated","v":1,"source":"scim",
//    "actor":"token:okta","request_id":"…","stream":"User/…","data":{…}}

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "scimsync/eventlog/event.hpp"

namespace scimsync::eventlog {

// RFC 3339 UTC with microseconds: 2026-11-22T10:00:00.123456Z
std::string format_time(utc_time t);
// Accepts RFC 3339 with "Z" or an offset, with or without fractional seconds, or a date alone
// (midnight UTC).
result<utc_time> parse_time(std::string_view text);

// Keys in envelope order (seq first) for people reading dumps; `data` stays canonical (sorted).
// Data that is not valid JSON (only possible in a damaged or foreign log) is kept as a string.
nlohmann::ordered_json to_json(const event& e);
// `seq` and `time` are optional on input (they are assigned by the log on append).
result<event> event_from_json(const nlohmann::json& j);
result<event> event_from_json(const nlohmann::ordered_json& j);

}  // namespace scimsync::eventlog
