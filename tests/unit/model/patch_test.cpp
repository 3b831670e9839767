#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "scimsync/model/scim/patch.hpp"

using nlohmann::json;
using scimsync::model::scim::apply_patch;
using scimsync::model::scim::group_type;
using scimsync::model::scim::patch_result;
using scimsync::model::scim::resource_type;
using scimsync::model::scim::scim_error;
using scimsync::model::scim::user_type;

namespace {

const std::string patch_op = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const std::string enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const std::string alice_id = "2819c223-7f76-453a-919d-413861904646";
const std::string bob_id = "902c246b-6245-4190-8e05-00816be7344a";
const std::string carol_id = "23a35c27-23d3-4c03-b4c5-6443c09e7173";

json body(json operations) {
    return {{"schemas", {patch_op}}, {"Operations", std::move(operations)}};
}

json op(json operation) {
    return body(json::array({std::move(operation)}));
}

// A stored User: canonical names, extension under its URN, no nulls, no meta.
json stored_user() {
    json u = json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}]
    })");
    u["schemas"].push_back(enterprise);
    u[enterprise] = {{"employeeNumber", "701984"}, {"department", "Tour Operations"}};
    return u;
}

json stored_group() {
    return json::parse(R"({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"},
                    {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "User"}]
    })");
}

patch_result patched(const resource_type& type, const json& resource, const json& request) {
    auto r = apply_patch(type, resource, request);
    INFO((r ? std::string() : r.error().scim_type + ": " + r.error().detail));
    REQUIRE(r.has_value());
    return std::move(*r);
}

patch_result patched_user(const json& request) {
    return patched(user_type(), stored_user(), request);
}

patch_result patched_group(const json& request) {
    return patched(group_type(), stored_group(), request);
}

scim_error rejected(const resource_type& type, const json& resource, const json& request) {
    auto r = apply_patch(type, resource, request);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 400);
    return r.error();
}

scim_error rejected_user(const json& request) {
    return rejected(user_type(), stored_user(), request);
}

scim_error rejected_group(const json& request) {
    return rejected(group_type(), stored_group(), request);
}

json member_values(const json& group) {
    json out = json::array();
    for (const auto& m : group.value("members", json::array())) out.push_back(m["value"]);
    return out;
}

}  // namespace

// --- Body shape ------------------------------------------------------------------------------

TEST_CASE("a body without an Operations array is rejected as invalidSyntax", "[model][patch]") {
    const auto e = rejected_user({{"schemas", {patch_op}}});
    CHECK(e.scim_type == "invalidSyntax");
    CHECK(rejected_user({{"schemas", {patch_op}}, {"Operations", {{"op", "add"}}}}).scim_type ==
          "invalidSyntax");
}

TEST_CASE("an empty Operations array is rejected as invalidSyntax", "[model][patch]") {
    CHECK(rejected_user(body(json::array())).scim_type == "invalidSyntax");
}

TEST_CASE("a PATCH body that is not a JSON object is rejected as invalidSyntax", "[model][patch]") {
    CHECK(rejected_user(json::array({{{"op", "add"}}})).scim_type == "invalidSyntax");
}

TEST_CASE("a body whose schemas do not name PatchOp is rejected as invalidSyntax",
          "[model][patch]") {
    json request = op({{"op", "replace"}, {"path", "displayName"}, {"value", "x"}});
    request["schemas"] = {"urn:ietf:params:scim:schemas:core:2.0:User"};
    CHECK(rejected_user(request).scim_type == "invalidSyntax");
}

TEST_CASE("an operation without op is rejected as invalidSyntax naming its 1-based index",
          "[model][patch]") {
    const auto e = rejected_user(body({{{"op", "replace"}, {"path", "title"}, {"value", "x"}},
                                       {{"path", "title"}, {"value", "y"}}}));
    CHECK(e.scim_type == "invalidSyntax");
    CHECK_THAT(e.detail, Catch::Contains("operation 2"));
}

TEST_CASE("an unknown op is rejected as invalidSyntax naming the op", "[model][patch]") {
    const auto e = rejected_user(op({{"op", "move"}, {"path", "title"}, {"value", "x"}}));
    CHECK(e.scim_type == "invalidSyntax");
    CHECK_THAT(e.detail, Catch::Contains("operation 1") && Catch::Contains("move"));
}

TEST_CASE("an operation that is not an object is rejected as invalidSyntax", "[model][patch]") {
    CHECK(rejected_user(body({"add"})).scim_type == "invalidSyntax");
}

TEST_CASE("an add or replace without a value is rejected as invalidValue naming the operation",
          "[model][patch]") {
    auto e = rejected_user(op({{"op", "add"}, {"path", "title"}}));
    CHECK(e.scim_type == "invalidValue");
    CHECK_THAT(e.detail, Catch::Contains("operation 1"));
    e = rejected_user(body({{{"op", "remove"}, {"path", "title"}}, {{"op", "replace"}}}));
    CHECK(e.scim_type == "invalidValue");
    CHECK_THAT(e.detail, Catch::Contains("operation 2"));
}

TEST_CASE("a path that is not a string is rejected as invalidSyntax", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", 7}, {"value", "x"}})).scim_type ==
          "invalidSyntax");
}

TEST_CASE("remove without a path is rejected as noTarget", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "remove"}})).scim_type == "noTarget");
    CHECK(rejected_user(op({{"op", "remove"}, {"path", ""}})).scim_type == "noTarget");
}

