// The bridge's pure parts: DN and filter escaping, the mapping's validation, and the entries
// built from SCIM resources.

#include <catch2/catch.hpp>

#include "scimsync/bridge/dn.hpp"
#include "scimsync/bridge/entry.hpp"
#include "scimsync/bridge/ingest.hpp"
#include "scimsync/bridge/mapping.hpp"

using namespace scimsync::bridge;
using nlohmann::json;

namespace {

const std::string people = "ou=people,dc=example,dc=com";

entry_builder builder_for(const mapping& m) {
    auto b = entry_builder::compile(m);
    REQUIRE(b);
    return std::move(*b);
}

std::optional<std::string> no_dns(std::string_view) {
    return std::nullopt;
}

json user(const std::string& name) {
    return json{{"id", "u1"}, {"userName", name}, {"active", true}};
}

}  // namespace

TEST_CASE("hostile userNames become one escaped RDN value directly under the base",
          "[bridge][dn]") {
    for (const std::string name :
         {"Smith, John", "a+b=c", "#hash", "\"quoted\"", "trailing  ", " leading", "Zoë Ångström",
          "*)(uid=*", "back\\slash", "semi;colon<>", "x,ou=admins,dc=example,dc=com"}) {
        const std::string dn = "uid=" + escape_dn_value(name) + "," + people;
        INFO(name << " -> " << dn);
        CHECK(is_child_of(dn, people));
        const auto rdns = split_dn(dn);
        REQUIRE(rdns);
        CHECK(rdns->size() == 4);
    }
}

TEST_CASE("DN escaping follows RFC 4514", "[bridge][dn]") {
    CHECK(escape_dn_value("Smith, John") == "Smith\\, John");
    CHECK(escape_dn_value("a+b=c") == "a\\+b\\=c");
    CHECK(escape_dn_value("#hash") == "\\#hash");
    CHECK(escape_dn_value(" x ") == "\\ x\\ ");
    CHECK(escape_dn_value("\"q\"") == "\\\"q\\\"");
    CHECK(escape_dn_value(std::string("nul\0x", 5)) == "nul\\00x");
    CHECK(escape_dn_value("Zoë") == "Zoë");
}

TEST_CASE("filter escaping follows RFC 4515", "[bridge][dn]") {
    CHECK(escape_filter_value("*)(uid=*") == "\\2a\\29\\28uid=\\2a");
    CHECK(escape_filter_value("a\\b") == "a\\5cb");
    CHECK(escape_filter_value(std::string("a\0b", 3)) == "a\\00b");
}

TEST_CASE("subtree tests compare normalised DNs", "[bridge][dn]") {
    CHECK(is_below("uid=a,OU=People,DC=Example,DC=com", people));
    CHECK(is_below("cn=x,uid=a,ou=people,dc=example,dc=com", people));
    CHECK_FALSE(is_child_of("cn=x,uid=a,ou=people,dc=example,dc=com", people));
    CHECK_FALSE(is_below(people, people));
    CHECK_FALSE(is_below("uid=a,ou=peoplex,dc=example,dc=com", people));
    CHECK_FALSE(is_below("not a dn", people));
    CHECK(parent_dn("uid=Smith\\, John,ou=people,dc=example,dc=com") == people);
    CHECK(first_rdn("uid=Smith\\, John,ou=people,dc=example,dc=com") == "uid=Smith\\, John");
}

TEST_CASE("the default mapping validates and maps the usual attributes", "[bridge][mapping]") {
    const auto m = default_mapping("dc=example,dc=com");
    REQUIRE(validate(m));
    const auto b = builder_for(m);
    const json res = {
        {"id", "u1"},
        {"userName", "bjensen@example.com"},
        {"displayName", "Babs Jensen"},
        {"name", {{"givenName", "Barbara"}, {"familyName", "Jensen"}}},
        {"title", "Tour Guide"},
        {"emails",
         {{{"value", "home@example.org"}, {"type", "home"}},
          {{"value", "bjensen@example.com"}, {"type", "work"}, {"primary", true}}}},
        {"phoneNumbers",
         {{{"value", "555-1"}, {"type", "work"}}, {{"value", "555-2"}, {"type", "mobile"}}}},
        {"active", true},
        {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
         {{"employeeNumber", "701984"}, {"department", "Tours"}, {"manager", {{"value", "m1"}}}}}};
    const auto e = b.user_entry(res, std::string("{CRYPT}$6$x"), [](std::string_view id) {
        return id == "m1" ? std::optional<std::string>("uid=boss,ou=people,dc=example,dc=com")
                          : std::nullopt;
    });
    REQUIRE(e);
    CHECK(e->dn == "uid=bjensen@example.com,ou=people,dc=example,dc=com");
    CHECK(e->attrs.at("uid") == std::vector<std::string>{"bjensen@example.com"});
    CHECK(e->attrs.at("cn") == std::vector<std::string>{"Babs Jensen"});
    CHECK(e->attrs.at("givenname") == std::vector<std::string>{"Barbara"});
    CHECK(e->attrs.at("sn") == std::vector<std::string>{"Jensen"});
    CHECK(e->attrs.at("mail") == std::vector<std::string>{"bjensen@example.com"});
    CHECK(e->attrs.at("telephoneNumber") == std::vector<std::string>{"555-1"});
    CHECK(e->attrs.at("mobile") == std::vector<std::string>{"555-2"});
    CHECK(e->attrs.at("employeeNumber") == std::vector<std::string>{"701984"});
    CHECK(e->attrs.at("departmentNumber") == std::vector<std::string>{"Tours"});
    CHECK(e->attrs.at("manager") ==
          std::vector<std::string>{"uid=boss,ou=people,dc=example,dc=com"});
    // Passwords only when enabled.
    CHECK_FALSE(e->attrs.contains("userPassword"));
}

