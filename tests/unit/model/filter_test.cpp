#include <catch2/catch.hpp>
#include <string>

#include "scimsync/model/scim/filter.hpp"

using namespace scimsync::model::scim;
using nlohmann::json;

namespace {

const std::string enterprise(enterprise_user_schema_id);

// A stored User: canonical names, extension attributes under their URN.
json barbara() {
    json u = {
        {"schemas", {std::string(user_schema_id), enterprise}},
        {"id", "2819c223-7f76-453a-919d-413861904646"},
        {"externalId", "00u1AbC"},
        {"userName", "BJensen@Example.com"},
        {"name", {{"familyName", "Jensen"}, {"givenName", "Barbara"}}},
        {"displayName", "Babs Jensen"},
        {"title", "Tour Guide"},
        {"userType", "Employee"},
        {"active", true},
        {"emails",
         {{{"value", "bjensen@example.com"}, {"type", "work"}, {"primary", true}},
          {{"value", "babs@jensen.org"}, {"type", "home"}}}},
        {"meta", {{"created", "2025-06-01T08:00:00Z"}, {"lastModified", "2026-02-01T12:30:00Z"}}},
    };
    u[enterprise] = {{"department", "Sales"},
                     {"employeeNumber", "701984"},
                     {"manager", {{"value", "26118915-6090-4610-87e4-49d8ca9f808d"}}}};
    return u;
}

json engineering() {
    return {{"id", "e9e30dba-f08f-4109-8486-d5c6a331660a"},
            {"displayName", "Engineering"},
            {"members",
             {{{"value", "2819c223-7f76-453a-919d-413861904646"}, {"type", "User"}},
              {{"value", "902c246b-6245-4190-8e05-00816be7344a"}, {"type", "User"}}}}};
}

filter must_parse(std::string_view text, const resource_type& type = user_type()) {
    auto f = filter::parse(type, text);
    INFO(std::string(text) + " -> " + (f ? std::string("ok") : f.error().detail));
    REQUIRE(f.has_value());
    return std::move(*f);
}

bool matches(std::string_view text, const json& resource, const resource_type& type = user_type()) {
    return must_parse(text, type).matches(resource);
}

bool matches_user(std::string_view text) {
    return matches(text, barbara());
}

scim_error rejects(std::string_view text, const resource_type& type = user_type()) {
    auto f = filter::parse(type, text);
    INFO(std::string(text));
    REQUIRE_FALSE(f.has_value());
    CHECK(f.error().status == 400);
    CHECK(f.error().scim_type == "invalidFilter");
    return f.error();
}

// An extension with number and binary attributes, which the SCIM schemas do not have.
const std::string device_urn = "urn:example:scimsync:test:Device";

const resource_type& device_type() {
    static const schema s = [] {
        schema d;
        d.id = device_urn;
        d.name = "Device";
        attribute level;
        level.name = "level";
        level.type = attr_type::integer;
        attribute score;
        score.name = "score";
        score.type = attr_type::decimal;
        attribute readings = score;
        readings.name = "readings";
        readings.multi_valued = true;
        attribute blob;
        blob.name = "blob";
        blob.type = attr_type::binary;
        blob.case_exact = true;
        d.attributes = {level, score, readings, blob};
        return d;
    }();
    static const resource_type t{"User", "/Users", "User with devices", &user_schema(), {&s}};
    return t;
}

// `text` with its attribute path prefixed by the Device URN; `values` stored under it.
bool device_matches(const std::string& text, const json& values) {
    return matches(device_urn + ":" + text, json{{device_urn, values}}, device_type());
}

scim_error device_rejects(const std::string& text) {
    return rejects(device_urn + ":" + text, device_type());
}

attr_ref ref_of(std::string_view path, const resource_type& type = user_type()) {
    auto r = resolve(type, path);
    REQUIRE(r.has_value());
    return *r;
}

filter must_parse_value_filter(std::string_view parent, std::string_view text,
                               const resource_type& type = user_type()) {
    auto f = filter::parse_value_filter(type, ref_of(parent, type), text);
    INFO(std::string(text) + " -> " + (f ? std::string("ok") : f.error().detail));
    REQUIRE(f.has_value());
    return std::move(*f);
}

}  // namespace

// --- Real filters from the Okta and Entra documentation ---------------------------------------

TEST_CASE("Okta's userName lookup matches case-insensitively", "[model][filter]") {
    CHECK(matches_user(R"(userName eq "bjensen@example.com")"));
}

TEST_CASE("Entra's test-connection filter with a random guid matches nobody", "[model][filter]") {
    CHECK_FALSE(matches_user(R"(userName eq "9a2d6f0e-4c1b-4d43-a1f6-3c2f7d51e0b8")"));
}

TEST_CASE("an externalId lookup matches the stored externalId", "[model][filter]") {
    CHECK(matches_user(R"(externalId eq "00u1AbC")"));
}

TEST_CASE("an id lookup matches the stored id", "[model][filter]") {
    CHECK(matches_user(R"(id eq "2819c223-7f76-453a-919d-413861904646")"));
}

TEST_CASE("a group displayName lookup matches", "[model][filter]") {
    CHECK(matches(R"(displayName eq "Engineering")", engineering(), group_type()));
}

TEST_CASE("a members value path on a Group matches a member id", "[model][filter]") {
    CHECK(matches(R"(members[value eq "902c246b-6245-4190-8e05-00816be7344a"])", engineering(),
                  group_type()));
    CHECK_FALSE(matches(R"(members[value eq "0000"])", engineering(), group_type()));
}

TEST_CASE("a work email value path with two conditions matches", "[model][filter]") {
    CHECK(matches_user(R"(emails[type eq "work" and value co "@example.com"])"));
}

TEST_CASE("a sub-attribute prefix match on name.familyName matches", "[model][filter]") {
    CHECK(matches_user(R"(name.familyName sw "Je")"));
}

