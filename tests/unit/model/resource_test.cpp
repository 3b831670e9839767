#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "scimsync/model/scim/resource.hpp"

namespace scim = scimsync::model::scim;
using nlohmann::json;

namespace {

const std::string user_urn{scim::user_schema_id};
const std::string group_urn{scim::group_schema_id};
const std::string enterprise_urn{scim::enterprise_user_schema_id};

scim::normalized normalized_user(const json& body) {
    auto r = scim::normalize(scim::user_type(), body);
    INFO((r ? std::string() : r.error().detail));
    REQUIRE(r.has_value());
    return *r;
}

json user(const json& body) {
    return normalized_user(body).resource;
}

json group(const json& body) {
    auto r = scim::normalize(scim::group_type(), body);
    INFO((r ? std::string() : r.error().detail));
    REQUIRE(r.has_value());
    return r->resource;
}

scim::scim_error rejected(const scim::resource_type& type, const json& body) {
    auto r = scim::normalize(type, body);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

bool mentions(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

json stored_user() {
    return json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "u1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@example.org", "type": "home"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"department": "Sales", "manager": {"value": "m1"}},
        "meta": {"resourceType": "User", "version": "W/\"3\"", "location": "/Users/u1"}
    })");
}

json stored_group() {
    return json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "displayName": "Sales",
        "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}],
        "meta": {"resourceType": "Group", "version": "W/\"7\""}
    })");
}

json project_user(const std::vector<std::string>& attributes,
                  const std::vector<std::string>& excluded = {}) {
    return scim::project(scim::user_type(), stored_user(), attributes, excluded);
}

}  // namespace

// normalize: shape and names

TEST_CASE("a body that is not a JSON object is rejected as invalidSyntax", "[model][resource]") {
    for (const auto& body : {json::array(), json("x"), json(nullptr), json(3)}) {
        CAPTURE(body.dump());
        const auto e = rejected(scim::user_type(), body);
        REQUIRE(e.status == 400);
        REQUIRE(e.scim_type == "invalidSyntax");
    }
}

TEST_CASE("attribute names in any case are stored in their canonical spelling",
          "[model][resource]") {
    const auto r = user({{"USERNAME", "bjensen"},
                         {"Name", {{"GIVENNAME", "Barbara"}, {"familyname", "Jensen"}}},
                         {"EMAILS", {{{"VALUE", "b@example.com"}, {"Type", "work"}}}}});
    REQUIRE(r["userName"] == "bjensen");
    REQUIRE(r["name"] == json{{"givenName", "Barbara"}, {"familyName", "Jensen"}});
    REQUIRE(r["emails"] == json::array({{{"value", "b@example.com"}, {"type", "work"}}}));
    REQUIRE_FALSE(r.contains("USERNAME"));
}

TEST_CASE("a value matching a canonical value in another case is stored canonically",
          "[model][resource]") {
    const auto r = user({{"userName", "b"}, {"emails", {{{"value", "b@x"}, {"type", "WORK"}}}}});
    REQUIRE(r["emails"][0]["type"] == "work");
}

TEST_CASE("schemas is rebuilt from the core schema and the extensions present",
          "[model][resource]") {
    SECTION("an extension listed but not sent is not listed") {
        const auto r = user(
            {{"schemas", {user_urn, enterprise_urn, "urn:example:unknown"}}, {"userName", "b"}});
        REQUIRE(r["schemas"] == json::array({user_urn}));
    }
    SECTION("an extension sent but not listed is listed") {
        const auto r = user({{"userName", "b"}, {enterprise_urn, {{"department", "Sales"}}}});
        REQUIRE(r["schemas"] == json::array({user_urn, enterprise_urn}));
    }
    SECTION("a missing schemas is supplied") {
        REQUIRE(group({{"displayName", "Sales"}})["schemas"] == json::array({group_urn}));
    }
}