TEST_CASE("person's required cn and sn fall back to what every user has", "[bridge][mapping]") {
    const auto b = builder_for(default_mapping("dc=example,dc=com"));
    const auto e = b.user_entry(user("solo"), std::nullopt, no_dns);
    REQUIRE(e);
    CHECK(e->attrs.at("cn") == std::vector<std::string>{"solo"});
    CHECK(e->attrs.at("sn") == std::vector<std::string>{"solo"});
}

TEST_CASE("each deactivation treatment shapes the inactive user's entry", "[bridge][mapping]") {
    auto m = default_mapping("dc=example,dc=com");
    json inactive = user("gone");
    inactive["active"] = false;
    SECTION("leave") {
        const auto e = builder_for(m).user_entry(inactive, std::nullopt, no_dns);
        REQUIRE(e);
        CHECK(e->dn == "uid=gone," + people);
        CHECK_FALSE(e->attrs.contains("employeeType"));
    }
    SECTION("attribute") {
        m.on_deactivate = deactivate_mode::attribute;
        const auto e = builder_for(m).user_entry(inactive, std::nullopt, no_dns);
        REQUIRE(e);
        CHECK(e->attrs.at("employeeType") == std::vector<std::string>{"inactive"});
    }
    SECTION("move") {
        m.on_deactivate = deactivate_mode::move;
        const auto e = builder_for(m).user_entry(inactive, std::nullopt, no_dns);
        REQUIRE(e);
        CHECK(e->dn == "uid=gone,ou=disabled,dc=example,dc=com");
    }
    SECTION("delete") {
        m.on_deactivate = deactivate_mode::remove;
        CHECK_FALSE(builder_for(m).user_entry(inactive, std::nullopt, no_dns));
        CHECK(builder_for(m).user_entry(user("back"), std::nullopt, no_dns));
    }
}

TEST_CASE("passwords reach LDAP only as the stored hash and only when enabled",
          "[bridge][mapping]") {
    auto m = default_mapping("dc=example,dc=com");
    m.passwords = true;
    const auto e = builder_for(m).user_entry(user("p"), std::string("{CRYPT}$6$salt$hash"), no_dns);
    REQUIRE(e);
    CHECK(e->attrs.at("userPassword") == std::vector<std::string>{"{CRYPT}$6$salt$hash"});
}

TEST_CASE("an empty group gets the placeholder member; members are sorted and unique",
          "[bridge][mapping]") {
    auto m = default_mapping("dc=example,dc=com");
    const json g{{"id", "g1"}, {"displayName", "R&D, Europe"}};
    auto e = builder_for(m).group_entry(g, {});
    CHECK(e.dn == "cn=R&D\\, Europe,ou=groups,dc=example,dc=com");
    CHECK(e.attrs.at("member") == std::vector<std::string>{e.dn});
    m.empty_group_member = "cn=nobody";
    m.group_kind = group_class::group_of_unique_names;
    e = builder_for(m).group_entry(g, {"uid=b", "uid=a", "uid=b"});
    CHECK(e.attrs.at("uniqueMember") == std::vector<std::string>{"uid=a", "uid=b"});
    CHECK(builder_for(m).group_entry(g, {}).attrs.at("uniqueMember") ==
          std::vector<std::string>{"cn=nobody"});
}