TEST_CASE("a meta.lastModified comparison matches later resources", "[model][filter]") {
    CHECK(matches_user(R"(meta.lastModified gt "2026-01-01T00:00:00Z")"));
    CHECK_FALSE(matches_user(R"(meta.lastModified gt "2026-03-01T00:00:00Z")"));
}

TEST_CASE("an enterprise department filter with the URN prefix matches", "[model][filter]") {
    CHECK(matches_user(enterprise + R"(:department eq "Sales")"));
    CHECK_FALSE(matches_user(enterprise + R"(:department eq "Marketing")"));
}

TEST_CASE("not around a boolean comparison inverts it", "[model][filter]") {
    CHECK(matches_user("not (active eq false)"));
    CHECK_FALSE(matches_user("not (active eq true)"));
}

TEST_CASE("pr and a parenthesised or combine", "[model][filter]") {
    CHECK(matches_user(R"(title pr and (userType eq "Employee" or userType eq "Intern"))"));
    CHECK_FALSE(matches_user(R"(title pr and (userType eq "Contractor" or userType eq "Intern"))"));
}

// --- Grammar: accepted forms ------------------------------------------------------------------

TEST_CASE("operators are case-insensitive", "[model][filter][grammar]") {
    CHECK(matches_user(R"(userName EQ "bjensen@example.com")"));
    CHECK(matches_user(R"(userName Sw "bjensen")"));
    CHECK(matches_user("title PR"));
}

TEST_CASE("and, or and not are case-insensitive", "[model][filter][grammar]") {
    CHECK(matches_user(R"(title pr AND NOT (userType eq "Intern") Or active eq false)"));
}

TEST_CASE("attribute names are case-insensitive", "[model][filter][grammar]") {
    CHECK(matches_user(R"(USERNAME eq "bjensen@example.com")"));
    CHECK(matches_user(R"(Name.FamilyName eq "jensen")"));
    CHECK(matches_user(R"(EMAILS[TYPE eq "work"])"));
}

TEST_CASE("extra whitespace between tokens is accepted", "[model][filter][grammar]") {
    CHECK(matches_user("  ( title   pr )  and\tnot(active eq false)  "));
}

TEST_CASE("parentheses may nest", "[model][filter][grammar]") {
    CHECK(matches_user(R"(((title pr) and ((userType eq "Employee"))))"));
}

TEST_CASE("a string literal's JSON escapes are decoded", "[model][filter][grammar]") {
    json u = barbara();
    u["title"] = "Chief \"Fun\" Officer \u00e9";
    CHECK(matches(R"(title eq "Chief \"Fun\" Officer \u00e9")", u));
    u["title"] = "back\\slash";
    CHECK(matches(R"(title eq "back\\slash")", u));
}

TEST_CASE("true, false and null literals are accepted in any case", "[model][filter][grammar]") {
    CHECK(matches_user("active eq TRUE"));
    CHECK(matches_user("active ne False"));
    CHECK(matches_user("nickName eq NULL"));
}

TEST_CASE("a value path on a single-valued complex attribute tests the object",
          "[model][filter][grammar]") {
    CHECK(
        matches_user(enterprise + R"(:manager[value eq "26118915-6090-4610-87e4-49d8ca9f808d"])"));
    CHECK_FALSE(matches_user(enterprise + R"(:manager[value eq "someone-else"])"));
}

TEST_CASE("a value path may contain or and not", "[model][filter][grammar]") {
    CHECK(matches_user(R"(emails[type eq "other" or value ew ".org"])"));
    CHECK(matches_user(R"(emails[not (type eq "work")])"));
    CHECK_FALSE(matches_user(R"(emails[not (value co "@")])"));
}

TEST_CASE("a value path combines with other expressions", "[model][filter][grammar]") {
    CHECK(matches_user(R"(active eq true and emails[type eq "home"] and not (title eq "x"))"));
}

TEST_CASE("the $ref sub-attribute can be named", "[model][filter][grammar]") {
    json g = engineering();
    g["members"][0]["$ref"] = "https://scim.example.com/Users/2819c223";
    CHECK(matches(R"(members.$ref ew "/Users/2819c223")", g, group_type()));
}

TEST_CASE("a long chain of and terms parses and evaluates", "[model][filter][grammar]") {
    std::string text = "title pr";
    for (int i = 0; i < 20000; ++i) text += " and active eq true";
    CHECK(matches_user(text));
}

// --- Grammar: rejected forms ------------------------------------------------------------------

TEST_CASE("an empty filter is rejected at position 1", "[model][filter][invalid]") {
    CHECK_THAT(rejects("").detail,
               Catch::Contains("position 1") && Catch::Contains("expected an attribute path"));
    CHECK_THAT(rejects("   ").detail, Catch::Contains("position 4"));
}

TEST_CASE("a missing operator is rejected naming the position and the attribute",
          "[model][filter][invalid]") {
    const auto e = rejects("userName");
    CHECK_THAT(e.detail, Catch::Contains("position 9") && Catch::Contains("an operator") &&
                             Catch::Contains("userName"));
}

TEST_CASE("an unknown operator is rejected at its position", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName contains "x")").detail,
               Catch::Contains("position 10") && Catch::Contains("found 'contains"));
    CHECK_THAT(rejects(R"(userName eqq "x")").detail, Catch::Contains("position 10"));
    CHECK_THAT(rejects(R"(userName = "x")").detail, Catch::Contains("position 10"));
}

TEST_CASE("a missing comparison value is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("userName eq").detail, Catch::Contains("position 12") &&
                                                  Catch::Contains("expected a value") &&
                                                  Catch::Contains("end of the filter"));
}

TEST_CASE("an unquoted string value is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("userName eq bjensen").detail,
               Catch::Contains("position 13") && Catch::Contains("expected a value"));
}

TEST_CASE("a single-quoted string value is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("userName eq 'bjensen'").detail, Catch::Contains("position 13"));
}

TEST_CASE("an unterminated string is rejected at its opening quote", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName eq "bjensen)").detail,
               Catch::Contains("position 13") && Catch::Contains("unterminated string"));
    CHECK_THAT(rejects(R"(userName eq "bjensen\")").detail, Catch::Contains("unterminated"));
}

