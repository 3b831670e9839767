#include "scimsync/model/scim/schema.hpp"

#include <algorithm>

#include "scimsync/model/ascii.hpp"

namespace scimsync::model::scim {

bool iequals(std::string_view a, std::string_view b) {
    return ascii::iequals(a, b);
}

const attribute* attribute::sub(std::string_view n) const {
    for (const auto& a : sub_attributes)
        if (iequals(a.name, n)) return &a;
    return nullptr;
}

const attribute* schema::find(std::string_view n) const {
    for (const auto& a : attributes)
        if (iequals(a.name, n)) return &a;
    return nullptr;
}

const schema* resource_type::schema_by_urn(std::string_view urn) const {
    if (iequals(core->id, urn)) return core;
    for (const auto* e : extensions)
        if (iequals(e->id, urn)) return e;
    return nullptr;
}

namespace {

// Small builders so the schema tables below read like RFC 7643's.
attribute str(std::string name, std::string description, bool case_exact = false) {
    attribute a;
    a.name = std::move(name);
    a.description = std::move(description);
    a.case_exact = case_exact;
    return a;
}

attribute typed(std::string name, attr_type t, std::string description) {
    attribute a = str(std::move(name), std::move(description));
    a.type = t;
    return a;
}

attribute ref(std::string name, std::vector<std::string> types, std::string description) {
    attribute a = typed(std::move(name), attr_type::reference, std::move(description));
    a.reference_types = std::move(types);
    a.case_exact = true;
    return a;
}

attribute complex(std::string name, std::string description, std::vector<attribute> subs,
                  bool multi = false) {
    attribute a = typed(std::move(name), attr_type::complex, std::move(description));
    a.sub_attributes = std::move(subs);
    a.multi_valued = multi;
    return a;
}

attribute read_only(attribute a) {
    a.mut = mutability::read_only;
    return a;
}

// The usual sub-attributes of a multi-valued attribute (RFC 7643 §2.4).
std::vector<attribute> multi_subs(attribute value, std::vector<std::string> types) {
    attribute type = str("type", "A label indicating the attribute's function.");
    type.canonical_values = std::move(types);
    return {std::move(value), str("display", "A human-readable name, primarily used for display."),
            std::move(type),
            typed("primary", attr_type::boolean,
                  "Whether this is the preferred value of the attribute.")};
}

attribute multi(std::string name, std::string description, attribute value,
                std::vector<std::string> types) {
    return complex(std::move(name), std::move(description),
                   multi_subs(std::move(value), std::move(types)), true);
}

}  // namespace

const std::vector<attribute>& common_attributes() {
    static const std::vector<attribute> attrs = [] {
        attribute id = read_only(str("id", "Unique identifier assigned by the service provider.", true));
        id.ret = returned::always;
        id.uniq = uniqueness::server;
        attribute external_id =
            str("externalId", "Identifier of the resource as defined by the provisioning client.", true);
        attribute meta = read_only(complex(
            "meta", "Resource metadata.",
            {read_only(str("resourceType", "The name of the resource type.", true)),
             read_only(typed("created", attr_type::date_time, "When the resource was added.")),
             read_only(typed("lastModified", attr_type::date_time, "When the resource last changed.")),
             read_only(ref("location", {"uri"}, "The URI of the resource.")),
             read_only(str("version", "The version (ETag) of the resource.", true))}));
        return std::vector<attribute>{std::move(id), std::move(external_id), std::move(meta)};
    }();
    return attrs;
}

const schema& user_schema() {
    static const schema s = [] {
        schema u;
        u.id = std::string(user_schema_id);
        u.name = "User";
        u.description = "User Account";
        attribute user_name = str("userName", "Unique identifier for the user, used to sign in.");
        user_name.required = true;
        user_name.uniq = uniqueness::server;
        attribute password = str("password", "The user's cleartext password; write-only.");
        password.mut = mutability::write_only;
        password.ret = returned::never;
        attribute groups = read_only(complex(
            "groups", "Groups the user belongs to, directly or indirectly.",
            {read_only(str("value", "The id of the group.", true)),
             read_only(ref("$ref", {"User", "Group"}, "The URI of the group.")),
             read_only(str("display", "The group's displayName.")),
             read_only(str("type", "direct or indirect."))},
            true));
        groups.sub_attributes[3].canonical_values = {"direct", "indirect"};
        u.attributes = {
            std::move(user_name),
            complex("name", "The components of the user's name.",
                    {str("formatted", "The full name, formatted for display."),
                     str("familyName", "The family name (last name)."),
                     str("givenName", "The given name (first name)."),
                     str("middleName", "The middle name(s)."),
                     str("honorificPrefix", "Honorific prefix, e.g. Ms."),
                     str("honorificSuffix", "Honorific suffix, e.g. III.")}),
            str("displayName", "The name of the user, suitable for display."),
            str("nickName", "The casual way to address the user."),
            ref("profileUrl", {"external"}, "A URI pointing to the user's online profile."),
            str("title", "The user's title, e.g. Vice President."),
            str("userType", "The relationship to the organisation, e.g. Employee."),
            str("preferredLanguage", "Preferred written or spoken language, e.g. en-US."),
            str("locale", "Default location for localising, e.g. en-US."),
            str("timezone", "Time zone in IANA format, e.g. Europe/Berlin."),
            typed("active", attr_type::boolean, "Whether the user's administrative status is active."),
            std::move(password),
            multi("emails", "Email addresses.", str("value", "The email address."),
                  {"work", "home", "other"}),
            multi("phoneNumbers", "Phone numbers.", str("value", "The phone number."),
                  {"work", "home", "mobile", "fax", "pager", "other"}),
            multi("ims", "Instant messaging addresses.", str("value", "The address."),
                  {"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"}),
            multi("photos", "URLs of photos of the user.", ref("value", {"external"}, "The photo URL."),
                  {"photo", "thumbnail"}),
            complex("addresses", "Physical mailing addresses.",
                    {str("formatted", "The full mailing address."),
                     str("streetAddress", "The street address."), str("locality", "City or locality."),
                     str("region", "State or region."), str("postalCode", "Zip or postal code."),
                     str("country", "Country (ISO 3166-1 alpha-2)."),
                     str("type", "work, home or other."),
                     typed("primary", attr_type::boolean, "Whether this is the primary address.")},
                    true),
            std::move(groups),
            multi("entitlements", "Entitlements.", str("value", "The entitlement."), {}),
            multi("roles", "Roles.", str("value", "The role."), {}),
            multi("x509Certificates", "X.509 certificates.",
                  typed("value", attr_type::binary, "The DER certificate, base64."), {}),
        };
        return u;
    }();
    return s;
}

const schema& enterprise_user_schema() {
    static const schema s = [] {
        schema e;
        e.id = std::string(enterprise_user_schema_id);
        e.name = "EnterpriseUser";
        e.description = "Enterprise User";
        e.attributes = {
            str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
            str("costCenter", "Identifies the name of a cost center."),
            str("organization", "Identifies the name of an organization."),
            str("division", "Identifies the name of a division."),
            str("department", "Identifies the name of a department."),
            complex("manager", "The user's manager.",
                    {str("value", "The id of the manager's User.", true),
                     ref("$ref", {"User"}, "The URI of the manager's User."),
                     read_only(str("displayName", "The manager's displayName."))}),
        };
        return e;
    }();
    return s;
}

const schema& group_schema() {
    static const schema s = [] {
        schema g;
        g.id = std::string(group_schema_id);
        g.name = "Group";
        g.description = "Group";
        attribute display_name = str("displayName", "A human-readable name for the group.");
        display_name.required = true;
        display_name.uniq = uniqueness::server;
        attribute value = str("value", "The id of the member (a User or a Group).", true);
        value.mut = mutability::immutable;
        attribute type = str("type", "User or Group.");
        type.mut = mutability::immutable;
        type.canonical_values = {"User", "Group"};
        attribute member_ref = ref("$ref", {"User", "Group"}, "The URI of the member.");
        member_ref.mut = mutability::immutable;
        g.attributes = {std::move(display_name),
                        complex("members", "The members of the group.",
                                {std::move(value), std::move(member_ref),
                                 read_only(str("display", "The member's display name.")),
                                 std::move(type)},
                                true)};
        return g;
    }();
    return s;
}

const resource_type& user_type() {
    static const resource_type t{"User", "/Users", "User Account", &user_schema(),
                                 {&enterprise_user_schema()}};
    return t;
}

const resource_type& group_type() {
    static const resource_type t{"Group", "/Groups", "Group", &group_schema(), {}};
    return t;
}

const std::vector<const resource_type*>& resource_types() {
    static const std::vector<const resource_type*> all{&user_type(), &group_type()};
    return all;
}

bool attr_ref::in_extension() const { return in != nullptr && in->id != user_schema_id &&
                                             in->id != group_schema_id; }

std::string attr_ref::canonical() const {
    std::string out;
    if (in_extension()) out = in->id + ":";
    out += attr->name;
    if (sub != nullptr) out += "." + sub->name;
    return out;
}

std::optional<attr_ref> resolve(const resource_type& type, std::string_view path) {
    attr_ref out;
    // A URN prefix is everything up to the last ':' when the path starts with "urn:".
    std::string_view rest = path;
    if (path.size() > 4 && iequals(path.substr(0, 4), "urn:")) {
        const auto colon = path.rfind(':');
        const schema* s = type.schema_by_urn(path.substr(0, colon));
        if (s == nullptr) return std::nullopt;
        out.in = s;
        rest = path.substr(colon + 1);
    }
    const auto dot = rest.find('.');
    const std::string_view top = rest.substr(0, dot);
    const std::string_view sub = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (out.in != nullptr) {
        out.attr = out.in->find(top);
    } else {
        for (const auto& a : common_attributes())
            if (iequals(a.name, top)) out.attr = &a;
        if (out.attr == nullptr) {
            out.in = type.core;
            out.attr = type.core->find(top);
        }
    }
    if (out.attr == nullptr) return std::nullopt;
    if (dot != std::string_view::npos) {
        out.sub = out.attr->sub(sub);
        if (out.sub == nullptr) return std::nullopt;
    }
    return out;
}

namespace {

const char* name_of(attr_type t) {
    switch (t) {
        case attr_type::string: return "string";
        case attr_type::boolean: return "boolean";
        case attr_type::decimal: return "decimal";
        case attr_type::integer: return "integer";
        case attr_type::date_time: return "dateTime";
        case attr_type::reference: return "reference";
        case attr_type::complex: return "complex";
        case attr_type::binary: return "binary";
    }
    return "string";
}

const char* name_of(mutability m) {
    switch (m) {
        case mutability::read_only: return "readOnly";
        case mutability::read_write: return "readWrite";
        case mutability::immutable: return "immutable";
        case mutability::write_only: return "writeOnly";
    }
    return "readWrite";
}

const char* name_of(returned r) {
    switch (r) {
        case returned::always: return "always";
        case returned::never: return "never";
        case returned::by_default: return "default";
        case returned::request: return "request";
    }
    return "default";
}

const char* name_of(uniqueness u) {
    switch (u) {
        case uniqueness::none: return "none";
        case uniqueness::server: return "server";
        case uniqueness::global: return "global";
    }
    return "none";
}

nlohmann::json to_json(const attribute& a) {
    nlohmann::json j{{"name", a.name},
                     {"type", name_of(a.type)},
                     {"multiValued", a.multi_valued},
                     {"description", a.description},
                     {"required", a.required},
                     {"mutability", name_of(a.mut)},
                     {"returned", name_of(a.ret)}};
    if (a.type != attr_type::complex && a.type != attr_type::boolean) {
        j["caseExact"] = a.case_exact;
        j["uniqueness"] = name_of(a.uniq);
    }
    if (!a.canonical_values.empty()) j["canonicalValues"] = a.canonical_values;
    if (!a.reference_types.empty()) j["referenceTypes"] = a.reference_types;
    if (!a.sub_attributes.empty()) {
        j["subAttributes"] = nlohmann::json::array();
        for (const auto& s : a.sub_attributes) j["subAttributes"].push_back(to_json(s));
    }
    return j;
}

}  // namespace

nlohmann::json to_json(const schema& s) {
    nlohmann::json j{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Schema"}},
                     {"id", s.id},
                     {"name", s.name},
                     {"description", s.description},
                     {"attributes", nlohmann::json::array()},
                     {"meta", {{"resourceType", "Schema"}, {"location", "/Schemas/" + s.id}}}};
    for (const auto& a : s.attributes) j["attributes"].push_back(to_json(a));
    return j;
}

nlohmann::json to_json(const resource_type& t) {
    nlohmann::json j{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}},
                     {"id", t.name},
                     {"name", t.name},
                     {"endpoint", t.endpoint},
                     {"description", t.description},
                     {"schema", t.core->id},
                     {"schemaExtensions", nlohmann::json::array()},
                     {"meta", {{"resourceType", "ResourceType"},
                               {"location", "/ResourceTypes/" + t.name}}}};
    for (const auto* e : t.extensions)
        j["schemaExtensions"].push_back({{"schema", e->id}, {"required", false}});
    return j;
}

}  // namespace scimsync::model::scim
