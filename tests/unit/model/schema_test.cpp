#include <catch2/catch.hpp>
#include <string>

#include "scimsync/model/ascii.hpp"
#include "scimsync/model/scim/schema.hpp"

using namespace scimsync::model::scim;
using nlohmann::json;

namespace {

const std::string enterprise(enterprise_user_schema_id);
const std::string core_user(user_schema_id);

attr_ref must_resolve(const resource_type& type, std::string_view path) {
    auto ref = resolve(type, path);
    INFO(std::string(path));
    REQUIRE(ref.has_value());
    return *ref;
}

const json* schema_attribute(const json& schema_json, std::string_view name) {
    for (const auto& a : schema_json.at("attributes"))
        if (a.at("name") == name) return &a;
    return nullptr;
}

const json* sub_attribute(const json& attribute_json, std::string_view name) {
    for (const auto& a : attribute_json.at("subAttributes"))
        if (a.at("name") == name) return &a;
    return nullptr;
}

}  // namespace

TEST_CASE("a core attribute resolves to its canonical spelling in the core schema",
          "[model][schema]") {
    const auto ref = must_resolve(user_type(), "userName");
    CHECK(ref.in == &user_schema());
    CHECK(ref.attr->name == "userName");
    CHECK(ref.sub == nullptr);
    CHECK_FALSE(ref.in_extension());
    CHECK(ref.canonical() == "userName");
}

TEST_CASE("attribute names resolve case-insensitively", "[model][schema]") {
    CHECK(must_resolve(user_type(), "USERNAME").canonical() == "userName");
    CHECK(must_resolve(user_type(), "username").canonical() == "userName");
    CHECK(must_resolve(group_type(), "DisplayName").canonical() == "displayName");
}

TEST_CASE("a sub-attribute path resolves to the attribute and its sub-attribute",
          "[model][schema]") {
    const auto ref = must_resolve(user_type(), "name.givenName");
    CHECK(ref.attr->name == "name");
    REQUIRE(ref.sub != nullptr);
    CHECK(ref.sub->name == "givenName");
    CHECK(&ref.target() == ref.sub);
    CHECK(ref.canonical() == "name.givenName");
}

TEST_CASE("sub-attribute names resolve case-insensitively", "[model][schema]") {
    CHECK(must_resolve(user_type(), "NAME.FAMILYNAME").canonical() == "name.familyName");
    CHECK(must_resolve(user_type(), "Emails.Value").canonical() == "emails.value");
}

TEST_CASE("a sub-attribute of a multi-valued attribute resolves", "[model][schema]") {
    const auto ref = must_resolve(group_type(), "members.value");
    CHECK(ref.attr->multi_valued);
    CHECK(ref.target().case_exact);
    CHECK(ref.canonical() == "members.value");
}

TEST_CASE("an extension attribute resolves through its URN prefix", "[model][schema]") {
    const auto ref = must_resolve(user_type(), enterprise + ":department");
    CHECK(ref.in == &enterprise_user_schema());
    CHECK(ref.in_extension());
    CHECK(ref.attr->name == "department");
    CHECK(ref.canonical() == enterprise + ":department");
}

TEST_CASE("an extension URN prefix is matched case-insensitively", "[model][schema]") {
    const auto ref = must_resolve(
        user_type(), "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department");
    CHECK(ref.in == &enterprise_user_schema());
    CHECK(ref.canonical() == enterprise + ":department");
}

TEST_CASE("an extension sub-attribute resolves through its URN prefix", "[model][schema]") {
    const auto ref = must_resolve(user_type(), enterprise + ":manager.value");
    CHECK(ref.attr->name == "manager");
    REQUIRE(ref.sub != nullptr);
    CHECK(ref.sub->name == "value");
    CHECK(ref.canonical() == enterprise + ":manager.value");
}

TEST_CASE("a core attribute written with the core URN prefix is not an extension attribute",
          "[model][schema]") {
    const auto ref = must_resolve(user_type(), core_user + ":userName");
    CHECK(ref.in == &user_schema());
    CHECK_FALSE(ref.in_extension());
    CHECK(ref.canonical() == "userName");
}

