#include "scimsync/model/scim/filter.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace scimsync::model::scim {

namespace {

using json = nlohmann::json;

enum class op { eq, ne, co, sw, ew, gt, ge, lt, le };

enum class node_kind { all_of, any_of, negation, compare, present, value_path };

// Parentheses and value paths nest the grammar; the bound keeps a hostile filter from
// exhausting the stack of the recursive parser and evaluator.
constexpr int max_depth = 64;

// An RFC 3339 instant: seconds since the epoch plus nanoseconds, so that "…00Z",
// "…00.000Z" and "…01:00+01:00" compare as the same moment.
struct instant {
    std::int64_t seconds = 0;
    std::int32_t nanos = 0;
    auto operator<=>(const instant&) const = default;
};

}  // namespace

struct filter_node {
    node_kind kind = node_kind::compare;
    // all_of/any_of: two or more operands; negation and value_path: exactly one (for a value
    // path, the filter applied to each element).
    std::vector<std::unique_ptr<filter_node>> children;

    // compare, present, value_path: where the values live. Filters from parse() use `ref`
    // (resolved against the resource); value filters use `relative`, a sub-attribute of the
    // element being tested.
    attr_ref ref;
    const attribute* relative = nullptr;
    // The sub-attribute to descend into ("" for none): the path's own sub-attribute, or
    // "value" when a complex attribute is compared as a whole (`emails co "@x"`).
    std::string_view sub_name;
    // The attribute whose type and caseExact govern the comparison.
    const attribute* operand = nullptr;
    bool via_value = false;

    op oper = op::eq;
    json literal;      // as written (booleans sent as "true"/"false" strings become booleans)
    std::string text;  // a string literal, case-folded unless the operand is caseExact
    instant when;      // a dateTime literal for eq/ne/gt/ge/lt/le
};

namespace {

// --- Case folding ---------------------------------------------------------------------------

// Simple case folding for the scripts names are usually written in (ASCII, Latin-1, Latin
// Extended-A, Greek, Cyrillic): a caseExact=false comparison of "Müller" and "MÜLLER" must
// match. Every folded code point keeps its UTF-8 length.
char32_t fold_code_point(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 0x20;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
    if (c == 0x130 || c == 0x131) return c;  // dotted/dotless i have no simple folding
    if (c >= 0x100 && c <= 0x137) return c | 1U;
    if (c >= 0x139 && c <= 0x148) return (c & 1U) != 0 ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return c | 1U;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return (c & 1U) != 0 ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;
    if (c == 0x3C2) return 0x3C3;  // final sigma
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    return c;
}

void fold_into(std::string& out, std::string_view s) {
    out.clear();
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            out += static_cast<char>(fold_code_point(b));
            ++i;
        } else if ((b & 0xE0U) == 0xC0U && i + 1 < s.size() &&
                   (static_cast<unsigned char>(s[i + 1]) & 0xC0U) == 0x80U) {
            // All folded ranges lie below U+0800, so only two-byte sequences change.
            char32_t c = ((b & 0x1FU) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3FU);
            c = fold_code_point(c);
            out += static_cast<char>(0xC0U | (c >> 6));
            out += static_cast<char>(0x80U | (c & 0x3FU));
            i += 2;
        } else {
            out += s[i];
            ++i;
        }
    }
}

std::string fold(std::string_view s) {
    std::string out;
    fold_into(out, s);
    return out;
}