TEST_CASE("id and meta sent by the client are ignored", "[model][resource]") {
    const auto r = user({{"id", "client-chosen"},
                         {"userName", "b"},
                         {"meta", {{"resourceType", "User"}, {"version", "W/\"1\""}}}});
    REQUIRE_FALSE(r.contains("id"));
    REQUIRE_FALSE(r.contains("meta"));
}

TEST_CASE("read-only groups on a User are ignored whatever their value", "[model][resource]") {
    for (const auto& groups : {json::array(), json::array({{{"value", "g1"}, {"display", "G"}}}),
                               json("not even a list")}) {
        CAPTURE(groups.dump());
        const auto r = user({{"userName", "b"}, {"groups", groups}});
        REQUIRE_FALSE(r.contains("groups"));
    }
}

TEST_CASE("unknown attributes are ignored, not rejected", "[model][resource]") {
    const auto r = user({{"userName", "b"}, {"favouriteColour", {{"deep", true}}}, {"x", 1}});
    REQUIRE(r == json{{"schemas", {user_urn}}, {"userName", "b"}});
}

TEST_CASE("attributes of schema URNs the server does not implement are ignored",
          "[model][resource]") {
    const auto r = user(json::parse(R"({
        "userName": "b",
        "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User": {"tag": "x"},
        "urn:ietf:params:scim:schemas:extension:Microsoft:Entra:2.0:User:costCode": "1",
        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User": {"a": 1}
    })"));
    REQUIRE(r == json{{"schemas", {user_urn}}, {"userName", "b"}});
}

// normalize: values

TEST_CASE("booleans sent as the strings True and False in any case become booleans",
          "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"active", "False"},
                         {"emails", {{{"value", "b@x"}, {"primary", "TRUE"}}}}});
    REQUIRE(r["active"] == false);
    REQUIRE(r["emails"][0]["primary"] == true);
    REQUIRE(user({{"userName", "b"}, {"active", "true"}})["active"] == true);
}

TEST_CASE("a boolean attribute given anything but a boolean is rejected naming the attribute",
          "[model][resource]") {
    for (const auto& v : {json("yes"), json(1), json::object({{"a", 1}})}) {
        CAPTURE(v.dump());
        const auto e = rejected(scim::user_type(), {{"userName", "b"}, {"active", v}});
        REQUIRE(e.scim_type == "invalidValue");
        REQUIRE(mentions(e.detail, "active"));
    }
    const auto e = rejected(
        scim::user_type(), {{"userName", "b"}, {"emails", {{{"value", "b@x"}, {"primary", "1"}}}}});
    REQUIRE(mentions(e.detail, "emails.primary"));
}

TEST_CASE("a string attribute given an object, an array or a boolean is rejected naming it",
          "[model][resource]") {
    for (const auto& v : {json::object({{"a", 1}}), json::array({"a"}), json(true)}) {
        CAPTURE(v.dump());
        const auto e = rejected(scim::user_type(), {{"userName", "b"}, {"title", v}});
        REQUIRE(e.status == 400);
        REQUIRE(e.scim_type == "invalidValue");
        REQUIRE(mentions(e.detail, "title"));
    }
}

TEST_CASE("userName given an object is rejected as invalidValue", "[model][resource]") {
    const auto e = rejected(scim::user_type(), {{"userName", {{"value", "b"}}}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, "userName"));
}

TEST_CASE("a number given for a string attribute is stored as its decimal text",
          "[model][resource]") {
    const auto r = user({{"userName", "b"}, {enterprise_urn, {{"employeeNumber", 100009}}}});
    REQUIRE(r[enterprise_urn]["employeeNumber"] == "100009");
}

TEST_CASE("null values mean no value and are dropped", "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"displayName", nullptr},
                         {"name", {{"givenName", "B"}, {"middleName", nullptr}}},
                         {"emails", {nullptr}},
                         {enterprise_urn, nullptr}});
    REQUIRE(r == json{{"schemas", {user_urn}}, {"userName", "b"}, {"name", {{"givenName", "B"}}}});
}