TEST_CASE("id and externalId resolve as common attributes of every resource type",
          "[model][schema]") {
    for (const auto* type : resource_types()) {
        CAPTURE(type->name);
        const auto id = must_resolve(*type, "id");
        CHECK(id.in == nullptr);
        CHECK(id.attr->case_exact);
        CHECK(id.attr->mut == mutability::read_only);
        const auto external = must_resolve(*type, "EXTERNALID");
        CHECK(external.in == nullptr);
        CHECK(external.canonical() == "externalId");
        CHECK(external.attr->case_exact);
    }
}

TEST_CASE("meta sub-attributes resolve with their types", "[model][schema]") {
    CHECK(must_resolve(user_type(), "meta.lastModified").target().type == attr_type::date_time);
    CHECK(must_resolve(user_type(), "meta.created").target().type == attr_type::date_time);
    CHECK(must_resolve(group_type(), "meta.resourceType").canonical() == "meta.resourceType");
    CHECK(must_resolve(group_type(), "META.VERSION").canonical() == "meta.version");
}

TEST_CASE("an unknown attribute does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(user_type(), "shoeSize").has_value());
    CHECK_FALSE(resolve(user_type(), "").has_value());
}

TEST_CASE("an unknown sub-attribute does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(user_type(), "name.nickName").has_value());
    CHECK_FALSE(resolve(user_type(), "meta.owner").has_value());
}

TEST_CASE("a sub-attribute of a simple attribute does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(user_type(), "userName.value").has_value());
}

TEST_CASE("an unknown schema URN does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(user_type(), "urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge")
                    .has_value());
}

TEST_CASE("an extension attribute without its URN prefix does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(user_type(), "department").has_value());
}

TEST_CASE("an attribute of another resource type does not resolve", "[model][schema]") {
    CHECK_FALSE(resolve(group_type(), "userName").has_value());
    CHECK_FALSE(resolve(group_type(), enterprise + ":department").has_value());
    CHECK_FALSE(resolve(user_type(), "members").has_value());
}

TEST_CASE("case-exactness follows RFC 7643 for the attributes clients filter on",
          "[model][schema]") {
    CHECK_FALSE(must_resolve(user_type(), "userName").target().case_exact);
    CHECK_FALSE(must_resolve(user_type(), "displayName").target().case_exact);
    CHECK_FALSE(must_resolve(user_type(), "emails.value").target().case_exact);
    CHECK_FALSE(must_resolve(group_type(), "displayName").target().case_exact);
    CHECK(must_resolve(group_type(), "members.value").target().case_exact);
    CHECK(must_resolve(user_type(), "id").target().case_exact);
}

TEST_CASE("the User schema as JSON lists its attributes with their characteristics",
          "[model][schema]") {
    const json j = to_json(user_schema());
    CHECK(j.at("id") == core_user);
    CHECK(j.at("schemas") == json{"urn:ietf:params:scim:schemas:core:2.0:Schema"});
    CHECK(j.at("attributes").size() == user_schema().attributes.size());
    const json* user_name = schema_attribute(j, "userName");
    REQUIRE(user_name != nullptr);
    CHECK(user_name->at("type") == "string");
    CHECK(user_name->at("required") == true);
    CHECK(user_name->at("caseExact") == false);
    CHECK(user_name->at("uniqueness") == "server");
    CHECK(user_name->at("multiValued") == false);
}

TEST_CASE("a multi-valued complex attribute as JSON lists its sub-attributes", "[model][schema]") {
    const json j = to_json(user_schema());
    const json* emails = schema_attribute(j, "emails");
    REQUIRE(emails != nullptr);
    CHECK(emails->at("type") == "complex");
    CHECK(emails->at("multiValued") == true);
    const json* type = sub_attribute(*emails, "type");
    REQUIRE(type != nullptr);
    CHECK(type->at("canonicalValues") == json{"work", "home", "other"});
    CHECK(sub_attribute(*emails, "value") != nullptr);
    CHECK(sub_attribute(*emails, "primary") != nullptr);
}