TEST_CASE("invalid mappings are refused with the setting named", "[bridge][mapping]") {
    auto m = default_mapping("dc=example,dc=com");
    SECTION("unknown SCIM path") {
        m.user_attributes.push_back({"description", "nickNmae", false});
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(),
                   Catch::Contains("attributes.description") && Catch::Contains("nickNmae"));
    }
    SECTION("bad value filter") {
        m.user_attributes.push_back({"description", "emails[tpye eq \"work\"].value", false});
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("attributes.description"));
    }
    SECTION("bad base DN") {
        m.people_base = "ou=people,,dc=x";
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("users.base"));
    }
    SECTION("no rule for the RDN") {
        m.user_rdn = "employeeNumber2";
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("users.rdn"));
    }
    SECTION("an attribute mapped twice") {
        m.user_attributes.push_back({"MAIL", "userName", false});
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("mapped twice"));
    }
    SECTION("the password attribute") {
        m.user_attributes.push_back({"userPassword", "userName", false});
        CHECK_FALSE(validate(m));
    }
    SECTION("deactivation attribute that the map owns") {
        m.on_deactivate = deactivate_mode::attribute;
        m.deactivate_attribute = "title";
        auto r = validate(m);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), Catch::Contains("deactivate.attribute"));
    }
}

TEST_CASE("diff replaces changed attributes and removes vanished ones only", "[bridge][mapping]") {
    attribute_values a{{"cn", {"A"}}, {"mail", {"x@y", "z@y"}}, {"title", {"T"}}};
    attribute_values b{{"CN", {"A"}}, {"mail", {"z@y", "x@y"}}, {"sn", {"S"}}};
    const auto mods = diff(a, b);
    REQUIRE(mods.size() == 2);
    CHECK(mods[0] == modification{modification::replace, "sn", {"S"}});
    CHECK(mods[1] == modification{modification::remove, "title", {}});
    CHECK(diff(a, a).empty());
}

TEST_CASE("accesslog entries become LdapEntryChanged data with the drift decision",
          "[bridge][ingest]") {
    auto m = default_mapping("dc=example,dc=com");
    m.drift["telephonenumber"] = drift_policy::accept;
    const auto b = builder_for(m);
    accesslog_entry e{
        {"reqType", {"modify"}},
        {"reqDN", {"uid=bjensen,ou=people,dc=example,dc=com"}},
        {"reqAuthzID", {"cn=operator,dc=example,dc=com"}},
        {"entryCSN", {"20261122064015.591015Z#000000#000#000000"}},
        {"reqEntryUUID", {"51fd42cc"}},
        {"reqMod",
         {"mail:= b@example.org", "telephoneNumber:+ 555", "description:+ hi",
          "userPassword:= {SSHA}secret", "modifiersName:= cn=operator", "entryCSN:= 2026"}}};
    const auto d = decide(b, "cn=admin,dc=example,dc=com", "reqStart=1,cn=accesslog", e);
    REQUIRE(d.data);
    const auto& data = *d.data;
    CHECK(data["change"] == "modify");
    CHECK(data["modifier"] == "cn=operator,dc=example,dc=com");
    CHECK(data["drift"]["mail"] == "repair");
    CHECK(data["drift"]["telephoneNumber"] == "accept");
    CHECK(data["drift"]["description"] == "accept");  // not ours: LDAP owns it
    CHECK(data["attributes"].size() == 4);            // operational attributes left out
    CHECK(data["attributes"][0]["values"] == json::array({"b@example.org"}));
    // The secret's value never enters the event.
    CHECK(data.dump().find("secret") == std::string::npos);
    CHECK(data["attributes"][3]["redacted"] == true);

    SECTION("the change names the user by the entry's RDN, unescaped") {
        CHECK(data["user_name"] == "bjensen");
        e["reqDN"] = {"uid=Smith\\, John,ou=people,dc=example,dc=com"};
        const auto named = decide(b, "cn=admin,dc=example,dc=com", "x", e);
        REQUIRE(named.data);
        CHECK((*named.data)["user_name"] == "Smith, John");
    }
    SECTION("binary values are noted, not recorded (the event stays JSON)") {
        e["reqMod"] = {std::string("jpegPhoto:+ \xff\xd8\xff\xe0") + std::string(1, '\0') + "JFIF"};
        const auto photo = decide(b, "cn=admin,dc=example,dc=com", "x", e);
        REQUIRE(photo.data);
        CHECK((*photo.data)["attributes"][0]["binary"] == true);
        CHECK((*photo.data)["attributes"][0]["values"].empty());
        CHECK_NOTHROW(photo.data->dump());
    }
    SECTION("the bridge's own writes are skipped") {
        e["reqAuthzID"] = {"CN=Admin,dc=example,dc=com"};
        CHECK(decide(b, "cn=admin,dc=example,dc=com", "x", e).why == ingest_decision::own_write);
    }
    SECTION("changes outside the managed subtrees are skipped") {
        e["reqDN"] = {"uid=x,ou=elsewhere,dc=example,dc=com"};
        CHECK(decide(b, "cn=admin,dc=example,dc=com", "x", e).why == ingest_decision::outside);
    }
    SECTION("a delete asks for the entry to be re-created under repair") {
        e["reqType"] = {"delete"};
        const auto del = decide(b, "cn=admin,dc=example,dc=com", "x", e);
        REQUIRE(del.data);
        CHECK((*del.data)["repair_entry"] == true);
    }
}