// --- dateTime -------------------------------------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap_year(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// xsd:dateTime as SCIM uses it (RFC 7643 §2.3.5), i.e. RFC 3339 with 'T' or 't' or ' ' as the
// separator and an optional zone; a value without a zone is taken as UTC.
std::optional<instant> parse_date_time(std::string_view s) {
    std::size_t i = 0;
    auto digits = [&](std::size_t n, int& out) {
        if (i + n > s.size()) return false;
        out = 0;
        for (std::size_t k = 0; k < n; ++k, ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    auto expect = [&](char c) { return i < s.size() && s[i++] == c; };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(4, year) || !expect('-') || !digits(2, month) || !expect('-') || !digits(2, day))
        return std::nullopt;
    if (i >= s.size() || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return std::nullopt;
    ++i;
    if (!digits(2, hour) || !expect(':') || !digits(2, minute) || !expect(':') ||
        !digits(2, second))
        return std::nullopt;
    static constexpr int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 ||
        day > month_days[month - 1] + (month == 2 && leap_year(year) ? 1 : 0) || hour > 23 ||
        minute > 59 || second > 60)
        return std::nullopt;
    std::int32_t nanos = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const std::size_t first = i;
        std::int32_t scale = 100'000'000;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            nanos += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == first) return std::nullopt;
    }
    std::int64_t offset = 0;
    if (i < s.size()) {
        if (s[i] == 'Z' || s[i] == 'z') {
            ++i;
        } else if (s[i] == '+' || s[i] == '-') {
            const int sign = s[i] == '+' ? 1 : -1;
            ++i;
            int oh = 0, om = 0;
            if (!digits(2, oh) || !expect(':') || !digits(2, om) || oh > 23 || om > 59)
                return std::nullopt;
            offset = sign * (oh * 3600 + om * 60);
        } else {
            return std::nullopt;
        }
    }
    if (i != s.size()) return std::nullopt;
    const std::int64_t days =
        days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return instant{days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos};
}

// --- Evaluation -----------------------------------------------------------------------------

// Stored resources use canonical names; the case-insensitive fallback serves resources that
// came from elsewhere (RFC 7643 §2.1: attribute names are case-insensitive).
const json* member(const json& object, std::string_view name) {
    if (!object.is_object()) return nullptr;
    if (const auto it = object.find(name); it != object.end()) return &*it;
    for (auto it = object.begin(); it != object.end(); ++it)
        if (iequals(it.key(), name)) return &*it;
    return nullptr;
}

const json* top_value(const filter_node& n, const json& scope) {
    if (n.relative != nullptr) return member(scope, n.relative->name);
    const json* container = &scope;
    if (n.ref.in_extension()) {
        container = member(scope, n.ref.in->id);
        if (container == nullptr) return nullptr;
    }
    return member(*container, n.ref.attr->name);
}

// Calls `f` on each non-null value the node designates in `scope` (each element of a
// multi-valued attribute, each element's sub-attribute) until `f` returns true. `seen` tells
// whether there was any value at all.
template <class F>
bool any_value(const filter_node& n, const json& scope, bool& seen, F&& f) {
    const json* top = top_value(n, scope);
    if (top == nullptr) return false;
    auto visit = [&](const json& v) {
        if (v.is_array()) {
            for (const auto& e : v) {
                if (e.is_null()) continue;
                seen = true;
                if (f(e)) return true;
            }
            return false;
        }
        if (v.is_null()) return false;
        seen = true;
        return f(v);
    };
    if (n.sub_name.empty()) return visit(*top);
    if (top->is_array()) {
        for (const auto& e : *top)
            if (const json* m = member(e, n.sub_name); m != nullptr && visit(*m)) return true;
        return false;
    }
    if (const json* m = member(*top, n.sub_name)) return visit(*m);
    return false;
}

bool present(const json& v) {
    if (v.is_null()) return false;
    if (v.is_string()) return !v.get_ref<const std::string&>().empty();
    if (v.is_array() || v.is_object()) return !v.empty();
    return true;
}

bool by_order(op o, int c) {
    switch (o) {
        case op::eq:
            return c == 0;
        case op::ne:
            return c != 0;
        case op::gt:
            return c > 0;
        case op::ge:
            return c >= 0;
        case op::lt:
            return c < 0;
        case op::le:
            return c <= 0;
        case op::co:
        case op::sw:
        case op::ew:
            return false;
    }
    return false;
}

