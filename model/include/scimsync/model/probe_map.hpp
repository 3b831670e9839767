#pragma once
// A hash map from std::string keys that keeps each key's full hash next to a pointer to its
// entry, in one flat array probed linearly: the directory's big indexes (users by id, by
// userName, groups, memberships).
//
// Why not std::unordered_map: at a million users every index lookup is a walk through memory
// no cache holds, and on the virtual machines this runs on each such access costs about half
// a microsecond (bench/README.md, 2026-12-05 fourth session). libstdc++'s map reaches a key
// through its bucket, then the node *before* the bucket's first node, then the node, then the
// key's characters, then the next node (to see where the bucket ends): four or five of those
// accesses per lookup, and three or four when the key is absent, which is every uniqueness
// check and every insert of a new user. Here a lookup reads one slot array line (the hash and
// the pointer), and follows the pointer only when the full 64-bit hash matches: one access for
// an absent key, three for a present one (slot, entry, key characters). Growing reads the slot
// array in order and never touches an entry, where std::unordered_map follows every node to
// relink it.
//
// Entries are allocated one by one and never move: pointers and references to keys and values
// stay valid until the entry is erased, as with std::unordered_map. Iterators are invalidated
// by any insert that grows the map (as there) and stay valid across erases of other entries.
// Erasing leaves a marker that lookups step over; growing or a following empty slot clears it.
//
// Provides the part of std::unordered_map that sharded_map and the directory use: find,
// contains, count, equal_range, operator[], try_emplace, erase (by iterator or key),
// iteration (no order promised), size, empty, reserve, clear, swap, extract and insert of
// nodes, and drain (every node out at once, for sharded_map's split). Lookups take anything
// convertible to std::string_view, so a view never allocates a key.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace scimsync::model {

template <class T>
class probe_map {
public:
    using key_type = std::string;
    using mapped_type = T;
    using value_type = std::pair<const std::string, T>;
    using size_type = std::size_t;
    struct hasher {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };

private:
    // entry == nullptr: empty when hash is 0, an erased entry's marker when hash is 1.
    struct slot {
        std::uint64_t hash = 0;
        value_type* entry = nullptr;
    };

public:
    template <bool Const>
    class basic_iterator {
        using slot_ptr = std::conditional_t<Const, const slot*, slot*>;

    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = probe_map::value_type;
        using difference_type = std::ptrdiff_t;
        using reference = std::conditional_t<Const, const value_type&, value_type&>;
        using pointer = std::conditional_t<Const, const value_type*, value_type*>;

        basic_iterator() = default;
        template <bool C = Const, class = std::enable_if_t<C>>
        basic_iterator(const basic_iterator<false>& o)  // NOLINT(google-explicit-constructor)
            : at_(o.at_), end_(o.end_) {}

        reference operator*() const { return *at_->entry; }
        pointer operator->() const { return at_->entry; }
        basic_iterator& operator++() {
            ++at_;
            settle();
            return *this;
        }
        basic_iterator operator++(int) {
            auto old = *this;
            ++*this;
            return old;
        }
        friend bool operator==(const basic_iterator& a, const basic_iterator& b) {
            return a.at_ == b.at_;
        }

    private:
        friend class probe_map;
        template <bool>
        friend class basic_iterator;
        basic_iterator(slot_ptr at, slot_ptr end) : at_(at), end_(end) { settle(); }
        void settle() {
            while (at_ != end_ && at_->entry == nullptr) ++at_;
        }

        slot_ptr at_ = nullptr;
        slot_ptr end_ = nullptr;
    };
    using iterator = basic_iterator<false>;
    using const_iterator = basic_iterator<true>;

    // An entry taken out of a map (extract, drain), to be inserted into another.
    class node_type {
    public:
        node_type() = default;
        const std::string& key() const { return entry_->first; }
        mapped_type& mapped() const { return entry_->second; }
        bool empty() const { return entry_ == nullptr; }
        explicit operator bool() const { return entry_ != nullptr; }

    private:
        friend class probe_map;
        node_type(value_type* e, std::uint64_t h) : entry_(e), hash_(h) {}
        std::unique_ptr<value_type> entry_;
        std::uint64_t hash_ = 0;
    };

