#pragma once
// A hash map that splits into 64 shards by key once it is large, so that growing never rehashes
// everything at once.
//
// A std::unordered_map that outgrows its buckets relinks every node in one insert: at a
// million users that one insert takes half a second (bench/directory_growth), and the daemon
// holds its directory lock throughout, so every request waiting behind it waits as long. Split
// into 64 maps, each rehash moves a 64th of the entries, and the shards cross their thresholds
// on different inserts: the same work in 64 pieces of a few milliseconds.
//
// Small maps (most groups' member lists) stay one map, so a directory of many small groups pays
// nothing for this; the split happens once, at `split_at` entries, moving that many nodes
// (relinked, not copied), and is never undone.
//
// Behaves like the map it wraps (a probe_map, or a std::unordered_map or multimap), for what
// the directory uses:
// find, contains, count, equal_range, operator[], try_emplace, emplace, erase, iteration (shard
// by shard, each in its map's order: no order is promised, as with the map itself), size,
// reserve, ==. Keys are strings.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace scimsync::model {

template <class Map>
class sharded_map {
public:
    static constexpr unsigned shard_bits = 6;
    static constexpr std::size_t shard_count = std::size_t{1} << shard_bits;
    static constexpr std::size_t split_at = 4096;  // entries

    using key_type = typename Map::key_type;
    using mapped_type = typename Map::mapped_type;
    using value_type = typename Map::value_type;
    using hasher = typename Map::hasher;
    using size_type = std::size_t;

    template <bool Const>
    class basic_iterator {
        using owner_ptr = std::conditional_t<Const, const sharded_map*, sharded_map*>;
        using inner = std::conditional_t<Const, typename Map::const_iterator, typename Map::iterator>;

    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = typename Map::value_type;
        using difference_type = std::ptrdiff_t;
        using reference = std::conditional_t<Const, const value_type&, value_type&>;
        using pointer = std::conditional_t<Const, const value_type*, value_type*>;

        basic_iterator() = default;
        // A non-const iterator converts to a const one.
        template <bool C = Const, class = std::enable_if_t<C>>
        basic_iterator(const basic_iterator<false>& o)  // NOLINT(google-explicit-constructor)
            : owner_(o.owner_), shard_(o.shard_), it_(o.it_) {}

        reference operator*() const { return *it_; }
        pointer operator->() const { return &*it_; }
        basic_iterator& operator++() {
            ++it_;
            settle();
            return *this;
        }
        basic_iterator operator++(int) {
            auto old = *this;
            ++*this;
            return old;
        }
        friend bool operator==(const basic_iterator& a, const basic_iterator& b) {
            return a.shard_ == b.shard_ && (a.shard_ == past_end || a.it_ == b.it_);
        }

    private:
        friend class sharded_map;
        template <bool>
        friend class basic_iterator;
        basic_iterator(owner_ptr owner, std::size_t shard, inner it)
            : owner_(owner), shard_(shard), it_(it) {}
        // Moves past the end of an exhausted shard to the first entry of the next non-empty one.
        void settle() {
            const std::size_t n = owner_->shard_total();
            while (shard_ != past_end && it_ == owner_->at(shard_).end())
                if (++shard_ < n) it_ = owner_->at(shard_).begin();
                else shard_ = past_end;
        }

        owner_ptr owner_ = nullptr;
        std::size_t shard_ = past_end;
        inner it_{};
    };
    using iterator = basic_iterator<false>;
    using const_iterator = basic_iterator<true>;

    sharded_map() = default;
    sharded_map(const sharded_map&) = default;
    sharded_map& operator=(const sharded_map&) = default;
    // The source is left empty and usable.
    sharded_map(sharded_map&& o) noexcept
        : one_(std::move(o.one_)), many_(std::move(o.many_)), size_(std::exchange(o.size_, 0)) {
        o.one_.clear();
        o.many_.clear();
    }
    sharded_map& operator=(sharded_map&& o) noexcept {
        one_ = std::move(o.one_);
        many_ = std::move(o.many_);
        size_ = std::exchange(o.size_, 0);
        o.one_.clear();
        o.many_.clear();
        return *this;
    }
    ~sharded_map() = default;

    iterator begin() { return first<iterator>(this); }
    iterator end() { return iterator(this, past_end, {}); }
    const_iterator begin() const { return first<const_iterator>(this); }
    const_iterator end() const { return const_iterator(this, past_end, {}); }

    template <class K>
    iterator find(const K& key) {
        const std::size_t s = shard_of(key);
        auto it = at(s).find(key);
        return it == at(s).end() ? end() : iterator(this, s, it);
    }
    template <class K>
    const_iterator find(const K& key) const {
        const std::size_t s = shard_of(key);
        auto it = at(s).find(key);
        return it == at(s).end() ? end() : const_iterator(this, s, it);
    }
    template <class K>
    bool contains(const K& key) const {
        return at(shard_of(key)).contains(key);
    }
    template <class K>
    size_type count(const K& key) const {
        return at(shard_of(key)).count(key);
    }
    template <class K>
    std::pair<const_iterator, const_iterator> equal_range(const K& key) const {
        const std::size_t s = shard_of(key);
        auto [first, last] = at(s).equal_range(key);
        if (first == last) return {end(), end()};
        const_iterator b(this, s, first), e(this, s, last);
        e.settle();
        return {b, e};
    }