TEST_CASE("empty strings, arrays and objects are dropped", "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"nickName", ""},
                         {"roles", json::array()},
                         {"name", json::object()},
                         {"addresses", {json::object()}},
                         {enterprise_urn, json::object()}});
    REQUIRE(r == json{{"schemas", {user_urn}}, {"userName", "b"}});
}

TEST_CASE("a complex value whose sub-attributes are all empty is dropped", "[model][resource]") {
    const auto r =
        user({{"userName", "b"}, {"name", {{"givenName", ""}, {"familyName", nullptr}}}});
    REQUIRE_FALSE(r.contains("name"));
}

TEST_CASE("unknown and read-only sub-attributes are dropped", "[model][resource]") {
    const auto r =
        user({{"userName", "b"}, {"name", {{"givenName", "B"}, {"nickname", "x"}, {"$ref", "y"}}}});
    REQUIRE(r["name"] == json{{"givenName", "B"}});
}

TEST_CASE("a single object for a multi-valued attribute is taken as a one-element list",
          "[model][resource]") {
    const auto r = user({{"userName", "b"}, {"emails", {{"value", "b@x"}, {"type", "work"}}}});
    REQUIRE(r["emails"] == json::array({{{"value", "b@x"}, {"type", "work"}}}));
}

TEST_CASE("elements of a multi-valued attribute without a value are dropped", "[model][resource]") {
    const auto r =
        user({{"userName", "b"},
              {"phoneNumbers",
               {{{"type", "mobile"}, {"value", ""}}, {{"type", "work"}, {"value", "+1 555"}}}}});
    REQUIRE(r["phoneNumbers"] == json::array({{{"type", "work"}, {"value", "+1 555"}}}));
}

TEST_CASE("a multi-valued attribute given bare values takes them as element values",
          "[model][resource]") {
    const auto r = user({{"userName", "b"}, {"emails", {"a@x", "b@x"}}});
    REQUIRE(r["emails"] == json::array({{{"value", "a@x"}}, {{"value", "b@x"}}}));
}

TEST_CASE("only the first element marked primary stays primary", "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"emails",
                          {{{"value", "a@x"}, {"primary", false}},
                           {{"value", "b@x"}, {"primary", true}},
                           {{"value", "c@x"}, {"primary", "True"}}}}});
    REQUIRE(r["emails"][0]["primary"] == false);
    REQUIRE(r["emails"][1]["primary"] == true);
    REQUIRE(r["emails"][2]["primary"] == false);
}

TEST_CASE("duplicate elements are merged into the first, which keeps a primary mark",
          "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"emails",
                          {{{"value", "B@x.com"}, {"type", "work"}},
                           {{"value", "b@X.com"}, {"type", "Work"}, {"primary", true}},
                           {{"value", "b@x.com"}, {"type", "home"}}}}});
    REQUIRE(r["emails"] == json::array({{{"value", "B@x.com"}, {"type", "work"}, {"primary", true}},
                                        {{"value", "b@x.com"}, {"type", "home"}}}));
}

TEST_CASE("externalId is kept as a string and rejected as an object", "[model][resource]") {
    REQUIRE(user({{"userName", "b"}, {"EXTERNALID", "00u1"}})["externalId"] == "00u1");
    const auto e = rejected(scim::user_type(), {{"userName", "b"}, {"externalId", {{"a", 1}}}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, "externalId"));
}

// normalize: required attributes

TEST_CASE("a User without userName is rejected as invalidValue", "[model][resource]") {
    const auto e = rejected(scim::user_type(), {{"displayName", "B"}});
    REQUIRE(e.status == 400);
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(e.detail == "userName is required");
}

TEST_CASE("a User with an empty or null userName is rejected as missing it", "[model][resource]") {
    for (const auto& v : {json(""), json(nullptr)}) {
        CAPTURE(v.dump());
        REQUIRE(rejected(scim::user_type(), {{"userName", v}}).detail == "userName is required");
    }
}