TEST_CASE("a string with an invalid escape is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName eq "a\qb")").detail,
               Catch::Contains("position 13") && Catch::Contains("invalid JSON string"));
}

TEST_CASE("a malformed number is rejected", "[model][filter][invalid]") {
    // The URN prefix and ':' take the first 33 characters.
    CHECK_THAT(device_rejects("level eq 01").detail,
               Catch::Contains("position 43") && Catch::Contains("invalid number"));
    CHECK_THAT(device_rejects("level eq 1.2.3").detail, Catch::Contains("invalid number"));
    CHECK_THAT(device_rejects("level eq -").detail, Catch::Contains("invalid number"));
}

TEST_CASE("text after a complete expression is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName eq "a" "b")").detail,
               Catch::Contains("position 17") && Catch::Contains("'and', 'or' or the end"));
    CHECK_THAT(rejects(R"(userName eq "a" xor title pr)").detail, Catch::Contains("position 17"));
}

TEST_CASE("a trailing and is rejected at the end of the filter", "[model][filter][invalid]") {
    CHECK_THAT(rejects("title pr and").detail,
               Catch::Contains("position 13") && Catch::Contains("end of the filter"));
}

TEST_CASE("an unclosed parenthesis is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("(title pr").detail,
               Catch::Contains("position 10") && Catch::Contains("')'"));
}

TEST_CASE("an unopened closing parenthesis is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("title pr)").detail, Catch::Contains("position 9"));
}

TEST_CASE("empty parentheses are rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("()").detail,
               Catch::Contains("position 2") && Catch::Contains("attribute path"));
}

TEST_CASE("not without parentheses is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects("not active eq true").detail,
               Catch::Contains("position 5") && Catch::Contains("'(' after 'not'"));
}

TEST_CASE("a sub-attribute after a value path is rejected as PATCH-only",
          "[model][filter][invalid]") {
    const auto e = rejects(R"(emails[type eq "work"].value eq "x")");
    CHECK_THAT(e.detail, Catch::Contains("position 23") && Catch::Contains("PATCH") &&
                             Catch::Contains("emails[...].value"));
}

TEST_CASE("a value path inside a value path is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(emails[type[value eq "x"]])").detail,
               Catch::Contains("position 12") && Catch::Contains("another value path"));
}

TEST_CASE("a value path on a simple attribute is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName[value eq "x"])").detail,
               Catch::Contains("'userName' is not a complex attribute"));
}

TEST_CASE("an unclosed value path is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(emails[type eq "work")").detail,
               Catch::Contains("position 22") && Catch::Contains("']'"));
}

TEST_CASE("a path with two sub-attribute levels is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(name.familyName.first eq "x")").detail,
               Catch::Contains("position 16") && Catch::Contains("at most one sub-attribute"));
}

TEST_CASE("an attribute path with an invalid character is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(user@Name eq "x")").detail,
               Catch::Contains("position 5") && Catch::Contains("'@'"));
    CHECK_THAT(rejects(R"(1userName eq "x")").detail, Catch::Contains("position 1"));
    CHECK_THAT(rejects(R"(name. eq "x")").detail, Catch::Contains("position 6"));
}

TEST_CASE("an unknown attribute is rejected by name", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(title pr and shoeSize eq "42")").detail,
               Catch::Contains("position 14") && Catch::Contains("unknown attribute 'shoeSize'"));
}

TEST_CASE("an unknown sub-attribute is rejected by name", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(name.nick eq "x")").detail,
               Catch::Contains("unknown attribute 'name.nick'"));
}

TEST_CASE("an unknown sub-attribute inside a value path is rejected by name",
          "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(emails[kind eq "work"])").detail, Catch::Contains("position 8") &&
                                                                Catch::Contains("'kind'") &&
                                                                Catch::Contains("'emails'"));
}

TEST_CASE("an unknown extension URN is rejected by name", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(urn:example:acme:User:badge eq "1")").detail,
               Catch::Contains("unknown attribute 'urn:example:acme:User:badge'"));
}

TEST_CASE("an extension attribute without its URN is rejected", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(department eq "Sales")").detail,
               Catch::Contains("unknown attribute 'department'"));
}

TEST_CASE("a User attribute is unknown in a Group filter", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(userName eq "x")", group_type()).detail,
               Catch::Contains("unknown attribute 'userName'"));
}

TEST_CASE("password cannot be used in a filter", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(password eq "hunter2")").detail,
               Catch::Contains("'password' cannot be used in a filter"));
    CHECK_THAT(rejects("password pr").detail, Catch::Contains("password"));
}

TEST_CASE("a complex attribute without a value sub-attribute cannot be compared",
          "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(name eq "Jensen")").detail,
               Catch::Contains("complex attribute 'name' cannot be compared"));
}

TEST_CASE("error positions count characters, not bytes", "[model][filter][invalid]") {
    CHECK_THAT(rejects(R"(displayName eq "Müller" and)").detail, Catch::Contains("position 28"));
}

TEST_CASE("an error quoting invalid UTF-8 is itself valid UTF-8", "[model][filter][invalid]") {
    const auto e = rejects("user\xFFName eq \"x\"");
    CHECK_THAT(e.detail, Catch::Contains("position 5") && Catch::Contains("\xEF\xBF\xBD"));
    CHECK_NOTHROW(json(e.detail).dump());
}

TEST_CASE("a string literal with invalid UTF-8 is rejected", "[model][filter][invalid]") {
    const auto e = rejects("userName eq \"\xC3(\"");
    CHECK_THAT(e.detail, Catch::Contains("position 13") && Catch::Contains("invalid JSON string"));
    CHECK_NOTHROW(json(e.detail).dump());
}

TEST_CASE("long unexpected text is quoted shortened", "[model][filter][invalid]") {
    const auto e = rejects("title pr " + std::string(1000, 'x'));
    CHECK_THAT(e.detail, Catch::Contains("found 'xxxxxxxxxxxxxxxxxxxx...'"));
    CHECK(e.detail.size() < 200);
}