TEST_CASE("op names are accepted in any case", "[model][patch]") {
    const auto r = patched_user(body({{{"op", "Add"}, {"path", "nickName"}, {"value", "Babs"}},
                                      {{"op", "REPLACE"}, {"path", "title"}, {"value", "Guide"}},
                                      {{"op", "Remove"}, {"path", "displayName"}}}));
    CHECK(r.resource["nickName"] == "Babs");
    CHECK(r.resource["title"] == "Guide");
    CHECK_FALSE(r.resource.contains("displayName"));
}

TEST_CASE("operations apply in order, each seeing the result of the one before", "[model][patch]") {
    const auto r = patched_user(body({{{"op", "add"}, {"path", "title"}, {"value", "Guide"}},
                                      {{"op", "replace"}, {"path", "title"}, {"value", "Lead"}},
                                      {{"op", "remove"}, {"path", "nickName"}}}));
    CHECK(r.resource["title"] == "Lead");
}

TEST_CASE("a failing operation fails the whole request", "[model][patch]") {
    const auto e = rejected_user(body({{{"op", "replace"}, {"path", "title"}, {"value", "x"}},
                                       {{"op", "replace"}, {"path", "bogus"}, {"value", "y"}}}));
    CHECK(e.scim_type == "invalidPath");
    CHECK_THAT(e.detail, Catch::Contains("operation 2"));
}

// --- Paths -----------------------------------------------------------------------------------

TEST_CASE("an unknown attribute in a path is rejected as invalidPath naming it", "[model][patch]") {
    auto e = rejected_user(op({{"op", "replace"}, {"path", "favouriteColour"}, {"value", "x"}}));
    CHECK(e.scim_type == "invalidPath");
    CHECK_THAT(e.detail, Catch::Contains("favouriteColour"));
    e = rejected_user(op({{"op", "remove"}, {"path", "name.nickname"}}));
    CHECK(e.scim_type == "invalidPath");
    CHECK_THAT(e.detail, Catch::Contains("name.nickname"));
}

TEST_CASE("an unknown extension URN in a path is rejected as invalidPath", "[model][patch]") {
    const auto e =
        rejected_user(op({{"op", "add"},
                          {"path", "urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge"},
                          {"value", "7"}}));
    CHECK(e.scim_type == "invalidPath");
}

TEST_CASE("an unknown sub-attribute after a value filter is rejected as invalidPath",
          "[model][patch]") {
    const auto e = rejected_user(
        op({{"op", "replace"}, {"path", "emails[type eq \"work\"].colour"}, {"value", "x"}}));
    CHECK(e.scim_type == "invalidPath");
}

TEST_CASE("a malformed value filter in a path is rejected as invalidPath", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "emails[type eq].value"}, {"value", "x"}}))
              .scim_type == "invalidPath");
    CHECK(rejected_user(op({{"op", "remove"}, {"path", "emails[type eq \"work\""}})).scim_type ==
          "invalidPath");
    CHECK(rejected_user(op({{"op", "remove"}, {"path", "emails[type eq \"work\"]value"}}))
              .scim_type == "invalidPath");
}

TEST_CASE("a value filter on a simple attribute is rejected as invalidPath", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "remove"}, {"path", "userName[value eq \"x\"]"}})).scim_type ==
          "invalidPath");
}

TEST_CASE("attribute names in a path match in any case and are stored canonically",
          "[model][patch]") {
    const auto r = patched_user(body({{{"op", "replace"}, {"path", "DISPLAYNAME"}, {"value", "B"}},
                                      {{"op", "add"}, {"path", "Name.MiddleName"}, {"value", "J"}},
                                      {{"op", "add"}, {"path", "NICKNAME"}, {"value", "Babs"}}}));
    CHECK(r.resource["displayName"] == "B");
    CHECK(r.resource["name"]["middleName"] == "J");
    CHECK(r.resource["nickName"] == "Babs");
    CHECK_FALSE(r.resource.contains("DISPLAYNAME"));
    CHECK_FALSE(r.resource.contains("NICKNAME"));
}

TEST_CASE("a core schema URN prefix in a path names the core attribute", "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"},
                                    {"path", "urn:ietf:params:scim:schemas:core:2.0:User:title"},
                                    {"value", "Guide"}}));
    CHECK(r.resource["title"] == "Guide");
}

// --- Simple attributes -----------------------------------------------------------------------

TEST_CASE("add with a path sets a simple attribute that had no value", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"}, {"path", "nickName"}, {"value", "Babs"}}));
    CHECK(r.resource["nickName"] == "Babs");
    CHECK(r.changed);
}

TEST_CASE("add on a simple attribute that has a value replaces the value", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"}, {"path", "displayName"}, {"value", "B"}}));
    CHECK(r.resource["displayName"] == "B");
}

TEST_CASE("replace with a path sets a simple attribute", "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"}, {"path", "displayName"}, {"value", "B"}}));
    CHECK(r.resource["displayName"] == "B");
}

TEST_CASE("replace of a simple attribute that has no value adds it", "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"}, {"path", "title"}, {"value", "Guide"}}));
    CHECK(r.resource["title"] == "Guide");
}

TEST_CASE("remove with a path removes a simple attribute", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "displayName"}}));
    CHECK_FALSE(r.resource.contains("displayName"));
    CHECK(r.changed);
}

TEST_CASE("remove of an attribute that has no value changes nothing", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "title"}}));
    CHECK_FALSE(r.changed);
    CHECK(r.resource == stored_user());
}

TEST_CASE("null as the value of add or replace removes the attribute", "[model][patch]") {
    auto r = patched_user(op({{"op", "replace"}, {"path", "displayName"}, {"value", nullptr}}));
    CHECK_FALSE(r.resource.contains("displayName"));
    r = patched_user(op({{"op", "add"}, {"value", {{"displayName", nullptr}}}}));
    CHECK_FALSE(r.resource.contains("displayName"));
}