TEST_CASE("a Group without displayName is rejected as invalidValue", "[model][resource]") {
    const auto e = rejected(scim::group_type(), {{"members", json::array()}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(e.detail == "displayName is required");
}

// normalize: the enterprise extension

TEST_CASE("the enterprise extension object is stored under its canonical URN whatever its case",
          "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
                          {{"Department", "Sales"}, {"unknown", "x"}}}});
    REQUIRE(r[enterprise_urn] == json{{"department", "Sales"}});
}

TEST_CASE("a flattened extension attribute key is stored under its URN object",
          "[model][resource]") {
    const auto r = user({{"userName", "b"}, {enterprise_urn + ":department", "Sales"}});
    REQUIRE(r[enterprise_urn] == json{{"department", "Sales"}});
    REQUIRE(r["schemas"] == json::array({user_urn, enterprise_urn}));
    REQUIRE_FALSE(r.contains(enterprise_urn + ":department"));
}

TEST_CASE("a flattened extension key refines the URN object sent in the same body",
          "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {enterprise_urn, {{"department", "Old"}, {"division", "D"}}},
                         {enterprise_urn + ":department", "New"}});
    REQUIRE(r[enterprise_urn] == json{{"department", "New"}, {"division", "D"}});
}

TEST_CASE("a dotted sub-attribute key is stored inside its complex attribute",
          "[model][resource]") {
    const auto r = user({{"userName", "b"},
                         {"name", {{"familyName", "Jensen"}}},
                         {"name.givenName", "Barbara"},
                         {enterprise_urn + ":manager.value", "m1"}});
    REQUIRE(r["name"] == json{{"familyName", "Jensen"}, {"givenName", "Barbara"}});
    REQUIRE(r[enterprise_urn]["manager"] == json{{"value", "m1"}});
}

TEST_CASE("a core attribute key prefixed with the core schema URN is stored at the top level",
          "[model][resource]") {
    const auto r = user({{user_urn + ":userName", "b"}});
    REQUIRE(r["userName"] == "b");
}

TEST_CASE("the enterprise manager sent as a bare id is stored as its value", "[model][resource]") {
    const auto r = user({{"userName", "b"}, {enterprise_urn, {{"manager", "26118915-6090"}}}});
    REQUIRE(r[enterprise_urn]["manager"] == json{{"value", "26118915-6090"}});
    const auto flat = user({{"userName", "b"}, {enterprise_urn + ":manager", "m2"}});
    REQUIRE(flat[enterprise_urn]["manager"] == json{{"value", "m2"}});
}

TEST_CASE("the manager's read-only displayName is dropped while value and $ref stay",
          "[model][resource]") {
    const auto r = user(
        {{"userName", "b"},
         {enterprise_urn,
          {{"manager", {{"value", "m1"}, {"$ref", "../Users/m1"}, {"displayName", "Boss"}}}}}});
    REQUIRE(r[enterprise_urn]["manager"] == json{{"value", "m1"}, {"$ref", "../Users/m1"}});
}

TEST_CASE("the extension given something other than an object is rejected naming its URN",
          "[model][resource]") {
    const auto e = rejected(scim::user_type(), {{"userName", "b"}, {enterprise_urn, "Sales"}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, enterprise_urn));
}

TEST_CASE("an extension type error names the URN-prefixed attribute path", "[model][resource]") {
    const auto e =
        rejected(scim::user_type(), {{"userName", "b"}, {enterprise_urn, {{"department", {"a"}}}}});
    REQUIRE(e.detail == enterprise_urn + ":department must be a string");
}

// normalize: password

TEST_CASE("password is taken out of the resource and returned separately", "[model][resource]") {
    const auto n = normalized_user({{"userName", "b"}, {"PASSWORD", "t1meMa$heen"}});
    REQUIRE(n.password == "t1meMa$heen");
    REQUIRE_FALSE(n.resource.contains("password"));
    REQUIRE_FALSE(n.resource.dump().contains("t1meMa$heen"));
}

