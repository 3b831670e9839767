#include "scimsync/model/access.hpp"

#include <algorithm>

#include "scimsync/eventlog/event_json.hpp"
#include "scimsync/model/directory.hpp"
#include "scimsync/model/events.hpp"

namespace scimsync::model {

namespace el = scimsync::eventlog;
namespace names = event_names;
using json = nlohmann::json;

namespace {

el::result<void> malformed(const el::event& e, const std::string& why) {
    return el::fail(el::errc::corrupt,
                    e.type + " at seq " + std::to_string(e.seq.value) + ": " + why, e.seq);
}

std::string text_at(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json or_null(const std::string& s) {
    return s.empty() ? json(nullptr) : json(s);
}

}  // namespace

std::string access_catalogue::check(const grant& g) const {
    const auto it = services.find(g.service);
    if (it == services.end()) {
        std::string known;
        for (const auto& [name, def] : services) known += (known.empty() ? "" : ", ") + name;
        return "unknown service \"" + g.service +
               "\" (configured: " + (known.empty() ? "none, see [access.services]" : known) + ")";
    }
    if (!g.role.empty() && !it->second.roles.contains(g.role)) {
        std::string known;
        for (const auto& r : it->second.roles) known += (known.empty() ? "" : ", ") + r;
        return "service \"" + g.service + "\" has no role \"" + g.role +
               "\" (roles: " + (known.empty() ? "none" : known) + ")";
    }
    return {};
}

json access_catalogue::to_json() const {
    json out = json::array();
    for (const auto& [name, def] : services)
        out.push_back({{"name", name}, {"description", def.description}, {"roles", def.roles}});
    return out;
}

json device_json(const device_state& d) {
    return {{"id", d.id},
            {"name", d.name},
            {"serial", d.serial},
            {"platform", d.platform},
            {"owner", or_null(d.owner)},
            {"policy", or_null(d.policy)}};
}

el::result<void> access_state::apply(const el::event& e) {
    const bool granted = e.type == names::access_granted;
    if (granted || e.type == names::access_revoked) {
        const auto data = json::parse(e.data, nullptr, false);
        if (!data.is_object()) return malformed(e, "data is not an object");
        const auto subject = data.find("subject");
        if (subject == data.end() || !subject->is_object())
            return malformed(e, "subject is not an object");
        const std::string type = text_at(*subject, "type");
        const std::string id = text_at(*subject, "id");
        if ((type != "User" && type != "Group") || id.empty())
            return malformed(e, "subject must have type User or Group and an id");
        grant g{text_at(data, "service"), text_at(data, "role")};
        if (g.service.empty()) return malformed(e, "service is missing");
        auto& grants = type == "User" ? user_grants_ : group_grants_;
        if (granted) {
            grants[id].insert(std::move(g));
        } else if (auto it = grants.find(id); it != grants.end()) {
            it->second.erase(g);
            if (it->second.empty()) grants.erase(it);
        }
        return {};
    }
    if (e.type != names::device_registered && e.type != names::device_updated &&
        e.type != names::device_removed)
        return {};
    const auto data = json::parse(e.data, nullptr, false);
    if (!data.is_object() || text_at(data, "id").empty())
        return malformed(e, "data is not an object with an id");
    const std::string id = text_at(data, "id");
    auto it = devices_.find(id);
    if (e.type == names::device_removed) {
        if (it != devices_.end()) {
            unindex_device(it->second);
            devices_.erase(it);
        }
        return {};
    }
    const auto dev = data.find("device");
    if (dev == data.end() || !dev->is_object()) return malformed(e, "device is not an object");
    device_state d;
    if (it != devices_.end()) {
        d = it->second;
        unindex_device(it->second);
    } else {
        d.created = e.time;
    }
    d.id = id;
    d.name = text_at(*dev, "name");
    d.serial = text_at(*dev, "serial");
    d.platform = text_at(*dev, "platform");
    d.owner = text_at(*dev, "owner");
    d.policy = text_at(*dev, "policy");
    d.last_modified = e.time;
    ++d.version;
    index_device(d);
    devices_[id] = std::move(d);
    return {};
}

void access_state::index_device(const device_state& d) {
    if (!d.owner.empty()) devices_by_owner_[d.owner].insert(d.id);
    if (!d.serial.empty()) device_by_serial_[lower(d.serial)] = d.id;
}

void access_state::unindex_device(const device_state& d) {
    if (auto o = devices_by_owner_.find(d.owner); o != devices_by_owner_.end()) {
        o->second.erase(d.id);
        if (o->second.empty()) devices_by_owner_.erase(o);
    }
    if (auto s = device_by_serial_.find(lower(d.serial));
        s != device_by_serial_.end() && s->second == d.id)
        device_by_serial_.erase(s);
}

void access_state::forget_subject(const std::string& key) {
    if (key.starts_with("User/")) user_grants_.erase(key.substr(5));
    if (key.starts_with("Group/")) group_grants_.erase(key.substr(6));
}

const std::set<grant>* access_state::grants_of(std::string_view subject_key) const {
    if (subject_key.starts_with("User/")) return user_grants(subject_key.substr(5));
    if (subject_key.starts_with("Group/")) return group_grants(subject_key.substr(6));
    return nullptr;
}

const std::set<grant>* access_state::user_grants(std::string_view user_id) const {
    const auto it = user_grants_.find(user_id);
    return it == user_grants_.end() ? nullptr : &it->second;
}

const std::set<grant>* access_state::group_grants(std::string_view group_id) const {
    const auto it = group_grants_.find(group_id);
    return it == group_grants_.end() ? nullptr : &it->second;
}

const device_state* access_state::device(std::string_view id) const {
    const auto it = devices_.find(std::string(id));
    return it == devices_.end() ? nullptr : &it->second;
}

std::vector<const device_state*> access_state::devices() const {
    std::vector<const device_state*> out;
    out.reserve(devices_.size());
    for (const auto& [id, d] : devices_) out.push_back(&d);
    return out;
}

std::vector<const device_state*> access_state::devices_of(std::string_view user_id) const {
    std::vector<const device_state*> out;
    if (auto it = devices_by_owner_.find(std::string(user_id)); it != devices_by_owner_.end())
        for (const auto& id : it->second) out.push_back(&devices_.at(id));
    return out;
}

const device_state* access_state::device_by_serial(std::string_view serial) const {
    const auto it = device_by_serial_.find(lower(serial));
    return it == device_by_serial_.end() ? nullptr : device(it->second);
}

json access_state::to_json() const {
    json grants = json::object();
    std::map<std::string, const std::set<grant>*> sorted;
    for (const auto& [id, set] : user_grants_) sorted["User/" + id] = &set;
    for (const auto& [id, set] : group_grants_) sorted["Group/" + id] = &set;
    for (const auto& [key, set] : sorted) {
        json list = json::array();
        for (const auto& g : *set) list.push_back({g.service, g.role});
        grants[key] = std::move(list);
    }
    json devices = json::array();
    for (const auto& [id, d] : devices_) {
        json j = device_json(d);
        j["created"] = el::format_time(d.created);
        j["last_modified"] = el::format_time(d.last_modified);
        j["version"] = d.version;
        devices.push_back(std::move(j));
    }
    return {{"grants", std::move(grants)}, {"devices", std::move(devices)}};
}

el::result<access_state> access_state::from_json(const json& j) {
    access_state a;
    auto bad = [](const std::string& why) {
        return el::fail(el::errc::corrupt, "access snapshot: " + why);
    };
    if (!j.is_object()) return bad("not an object");
    static const json none = json::object();
    const auto grants = j.find("grants");
    for (const auto& [key, list] : (grants != j.end() ? *grants : none).items()) {
        if (!list.is_array()) return bad("grants of " + key);
        for (const auto& g : list) {
            if (!g.is_array() || g.size() != 2 || !g[0].is_string() || !g[1].is_string())
                return bad("a grant of " + key);
            grant gr{g[0].get<std::string>(), g[1].get<std::string>()};
            if (key.starts_with("User/"))
                a.user_grants_[key.substr(5)].insert(std::move(gr));
            else if (key.starts_with("Group/"))
                a.group_grants_[key.substr(6)].insert(std::move(gr));
            else
                return bad("grants of " + key);
        }
    }
    const auto devices = j.find("devices");
    if (devices != j.end() && !devices->is_array()) return bad("devices is not an array");
    if (devices != j.end())
        for (const auto& dj : *devices) {
            device_state d;
            d.id = text_at(dj, "id");
            d.name = text_at(dj, "name");
            d.serial = text_at(dj, "serial");
            d.platform = text_at(dj, "platform");
            d.owner = text_at(dj, "owner");
            d.policy = text_at(dj, "policy");
            auto created = el::parse_time(text_at(dj, "created"));
            auto modified = el::parse_time(text_at(dj, "last_modified"));
            if (d.id.empty() || !created || !modified || !dj.contains("version"))
                return bad("device " + d.id);
            d.created = *created;
            d.last_modified = *modified;
            d.version = dj["version"].get<std::uint64_t>();
            a.index_device(d);
            a.devices_[d.id] = std::move(d);
        }
    return a;
}

bool access_state::operator==(const access_state& o) const {
    return user_grants_ == o.user_grants_ && group_grants_ == o.group_grants_ &&
           devices_ == o.devices_;
}

std::vector<std::string> all_groups_of(const directory& d, std::string_view user_id) {
    std::unordered_set<std::string_view> seen;
    std::vector<std::string_view> todo;
    if (const auto* direct = d.groups_of(user_id))
        for (const auto& g : *direct)
            if (seen.insert(g).second) todo.push_back(g);
    for (std::size_t next = 0; next < todo.size(); ++next)
        if (const auto* parents = d.groups_of(todo[next]))
            for (const auto& p : *parents)
                if (seen.insert(p).second) todo.push_back(p);
    std::vector<std::string> out(todo.begin(), todo.end());
    std::sort(out.begin(), out.end());
    return out;
}

namespace {
// The groups listing `member` directly, in id order (group_set keeps them so): walks visit
// them in a fixed order, so the path chosen among equally short ones is the same in every
// replay.
const group_set& sorted_groups_of(const directory& d, std::string_view member) {
    static const group_set none;
    const auto* groups = d.groups_of(member);
    return groups != nullptr ? *groups : none;
}
}  // namespace

std::vector<effective_grant> effective_access(const directory& d, std::string_view user_id) {
    std::vector<effective_grant> out;
    if (d.user(user_id) == nullptr) return out;
    std::map<grant, std::vector<access_reason>> found;
    const auto& access = d.access();
    if (const auto* direct = access.user_grants(user_id))
        for (const auto& g : *direct) found[g].push_back({});
    // Breadth first, so each group is reached by a shortest path; `parent` rebuilds it. The
    // views point into the directory's membership sets, which outlive this call.
    std::unordered_map<std::string_view, std::string_view> parent;  // group -> the one below
    std::vector<std::string_view> todo;
    for (const auto& g : sorted_groups_of(d, user_id))
        if (parent.emplace(g, std::string_view()).second) todo.push_back(g);
    for (std::size_t next = 0; next < todo.size(); ++next) {
        const std::string_view g = todo[next];
        if (const auto* grants = access.group_grants(g)) {
            access_reason why;
            for (std::string_view at = g; !at.empty(); at = parent.at(at))
                why.path.emplace_back(at);
            std::reverse(why.path.begin(), why.path.end());
            for (const auto& gr : *grants) found[gr].push_back(why);
        }
        for (const auto& p : sorted_groups_of(d, g))
            if (parent.emplace(p, g).second) todo.push_back(p);
    }
    out.reserve(found.size());
    for (auto& [g, reasons] : found) {
        std::stable_sort(reasons.begin(), reasons.end(),
                         [](const access_reason& a, const access_reason& b) {
                             return a.path.size() < b.path.size();
                         });
        out.push_back({g, std::move(reasons)});
    }
    return out;
}

}  // namespace scimsync::model