bool by_text(op o, std::string_view value, std::string_view literal) {
    switch (o) {
        case op::co:
            return value.find(literal) != std::string_view::npos;
        case op::sw:
            return value.starts_with(literal);
        case op::ew:
            return value.ends_with(literal);
        default: {
            const int c = value.compare(literal);
            return by_order(o, c < 0 ? -1 : c > 0 ? 1 : 0);
        }
    }
}

bool text_matches(const filter_node& n, const std::string& value) {
    if (n.operand->case_exact) return by_text(n.oper, value, n.text);
    // Reused so that scanning many resources does not allocate per value.
    thread_local std::string folded;
    fold_into(folded, value);
    return by_text(n.oper, folded, n.text);
}

std::optional<bool> as_boolean(const json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (iequals(s, "true")) return true;
        if (iequals(s, "false")) return false;
    }
    return std::nullopt;
}

// One value against the node's operator and literal (not null). A value of the wrong type is
// incomparable: it equals nothing, so only `ne` holds.
bool value_matches(const filter_node& n, const json& v) {
    const bool incomparable = n.oper == op::ne;
    switch (n.operand->type) {
        case attr_type::boolean: {
            const auto b = as_boolean(v);
            if (!b) return incomparable;
            return by_order(n.oper, *b == n.literal.get<bool>() ? 0 : 1);
        }
        case attr_type::integer:
        case attr_type::decimal:
            if (!v.is_number()) return incomparable;
            return by_order(n.oper, v < n.literal ? -1 : n.literal < v ? 1 : 0);
        case attr_type::date_time: {
            if (!v.is_string()) return incomparable;
            if (n.oper == op::co || n.oper == op::sw || n.oper == op::ew)
                return text_matches(n, v.get_ref<const std::string&>());
            const auto t = parse_date_time(v.get_ref<const std::string&>());
            if (!t) return incomparable;
            return by_order(n.oper, *t < n.when ? -1 : n.when < *t ? 1 : 0);
        }
        case attr_type::string:
        case attr_type::reference:
        case attr_type::binary:
        case attr_type::complex:
            if (!v.is_string()) return incomparable;
            return text_matches(n, v.get_ref<const std::string&>());
    }
    return incomparable;
}

bool eval(const filter_node& n, const json& scope) {
    switch (n.kind) {
        case node_kind::all_of:
            for (const auto& c : n.children)
                if (!eval(*c, scope)) return false;
            return true;
        case node_kind::any_of:
            for (const auto& c : n.children)
                if (eval(*c, scope)) return true;
            return false;
        case node_kind::negation:
            return !eval(*n.children.front(), scope);
        case node_kind::value_path: {
            const json* top = top_value(n, scope);
            if (top == nullptr) return false;
            if (top->is_array()) {
                for (const auto& e : *top)
                    if (e.is_object() && eval(*n.children.front(), e)) return true;
                return false;
            }
            return top->is_object() && eval(*n.children.front(), *top);
        }
        case node_kind::present: {
            bool seen = false;
            return any_value(n, scope, seen, [](const json& v) { return present(v); });
        }
        case node_kind::compare: {
            bool seen = false;
            if (n.literal.is_null()) {
                // `eq null` asks for "no value", `ne null` for "has a value".
                const bool has =
                    any_value(n, scope, seen, [](const json& v) { return present(v); });
                return n.oper == op::eq ? !has : has;
            }
            const bool hit =
                any_value(n, scope, seen, [&n](const json& v) { return value_matches(n, v); });
            // RFC 7644 §3.4.2.2: `ne` is "not equal", and an absent attribute is not equal to
            // any value, so `ne` matches resources without the attribute (as `not (a eq v)`
            // would). Other operators need a value to match.
            return hit || (n.oper == op::ne && !seen);
        }
    }
    return false;
}

// --- Parsing --------------------------------------------------------------------------------