TEST_CASE("a body without password returns no password", "[model][resource]") {
    REQUIRE_FALSE(normalized_user({{"userName", "b"}}).password.has_value());
    REQUIRE_FALSE(normalized_user({{"userName", "b"}, {"password", nullptr}}).password);
}

TEST_CASE("a password that is not a string is rejected without echoing it", "[model][resource]") {
    const auto e = rejected(scim::user_type(), {{"userName", "b"}, {"password", {{"s3cr3t", 1}}}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, "password"));
    REQUIRE_FALSE(mentions(e.detail, "s3cr3t"));
}

// normalize: Group members

TEST_CASE("group members sent without a type are stored without one", "[model][resource]") {
    const auto r = group({{"displayName", "G"}, {"members", {{{"value", "u1"}}}}});
    REQUIRE(r["members"] == json::array({{{"value", "u1"}}}));
}

TEST_CASE("a group member without a value is rejected as invalidValue", "[model][resource]") {
    const auto e =
        rejected(scim::group_type(), {{"displayName", "G"}, {"members", {{{"type", "User"}}}}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, "members.value"));
}

TEST_CASE("a group member's display and null $ref are dropped", "[model][resource]") {
    const auto r =
        group({{"displayName", "G"},
               {"members", {{{"value", "u1"}, {"display", "Barbara"}, {"$ref", nullptr}}}}});
    REQUIRE(r["members"] == json::array({{{"value", "u1"}}}));
}

TEST_CASE("group members are deduplicated by value alone", "[model][resource]") {
    const auto r = group({{"displayName", "G"},
                          {"members",
                           {{{"value", "u1"}, {"type", "User"}},
                            {{"value", "u2"}},
                            {{"value", "u1"}},
                            {{"value", "U1"}}}}});
    REQUIRE(
        r["members"] ==
        json::array({{{"value", "u1"}, {"type", "User"}}, {{"value", "u2"}}, {{"value", "U1"}}}));
}

TEST_CASE("a group member type is stored canonically and must be User or Group",
          "[model][resource]") {
    const auto r =
        group({{"displayName", "G"}, {"members", {{{"value", "g2"}, {"type", "group"}}}}});
    REQUIRE(r["members"][0]["type"] == "Group");
    const auto e =
        rejected(scim::group_type(),
                 {{"displayName", "G"}, {"members", {{{"value", "d"}, {"type", "Device"}}}}});
    REQUIRE(e.scim_type == "invalidValue");
    REQUIRE(mentions(e.detail, "members.type"));
}

TEST_CASE("group members given as bare ids are taken as member values", "[model][resource]") {
    const auto r = group({{"displayName", "G"}, {"members", {"u1", "u2"}}});
    REQUIRE(r["members"] == json::array({{{"value", "u1"}}, {{"value", "u2"}}}));
}

// normalize: bodies real clients send (issue 3; Okta's and Microsoft's SCIM documentation)

TEST_CASE("Okta's create-user body is accepted with groups ignored and password set aside",
          "[model][resource]") {
    const auto n = normalized_user(json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": "True"
    })"));
    REQUIRE(n.password == "1mz050nq");
    REQUIRE(n.resource == json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "active": true
    })"));
}

TEST_CASE("Entra's create-user body with the enterprise extension is accepted",
          "[model][resource]") {
    const auto r = user(json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{"primary": true, "type": "work",
                    "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "title": null,
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "100009",
            "manager": "26118915-6090-4f7b-a5a5-bff0e6bf2ecd"
        },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
        "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User": {"tag": "x"}
    })"));
    REQUIRE(r == json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{"primary": true, "type": "work",
                    "value": "Test_User_fd0ea19b@testuser.com"}],
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "100009",
            "department": "Sales",
            "manager": {"value": "26118915-6090-4f7b-a5a5-bff0e6bf2ecd"}
        }
    })"));
}