TEST_CASE("booleans sent as the strings True and False in any case are booleans",
          "[model][patch]") {
    auto r = patched_user(op({{"op", "replace"}, {"path", "active"}, {"value", "FALSE"}}));
    CHECK(r.resource["active"] == false);
    r = patched_user(op({{"op", "replace"}, {"path", "active"}, {"value", "true"}}));
    CHECK(r.resource["active"] == true);
    CHECK_FALSE(r.changed);
}

TEST_CASE("a string other than true or false for a boolean is rejected as invalidValue",
          "[model][patch]") {
    const auto e = rejected_user(op({{"op", "replace"}, {"path", "active"}, {"value", "yes"}}));
    CHECK(e.scim_type == "invalidValue");
    CHECK_THAT(e.detail, Catch::Contains("active"));
}

TEST_CASE("a value of the wrong type is rejected as invalidValue naming the attribute",
          "[model][patch]") {
    auto e = rejected_user(op({{"op", "replace"}, {"path", "title"}, {"value", 42}}));
    CHECK(e.scim_type == "invalidValue");
    CHECK_THAT(e.detail, Catch::Contains("title"));
    e = rejected_user(op({{"op", "replace"}, {"path", "userName"}, {"value", {{"a", "b"}}}}));
    CHECK(e.scim_type == "invalidValue");
    CHECK_THAT(e.detail, Catch::Contains("userName"));
}

TEST_CASE("removing a required attribute is rejected as invalidValue", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "remove"}, {"path", "userName"}})).scim_type == "invalidValue");
    CHECK(rejected_group(op({{"op", "replace"}, {"path", "displayName"}, {"value", nullptr}}))
              .scim_type == "invalidValue");
}

TEST_CASE("an empty string for a required attribute is rejected as invalidValue",
          "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "userName"}, {"value", ""}})).scim_type ==
          "invalidValue");
}

// --- Complex attributes ----------------------------------------------------------------------

TEST_CASE("a sub-attribute path sets that sub-attribute and keeps its siblings", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"}, {"path", "name.middleName"}, {"value", "J"}}));
    CHECK(r.resource["name"] ==
          json({{"givenName", "Barbara"}, {"familyName", "Jensen"}, {"middleName", "J"}}));
}

TEST_CASE("a sub-attribute path creates the complex attribute when it has no value",
          "[model][patch]") {
    json u = stored_user();
    u.erase("name");
    const auto r = patched(user_type(), u,
                           op({{"op", "replace"}, {"path", "name.givenName"}, {"value", "Ann"}}));
    CHECK(r.resource["name"] == json({{"givenName", "Ann"}}));
}

TEST_CASE("replace of a complex attribute changes the given sub-attributes and keeps the others",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "replace"}, {"path", "name"}, {"value", {{"givenName", "Barb"}}}}));
    CHECK(r.resource["name"] == json({{"givenName", "Barb"}, {"familyName", "Jensen"}}));
}

TEST_CASE("a null sub-attribute in a complex value removes that sub-attribute", "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"},
                                    {"path", "name"},
                                    {"value", {{"givenName", nullptr}, {"formatted", "B"}}}}));
    CHECK(r.resource["name"] == json({{"familyName", "Jensen"}, {"formatted", "B"}}));
}

TEST_CASE("remove of a sub-attribute path removes only that sub-attribute", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "name.givenName"}}));
    CHECK(r.resource["name"] == json({{"familyName", "Jensen"}}));
}

TEST_CASE("removing the last sub-attribute removes the complex attribute", "[model][patch]") {
    const auto r = patched_user(body({{{"op", "remove"}, {"path", "name.givenName"}},
                                      {{"op", "remove"}, {"path", "name.familyName"}}}));
    CHECK_FALSE(r.resource.contains("name"));
}

TEST_CASE("remove of a complex attribute removes all of it", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "name"}}));
    CHECK_FALSE(r.resource.contains("name"));
}

TEST_CASE("a complex attribute given a non-object value is rejected as invalidValue",
          "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "name"}, {"value", "Barbara Jensen"}}))
              .scim_type == "invalidValue");
}

// --- Extension attributes --------------------------------------------------------------------

TEST_CASE("an extension path replaces an extension attribute", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"path", enterprise + ":department"}, {"value", "Sales"}}));
    CHECK(r.resource[enterprise]["department"] == "Sales");
    CHECK(r.resource[enterprise]["employeeNumber"] == "701984");
}

TEST_CASE("an extension path matches the URN and the attribute in any case", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"},
                                    {"path",
                                     "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:"
                                     "USER:COSTCENTER"},
                                    {"value", "4130"}}));
    CHECK(r.resource[enterprise]["costCenter"] == "4130");
}

TEST_CASE("adding an extension attribute to a resource without the extension lists it in schemas",
          "[model][patch]") {
    json u = stored_user();
    u.erase(enterprise);
    u["schemas"] = {"urn:ietf:params:scim:schemas:core:2.0:User"};
    const auto r = patched(
        user_type(), u, op({{"op", "add"}, {"path", enterprise + ":division"}, {"value", "EU"}}));
    CHECK(r.resource[enterprise] == json({{"division", "EU"}}));
    CHECK(r.resource["schemas"] ==
          json({"urn:ietf:params:scim:schemas:core:2.0:User", enterprise}));
}