    mapped_type& operator[](const key_type& key) { return try_emplace(key).first->second; }
    template <class... Args>
    std::pair<iterator, bool> try_emplace(const key_type& key, Args&&... args) {
        grow();
        const std::size_t s = shard_of(key);
        auto [it, inserted] = at(s).try_emplace(key, std::forward<Args>(args)...);
        if (inserted) ++size_;
        return {iterator(this, s, it), inserted};
    }
    // For multimaps: always inserts.
    template <class V>
    iterator emplace(const key_type& key, V&& value) {
        grow();
        const std::size_t s = shard_of(key);
        auto r = at(s).emplace(key, std::forward<V>(value));
        if constexpr (requires { r.second; }) {
            if (r.second) ++size_;
            return iterator(this, s, r.first);
        } else {
            ++size_;
            return iterator(this, s, r);
        }
    }

    iterator erase(iterator pos) {
        iterator next(this, pos.shard_, at(pos.shard_).erase(pos.it_));
        next.settle();
        --size_;
        return next;
    }
    iterator erase(const_iterator pos) {
        iterator next(this, pos.shard_, at(pos.shard_).erase(pos.it_));
        next.settle();
        --size_;
        return next;
    }
    template <class K>
    size_type erase(const K& key) {
        const size_type n = at(shard_of(key)).erase(key);
        size_ -= n;
        return n;
    }

    size_type size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // Room for `n` entries in all, a little more per shard than an even split, so that only
    // growth past `n` rehashes a shard.
    void reserve(size_type n) {
        if (n >= split_at) split();
        if (many_.empty()) return one_.reserve(n);
        // Shard sizes spread by about their square root (150 entries at 23,000): a 32nd more
        // is several times that.
        for (std::size_t s = 0; s < shard_count; ++s)
            many_[s].reserve(staggered(n / shard_count + n / shard_count / 32 + 64, s));
    }

    // Equal entries, whatever the shard layout (a map rebuilt from a snapshot may not have
    // split where the live one did). Maps with unique keys only.
    friend bool operator==(const sharded_map& a, const sharded_map& b) {
        if (a.size_ != b.size_) return false;
        for (const auto& [k, v] : a) {
            auto it = b.find(k);
            if (it == b.end() || !(it->second == v)) return false;
        }
        return true;
    }

private:
    static constexpr std::size_t past_end = static_cast<std::size_t>(-1);

    std::size_t shard_of(std::string_view key) const {
        if (many_.empty()) return 0;
        // The top bits of a multiplicative mix: independent of the shard map's own bucket
        // choice, which takes its hash modulo a prime.
        const std::uint64_t h = std::hash<std::string_view>{}(key);
        return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ULL) >> (64 - shard_bits));
    }
    // Room for `per_shard` entries in the first shard and up to half as much again in the last.
    // The shards fill at the same pace, so equal shards would reach their thresholds at about
    // the same size of the whole map and all grow (allocate, first-touch and fill a new array)
    // within a few thousand inserts; staggered, they grow one at a time over the first half of the
    // way to the next doubling, and stay staggered, each doubling its own size.
    static std::size_t staggered(std::size_t per_shard, std::size_t shard) {
        return per_shard + per_shard * shard / (2 * shard_count);
    }
    void grow() {
        if (size_ >= split_at && many_.empty()) split();
    }
    // From one map to shard_count, moving the nodes (no copies, no allocation per entry).
    void split() {
        if (!many_.empty()) return;
        many_ = std::vector<Map>(shard_count);
        for (std::size_t s = 0; s < shard_count; ++s)
            many_[s].reserve(staggered(one_.size() / shard_count + 16, s));
        auto move_node = [this](typename Map::node_type&& node) {
            const std::size_t s = shard_of(node.key());
            many_[s].insert(std::move(node));
        };
        if constexpr (requires { one_.drain(move_node); }) {
            one_.drain(move_node);
        } else {
            while (!one_.empty()) move_node(one_.extract(one_.begin()));
        }
        Map().swap(one_);  // its bucket array too
    }
    template <class It, class Self>
    static It first(Self* self) {
        It it(self, 0, self->at(0).begin());
        it.settle();
        return it;
    }

    std::size_t shard_total() const { return many_.empty() ? 1 : many_.size(); }
    Map& at(std::size_t s) { return many_.empty() ? one_ : many_[s]; }
    const Map& at(std::size_t s) const { return many_.empty() ? one_ : many_[s]; }

    Map one_;               // the whole map, until it splits
    std::vector<Map> many_;  // the shards, once it has split (one_ is then empty)
    size_type size_ = 0;
};

}  // namespace scimsync::model