TEST_CASE("deeply nested parentheses are rejected instead of exhausting the stack",
          "[model][filter][invalid]") {
    const std::string text = std::string(100000, '(') + "title pr" + std::string(100000, ')');
    CHECK_THAT(rejects(text).detail, Catch::Contains("nest deeper"));
}

TEST_CASE("moderately nested parentheses are accepted", "[model][filter][grammar]") {
    CHECK(matches_user(std::string(40, '(') + "title pr" + std::string(40, ')')));
}

// --- Operators --------------------------------------------------------------------------------

TEST_CASE("eq matches an equal string only", "[model][filter][operators]") {
    CHECK(matches_user(R"(title eq "tour guide")"));
    CHECK_FALSE(matches_user(R"(title eq "Tour")"));
}

TEST_CASE("ne matches an unequal string only", "[model][filter][operators]") {
    CHECK(matches_user(R"(title ne "Tour")"));
    CHECK_FALSE(matches_user(R"(title ne "TOUR GUIDE")"));
}

TEST_CASE("co matches a substring", "[model][filter][operators]") {
    CHECK(matches_user(R"(title co "UR GU")"));
    CHECK_FALSE(matches_user(R"(title co "guides")"));
}

TEST_CASE("sw matches a prefix", "[model][filter][operators]") {
    CHECK(matches_user(R"(title sw "tour")"));
    CHECK_FALSE(matches_user(R"(title sw "guide")"));
}

TEST_CASE("ew matches a suffix", "[model][filter][operators]") {
    CHECK(matches_user(R"(title ew "GUIDE")"));
    CHECK_FALSE(matches_user(R"(title ew "tour")"));
}

TEST_CASE("gt and ge order strings lexicographically", "[model][filter][operators]") {
    CHECK(matches_user(R"(title gt "tour")"));
    CHECK_FALSE(matches_user(R"(title gt "tour guide")"));
    CHECK(matches_user(R"(title ge "tour guide")"));
    CHECK_FALSE(matches_user(R"(title ge "u")"));
}

TEST_CASE("lt and le order strings lexicographically", "[model][filter][operators]") {
    CHECK(matches_user(R"(title lt "u")"));
    CHECK_FALSE(matches_user(R"(title lt "tour guide")"));
    CHECK(matches_user(R"(title le "TOUR GUIDE")"));
    CHECK_FALSE(matches_user(R"(title le "tour")"));
}

TEST_CASE("pr matches a present attribute", "[model][filter][operators]") {
    CHECK(matches_user("title pr"));
    CHECK(matches_user("name.givenName pr"));
    CHECK_FALSE(matches_user("nickName pr"));
}

// --- Precedence -------------------------------------------------------------------------------

TEST_CASE("and binds more tightly than or", "[model][filter][precedence]") {
    // true or (false and false), not (true or false) and false.
    CHECK(matches_user(R"(title pr or userType eq "Intern" and active eq false)"));
    // (false and true) or true.
    CHECK(matches_user(R"(nickName pr and title pr or active eq true)"));
}

TEST_CASE("parentheses override the precedence of and over or", "[model][filter][precedence]") {
    CHECK_FALSE(matches_user(R"((title pr or userType eq "Intern") and active eq false)"));
}

TEST_CASE("not applies only to its parenthesised filter", "[model][filter][precedence]") {
    CHECK(matches_user(R"(not (title pr) or active eq true)"));
    CHECK_FALSE(matches_user(R"(not (title pr) and active eq true)"));
}

TEST_CASE("not may be nested", "[model][filter][precedence]") {
    CHECK(matches_user("not (not (title pr))"));
}

// --- Case-exactness ---------------------------------------------------------------------------

TEST_CASE("userName compares case-insensitively", "[model][filter][case]") {
    CHECK(matches_user(R"(userName eq "BJENSEN@EXAMPLE.COM")"));
    CHECK(matches_user(R"(userName sw "bjensen@")"));
}

TEST_CASE("displayName compares case-insensitively", "[model][filter][case]") {
    CHECK(matches_user(R"(displayName eq "BABS JENSEN")"));
    CHECK(matches(R"(displayName eq "engineering")", engineering(), group_type()));
}

TEST_CASE("emails.value compares case-insensitively", "[model][filter][case]") {
    CHECK(matches_user(R"(emails.value eq "BJensen@EXAMPLE.com")"));
}

TEST_CASE("id compares case-exactly", "[model][filter][case]") {
    CHECK_FALSE(matches_user(R"(id eq "2819C223-7F76-453A-919D-413861904646")"));
}

TEST_CASE("externalId compares case-exactly", "[model][filter][case]") {
    CHECK_FALSE(matches_user(R"(externalId eq "00U1ABC")"));
    CHECK_FALSE(matches_user(R"(externalId sw "00U1")"));
}

TEST_CASE("members.value compares case-exactly", "[model][filter][case]") {
    CHECK_FALSE(matches(R"(members.value eq "902C246B-6245-4190-8E05-00816BE7344A")", engineering(),
                        group_type()));
    CHECK(matches(R"(members.value eq "902c246b-6245-4190-8e05-00816be7344a")", engineering(),
                  group_type()));
}

TEST_CASE("case-insensitive comparison folds accented Latin, Greek and Cyrillic letters",
          "[model][filter][case]") {
    json u = barbara();
    u["displayName"] = "Jürgen Müller Ωmega Ïvan Иван";
    CHECK(matches(R"(displayName eq "JÜRGEN MÜLLER ωMEGA ïVAN иВАН")", u));
    CHECK(matches(R"(displayName co "MÜLL")", u));
}

TEST_CASE("a stored name with different case is still found through a lowercase literal",
          "[model][filter][case]") {
    json u = barbara();
    u["userName"] = "ÅSA.LARSSON@EXAMPLE.SE";
    CHECK(matches(R"(userName eq "åsa.larsson@example.se")", u));
}

// --- Multi-valued attributes ------------------------------------------------------------------