TEST_CASE("removing the last extension attribute drops the extension from the resource and schemas",
          "[model][patch]") {
    const auto r =
        patched_user(body({{{"op", "remove"}, {"path", enterprise + ":department"}},
                           {{"op", "remove"}, {"path", enterprise + ":employeeNumber"}}}));
    CHECK_FALSE(r.resource.contains(enterprise));
    CHECK(r.resource["schemas"] == json({"urn:ietf:params:scim:schemas:core:2.0:User"}));
}

TEST_CASE("a path naming an extension URN alone applies the attributes of its value",
          "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"path", enterprise}, {"value", {{"department", "Sales"}}}}));
    CHECK(r.resource[enterprise] == json({{"employeeNumber", "701984"}, {"department", "Sales"}}));
}

TEST_CASE("remove of an extension URN path removes the whole extension", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", enterprise}}));
    CHECK_FALSE(r.resource.contains(enterprise));
}

TEST_CASE("the enterprise manager sent as a bare id string is stored as manager.value",
          "[model][patch]") {
    // Entra: {"op":"Add","path":"urn:...:enterprise:2.0:User:manager","value":"<id>"}.
    const auto r =
        patched_user(op({{"op", "Add"}, {"path", enterprise + ":manager"}, {"value", bob_id}}));
    CHECK(r.resource[enterprise]["manager"] == json({{"value", bob_id}}));
}

TEST_CASE("the manager set through manager.value is stored as an object", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"path", enterprise + ":manager.value"}, {"value", bob_id}}));
    CHECK(r.resource[enterprise]["manager"] == json({{"value", bob_id}}));
}

TEST_CASE("a read-only manager.displayName sent with the manager is dropped", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"},
                                    {"path", enterprise + ":manager"},
                                    {"value", {{"value", bob_id}, {"displayName", "Bob"}}}}));
    CHECK(r.resource[enterprise]["manager"] == json({{"value", bob_id}}));
}

TEST_CASE("an empty manager value removes the manager", "[model][patch]") {
    json u = stored_user();
    u[enterprise]["manager"] = {{"value", bob_id}};
    auto r = patched(
        user_type(), u,
        op({{"op", "replace"}, {"path", enterprise + ":manager"}, {"value", {{"value", ""}}}}));
    CHECK_FALSE(r.resource[enterprise].contains("manager"));
    r = patched(user_type(), u,
                op({{"op", "Replace"}, {"path", enterprise + ":manager"}, {"value", ""}}));
    CHECK_FALSE(r.resource[enterprise].contains("manager"));
}

// --- Multi-valued attributes -----------------------------------------------------------------

TEST_CASE("add to a multi-valued attribute appends the new values", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"},
                                    {"path", "emails"},
                                    {"value", {{{"value", "b@other.org"}, {"type", "other"}}}}}));
    REQUIRE(r.resource["emails"].size() == 3);
    CHECK(r.resource["emails"][2] == json({{"value", "b@other.org"}, {"type", "other"}}));
    CHECK(r.resource["emails"][0]["primary"] == true);
}

TEST_CASE("add of a value already present changes nothing", "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "add"},
                         {"path", "emails"},
                         {"value", {{{"value", "BABS@jensen.org"}, {"type", "home"}}}}}));
    CHECK(r.resource["emails"].size() == 2);
    CHECK_FALSE(r.changed);
}

TEST_CASE("a single object for a multi-valued attribute is taken as one value", "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"},
                                    {"path", "emails"},
                                    {"value", {{"value", "b@other.org"}, {"type", "other"}}}}));
    CHECK(r.resource["emails"].size() == 3);
}

TEST_CASE("replace of a multi-valued attribute replaces the whole set", "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"},
                                    {"path", "emails"},
                                    {"value", {{{"value", "b@new.org"}, {"type", "work"}}}}}));
    CHECK(r.resource["emails"] == json::parse(R"([{"value": "b@new.org", "type": "work"}])"));
}

TEST_CASE("replace of a multi-valued attribute with an empty array removes the attribute",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "replace"}, {"path", "phoneNumbers"}, {"value", json::array()}}));
    CHECK_FALSE(r.resource.contains("phoneNumbers"));
}

TEST_CASE("remove of a multi-valued attribute without a filter removes all its values",
          "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "emails"}}));
    CHECK_FALSE(r.resource.contains("emails"));
}

TEST_CASE("a value added with primary true becomes the only primary value", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "add"},
            {"path", "emails"},
            {"value", {{{"value", "b@other.org"}, {"type", "other"}, {"primary", "True"}}}}}));
    const json& emails = r.resource["emails"];
    CHECK(emails[0]["primary"] == false);
    CHECK_FALSE(emails[1].contains("primary"));
    CHECK(emails[2]["primary"] == true);
}

TEST_CASE("setting primary through a value filter clears primary on the other values",
          "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"path", "emails[type eq \"home\"].primary"}, {"value", true}}));
    CHECK(r.resource["emails"][0]["primary"] == false);
    CHECK(r.resource["emails"][1]["primary"] == true);
}

TEST_CASE("a replaced set with several primary values keeps only the last as primary",
          "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"},
                                    {"path", "emails"},
                                    {"value",
                                     {{{"value", "a@x.org"}, {"primary", true}},
                                      {{"value", "b@x.org"}, {"primary", true}}}}}));
    CHECK(r.resource["emails"][0]["primary"] == false);
    CHECK(r.resource["emails"][1]["primary"] == true);
}

TEST_CASE("setting primary on every value at once is rejected as invalidValue", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "emails.primary"}, {"value", true}}))
              .scim_type == "invalidValue");
}