    probe_map() = default;
    probe_map(const probe_map& o) : slots_(o.slots_), size_(o.size_), erased_(o.erased_) {
        // Same capacity, same positions: only the entries are copied.
        std::size_t copied = 0;
        try {
            for (; copied < slots_.size(); ++copied)
                if (slots_[copied].entry != nullptr)
                    slots_[copied].entry = new value_type(*slots_[copied].entry);
        } catch (...) {
            for (std::size_t i = 0; i < copied; ++i) delete slots_[i].entry;
            throw;
        }
    }
    probe_map& operator=(const probe_map& o) {
        if (this != &o) {
            probe_map copy(o);
            swap(copy);
        }
        return *this;
    }
    probe_map(probe_map&& o) noexcept
        : slots_(std::move(o.slots_)),
          size_(std::exchange(o.size_, 0)),
          erased_(std::exchange(o.erased_, 0)) {
        o.slots_.clear();
    }
    probe_map& operator=(probe_map&& o) noexcept {
        if (this != &o) {
            probe_map gone(std::move(*this));
            swap(o);
        }
        return *this;
    }
    ~probe_map() { release(); }

    void swap(probe_map& o) noexcept {
        slots_.swap(o.slots_);
        std::swap(size_, o.size_);
        std::swap(erased_, o.erased_);
    }

    iterator begin() { return from<iterator>(this, 0); }
    iterator end() { return from<iterator>(this, slots_.size()); }
    const_iterator begin() const { return from<const_iterator>(this, 0); }
    const_iterator end() const { return from<const_iterator>(this, slots_.size()); }

    size_type size() const { return size_; }
    bool empty() const { return size_ == 0; }

    iterator find(std::string_view key) { return found<iterator>(this, key); }
    const_iterator find(std::string_view key) const { return found<const_iterator>(this, key); }
    bool contains(std::string_view key) const { return find_index(key, hash_of(key)) != npos; }
    size_type count(std::string_view key) const { return contains(key) ? 1 : 0; }
    std::pair<const_iterator, const_iterator> equal_range(std::string_view key) const {
        auto first = find(key);
        if (first == end()) return {end(), end()};
        auto last = first;
        return {first, ++last};
    }

    mapped_type& operator[](const key_type& key) { return try_emplace(key).first->second; }

    template <class... Args>
    std::pair<iterator, bool> try_emplace(const key_type& key, Args&&... args) {
        const std::uint64_t h = hash_of(key);
        if (const std::size_t i = find_index(key, h); i != npos)
            return {from<iterator>(this, i), false};
        make_room();
        auto* e = new value_type(std::piecewise_construct, std::forward_as_tuple(key),
                                 std::forward_as_tuple(std::forward<Args>(args)...));
        return {from<iterator>(this, place(h, e)), true};
    }

    // Inserts the node's entry unless its key is present, in which case the node keeps it.
    bool insert(node_type&& n) {
        if (n.empty() || find_index(n.key(), n.hash_) != npos) return false;
        make_room();
        place(n.hash_, n.entry_.release());
        return true;
    }

    node_type extract(const_iterator pos) {
        const std::size_t i = index_of(pos);
        node_type n(slots_[i].entry, slots_[i].hash);
        vacate(i);
        return n;
    }

    // Hands every entry to `take` as a node, leaving the map empty (and without its array).
    template <class F>
    void drain(F&& take) {
        auto slots = std::move(slots_);
        slots_.clear();
        size_ = 0;
        erased_ = 0;
        try {
            for (auto& s : slots) {
                if (s.entry == nullptr) continue;
                node_type n(std::exchange(s.entry, nullptr), s.hash);
                take(std::move(n));
            }
        } catch (...) {
            for (auto& s : slots) delete s.entry;
            throw;
        }
    }

    iterator erase(const_iterator pos) {
        const std::size_t i = index_of(pos);
        remove(i);
        return from<iterator>(this, i);
    }
    iterator erase(iterator pos) { return erase(const_iterator(pos)); }
    size_type erase(std::string_view key) {
        const std::size_t i = find_index(key, hash_of(key));
        if (i == npos) return 0;
        remove(i);
        return 1;
    }

