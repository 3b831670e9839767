#pragma once
// The SCIM filter engine (RFC 7644 §3.4.2.2): parse once, evaluate against stored resources.
// One engine serves SCIM list queries, PATCH value-path filters, policy populations and the
// LDAP bridge's reconcile (DESIGN.md). Pure.
//
// Semantics:
// - Operators eq ne co sw ew pr gt ge lt le, and/or/not with the RFC precedence (not > and > or),
//   parentheses, value paths `emails[type eq "work" and value co "@"]`, sub-attributes
//   `name.familyName`, extension URN prefixes
//   `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "X"`.
// - Attribute names and operators are case-insensitive. String comparison is case-exact only
//   when the schema says caseExact (e.g. id, externalId); otherwise case-insensitive.
// - A multi-valued attribute matches when any of its values matches; `emails co "x"` on a
//   complex multi-valued attribute compares its `value` sub-attribute.
// - Comparison values are JSON literals: "strings", numbers, true/false, null.
// - dateTime attributes compare as instants; gt/ge/lt/le on booleans are errors.

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "scimsync/model/scim/error.hpp"
#include "scimsync/model/scim/schema.hpp"

namespace scimsync::model::scim {

struct filter_node;  // the parsed expression (defined in the implementation)

class filter {
public:
    // Parses `text` against the attributes of `type`. Errors are 400 invalidFilter with a
    // detail naming the position or the unknown attribute.
    static scim_result<filter> parse(const resource_type& type, std::string_view text);

    // Parses the filter inside a value path, e.g. `type eq "work"` for `emails[...]`: attribute
    // names are sub-attributes of `parent` (a complex, usually multi-valued attribute).
    static scim_result<filter> parse_value_filter(const resource_type& type, const attr_ref& parent,
                                                  std::string_view text);

    // For filters from parse(): does the whole resource (as stored: core attributes at the top
    // level, extension attributes under their schema URN) match?
    bool matches(const nlohmann::json& resource) const;
    // For filters from parse_value_filter(): does one element of the multi-valued attribute
    // (or the complex value itself) match?
    bool matches_element(const nlohmann::json& element) const;

    // When the filter is exactly `<attr> eq "<string>"` for a top-level attribute, returns that
    // attribute and value: the daemon answers these from an index (userName, externalId,
    // displayName, id) instead of scanning. For a value filter, `attr` is the parent's
    // sub-attribute (`value` for `members[value eq "id"]`).
    struct equality {
        const attribute* attr;
        std::string value;
    };
    std::optional<equality> as_simple_equality() const;

    filter(filter&&) noexcept;
    filter& operator=(filter&&) noexcept;
    ~filter();

private:
    explicit filter(std::unique_ptr<filter_node> root);
    std::unique_ptr<filter_node> root_;
};

// The value of `ref` in `resource` used for sortBy (RFC 7644 §3.4.2.3): for a multi-valued
// attribute, the primary value or else the first; nullptr when absent.
const nlohmann::json* sort_value(const attr_ref& ref, const nlohmann::json& resource);
// Orders two sort values per the attribute's type and case-exactness; absent values sort last
// in ascending order. Returns <0, 0, >0.
int compare_sort_values(const attr_ref& ref, const nlohmann::json* a, const nlohmann::json* b);

}  // namespace scimsync::model::scim