TEST_CASE("a sub-attribute path without a filter sets that sub-attribute on every value",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "replace"}, {"path", "emails.display"}, {"value", "Babs"}}));
    CHECK(r.resource["emails"][0]["display"] == "Babs");
    CHECK(r.resource["emails"][1]["display"] == "Babs");
}

// --- Value filters ---------------------------------------------------------------------------

TEST_CASE("replace through a value filter and sub-attribute updates only the matching value",
          "[model][patch]") {
    // Entra's documented user update.
    const auto r = patched_user(body(json::parse(R"([
        {"op": "Replace", "path": "emails[type eq \"work\"].value",
         "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}])")));
    CHECK(r.resource["emails"][0] ==
          json({{"value", "updatedEmail@microsoft.com"}, {"type", "work"}, {"primary", true}}));
    CHECK(r.resource["emails"][1]["value"] == "babs@jensen.org");
    CHECK(r.resource["name"]["familyName"] == "updatedFamilyName");
}

TEST_CASE("replace through a value filter that matches nothing is rejected as noTarget",
          "[model][patch]") {
    auto e = rejected_user(op(
        {{"op", "replace"}, {"path", "phoneNumbers[type eq \"mobile\"].value"}, {"value", "1"}}));
    CHECK(e.scim_type == "noTarget");
    e = rejected_user(op({{"op", "replace"},
                          {"path", "emails[type eq \"other\"]"},
                          {"value", {{"value", "x@y.org"}}}}));
    CHECK(e.scim_type == "noTarget");
}

TEST_CASE("add through a value filter updates the matching value", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "add"}, {"path", "phoneNumbers[type eq \"work\"].value"}, {"value", "555-1"}}));
    CHECK(r.resource["phoneNumbers"] == json::parse(R"([{"value": "555-1", "type": "work"}])"));
}

TEST_CASE("add through a value filter creates the value when none matches", "[model][patch]") {
    const auto r = patched_user(op(
        {{"op", "Add"}, {"path", "phoneNumbers[type eq \"mobile\"].value"}, {"value", "555-2"}}));
    REQUIRE(r.resource["phoneNumbers"].size() == 2);
    CHECK(r.resource["phoneNumbers"][1] == json({{"type", "mobile"}, {"value", "555-2"}}));
}

TEST_CASE("repeating an add through a value filter never duplicates the value", "[model][patch]") {
    const json add_mobile = {
        {"op", "add"}, {"path", "phoneNumbers[type eq \"mobile\"].value"}, {"value", "555-2"}};
    const auto once = patched_user(op(add_mobile));
    const auto twice = patched(user_type(), once.resource, op(add_mobile));
    CHECK(twice.resource["phoneNumbers"].size() == 2);
    CHECK_FALSE(twice.changed);
    const auto changed = patched(
        user_type(), once.resource,
        op({{"op", "add"}, {"path", "phoneNumbers[type eq \"mobile\"].value"}, {"value", "9"}}));
    CHECK(changed.resource["phoneNumbers"].size() == 2);
    CHECK(changed.resource["phoneNumbers"][1]["value"] == "9");
}

TEST_CASE("add through a filter of several eq comparisons creates a value holding them all",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "add"},
                         {"path", "addresses[type eq \"work\" and country eq \"US\"].locality"},
                         {"value", "Hollywood"}}));
    CHECK(r.resource["addresses"] ==
          json::parse(R"([{"type": "work", "country": "US", "locality": "Hollywood"}])"));
}

TEST_CASE("add through a filter that cannot describe a new value and matches nothing is noTarget",
          "[model][patch]") {
    CHECK(
        rejected_user(
            op({{"op", "add"}, {"path", "emails[value co \"@nowhere\"].display"}, {"value", "x"}}))
            .scim_type == "noTarget");
}

TEST_CASE("add through a value filter without a sub-attribute merges into the matching value",
          "[model][patch]") {
    const auto r = patched_user(op({{"op", "add"},
                                    {"path", "emails[type eq \"home\"]"},
                                    {"value", {{"display", "Home mail"}}}}));
    CHECK(r.resource["emails"][1] ==
          json({{"value", "babs@jensen.org"}, {"type", "home"}, {"display", "Home mail"}}));
}

TEST_CASE(
    "replace through a value filter without a sub-attribute replaces the matching value "
    "whole",
    "[model][patch]") {
    const auto r = patched_user(op({{"op", "replace"},
                                    {"path", "emails[type eq \"home\"]"},
                                    {"value", {{"value", "b@home.org"}, {"type", "home"}}}}));
    CHECK(r.resource["emails"][1] == json({{"value", "b@home.org"}, {"type", "home"}}));
    CHECK(r.resource["emails"][0]["value"] == "bjensen@example.com");
}

TEST_CASE("remove through a value filter removes only the matching values", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "emails[type eq \"home\"]"}}));
    CHECK(r.resource["emails"] ==
          json::parse(R"([{"value": "bjensen@example.com", "type": "work", "primary": true}])"));
}

TEST_CASE("remove through a value filter removing every value removes the attribute",
          "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "phoneNumbers[type eq \"work\"]"}}));
    CHECK_FALSE(r.resource.contains("phoneNumbers"));
}

TEST_CASE("remove through a value filter and sub-attribute removes that sub-attribute only",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "remove"}, {"path", "emails[type eq \"work\"].primary"}}));
    CHECK(r.resource["emails"][0] == json({{"value", "bjensen@example.com"}, {"type", "work"}}));
}

TEST_CASE("remove through a value filter that matches nothing changes nothing", "[model][patch]") {
    const auto r = patched_user(op({{"op", "remove"}, {"path", "emails[type eq \"other\"]"}}));
    CHECK_FALSE(r.changed);
}