    // Room for `n` entries before the next growth.
    void reserve(size_type n) {
        if (n == 0 || fits(n, slots_.size())) return;
        rehash(capacity_for(n));
    }
    void clear() {
        release();
        slots_.clear();
        size_ = 0;
        erased_ = 0;
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    static constexpr std::size_t min_capacity = 4;  // a small group's member list: 64 bytes

    static std::uint64_t hash_of(std::string_view key) { return hasher{}(key); }
    // The slot a hash starts probing at. sharded_map picks shards by the top bits of a
    // multiplication of the same hash, so this mixes differently and takes the low bits.
    // Any capacity (below 2^32 slots): the top 32 bits of the mixed hash scaled to it.
    std::size_t home(std::uint64_t h) const {
        h ^= h >> 31;
        h *= 0xD6E8FEB86659FD93ULL;
        h ^= h >> 32;
        return static_cast<std::size_t>(((h >> 32) * slots_.size()) >> 32);
    }
    std::size_t next(std::size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
    std::size_t previous(std::size_t i) const { return (i == 0 ? slots_.size() : i) - 1; }
    // At most three quarters of the slots hold entries or markers.
    static bool fits(std::size_t used, std::size_t capacity) { return used * 4 <= capacity * 3; }
    // The fewest slots that hold `n` (the capacity is not a power of two: reserve asks for
    // exactly what it names, and sharded_map staggers its shards' sizes with it).
    static std::size_t capacity_for(std::size_t n) {
        return std::max(min_capacity, (n * 4 + 2) / 3);
    }

    std::size_t find_index(std::string_view key, std::uint64_t h) const {
        if (size_ == 0) return npos;
        for (std::size_t i = home(h);; i = next(i)) {
            const slot& s = slots_[i];
            if (s.entry == nullptr) {
                if (s.hash == 0) return npos;
            } else if (s.hash == h && s.entry->first == key) {
                return i;
            }
        }
    }
    // Puts an entry known to be absent at the first free slot of its probe sequence; the map
    // has room.
    std::size_t place(std::uint64_t h, value_type* e) {
        std::size_t i = home(h);
        while (slots_[i].entry != nullptr) i = next(i);
        if (slots_[i].hash == 1) --erased_;
        slots_[i] = slot{h, e};
        ++size_;
        return i;
    }
    void make_room() {
        if (fits(size_ + erased_ + 1, slots_.size())) return;
        // Markers alone filling the array: the same capacity, rebuilt without them.
        // Otherwise twice the slots.
        rehash(fits(size_ + 1, slots_.size() / 2)
                   ? slots_.size()
                   : std::max(capacity_for(size_ + 1), 2 * slots_.size()));
    }
    void rehash(std::size_t capacity) {
        std::vector<slot> old(capacity);
        old.swap(slots_);
        size_ = 0;
        erased_ = 0;
        for (const slot& s : old)
            if (s.entry != nullptr) place(s.hash, s.entry);
    }
    // Slot `i` no longer holds its entry: it becomes a marker, or empty when no probe sequence
    // can pass it (the next slot is empty), and so do the markers just before it.
    void vacate(std::size_t i) {
        --size_;
        if (const slot& after = slots_[next(i)]; after.entry != nullptr || after.hash != 0) {
            slots_[i] = slot{1, nullptr};
            ++erased_;
            return;
        }
        slots_[i] = slot{};
        for (std::size_t j = previous(i); slots_[j].entry == nullptr && slots_[j].hash == 1;
             j = previous(j)) {
            slots_[j] = slot{};
            --erased_;
        }
    }
    void remove(std::size_t i) {
        delete slots_[i].entry;
        vacate(i);
    }
    // The first entry at or after slot `i` (the end when there is none).
    template <class It, class Self>
    static It from(Self* self, std::size_t i) {
        return It(self->slots_.data() + i, self->slots_.data() + self->slots_.size());
    }
    template <class It, class Self>
    static It found(Self* self, std::string_view key) {
        const std::size_t i = self->find_index(key, hash_of(key));
        return from<It>(self, i == npos ? self->slots_.size() : i);
    }
    std::size_t index_of(const_iterator pos) const {
        return static_cast<std::size_t>(pos.at_ - slots_.data());
    }
    void release() noexcept {
        for (auto& s : slots_) delete s.entry;
    }

    std::vector<slot> slots_;  // at least min_capacity of them, or none
    size_type size_ = 0;       // entries
    size_type erased_ = 0;     // markers
};

}  // namespace scimsync::model
