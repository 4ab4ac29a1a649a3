// Remembers (source, id) -> (position, seq) of recently appended events for the dedup window,
// so a retried publish stores nothing and gets the original position back (DESIGN.md §3.3).
//
// Not thread-safe: owned by the appender thread. Memory: one entry per event with a
// producer-chosen id appended inside the window.
#ifndef HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_
#define HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_

#include <deque>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
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

  explicit DedupIndex(absl::Duration window) : window_(window) {}

  bool enabled() const { return window_ > absl::ZeroDuration(); }
  absl::Duration window() const { return window_; }

  // The entry of (source, id) if it was appended inside the window ending at `now`.
  std::optional<Entry> Find(absl::string_view source, absl::string_view id,
                            absl::Time now) const;
  // `entry.at` must not go backwards between calls (the appender's ingest times are monotonic).
  void Insert(absl::string_view source, absl::string_view id, Entry entry);
  // Forgets entries inserted before now - window.
  void Expire(absl::Time now);
  size_t size() const { return map_.size(); }

  static std::string Key(absl::string_view source, absl::string_view id);
  // The same, for a key already made with Key(): the appender makes it once per event.
  std::optional<Entry> FindKey(const std::string& key, absl::Time now) const;
  void InsertKey(std::string key, Entry entry);

 private:
  absl::Duration window_;
  absl::flat_hash_map<std::string, Entry> map_;
  std::deque<std::pair<absl::Time, std::string>> by_time_;  // Insertion (= time) order.
};

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_DEDUP_INDEX_H_