// --- Path-less add and replace ---------------------------------------------------------------

TEST_CASE("a path-less add sets each attribute of its value", "[model][patch]") {
    // Entra with aadOptscim062020: {"op":"add","value":{"nickName":"Babs"}}.
    const auto r = patched_user(op({{"op", "add"}, {"value", {{"nickName", "Babs"}}}}));
    CHECK(r.resource["nickName"] == "Babs");
}

TEST_CASE("a path-less replace accepts sub-attribute and value-filter paths as keys",
          "[model][patch]") {
    // Entra with aadOptscim062020, as its SCIM compliance notes show it.
    const auto r = patched_user(op(json::parse(R"({"op": "replace", "value": {
        "displayName": "Pvlo",
        "emails[type eq \"work\"].value": "TestBcwqnm@testuser.com",
        "name.givenName": "Ric",
        "name.familyName": "Pvlo"}})")));
    CHECK(r.resource["displayName"] == "Pvlo");
    CHECK(r.resource["emails"][0]["value"] == "TestBcwqnm@testuser.com");
    CHECK(r.resource["emails"].size() == 2);
    CHECK(r.resource["name"] == json({{"givenName", "Ric"}, {"familyName", "Pvlo"}}));
}

TEST_CASE("a path-less replace with a value-filter key creates the value when none matches",
          "[model][patch]") {
    const auto r = patched_user(op(json::parse(
        R"({"op": "replace", "value": {"phoneNumbers[type eq \"fax\"].value": "555-9"}})")));
    CHECK(r.resource["phoneNumbers"][1] == json({{"type", "fax"}, {"value", "555-9"}}));
}

TEST_CASE("a path-less replace accepts an extension URN path as a key", "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "replace"}, {"value", {{enterprise + ":department", "Sales"}}}}));
    CHECK(r.resource[enterprise]["department"] == "Sales");
    CHECK(r.resource[enterprise]["employeeNumber"] == "701984");
}

TEST_CASE("a path-less replace accepts an extension object under its URN", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"},
            {"value",
             {{"title", "Lead"}, {enterprise, {{"department", "Sales"}, {"manager", bob_id}}}}}}));
    CHECK(r.resource["title"] == "Lead");
    CHECK(r.resource[enterprise] == json({{"employeeNumber", "701984"},
                                          {"department", "Sales"},
                                          {"manager", {{"value", bob_id}}}}));
}

TEST_CASE("path-less keys match attribute names in any case", "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"value", {{"DisplayName", "B"}, {"ACTIVE", "False"}}}}));
    CHECK(r.resource["displayName"] == "B");
    CHECK(r.resource["active"] == false);
    CHECK_FALSE(r.resource.contains("DisplayName"));
}

TEST_CASE("attributes the server does not store are ignored in a path-less value",
          "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"},
            {"value",
             {{"title", "Lead"},
              {"favouriteColour", "green"},
              {"urn:ietf:params:scim:schemas:extension:acme:2.0:User", {{"badge", "7"}}}}}}));
    CHECK(r.resource["title"] == "Lead");
    CHECK_FALSE(r.resource.contains("favouriteColour"));
    CHECK_FALSE(r.resource.contains("urn:ietf:params:scim:schemas:extension:acme:2.0:User"));
}

TEST_CASE("read-only attributes in a path-less value are ignored", "[model][patch]") {
    const auto r = patched_user(op(json::parse(R"({"op": "replace", "value": {
        "meta": {"resourceType": "User", "lastModified": "2024-01-01T00:00:00Z"},
        "groups": [{"value": "g1", "display": "Admins"}],
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "title": "Lead"}})")));
    CHECK(r.resource["title"] == "Lead");
    CHECK_FALSE(r.resource.contains("meta"));
    CHECK_FALSE(r.resource.contains("groups"));
    CHECK(r.resource["schemas"] == stored_user()["schemas"]);
}

TEST_CASE("a path-less add or replace whose value is not an object is rejected as invalidValue",
          "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"value", "x"}})).scim_type == "invalidValue");
    CHECK(rejected_user(op({{"op", "add"}, {"value", json::array()}})).scim_type == "invalidValue");
}

// --- Read-only and immutable attributes ------------------------------------------------------

TEST_CASE("a path-less replace carrying the resource's own id renames the group",
          "[model][patch]") {
    // Okta's documented group rename.
    const auto r = patched_group(op(json::parse(R"({"op": "replace", "value": {
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Test SCIMv2"}})")));
    CHECK(r.resource["displayName"] == "Test SCIMv2");
    CHECK(r.resource["id"] == "e9e30dba-f08f-4109-8486-d5c6a331660a");
    CHECK(r.changed);
}

TEST_CASE("changing id is rejected as mutability", "[model][patch]") {
    CHECK(
        rejected_group(op({{"op", "replace"}, {"value", {{"id", "other"}, {"displayName", "x"}}}}))
            .scim_type == "mutability");
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "id"}, {"value", "other"}})).scim_type ==
          "mutability");
    CHECK(rejected_user(op({{"op", "remove"}, {"path", "id"}})).scim_type == "mutability");
}

TEST_CASE("an operation on meta or groups through a path is ignored", "[model][patch]") {
    const auto r = patched_user(
        body({{{"op", "replace"}, {"path", "meta.lastModified"}, {"value", "2024-01-01T00:00:00Z"}},
              {{"op", "add"}, {"path", "groups"}, {"value", {{{"value", "g1"}}}}},
              {{"op", "remove"}, {"path", "groups"}}}));
    CHECK_FALSE(r.changed);
}