TEST_CASE("Entra's create-group body with a Microsoft schema URI is accepted",
          "[model][resource]") {
    const auto r = group(json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"}
    })"));
    REQUIRE(r == json{{"schemas", {group_urn}},
                      {"externalId", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"},
                      {"displayName", "displayName"}});
}

TEST_CASE("Okta's create-group body with an empty member list is accepted", "[model][resource]") {
    const auto r = group(json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv2",
        "members": []
    })"));
    REQUIRE(r == json{{"schemas", {group_urn}}, {"displayName", "Test SCIMv2"}});
}

TEST_CASE("Okta's group PUT with members lacking type and carrying display is accepted",
          "[model][resource]") {
    const auto r = group(json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2",
        "members": [{"value": "b1c794f24f4c49f4b5d503a4cb2686ea",
                     "display": "SCIM 2 Group A"}]
    })"));
    REQUIRE(r == json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv2",
        "members": [{"value": "b1c794f24f4c49f4b5d503a4cb2686ea"}]
    })"));
}

TEST_CASE("normalising a normalised resource gives it back unchanged", "[model][resource]") {
    json stored = stored_user();
    stored.erase("id");
    stored.erase("meta");
    REQUIRE(user(stored) == stored);
}

// project

TEST_CASE("without attributes or excludedAttributes the whole resource is returned",
          "[model][resource]") {
    REQUIRE(project_user({}) == stored_user());
}

TEST_CASE("password is never returned, not even when requested", "[model][resource]") {
    json stored = stored_user();
    stored["password"] = "s3cr3t";
    REQUIRE_FALSE(scim::project(scim::user_type(), stored, {}, {}).contains("password"));
    const auto r = scim::project(scim::user_type(), stored, {"password", "userName"}, {});
    REQUIRE_FALSE(r.contains("password"));
    REQUIRE(r["userName"] == "bjensen");
}

TEST_CASE("attributes=userName returns userName with id, schemas and meta only",
          "[model][resource]") {
    const auto stored = stored_user();
    REQUIRE(project_user({"userName"}) == json{{"schemas", {user_urn}},
                                               {"id", "u1"},
                                               {"meta", stored["meta"]},
                                               {"userName", "bjensen"}});
}

TEST_CASE("attribute names in attributes are case-insensitive", "[model][resource]") {
    const auto r = project_user({"USERNAME", "Name.GivenName"});
    REQUIRE(r["userName"] == "bjensen");
    REQUIRE(r["name"] == json{{"givenName", "Barbara"}});
}

TEST_CASE("a sub-attribute in attributes returns only that sub-attribute", "[model][resource]") {
    const auto r = project_user({"name.familyName"});
    REQUIRE(r["name"] == json{{"familyName", "Jensen"}});
    REQUIRE_FALSE(r.contains("userName"));
}

TEST_CASE("sub-attributes of a multi-valued attribute are returned from every element",
          "[model][resource]") {
    const auto r = project_user({"emails.value", "emails.type"});
    REQUIRE(r["emails"] == json::array({{{"value", "bjensen@example.com"}, {"type", "work"}},
                                        {{"value", "babs@example.org"}, {"type", "home"}}}));
}

TEST_CASE("an extension URN in attributes returns the whole extension", "[model][resource]") {
    const auto r = project_user({enterprise_urn});
    REQUIRE(r[enterprise_urn] == stored_user()[enterprise_urn]);
    REQUIRE(r["schemas"] == json::array({user_urn, enterprise_urn}));
    REQUIRE_FALSE(r.contains("userName"));
}

TEST_CASE("an extension attribute path in attributes returns only that attribute",
          "[model][resource]") {
    const auto r = project_user({enterprise_urn + ":manager.value"});
    REQUIRE(r[enterprise_urn] == json{{"manager", {{"value", "m1"}}}});
}

TEST_CASE("an extension left out of the response is left out of schemas", "[model][resource]") {
    REQUIRE(project_user({"userName"})["schemas"] == json::array({user_urn}));
    REQUIRE(project_user({}, {enterprise_urn})["schemas"] == json::array({user_urn}));
}