TEST_CASE("password is described as write-only and never returned", "[model][schema]") {
    const json j = to_json(user_schema());
    const json* password = schema_attribute(j, "password");
    REQUIRE(password != nullptr);
    CHECK(password->at("mutability") == "writeOnly");
    CHECK(password->at("returned") == "never");
}

TEST_CASE("the enterprise extension as JSON includes the manager and its sub-attributes",
          "[model][schema]") {
    const json j = to_json(enterprise_user_schema());
    CHECK(j.at("id") == enterprise);
    const json* manager = schema_attribute(j, "manager");
    REQUIRE(manager != nullptr);
    CHECK(sub_attribute(*manager, "value") != nullptr);
    CHECK(sub_attribute(*manager, "$ref") != nullptr);
    CHECK(schema_attribute(j, "department") != nullptr);
}

TEST_CASE("the Group schema as JSON describes displayName and members", "[model][schema]") {
    const json j = to_json(group_schema());
    CHECK(j.at("id") == std::string(group_schema_id));
    const json* members = schema_attribute(j, "members");
    REQUIRE(members != nullptr);
    CHECK(members->at("multiValued") == true);
    const json* value = sub_attribute(*members, "value");
    REQUIRE(value != nullptr);
    CHECK(value->at("caseExact") == true);
    CHECK(value->at("mutability") == "immutable");
    CHECK(schema_attribute(j, "displayName") != nullptr);
}

TEST_CASE("the User resource type as JSON names its endpoint and the enterprise extension",
          "[model][schema]") {
    const json j = to_json(user_type());
    CHECK(j.at("endpoint") == "/Users");
    CHECK(j.at("schema") == core_user);
    REQUIRE(j.at("schemaExtensions").size() == 1);
    CHECK(j.at("schemaExtensions")[0].at("schema") == enterprise);
    CHECK(j.at("schemaExtensions")[0].at("required") == false);
}

TEST_CASE("the Group resource type as JSON has no extensions", "[model][schema]") {
    const json j = to_json(group_type());
    CHECK(j.at("endpoint") == "/Groups");
    CHECK(j.at("schemaExtensions").empty());
}

TEST_CASE("a resource type finds its schemas by URN case-insensitively", "[model][schema]") {
    CHECK(user_type().schema_by_urn("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER") ==
          &user_schema());
    CHECK(user_type().schema_by_urn(enterprise) == &enterprise_user_schema());
    CHECK(group_type().schema_by_urn(enterprise) == nullptr);
}

TEST_CASE("iequals compares ASCII case-insensitively and requires equal lengths",
          "[model][schema]") {
    CHECK(iequals("userName", "USERNAME"));
    CHECK_FALSE(iequals("userName", "userNames"));
    CHECK(iequals("", ""));
}

TEST_CASE("case-insensitive names fold A-Z only and leave other bytes as they are",
          "[model][schema]") {
    namespace ascii = scimsync::model::ascii;
    REQUIRE(iequals("userName", "USERNAME"));
    REQUIRE(iequals("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department",
                    enterprise + ":department"));
    REQUIRE_FALSE(iequals("userName", "userNam"));
    REQUIRE_FALSE(iequals("a[", "A{"));  // '[' and '{' differ by the same bit as 'A' and 'a'
    REQUIRE(ascii::lowered("Barbara.JENSEN@Example.COM") == "barbara.jensen@example.com");
    // UTF-8 bytes are not ASCII letters: "\xc3\x84" (A umlaut) stays, and never equals "\xc3\xa4".
    REQUIRE(ascii::lowered("\xc3\x84X") == "\xc3\x84x");
    REQUIRE_FALSE(iequals("\xc3\x84", "\xc3\xa4"));
    REQUIRE(ascii::lower('@') == '@');
    REQUIRE(ascii::lower('Z') == 'z');
}