TEST_CASE("a member's value cannot be replaced in place", "[model][patch]") {
    const auto e = rejected_group(op({{"op", "replace"},
                                      {"path", "members[value eq \"" + alice_id + "\"].value"},
                                      {"value", carol_id}}));
    CHECK(e.scim_type == "mutability");
    CHECK_THAT(e.detail, Catch::Contains("members.value"));
}

TEST_CASE("a member replaced through a filter by a different member is rejected as mutability",
          "[model][patch]") {
    CHECK(rejected_group(op({{"op", "replace"},
                             {"path", "members[value eq \"" + alice_id + "\"]"},
                             {"value", {{"value", carol_id}}}}))
              .scim_type == "mutability");
}

TEST_CASE("a member's type cannot be changed", "[model][patch]") {
    CHECK(rejected_group(op({{"op", "add"},
                             {"path", "members"},
                             {"value", {{{"value", alice_id}, {"type", "Group"}}}}}))
              .scim_type == "mutability");
    CHECK(rejected_group(
              op({{"op", "remove"}, {"path", "members[value eq \"" + alice_id + "\"].type"}}))
              .scim_type == "mutability");
}

// --- Group membership, as Okta and Entra send it ---------------------------------------------

TEST_CASE("Okta adds several members in one add and their display is not stored",
          "[model][patch]") {
    const auto r = patched_group(op(json::parse(R"({"op": "add", "path": "members", "value": [
        {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"},
        {"value": "5f8ad9c4-4a1b-4d4c-9b55-2a1f8c2b1a11", "display": "other.user@okta.local"}
        ]})")));
    CHECK(member_values(r.resource) ==
          json({alice_id, bob_id, carol_id, "5f8ad9c4-4a1b-4d4c-9b55-2a1f8c2b1a11"}));
    CHECK(r.resource["members"][2] == json({{"value", carol_id}}));
}

TEST_CASE("Entra adds a member with a null $ref, which is dropped", "[model][patch]") {
    const auto r = patched_group(op(json::parse(R"({"op": "Add", "path": "members", "value": [
        {"$ref": null, "value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"}]})")));
    CHECK(r.resource["members"][2] == json({{"value", carol_id}}));
}

TEST_CASE("adding a member already in the group does not add it twice", "[model][patch]") {
    const auto r = patched_group(
        op({{"op", "add"},
            {"path", "members"},
            {"value", {{{"value", alice_id}, {"display", "Alice"}}, {{"value", alice_id}}}}}));
    CHECK(member_values(r.resource) == json({alice_id, bob_id}));
    CHECK_FALSE(r.changed);
}

TEST_CASE("a member id differing only in case is a different member", "[model][patch]") {
    std::string upper = alice_id;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto r =
        patched_group(op({{"op", "add"}, {"path", "members"}, {"value", {{{"value", upper}}}}}));
    CHECK(r.resource["members"].size() == 3);
}

TEST_CASE("Okta removes a member by members[value eq id]", "[model][patch]") {
    const auto r = patched_group(op(json::parse(R"({"op": "remove",
        "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"})")));
    CHECK(member_values(r.resource) == json({bob_id}));
}

TEST_CASE("Entra removes the members listed in a value array, and only those", "[model][patch]") {
    const auto r = patched_group(op(json::parse(R"({"op": "Remove", "path": "members", "value": [
        {"$ref": null, "value": "2819c223-7f76-453a-919d-413861904646"}]})")));
    CHECK(member_values(r.resource) == json({bob_id}));
}

TEST_CASE("a remove by value array naming no current member never clears the members",
          "[model][patch]") {
    auto r = patched_group(
        op({{"op", "remove"}, {"path", "members"}, {"value", {{{"value", carol_id}}}}}));
    CHECK(member_values(r.resource) == json({alice_id, bob_id}));
    CHECK_FALSE(r.changed);
    r = patched_group(op({{"op", "remove"}, {"path", "members"}, {"value", json::array()}}));
    CHECK(member_values(r.resource) == json({alice_id, bob_id}));
}

TEST_CASE("a remove by value array whose entries have no value is rejected, not a clear-all",
          "[model][patch]") {
    CHECK(rejected_group(
              op({{"op", "remove"}, {"path", "members"}, {"value", {{{"display", "Alice"}}}}}))
              .scim_type == "invalidValue");
}

TEST_CASE("an add of null to members adds nothing and never clears the members", "[model][patch]") {
    const auto r = patched_group(op({{"op", "add"}, {"path", "members"}, {"value", nullptr}}));
    CHECK(member_values(r.resource) == json({alice_id, bob_id}));
    CHECK_FALSE(r.changed);
}

TEST_CASE("members wrapped in an object under their own name are accepted", "[model][patch]") {
    // Salesforce documents {"op":"add","path":"members","value":{"members":[...]}}.
    const auto r = patched_group(op(
        {{"op", "add"}, {"path", "members"}, {"value", {{"members", {{{"value", carol_id}}}}}}}));
    CHECK(member_values(r.resource) == json({alice_id, bob_id, carol_id}));
}

TEST_CASE("removing every listed member leaves the group without members", "[model][patch]") {
    const auto r = patched_group(op({{"op", "remove"},
                                     {"path", "members"},
                                     {"value", {{{"value", alice_id}}, {{"value", bob_id}}}}}));
    CHECK_FALSE(r.resource.contains("members"));
}

TEST_CASE("removing a member the group does not have changes nothing", "[model][patch]") {
    const auto r =
        patched_group(op({{"op", "remove"}, {"path", "members[value eq \"" + carol_id + "\"]"}}));
    CHECK_FALSE(r.changed);
}

TEST_CASE("Okta replaces the members list whole", "[model][patch]") {
    const auto r = patched_group(op(json::parse(R"({"op": "replace", "path": "members", "value": [
        {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "bob@okta.local"},
        {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "carol@okta.local"}]})")));
    CHECK(member_values(r.resource) == json({bob_id, carol_id}));
}

TEST_CASE("replacing members with the same members keeps their type and changes nothing",
          "[model][patch]") {
    const auto r = patched_group(op({{"op", "replace"},
                                     {"path", "members"},
                                     {"value", {{{"value", alice_id}}, {{"value", bob_id}}}}}));
    CHECK_FALSE(r.changed);
    CHECK(r.resource["members"][0]["type"] == "User");
}

TEST_CASE("a member without a value is rejected as invalidValue", "[model][patch]") {
    CHECK(rejected_group(
              op({{"op", "add"}, {"path", "members"}, {"value", {{{"display", "Someone"}}}}}))
              .scim_type == "invalidValue");
}

TEST_CASE("Entra renames a group with Replace on displayName", "[model][patch]") {
    const auto r = patched_group(
        op({{"op", "Replace"}, {"path", "displayName"}, {"value", "Tour Guides EU"}}));
    CHECK(r.resource["displayName"] == "Tour Guides EU");
    CHECK(member_values(r.resource) == json({alice_id, bob_id}));
}

TEST_CASE("a group's schemas are kept when no extension comes or goes", "[model][patch]") {
    const auto r = patched_group(op({{"op", "add"},
                                     {"path", "members"},
                                     {"value", {{{"value", carol_id}, {"type", "User"}}}}}));
    CHECK(r.resource["schemas"] == stored_group()["schemas"]);
}

// --- Deactivation, as Okta and Entra send it -------------------------------------------------

TEST_CASE("Okta deactivates a user with a path-less replace of active", "[model][patch]") {
    const auto r =
        patched_user(op(json::parse(R"({"op": "replace", "value": {"active": false}})")));
    CHECK(r.resource["active"] == false);
    CHECK(r.changed);
}

TEST_CASE("Entra deactivates a user with Replace on active and the string False",
          "[model][patch]") {
    const auto r =
        patched_user(op(json::parse(R"({"op": "Replace", "path": "active", "value": "False"})")));
    CHECK(r.resource["active"] == false);
}

TEST_CASE("Entra's multi-operation user update applies every operation", "[model][patch]") {
    const auto r = patched_user(body(json::parse(R"([
        {"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"},
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
         "value": "902c246b-6245-4190-8e05-00816be7344a"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value",
         "value": "5b50642d@testuser.com"}])")));
    CHECK(r.resource["userName"] == "5b50642d@testuser.com");
    CHECK(r.resource["displayName"] == "Pvlo");
    CHECK(r.resource[enterprise]["manager"]["value"] == bob_id);
    CHECK(r.resource["emails"][0]["value"] == "5b50642d@testuser.com");
}

// --- changed ---------------------------------------------------------------------------------

TEST_CASE("changed is false when the operations leave the resource as it was", "[model][patch]") {
    const auto r = patched_user(
        body({{{"op", "replace"}, {"path", "displayName"}, {"value", "Babs Jensen"}},
              {{"op", "replace"}, {"value", {{"active", "True"}, {"name.givenName", "Barbara"}}}},
              {{"op", "add"},
               {"path", "emails[type eq \"work\"].value"},
               {"value", "bjensen@example.com"}},
              {{"op", "remove"}, {"path", "nickName"}}}));
    CHECK_FALSE(r.changed);
    CHECK(r.resource == stored_user());
}

TEST_CASE("changed is false when a change is undone by a later operation", "[model][patch]") {
    const auto r = patched_user(body({{{"op", "add"}, {"path", "title"}, {"value", "Guide"}},
                                      {{"op", "remove"}, {"path", "title"}}}));
    CHECK_FALSE(r.changed);
}

TEST_CASE("changed is true when any attribute changes", "[model][patch]") {
    CHECK(patched_user(op({{"op", "replace"}, {"path", "name.givenName"}, {"value", "Barb"}}))
              .changed);
}

// --- password --------------------------------------------------------------------------------

TEST_CASE("a password set through a path is returned apart and never kept in the resource",
          "[model][patch]") {
    const auto r =
        patched_user(op({{"op", "replace"}, {"path", "password"}, {"value", "s3cret!"}}));
    REQUIRE(r.password.has_value());
    CHECK(*r.password == "s3cret!");
    CHECK_FALSE(r.resource.contains("password"));
    CHECK_FALSE(r.changed);
}

TEST_CASE("a password in a path-less value is returned apart, the other attributes applied",
          "[model][patch]") {
    const auto r = patched_user(
        op({{"op", "replace"}, {"value", {{"password", "t0psecret"}, {"title", "Lead"}}}}));
    CHECK(r.password == std::optional<std::string>("t0psecret"));
    CHECK_FALSE(r.resource.contains("password"));
    CHECK(r.resource["title"] == "Lead");
}

TEST_CASE("no password is returned when no operation sets one", "[model][patch]") {
    CHECK_FALSE(patched_user(op({{"op", "replace"}, {"path", "title"}, {"value", "x"}}))
                    .password.has_value());
}

TEST_CASE("a password that is not a string is rejected as invalidValue", "[model][patch]") {
    CHECK(rejected_user(op({{"op", "replace"}, {"path", "password"}, {"value", 1234}})).scim_type ==
          "invalidValue");
}