TEST_CASE("a multi-valued sub-attribute matches when any element matches",
          "[model][filter][multi]") {
    CHECK(matches_user(R"(emails.value eq "babs@jensen.org")"));
    CHECK(matches_user(R"(emails.type eq "home")"));
    CHECK_FALSE(matches_user(R"(emails.type eq "other")"));
}

TEST_CASE("a complex multi-valued attribute without sub-attribute compares its value",
          "[model][filter][multi]") {
    CHECK(matches_user(R"(emails co "jensen.org")"));
    CHECK(matches_user(R"(emails eq "BJENSEN@example.com")"));
    CHECK_FALSE(matches_user(R"(emails co "home")"));
}

TEST_CASE("pr on a complex multi-valued attribute tests its value sub-attribute",
          "[model][filter][multi]") {
    json u = barbara();
    CHECK(matches("emails pr", u));
    u["emails"] = {{{"type", "work"}}};
    CHECK_FALSE(matches("emails pr", u));
}

TEST_CASE("a value path requires all its conditions on the same element",
          "[model][filter][multi]") {
    CHECK_FALSE(matches_user(R"(emails[type eq "work" and value co "jensen.org"])"));
    CHECK(matches_user(R"(emails.type eq "work" and emails.value co "jensen.org")"));
}

TEST_CASE("a value path on an absent attribute matches nothing", "[model][filter][multi]") {
    CHECK_FALSE(matches_user(R"(phoneNumbers[type eq "mobile"])"));
}

TEST_CASE("ne on a multi-valued attribute matches when any element differs",
          "[model][filter][multi]") {
    CHECK(matches_user(R"(emails.type ne "work")"));
    json u = barbara();
    u["emails"] = {{{"value", "a@b.c"}, {"type", "work"}}};
    CHECK_FALSE(matches(R"(emails.type ne "work")", u));
}

// --- Extension attributes ---------------------------------------------------------------------

TEST_CASE("an extension URN prefix in a filter is case-insensitive", "[model][filter][extension]") {
    CHECK(matches_user(
        R"(URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DEPARTMENT eq "sales")"));
}