TEST_CASE("unknown names in attributes are ignored", "[model][resource]") {
    const auto r = project_user({"shoeSize", "urn:example:ext:x", "userName"});
    REQUIRE(r["userName"] == "bjensen");
    REQUIRE(r.size() == 4);
}

TEST_CASE("attributes naming only unknown attributes return the always-returned ones",
          "[model][resource]") {
    REQUIRE(project_user({"shoeSize"}) ==
            json{{"schemas", {user_urn}}, {"id", "u1"}, {"meta", stored_user()["meta"]}});
}

TEST_CASE("attributes wins over excludedAttributes when both are given", "[model][resource]") {
    const auto r = project_user({"userName"}, {"userName"});
    REQUIRE(r["userName"] == "bjensen");
}

TEST_CASE("excludedAttributes=members returns a Group without its members", "[model][resource]") {
    const auto r = scim::project(scim::group_type(), stored_group(), {}, {"members"});
    auto expected = stored_group();
    expected.erase("members");
    REQUIRE(r == expected);
}

TEST_CASE("excludedAttributes never removes id, schemas or meta", "[model][resource]") {
    const auto r = project_user({}, {"id", "schemas", "meta", "meta.version", "userName"});
    REQUIRE(r["id"] == "u1");
    REQUIRE(r["schemas"] == stored_user()["schemas"]);
    REQUIRE(r["meta"] == stored_user()["meta"]);
    REQUIRE_FALSE(r.contains("userName"));
}

TEST_CASE("excluding a sub-attribute removes it from every element", "[model][resource]") {
    const auto r = project_user({}, {"Emails.Type", "emails.primary"});
    REQUIRE(r["emails"] ==
            json::array({{{"value", "bjensen@example.com"}}, {{"value", "babs@example.org"}}}));
}

TEST_CASE("excluding every attribute of the extension removes it and its schema",
          "[model][resource]") {
    const auto r = project_user({}, {enterprise_urn + ":department", enterprise_urn + ":manager"});
    REQUIRE_FALSE(r.contains(enterprise_urn));
    REQUIRE(r["schemas"] == json::array({user_urn}));
}

TEST_CASE("unknown names in excludedAttributes are ignored", "[model][resource]") {
    REQUIRE(project_user({}, {"shoeSize", "name.nickname", "urn:example:x"}) == stored_user());
}

// split_attribute_list

TEST_CASE("an attribute list is split on commas and trimmed", "[model][resource]") {
    REQUIRE(scim::split_attribute_list(" userName ,name.givenName,\temails.value ") ==
            std::vector<std::string>{"userName", "name.givenName", "emails.value"});
}

TEST_CASE("empty items in an attribute list are skipped", "[model][resource]") {
    REQUIRE(scim::split_attribute_list("").empty());
    REQUIRE(scim::split_attribute_list(",userName,, ,") == std::vector<std::string>{"userName"});
}

TEST_CASE("a stored user is its own default projection", "[model][resource]") {
    // The daemon answers a user in full with the stored text plus meta, without project().
    const json stored = user({{"schemas", {user_urn, enterprise_urn}},
                              {"userName", "bjensen"},
                              {"externalId", "00u1"},
                              {"name", {{"givenName", "Barbara"}, {"familyName", "Jensen"}}},
                              {"emails", {{{"value", "b@example.com"}, {"primary", true}}}},
                              {"phoneNumbers", {{{"value", "+1 555"}, {"type", "mobile"}}}},
                              {"active", true},
                              {"password", "secret"},
                              {enterprise_urn, {{"department", "Eng"}, {"manager", "u9"}}}});
    json with_id = stored;
    with_id["id"] = "u1";
    REQUIRE(scim::project(scim::user_type(), with_id, {}, {}) == with_id);
    json plain = user({{"userName", "plain"}});
    plain["id"] = "u2";
    REQUIRE(scim::project(scim::user_type(), plain, {}, {}) == plain);
}
