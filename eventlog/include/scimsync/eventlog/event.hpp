#pragma once
// The event envelope. The log treats `data` as opaque JSON text; it knows no event types.

#include <cstdint>
#include <string>

#include "scimsync/eventlog/types.hpp"

namespace scimsync::eventlog {

struct event {
    seq_no seq;                 // assigned by the log on append (ignored on input)
    utc_time time{};            // assigned by the log on append; non-decreasing in seq order
    std::string type;           // event type, e.g. "UserCreated"
    std::uint16_t version = 1;  // schema version of `data` for this type
    std::string source;         // who produced it: scim, admin, ldap, policy, ...
    std::string actor;          // token id, LDAP modifier DN, policy name, ...
    std::string request_id;     // correlation id of the request that caused it ("" if none)
    std::string stream;         // the entity it belongs to, e.g. "User/<id>"
    std::string data;           // JSON object text; canonical (sorted keys, no whitespace)

    bool operator==(const event&) const = default;
};

// Limits of the format (LOG-DESIGN.md 5.2): bigger inputs are refused with errc::too_large.
inline constexpr std::size_t max_event_bytes = 1u << 20;  // one encoded event
inline constexpr std::size_t max_frame_bytes = 4u << 20;  // one atomic append

}  // namespace scimsync::eventlog