TEST_CASE("an extension sub-attribute is found under the URN key", "[model][filter][extension]") {
    CHECK(matches_user(enterprise + R"(:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d")"));
}

TEST_CASE("an extension complex attribute compared as a whole compares its value",
          "[model][filter][extension]") {
    CHECK(matches_user(enterprise + R"(:manager eq "26118915-6090-4610-87e4-49d8ca9f808d")"));
}

TEST_CASE("an extension attribute is absent when the resource has no extension object",
          "[model][filter][extension]") {
    json u = barbara();
    u.erase(enterprise);
    CHECK_FALSE(matches(enterprise + ":department pr", u));
    CHECK(matches(enterprise + R"(:department ne "Sales")", u));
}

TEST_CASE("a core attribute with the core URN prefix is found at the top level",
          "[model][filter][extension]") {
    CHECK(matches_user(std::string(user_schema_id) + R"(:userName eq "bjensen@example.com")"));
}

TEST_CASE("a top-level attribute is not looked for inside the extension object",
          "[model][filter][extension]") {
    json u = barbara();
    u.erase("title");
    u[enterprise]["title"] = "Tour Guide";
    CHECK_FALSE(matches("title pr", u));
}

// --- dateTime ---------------------------------------------------------------------------------

TEST_CASE("dateTime comparisons order instants", "[model][filter][datetime]") {
    CHECK(matches_user(R"(meta.lastModified ge "2026-02-01T12:30:00Z")"));
    CHECK(matches_user(R"(meta.lastModified lt "2026-02-01T12:30:01Z")"));
    CHECK_FALSE(matches_user(R"(meta.lastModified lt "2026-02-01T12:30:00Z")"));
    CHECK(matches_user(R"(meta.created le "2025-06-01T08:00:00Z")"));
}

TEST_CASE("dateTime equality holds across zone offsets", "[model][filter][datetime]") {
    CHECK(matches_user(R"(meta.lastModified eq "2026-02-01T13:30:00+01:00")"));
    CHECK(matches_user(R"(meta.lastModified eq "2026-02-01T07:30:00-05:00")"));
    CHECK_FALSE(matches_user(R"(meta.lastModified ne "2026-02-01T13:30:00+01:00")"));
}

TEST_CASE("dateTime fractional seconds take part in the comparison", "[model][filter][datetime]") {
    CHECK(matches_user(R"(meta.lastModified eq "2026-02-01T12:30:00.000Z")"));
    CHECK(matches_user(R"(meta.lastModified lt "2026-02-01T12:30:00.001Z")"));
    CHECK(matches_user(R"(meta.lastModified gt "2026-02-01T12:29:59.999999999Z")"));
}

TEST_CASE("a dateTime without a zone is taken as UTC", "[model][filter][datetime]") {
    CHECK(matches_user(R"(meta.lastModified eq "2026-02-01T12:30:00")"));
}

TEST_CASE("an invalid dateTime literal is rejected", "[model][filter][datetime]") {
    CHECK_THAT(rejects(R"(meta.lastModified gt "yesterday")").detail,
               Catch::Contains("position 22") && Catch::Contains("RFC 3339"));
    CHECK_THAT(rejects(R"(meta.lastModified gt "2026-02-30T00:00:00Z")").detail,
               Catch::Contains("RFC 3339"));
    CHECK_THAT(rejects(R"(meta.lastModified gt "2026-01-01T25:00:00Z")").detail,
               Catch::Contains("RFC 3339"));
}

TEST_CASE("a dateTime compared with a number is rejected", "[model][filter][datetime]") {
    CHECK_THAT(rejects("meta.lastModified gt 2026").detail, Catch::Contains("is a dateTime"));
}

TEST_CASE("a stored dateTime that does not parse matches no ordering",
          "[model][filter][datetime]") {
    json u = barbara();
    u["meta"]["lastModified"] = "not a date";
    CHECK_FALSE(matches(R"(meta.lastModified gt "2000-01-01T00:00:00Z")", u));
    CHECK_FALSE(matches(R"(meta.lastModified lt "2100-01-01T00:00:00Z")", u));
    CHECK(matches(R"(meta.lastModified ne "2000-01-01T00:00:00Z")", u));
}

TEST_CASE("sw on a dateTime compares the text", "[model][filter][datetime]") {
    CHECK(matches_user(R"(meta.lastModified sw "2026-02")"));
}

// --- Numbers ----------------------------------------------------------------------------------

TEST_CASE("numbers compare numerically", "[model][filter][numbers]") {
    const json d = {{"level", 10}, {"score", 2.5}};
    CHECK(device_matches("level gt 9", d));
    CHECK(device_matches("level lt 100", d));
    CHECK(device_matches("score ge 2.5", d));
    CHECK_FALSE(device_matches("score gt 2.5", d));
}

TEST_CASE("integers and decimals of the same value are equal", "[model][filter][numbers]") {
    CHECK(device_matches("level eq 10.0", json{{"level", 10}}));
    CHECK(device_matches("score eq 3", json{{"score", 3.0}}));
    CHECK(device_matches("level le 1e1", json{{"level", 10}}));
}

TEST_CASE("negative numbers are accepted", "[model][filter][numbers]") {
    CHECK(device_matches("level gt -1", json{{"level", 0}}));
}

TEST_CASE("a multi-valued number attribute matches when any value matches",
          "[model][filter][numbers]") {
    CHECK(device_matches("readings gt 5", json{{"readings", {1, 2, 7}}}));
    CHECK_FALSE(device_matches("readings gt 7", json{{"readings", {1, 2, 7}}}));
}

TEST_CASE("a stored number of the wrong type equals nothing", "[model][filter][numbers]") {
    CHECK_FALSE(device_matches("level eq 10", json{{"level", "10"}}));
    CHECK(device_matches("level ne 10", json{{"level", "10"}}));
}

TEST_CASE("substring operators on numbers are rejected", "[model][filter][numbers]") {
    CHECK_THAT(device_rejects("level co 1").detail, Catch::Contains("'co' does not apply"));
}

TEST_CASE("a number attribute compared with a string is rejected", "[model][filter][numbers]") {
    CHECK_THAT(device_rejects(R"(level eq "10")").detail,
               Catch::Contains("position 43") && Catch::Contains("is a number"));
}

TEST_CASE("a string attribute compared with a number is rejected", "[model][filter][numbers]") {
    CHECK_THAT(rejects("externalId eq 42").detail,
               Catch::Contains("position 15") && Catch::Contains("is a string"));
}

TEST_CASE("ordering operators on binary attributes are rejected", "[model][filter][binary]") {
    CHECK_THAT(device_rejects(R"(blob gt "AA==")").detail,
               Catch::Contains("binary") && Catch::Contains("'gt'"));
}

TEST_CASE("binary attributes compare for equality as text", "[model][filter][binary]") {
    CHECK(device_matches(R"(blob eq "AA==")", json{{"blob", "AA=="}}));
    CHECK_FALSE(device_matches(R"(blob eq "aa==")", json{{"blob", "AA=="}}));
}

// --- Booleans ---------------------------------------------------------------------------------

TEST_CASE("booleans compare with eq and ne", "[model][filter][booleans]") {
    CHECK(matches_user("active eq true"));
    CHECK_FALSE(matches_user("active eq false"));
    CHECK(matches_user("active ne false"));
}

TEST_CASE("a boolean stored as a \"True\" string compares as a boolean",
          "[model][filter][booleans]") {
    json u = barbara();
    u["active"] = "False";
    CHECK(matches("active eq false", u));
}

TEST_CASE("a boolean literal sent as a \"true\" string is accepted", "[model][filter][booleans]") {
    CHECK(matches_user(R"(active eq "True")"));
}

TEST_CASE("ordering operators on booleans are rejected", "[model][filter][booleans]") {
    CHECK_THAT(rejects("active gt false").detail, Catch::Contains("position 8") &&
                                                      Catch::Contains("boolean") &&
                                                      Catch::Contains("'gt'"));
    CHECK_THAT(rejects("active le true").detail, Catch::Contains("'le'"));
}

TEST_CASE("substring operators on booleans are rejected", "[model][filter][booleans]") {
    CHECK_THAT(rejects(R"(active co "t")").detail, Catch::Contains("'co'"));
}

TEST_CASE("a boolean compared with a number or other string is rejected",
          "[model][filter][booleans]") {
    CHECK_THAT(rejects("active eq 1").detail,
               Catch::Contains("position 11") && Catch::Contains("true or false"));
    CHECK_THAT(rejects(R"(active eq "yes")").detail, Catch::Contains("true or false"));
}

TEST_CASE("a boolean value path condition works inside brackets", "[model][filter][booleans]") {
    CHECK(matches_user(R"(emails[primary eq true and type eq "work"])"));
    CHECK_FALSE(matches_user(R"(emails[primary eq true and type eq "home"])"));
}

// --- pr, absent values, null ------------------------------------------------------------------

TEST_CASE("pr is false for a missing attribute", "[model][filter][pr]") {
    CHECK_FALSE(matches_user("nickName pr"));
}

TEST_CASE("pr is false for null, empty string, empty array and empty object",
          "[model][filter][pr]") {
    json u = barbara();
    u["nickName"] = nullptr;
    CHECK_FALSE(matches("nickName pr", u));
    u["nickName"] = "";
    CHECK_FALSE(matches("nickName pr", u));
    u["phoneNumbers"] = json::array();
    CHECK_FALSE(matches("phoneNumbers pr", u));
    u["name"] = json::object();
    CHECK_FALSE(matches("name pr", u));
}

TEST_CASE("pr on a single-valued complex attribute tests that it has content",
          "[model][filter][pr]") {
    CHECK(matches_user("name pr"));
    CHECK(matches_user(enterprise + ":manager pr"));
}

TEST_CASE("pr on a multi-valued sub-attribute is true when any element has it",
          "[model][filter][pr]") {
    CHECK(matches_user("emails.primary pr"));
    CHECK_FALSE(matches_user("emails.display pr"));
}

TEST_CASE("ne matches a resource without the attribute", "[model][filter][pr]") {
    CHECK(matches_user(R"(nickName ne "Babs")"));
}

TEST_CASE("comparisons other than ne do not match a missing attribute", "[model][filter][pr]") {
    CHECK_FALSE(matches_user(R"(nickName eq "Babs")"));
    CHECK_FALSE(matches_user(R"(nickName co "")"));
    CHECK_FALSE(matches_user(R"(nickName lt "zzz")"));
}

TEST_CASE("eq null matches an absent attribute and ne null a present one", "[model][filter][pr]") {
    CHECK(matches_user("nickName eq null"));
    CHECK_FALSE(matches_user("title eq null"));
    CHECK(matches_user("title ne null"));
    CHECK_FALSE(matches_user("nickName ne null"));
}

TEST_CASE("null with an ordering operator is rejected", "[model][filter][pr]") {
    CHECK_THAT(rejects("title gt null").detail,
               Catch::Contains("position 7") && Catch::Contains("null"));
}

TEST_CASE("an attribute holding the wrong JSON type equals nothing", "[model][filter][pr]") {
    json u = barbara();
    u["title"] = json{{"x", 1}};
    CHECK_FALSE(matches(R"(title eq "x")", u));
    CHECK(matches(R"(title ne "x")", u));
}

// --- as_simple_equality -----------------------------------------------------------------------

TEST_CASE("a userName equality is recognised with the value as written",
          "[model][filter][simple]") {
    const auto eq = must_parse(R"(USERNAME eq "BJensen@Example.com")").as_simple_equality();
    REQUIRE(eq.has_value());
    CHECK(eq->attr == user_schema().find("userName"));
    CHECK(eq->value == "BJensen@Example.com");
}

TEST_CASE("id, externalId and group displayName equalities are recognised",
          "[model][filter][simple]") {
    const auto id = must_parse(R"(id eq "abc")").as_simple_equality();
    REQUIRE(id.has_value());
    CHECK(id->attr->name == "id");
    const auto ext = must_parse(R"(externalId eq "00u1")").as_simple_equality();
    REQUIRE(ext.has_value());
    CHECK(ext->attr->name == "externalId");
    const auto name =
        must_parse(R"(displayName eq "Engineering")", group_type()).as_simple_equality();
    REQUIRE(name.has_value());
    CHECK(name->attr == group_schema().find("displayName"));
    CHECK(name->value == "Engineering");
}

TEST_CASE("an equality in parentheses is still a simple equality", "[model][filter][simple]") {
    CHECK(must_parse(R"(( userName eq "x" ))").as_simple_equality().has_value());
}

TEST_CASE("other operators are not simple equalities", "[model][filter][simple]") {
    CHECK_FALSE(must_parse(R"(userName ne "x")").as_simple_equality());
    CHECK_FALSE(must_parse(R"(userName co "x")").as_simple_equality());
    CHECK_FALSE(must_parse("userName pr").as_simple_equality());
    CHECK_FALSE(must_parse("userName eq null").as_simple_equality());
}

TEST_CASE("combined expressions are not simple equalities", "[model][filter][simple]") {
    CHECK_FALSE(must_parse(R"(userName eq "x" and active eq true)").as_simple_equality());
    CHECK_FALSE(must_parse(R"(userName eq "x" or userName eq "y")").as_simple_equality());
    CHECK_FALSE(must_parse(R"(not (userName eq "x"))").as_simple_equality());
}

TEST_CASE("sub-attribute, value-path, complex and boolean equalities are not simple",
          "[model][filter][simple]") {
    CHECK_FALSE(must_parse(R"(name.familyName eq "x")").as_simple_equality());
    CHECK_FALSE(must_parse(R"(emails[value eq "x"])").as_simple_equality());
    CHECK_FALSE(must_parse(R"(emails eq "x")").as_simple_equality());
    CHECK_FALSE(must_parse("active eq true").as_simple_equality());
}

TEST_CASE("a value filter's equality names the parent's sub-attribute", "[model][filter][simple]") {
    const auto eq = must_parse_value_filter("members", R"(value eq "2819c223")", group_type())
                        .as_simple_equality();
    REQUIRE(eq.has_value());
    CHECK(eq->attr == group_schema().find("members")->sub("value"));
    CHECK(eq->value == "2819c223");
}

TEST_CASE("a combined value filter is not a simple equality", "[model][filter][simple]") {
    CHECK_FALSE(must_parse_value_filter("emails", R"(value eq "x" and type eq "work")")
                    .as_simple_equality());
    CHECK_FALSE(must_parse_value_filter("emails", "primary eq true").as_simple_equality());
}

// --- Value filters (PATCH paths) --------------------------------------------------------------

TEST_CASE("a value filter names sub-attributes of its parent", "[model][filter][value]") {
    const auto f = must_parse_value_filter("emails", R"(type eq "work")");
    CHECK(f.matches_element(json{{"value", "a@b.c"}, {"type", "WORK"}}));
    CHECK_FALSE(f.matches_element(json{{"value", "a@b.c"}, {"type", "home"}}));
}

TEST_CASE("a members value filter matches the member element case-exactly",
          "[model][filter][value]") {
    const auto f = must_parse_value_filter("members", R"(value eq "abc")", group_type());
    CHECK(f.matches_element(json{{"value", "abc"}}));
    CHECK_FALSE(f.matches_element(json{{"value", "ABC"}}));
}

TEST_CASE("a value filter supports and, or, not and parentheses", "[model][filter][value]") {
    const auto f = must_parse_value_filter(
        "phoneNumbers", R"((type eq "mobile" or type eq "work") and not (value sw "+1"))");
    CHECK(f.matches_element(json{{"value", "+44 20"}, {"type", "mobile"}}));
    CHECK_FALSE(f.matches_element(json{{"value", "+1 555"}, {"type", "mobile"}}));
    CHECK_FALSE(f.matches_element(json{{"value", "+44 20"}, {"type", "fax"}}));
}

TEST_CASE("a value filter on an extension complex attribute works", "[model][filter][value]") {
    const auto f = must_parse_value_filter(enterprise + ":manager", R"(value eq "m1")");
    CHECK(f.matches_element(json{{"value", "m1"}}));
}

TEST_CASE("a value filter rejects names that are not sub-attributes of the parent",
          "[model][filter][value]") {
    auto f = filter::parse_value_filter(user_type(), ref_of("emails"), R"(userName eq "x")");
    REQUIRE_FALSE(f.has_value());
    CHECK(f.error().scim_type == "invalidFilter");
    CHECK_THAT(f.error().detail, Catch::Contains("position 1") && Catch::Contains("'userName'") &&
                                     Catch::Contains("not a sub-attribute of 'emails'"));
}

TEST_CASE("a value filter rejects dotted and URN-prefixed names", "[model][filter][value]") {
    CHECK_FALSE(filter::parse_value_filter(user_type(), ref_of("emails"), R"(emails.type eq "x")"));
    CHECK_FALSE(filter::parse_value_filter(user_type(), ref_of("emails"),
                                           std::string(user_schema_id) + R"(:type eq "x")"));
}

TEST_CASE("a value filter on a simple attribute is rejected", "[model][filter][value]") {
    auto f = filter::parse_value_filter(user_type(), ref_of("userName"), R"(value eq "x")");
    REQUIRE_FALSE(f.has_value());
    CHECK_THAT(f.error().detail, Catch::Contains("not a complex attribute"));
}

TEST_CASE("a value filter's syntax errors name the position within the filter text",
          "[model][filter][value]") {
    auto f = filter::parse_value_filter(user_type(), ref_of("emails"), R"(type eq "work" and)");
    REQUIRE_FALSE(f.has_value());
    CHECK_THAT(f.error().detail, Catch::Contains("position 19"));
}

TEST_CASE("a filter keeps matching after it is moved", "[model][filter]") {
    auto f = must_parse("title pr");
    auto g = std::move(f);
    CHECK(g.matches(barbara()));
}

// --- Sorting ----------------------------------------------------------------------------------

TEST_CASE("the sort value of a simple attribute is its value", "[model][filter][sort]") {
    const json u = barbara();
    const json* v = sort_value(ref_of("userName"), u);
    REQUIRE(v != nullptr);
    CHECK(*v == "BJensen@Example.com");
}

TEST_CASE("the sort value of a sub-attribute is found", "[model][filter][sort]") {
    const json u = barbara();
    const json* v = sort_value(ref_of("name.familyName"), u);
    REQUIRE(v != nullptr);
    CHECK(*v == "Jensen");
}

TEST_CASE("the sort value of a multi-valued attribute is the primary element's",
          "[model][filter][sort]") {
    json u = barbara();
    std::swap(u["emails"][0], u["emails"][1]);
    const json* v = sort_value(ref_of("emails.value"), u);
    REQUIRE(v != nullptr);
    CHECK(*v == "bjensen@example.com");
    const json* whole = sort_value(ref_of("emails"), u);
    REQUIRE(whole != nullptr);
    CHECK(*whole == "bjensen@example.com");
}

TEST_CASE("the sort value of a multi-valued attribute without primary is the first element's",
          "[model][filter][sort]") {
    json u = barbara();
    u["emails"][0].erase("primary");
    std::swap(u["emails"][0], u["emails"][1]);
    const json* v = sort_value(ref_of("emails.type"), u);
    REQUIRE(v != nullptr);
    CHECK(*v == "home");
}

TEST_CASE("the sort value of an extension attribute is found under its URN",
          "[model][filter][sort]") {
    const json u = barbara();
    const json* v = sort_value(ref_of(enterprise + ":department"), u);
    REQUIRE(v != nullptr);
    CHECK(*v == "Sales");
}

TEST_CASE("the sort value of an absent or null attribute is nullptr", "[model][filter][sort]") {
    json u = barbara();
    CHECK(sort_value(ref_of("nickName"), u) == nullptr);
    u["nickName"] = nullptr;
    CHECK(sort_value(ref_of("nickName"), u) == nullptr);
    u["emails"] = json::array();
    CHECK(sort_value(ref_of("emails.value"), u) == nullptr);
    u.erase(enterprise);
    CHECK(sort_value(ref_of(enterprise + ":department"), u) == nullptr);
}

TEST_CASE("absent sort values order after present ones", "[model][filter][sort]") {
    const json a = "x";
    const auto ref = ref_of("title");
    CHECK(compare_sort_values(ref, &a, nullptr) < 0);
    CHECK(compare_sort_values(ref, nullptr, &a) > 0);
    CHECK(compare_sort_values(ref, nullptr, nullptr) == 0);
}

TEST_CASE("case-insensitive attributes sort ignoring case", "[model][filter][sort]") {
    const json a = "alice", b = "BOB", c = "ALICE";
    const auto ref = ref_of("userName");
    CHECK(compare_sort_values(ref, &a, &b) < 0);
    CHECK(compare_sort_values(ref, &b, &a) > 0);
    CHECK(compare_sort_values(ref, &a, &c) == 0);
}

TEST_CASE("case-exact attributes sort by exact text", "[model][filter][sort]") {
    const json a = "alice", b = "BOB";
    CHECK(compare_sort_values(ref_of("externalId"), &a, &b) > 0);
}

TEST_CASE("dateTime attributes sort as instants", "[model][filter][sort]") {
    const json a = "2026-02-01T12:30:00+01:00", b = "2026-02-01T12:00:00Z";
    CHECK(compare_sort_values(ref_of("meta.lastModified"), &a, &b) < 0);
}

TEST_CASE("numbers sort numerically and booleans false first", "[model][filter][sort]") {
    const json nine = 9, ten = 10;
    CHECK(compare_sort_values(ref_of(device_urn + ":level", device_type()), &nine, &ten) < 0);
    const json f = false, t = true;
    CHECK(compare_sort_values(ref_of("active"), &f, &t) < 0);
}