using node_ptr = std::unique_ptr<filter_node>;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_word_char(char c) {
    return is_alpha(c) || is_digit(c);
}
bool is_name_char(char c) {
    return is_word_char(c) || c == '-' || c == '_';
}
// Ends an attribute path token; anything else in one is checked against the ATTRNAME grammar.
bool ends_path(char c) {
    return is_space(c) || c == '[' || c == ']' || c == '(' || c == ')' || c == '"';
}

struct op_name {
    std::string_view name;
    op value;
};
constexpr op_name op_names[] = {{"eq", op::eq}, {"ne", op::ne}, {"co", op::co},
                                {"sw", op::sw}, {"ew", op::ew}, {"gt", op::gt},
                                {"ge", op::ge}, {"lt", op::lt}, {"le", op::le}};

std::string_view name_of(op o) {
    for (const auto& n : op_names)
        if (n.value == o) return n.name;
    return "eq";
}

// The length of the valid UTF-8 sequence starting at `i`, or 0 if there is none there.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b = at(i);
    if (b < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if ((at(i + k) & 0xC0U) != 0x80U) return 0;
    return n;
}

// Client text quoted in an error detail: the detail ends up in a JSON response, so it must be
// valid UTF-8 (invalid bytes become U+FFFD) and short (at most `max_chars` characters).
std::string printable(std::string_view s, std::size_t max_chars = 40) {
    std::string out;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size(); ++chars) {
        if (chars == max_chars) return out + "...";
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

// The character at `i` (a whole UTF-8 sequence when there is one).
std::string printable_char(std::string_view s, std::size_t i) {
    return printable(s.substr(i, std::max<std::size_t>(utf8_sequence(s, i), 1)), 1);
}

bool is_ordering(op o) {
    return o == op::gt || o == op::ge || o == op::lt || o == op::le;
}
bool is_substring(op o) {
    return o == op::co || o == op::sw || o == op::ew;
}

class parser {
public:
    parser(const resource_type& type, std::string_view text) : type_(type), text_(text) {}

    // `parent` set: a value filter whose names are sub-attributes of `parent`.
    scim_result<node_ptr> run(const attribute* parent, std::string parent_path) {
        parent_ = parent;
        parent_path_ = std::move(parent_path);
        auto root = parse_or(0);
        if (!root) return root;
        skip_space();
        if (pos_ != text_.size()) return fail_expected("'and', 'or' or the end of the filter");
        return root;
    }

private:
    // `at` is a byte offset; clients count characters from 1.
    std::unexpected<scim_error> fail_at(std::size_t at, const std::string& what) const {
        const auto chars = std::count_if(text_.begin(), text_.begin() + std::min(at, text_.size()),
                                         [](char c) { return (c & 0xC0) != 0x80; });
        return scim_fail(400, "invalidFilter",
                         "invalid filter at position " + std::to_string(chars + 1) + ": " + what);
    }

    std::unexpected<scim_error> fail_expected(const std::string& what) const {
        std::string found = "the end of the filter";
        if (pos_ < text_.size()) found = "'" + printable(text_.substr(pos_), 20) + "'";
        return fail_at(pos_, "expected " + what + ", found " + found);
    }

    void skip_space() {
        while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
    }

    std::string_view peek_word() const {
        std::size_t end = pos_;
        while (end < text_.size() && is_word_char(text_[end])) ++end;
        return text_.substr(pos_, end - pos_);
    }

    bool take_keyword(std::string_view keyword) {
        if (!iequals(peek_word(), keyword)) return false;
        pos_ += keyword.size();
        return true;
    }

    static node_ptr combine(node_kind kind, std::vector<node_ptr> parts) {
        if (parts.size() == 1) return std::move(parts.front());
        auto n = std::make_unique<filter_node>();
        n->kind = kind;
        n->children = std::move(parts);
        return n;
    }

    scim_result<node_ptr> parse_or(int depth) {
        std::vector<node_ptr> parts;
        for (;;) {
            auto part = parse_and(depth);
            if (!part) return part;
            parts.push_back(std::move(*part));
            skip_space();
            if (!take_keyword("or")) break;
        }
        return combine(node_kind::any_of, std::move(parts));
    }

    scim_result<node_ptr> parse_and(int depth) {
        std::vector<node_ptr> parts;
        for (;;) {
            auto part = parse_unary(depth);
            if (!part) return part;
            parts.push_back(std::move(*part));
            skip_space();
            if (!take_keyword("and")) break;
        }
        return combine(node_kind::all_of, std::move(parts));
    }

    scim_result<node_ptr> parse_group(int depth) {
        if (depth >= max_depth)
            return fail_at(pos_ - 1,
                           "parentheses nest deeper than " + std::to_string(max_depth) + " levels");
        auto inner = parse_or(depth + 1);
        if (!inner) return inner;
        skip_space();
        if (pos_ >= text_.size() || text_[pos_] != ')') return fail_expected("'and', 'or' or ')'");
        ++pos_;
        return inner;
    }

    scim_result<node_ptr> parse_unary(int depth) {
        skip_space();
        if (pos_ >= text_.size()) return fail_expected("an attribute path, 'not' or '('");
        if (text_[pos_] == '(') {
            ++pos_;
            return parse_group(depth);
        }
        if (iequals(peek_word(), "not") &&
            (pos_ + 3 == text_.size() || is_space(text_[pos_ + 3]) || text_[pos_ + 3] == '(')) {
            pos_ += 3;
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != '(')
                return fail_expected("'(' after 'not' (RFC 7644 writes not (filter))");
            ++pos_;
            auto inner = parse_group(depth);
            if (!inner) return inner;
            auto n = std::make_unique<filter_node>();
            n->kind = node_kind::negation;
            n->children.push_back(std::move(*inner));
            return n;
        }
        return parse_attribute_expression(depth);
    }

    // Checks `path` (starting at text position `at`) against [URI ":"] ATTRNAME ["." ATTRNAME];
    // '$' may start a name so that `$ref` sub-attributes can be named.
    std::optional<std::unexpected<scim_error>> check_path_syntax(std::string_view path,
                                                                 std::size_t at) const {
        std::size_t i = 0;
        if (path.size() > 4 && iequals(path.substr(0, 4), "urn:")) i = path.rfind(':') + 1;
        bool dotted = false;
        bool name_start = true;
        for (; i < path.size(); ++i) {
            const char c = path[i];
            if (name_start) {
                if (!is_alpha(c) && c != '$')
                    return fail_at(at + i, "expected an attribute name, found '" +
                                               printable_char(path, i) + "'");
                name_start = false;
            } else if (c == '.') {
                if (dotted)
                    return fail_at(at + i, "an attribute path names at most one sub-attribute");
                dotted = true;
                name_start = true;
            } else if (!is_name_char(c)) {
                return fail_at(at + i, "unexpected character '" + printable_char(path, i) +
                                           "' in attribute path '" + printable(path) + "'");
            }
        }
        if (name_start)
            return fail_at(at + path.size(),
                           "expected an attribute name after '" + printable(path) + "'");
        return std::nullopt;
    }

    scim_result<node_ptr> parse_attribute_expression(int depth) {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && !ends_path(text_[pos_])) ++pos_;
        const std::string_view path = text_.substr(start, pos_ - start);
        if (path.empty()) {
            pos_ = start;
            return fail_expected("an attribute path, 'not' or '('");
        }
        if (auto bad = check_path_syntax(path, start)) return *bad;

        auto n = std::make_unique<filter_node>();
        std::string shown;  // the canonical path, for messages
        const attribute* target = nullptr;
        if (parent_ != nullptr) {
            n->relative =
                path.find(':') == std::string_view::npos && path.find('.') == std::string_view::npos
                    ? parent_->sub(path)
                    : nullptr;
            if (n->relative == nullptr)
                return fail_at(start, "unknown attribute '" + printable(path) +
                                          "': not a sub-attribute of '" + parent_path_ + "'");
            target = n->relative;
            shown = parent_path_ + "." + target->name;
        } else {
            auto ref = resolve(type_, path);
            if (!ref) return fail_at(start, "unknown attribute '" + printable(path) + "'");
            n->ref = *ref;
            target = &ref->target();
            shown = ref->canonical();
            if (ref->sub != nullptr) n->sub_name = ref->sub->name;
        }
        if (target->ret == returned::never)
            return fail_at(start, "attribute '" + shown + "' cannot be used in a filter");

        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '[') {
            if (parent_ != nullptr)
                return fail_at(pos_, "a value filter cannot contain another value path");
            if (target->type != attr_type::complex)
                return fail_at(
                    pos_,
                    "'" + shown + "' is not a complex attribute, so it takes no value filter");
            ++pos_;
            n->kind = node_kind::value_path;
            parent_ = target;
            parent_path_ = shown;
            auto inner = parse_or(depth + 1);
            parent_ = nullptr;
            if (!inner) return inner;
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != ']')
                return fail_expected("'and', 'or' or ']'");
            ++pos_;
            if (pos_ < text_.size() && text_[pos_] == '.') {
                std::size_t end = pos_ + 1;
                while (end < text_.size() && !ends_path(text_[end])) ++end;
                return fail_at(pos_, "a sub-attribute after a value path ('" + shown + "[...]" +
                                         printable(text_.substr(pos_, end - pos_)) +
                                         "') is only allowed in PATCH paths; put the condition "
                                         "inside the brackets instead");
            }
            n->children.push_back(std::move(*inner));
            return n;
        }

        const std::size_t op_at = pos_;
        const std::string_view word = peek_word();
        const std::string expected_op =
            "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after '" + printable(path) +
            "'";
        if (iequals(word, "pr")) {
            pos_ += 2;
            n->kind = node_kind::present;
            // `emails pr` asks whether there is an email address, i.e. a `value`.
            if (target->type == attr_type::complex && target->multi_valued) use_value(*n, *target);
            if (n->operand == nullptr) n->operand = target;
            return n;
        }
        const auto known = std::find_if(std::begin(op_names), std::end(op_names),
                                        [&](const op_name& o) { return iequals(o.name, word); });
        if (known == std::end(op_names)) return fail_expected(expected_op);
        pos_ += word.size();
        n->kind = node_kind::compare;
        n->oper = known->value;

        if (target->type == attr_type::complex) {
            use_value(*n, *target);
            if (n->operand == nullptr)
                return fail_at(start, "complex attribute '" + shown +
                                          "' cannot be compared; name one of its sub-attributes");
            shown += ".value";
        } else {
            n->operand = target;
        }
        skip_space();
        const std::size_t value_at = pos_;
        auto literal = parse_literal();
        if (!literal) return std::unexpected(literal.error());
        n->literal = std::move(*literal);
        if (auto bad = check_operand(*n, shown, op_at, value_at)) return *bad;
        return n;
    }

    static void use_value(filter_node& n, const attribute& complex) {
        if (const attribute* value = complex.sub("value")) {
            n.operand = value;
            n.via_value = true;
            if (n.sub_name.empty()) n.sub_name = value->name;
        }
    }

    scim_result<json> parse_literal() {
        const std::string expected = "a value (a JSON string, number, true, false or null)";
        if (pos_ >= text_.size()) return fail_expected(expected);
        const std::size_t start = pos_;
        const char c = text_[pos_];
        if (c == '"') {
            std::size_t i = pos_ + 1;
            while (i < text_.size() && text_[i] != '"') i += text_[i] == '\\' ? 2 : 1;
            if (i >= text_.size()) return fail_at(start, "unterminated string");
            json v = json::parse(text_.substr(start, i + 1 - start), nullptr, false);
            if (v.is_discarded() || !v.is_string())
                return fail_at(
                    start, "invalid JSON string " + printable(text_.substr(start, i + 1 - start)));
            pos_ = i + 1;
            return v;
        }
        if (c == '-' || is_digit(c)) {
            std::size_t i = pos_;
            while (i < text_.size() && (is_digit(text_[i]) || text_[i] == '-' || text_[i] == '+' ||
                                        text_[i] == '.' || text_[i] == 'e' || text_[i] == 'E'))
                ++i;
            json v = json::parse(text_.substr(start, i - start), nullptr, false);
            if (v.is_discarded() || !v.is_number())
                return fail_at(
                    start, "invalid number '" + printable(text_.substr(start, i - start)) + "'");
            pos_ = i;
            return v;
        }
        const std::string_view word = peek_word();
        if (iequals(word, "true") || iequals(word, "false") || iequals(word, "null")) {
            pos_ += word.size();
            if (iequals(word, "null")) return json(nullptr);
            return json(iequals(word, "true"));
        }
        return fail_expected(expected);
    }

    // Type rules of RFC 7644 §3.4.2.2 (e.g. no gt on booleans), and the literal's type
    // against the attribute's; also precomputes the folded text and the instant.
    std::optional<std::unexpected<scim_error>> check_operand(filter_node& n,
                                                             const std::string& shown,
                                                             std::size_t op_at,
                                                             std::size_t value_at) const {
        const attribute& a = *n.operand;
        const std::string op_text(name_of(n.oper));
        if (n.literal.is_null()) {
            if (n.oper != op::eq && n.oper != op::ne)
                return fail_at(op_at, "only eq and ne compare with null");
            return std::nullopt;
        }
        switch (a.type) {
            case attr_type::boolean: {
                if (n.oper != op::eq && n.oper != op::ne)
                    return fail_at(op_at, "'" + shown + "' is a boolean, so '" + op_text +
                                              "' does not apply (only eq, ne and pr do)");
                const auto b = as_boolean(n.literal);
                if (!b)
                    return fail_at(value_at,
                                   "'" + shown + "' is a boolean; compare it with true or false");
                n.literal = *b;
                return std::nullopt;
            }
            case attr_type::integer:
            case attr_type::decimal:
                if (is_substring(n.oper))
                    return fail_at(
                        op_at, "'" + shown + "' is a number, so '" + op_text + "' does not apply");
                if (!n.literal.is_number())
                    return fail_at(value_at, "'" + shown + "' is a number; compare it with one");
                return std::nullopt;
            case attr_type::date_time: {
                if (!n.literal.is_string())
                    return fail_at(value_at, "'" + shown +
                                                 "' is a dateTime; compare it with a string such "
                                                 "as \"2026-01-01T00:00:00Z\"");
                const auto& s = n.literal.get_ref<const std::string&>();
                if (is_substring(n.oper)) {
                    n.text = a.case_exact ? s : fold(s);
                    return std::nullopt;
                }
                const auto t = parse_date_time(s);
                if (!t)
                    return fail_at(value_at, "\"" + printable(s) +
                                                 "\" is not an RFC 3339 dateTime such as "
                                                 "\"2026-01-01T00:00:00Z\"");
                n.when = *t;
                return std::nullopt;
            }
            case attr_type::binary:
                if (is_ordering(n.oper))
                    return fail_at(
                        op_at, "'" + shown + "' is binary, so '" + op_text + "' does not apply");
                [[fallthrough]];
            case attr_type::string:
            case attr_type::reference:
            case attr_type::complex: {
                if (!n.literal.is_string())
                    return fail_at(value_at, "'" + shown +
                                                 "' is a string; compare it with a "
                                                 "JSON string in double quotes");
                const auto& s = n.literal.get_ref<const std::string&>();
                n.text = a.case_exact ? s : fold(s);
                return std::nullopt;
            }
        }
        return std::nullopt;
    }

    const resource_type& type_;
    std::string_view text_;
    std::size_t pos_ = 0;
    const attribute* parent_ = nullptr;
    std::string parent_path_;
};

