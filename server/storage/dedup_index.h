// Remembers (source, id) -> (position, seq) of recently appended events for the dedup window,
// so a retried publish stores nothing and gets the original position back (DESIGN.md §3.3).
//
// Keyed by a 64-bit hash of (source, id), with fixed-size entries and no strings: the appender
// looks up and inserts one key per event, and string keys (built, copied, hashed and freed per
// event) were a sixth of its time. Correctness never rests on the hash: every hit is confirmed
// by the caller against the event itself (`SameKey`), and entries whose hashes collide are all
// kept (a chain, newest first), so a colliding key is neither a false duplicate nor forgotten.
//
// Entries are kept in insertion order (positions ascend), which makes expiry a pop from the
// front and undoing a group's or a request's entries a pop from the back (Truncate).
//
// Not thread-safe: owned by the appender thread. Memory: ~60 bytes per event with a
// producer-chosen id appended inside the window.
#ifndef HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_
#define HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/common/types.h"

namespace hookstream::storage {

class DedupIndex {
 public:
  struct Entry {
    Position position;
    Seq seq;
    absl::Time at;  // When it was appended.
  };
  // Must be stable within the process only (nothing hashed is stored on disk).
  using HashFn = std::function<uint64_t(absl::string_view source, absl::string_view id)>;
  // Whether the event `entry` points at really has the (source, id) being looked up; an error
  // (the event could not be read) is returned by Find.
  using SameKey = absl::FunctionRef<absl::StatusOr<bool>(const Entry& entry)>;

  // `hash` null: absl::HashOf(source, id). Tests pass one that collides.
  explicit DedupIndex(absl::Duration window, HashFn hash = nullptr);

  bool enabled() const { return window_ > absl::ZeroDuration(); }
  absl::Duration window() const { return window_; }
  uint64_t Hash(absl::string_view source, absl::string_view id) const;

  // The newest entry with this hash inside the window ending at `now` that `same_key` confirms.
  absl::StatusOr<std::optional<Entry>> Find(uint64_t hash, absl::Time now, SameKey same_key) const;
  // `entry.at` must not go backwards between calls (the appender's ingest times are monotonic),
  // nor `entry.position`.
  void Insert(uint64_t hash, const Entry& entry);

  // Undo: Truncate(mark) removes every entry inserted since `mark = end()` was taken; no
  // Expire may run in between.
  uint64_t end() const { return end_; }
  void Truncate(uint64_t mark);

  // Forgets entries inserted before now - window.
  void Expire(absl::Time now);
  size_t size() const { return end_ - first_; }

  // For retention, which deletes events that may still be inside the window: the entries
  // with position in (after, through], oldest first, so the caller can Keep the keys of the
  // events it is about to delete.
  void ForEachUpTo(Position after, Position through,
                   absl::FunctionRef<void(const Entry& entry)> f) const;
  // Remembers the (source, id) of the event at `position` for as long as its entry lives, for
  // SameKey to use once the event itself is gone.
  void Keep(Position position, absl::string_view source, absl::string_view id);
  // The key kept for `position`, if any.
  const std::pair<std::string, std::string>* Kept(Position position) const;

 private:
  static constexpr uint64_t kNone = ~uint64_t{0};
  struct Slot {
    uint64_t hash;
    uint64_t prev;  // The next older entry with the same hash (an index), or kNone.
    Entry entry;
  };
  const Slot& At(uint64_t index) const { return ring_[index & (ring_.size() - 1)]; }
  Slot& At(uint64_t index) { return ring_[index & (ring_.size() - 1)]; }
  // The first entry index whose position is after `after` (entries ascend by position).
  uint64_t LowerBound(Position after) const;

  absl::Duration window_;
  HashFn hash_;
  // Entry indexes only grow; entry i lives at ring_[i % ring_.size()] while first_ <= i < end_.
  std::vector<Slot> ring_;  // Size is a power of two (or zero).
  uint64_t first_ = 0;
  uint64_t end_ = 0;
  absl::flat_hash_map<uint64_t, uint64_t> newest_;  // hash -> index of its newest entry.
  // Keys of events deleted by retention while their entries live (normally none).
  absl::flat_hash_map<uint64_t, std::pair<std::string, std::string>> kept_;
};

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_
