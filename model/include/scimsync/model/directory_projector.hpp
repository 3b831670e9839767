#pragma once
// The directory as an eventlog projector: checkpoint, upcast events applied in order, and
// snapshots (the serialised directory). Pure; the runner does the I/O.

#include "scimsync/eventlog/projector.hpp"
#include "scimsync/model/directory.hpp"

namespace scimsync::model {

class directory_projector final : public eventlog::projector {
public:
    std::string name() const override { return "directory"; }
    // 2: JSON-lines body; 3: resources carry their creating client ("owner")
    std::uint32_t schema_version() const override { return 5; }  // 5: access, sources, token scope
    eventlog::seq_no checkpoint() const override { return at_; }
    eventlog::result<void> apply(const eventlog::event& e) override {
        if (auto r = dir_.apply(e); !r) return r;
        at_ = e.seq;
        return {};
    }
    std::uint64_t state_size() const override { return dir_.entry_count(); }
    std::optional<std::string> snapshot() const override { return dir_.serialize(); }
    bool write_snapshot(const std::function<void(std::string_view)>& out) const override {
        dir_.serialize_to(out);
        return true;
    }
    eventlog::result<void> restore(std::string_view body, eventlog::seq_no at) override {
        auto d = directory::deserialize(body);
        if (!d) return std::unexpected(d.error());
        dir_ = std::move(*d);
        at_ = at;
        return {};
    }

    const directory& dir() const { return dir_; }
    // For changes that leave the folded state as it is (e.g. reserve_headroom).
    directory& mutable_dir() { return dir_; }

private:
    directory dir_;
    eventlog::seq_no at_;
};

}  // namespace scimsync::model