const attribute& sort_attribute(const attr_ref& ref) {
    if (ref.sub != nullptr) return *ref.sub;
    if (ref.attr->type == attr_type::complex)
        if (const attribute* value = ref.attr->sub("value")) return *value;
    return *ref.attr;
}

int sign(int c) {
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace

filter::filter(std::unique_ptr<filter_node> root) : root_(std::move(root)) {}
filter::filter(filter&&) noexcept = default;
filter& filter::operator=(filter&&) noexcept = default;
filter::~filter() = default;

scim_result<filter> filter::parse(const resource_type& type, std::string_view text) {
    auto root = parser(type, text).run(nullptr, {});
    if (!root) return std::unexpected(root.error());
    return filter(std::move(*root));
}

scim_result<filter> filter::parse_value_filter(const resource_type& type, const attr_ref& parent,
                                               std::string_view text) {
    const attribute& target = parent.target();
    if (target.type != attr_type::complex)
        return scim_fail(
            400, "invalidFilter",
            "'" + parent.canonical() + "' is not a complex attribute, so it takes no value filter");
    auto root = parser(type, text).run(&target, parent.canonical());
    if (!root) return std::unexpected(root.error());
    return filter(std::move(*root));
}

bool filter::matches(const nlohmann::json& resource) const {
    return root_ != nullptr && eval(*root_, resource);
}

bool filter::matches_element(const nlohmann::json& element) const {
    return root_ != nullptr && eval(*root_, element);
}

std::optional<filter::equality> filter::as_simple_equality() const {
    if (root_ == nullptr || root_->kind != node_kind::compare || root_->oper != op::eq ||
        root_->ref.sub != nullptr || root_->via_value || !root_->literal.is_string())
        return std::nullopt;
    // In a value filter the attribute is the parent's sub-attribute: `members[value eq "id"]`
    // lets the daemon remove one member without scanning them all.
    const attribute* a = root_->relative != nullptr ? root_->relative : root_->ref.attr;
    if (a->type != attr_type::string && a->type != attr_type::reference &&
        a->type != attr_type::binary)
        return std::nullopt;
    return equality{a, root_->literal.get<std::string>()};
}

const nlohmann::json* sort_value(const attr_ref& ref, const nlohmann::json& resource) {
    const json* container = &resource;
    if (ref.in_extension()) {
        container = member(resource, ref.in->id);
        if (container == nullptr) return nullptr;
    }
    const json* v = member(*container, ref.attr->name);
    if (v == nullptr) return nullptr;
    if (v->is_array()) {
        if (v->empty()) return nullptr;
        const json* chosen = &v->front();
        for (const auto& e : *v) {
            const json* primary = member(e, "primary");
            if (primary != nullptr && as_boolean(*primary).value_or(false)) {
                chosen = &e;
                break;
            }
        }
        v = chosen;
    }
    if (ref.sub != nullptr)
        v = member(*v, ref.sub->name);
    else if (ref.attr->type == attr_type::complex)
        v = member(*v, "value");
    if (v == nullptr || v->is_null()) return nullptr;
    return v;
}

int compare_sort_values(const attr_ref& ref, const nlohmann::json* a, const nlohmann::json* b) {
    if (a == nullptr || b == nullptr) return a == b ? 0 : a == nullptr ? 1 : -1;
    const attribute& t = sort_attribute(ref);
    if (a->is_string() && b->is_string()) {
        const auto& sa = a->get_ref<const std::string&>();
        const auto& sb = b->get_ref<const std::string&>();
        if (t.type == attr_type::date_time) {
            const auto ta = parse_date_time(sa);
            const auto tb = parse_date_time(sb);
            if (ta && tb) return *ta < *tb ? -1 : *tb < *ta ? 1 : 0;
        }
        if (t.case_exact) return sign(sa.compare(sb));
        return sign(fold(sa).compare(fold(sb)));
    }
    return *a < *b ? -1 : *b < *a ? 1 : 0;
}

}  // namespace scimsync::model::scim
