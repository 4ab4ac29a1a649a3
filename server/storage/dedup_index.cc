#include "server/storage/dedup_index.h"

#include <utility>

#include "absl/hash/hash.h"

namespace hookstream::storage {

DedupIndex::DedupIndex(absl::Duration window, HashFn hash)
    : window_(window), hash_(std::move(hash)) {}

uint64_t DedupIndex::Hash(absl::string_view source, absl::string_view id) const {
  // HashOf hashes each string with its length: ("ab", "c") and ("a", "bc") differ.
  return hash_ ? hash_(source, id) : absl::HashOf(source, id);
}

absl::StatusOr<std::optional<DedupIndex::Entry>> DedupIndex::Find(uint64_t hash, absl::Time now,
                                                                  SameKey same_key) const {
  auto it = newest_.find(hash);
  if (it == newest_.end()) return std::nullopt;
  const absl::Time cutoff = now - window_;
  for (uint64_t i = it->second; i != kNone && i >= first_; i = At(i).prev) {
    const Slot& slot = At(i);
    if (slot.entry.at < cutoff) break;  // Older entries of the chain are older still.
    absl::StatusOr<bool> same = same_key(slot.entry);
    if (!same.ok()) return same.status();
    if (*same) return slot.entry;
  }
  return std::nullopt;
}

void DedupIndex::Insert(uint64_t hash, const Entry& entry) {
  if (!enabled()) return;
  if (end_ - first_ == ring_.size()) {  // Full: double, keeping each entry's index.
    std::vector<Slot> bigger(ring_.empty() ? 1024 : ring_.size() * 2);
    for (uint64_t i = first_; i < end_; ++i) bigger[i & (bigger.size() - 1)] = At(i);
    ring_.swap(bigger);
  }
  auto [it, inserted] = newest_.try_emplace(hash, end_);
  const uint64_t prev = inserted ? kNone : std::exchange(it->second, end_);
  At(end_) = Slot{hash, prev, entry};
  ++end_;
}

void DedupIndex::Truncate(uint64_t mark) {
  while (end_ > mark && end_ > first_) {
    const Slot& slot = At(end_ - 1);
    // Entries are undone newest first, so this one is its hash's newest.
    if (slot.prev != kNone && slot.prev >= first_) {
      newest_[slot.hash] = slot.prev;
    } else {
      newest_.erase(slot.hash);
    }
    if (!kept_.empty()) kept_.erase(slot.entry.position.value());
    --end_;
  }
}

void DedupIndex::Expire(absl::Time now) {
  const absl::Time cutoff = now - window_;
  while (first_ < end_ && At(first_).entry.at < cutoff) {
    const Slot& slot = At(first_);
    // The hash may have newer entries; only its newest entry's expiry drops it from the map.
    if (auto it = newest_.find(slot.hash); it != newest_.end() && it->second == first_) {
      newest_.erase(it);
    }
    if (!kept_.empty()) kept_.erase(slot.entry.position.value());
    ++first_;
  }
  if (first_ == end_ && ring_.size() > 1024) {  // A burst is over: give its memory back.
    std::vector<Slot>().swap(ring_);
    first_ = end_ = 0;
    newest_.clear();
  }
}

uint64_t DedupIndex::LowerBound(Position after) const {
  uint64_t lo = first_;
  uint64_t hi = end_;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (At(mid).entry.position <= after) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void DedupIndex::ForEachUpTo(Position after, Position through,
                             absl::FunctionRef<void(const Entry& entry)> f) const {
  for (uint64_t i = LowerBound(after); i < end_ && At(i).entry.position <= through; ++i) {
    f(At(i).entry);
  }
}

void DedupIndex::Keep(Position position, absl::string_view source, absl::string_view id) {
  kept_.insert_or_assign(position.value(), std::make_pair(std::string(source), std::string(id)));
}

const std::pair<std::string, std::string>* DedupIndex::Kept(Position position) const {
  auto it = kept_.find(position.value());
  return it == kept_.end() ? nullptr : &it->second;
}

}  // namespace hookstream::storage
