#include "server/storage/dedup_index.h"

#include "absl/strings/str_cat.h"

namespace hookstream::storage {

std::string DedupIndex::Key(absl::string_view source, absl::string_view id) {
  // Names never contain control characters (validated at the API), so '\0' separates them.
  return absl::StrCat(source, absl::string_view("\0", 1), id);
}

std::optional<DedupIndex::Entry> DedupIndex::Find(absl::string_view source, absl::string_view id,
                                                  absl::Time now) const {
  if (!enabled() || id.empty()) return std::nullopt;
  return FindKey(Key(source, id), now);
}

std::optional<DedupIndex::Entry> DedupIndex::FindKey(const std::string& key,
                                                     absl::Time now) const {
  auto it = map_.find(key);
  if (it == map_.end() || it->second.at < now - window_) return std::nullopt;
  return it->second;
}

void DedupIndex::Insert(absl::string_view source, absl::string_view id, Entry entry) {
  if (!enabled() || id.empty()) return;
  InsertKey(Key(source, id), entry);
}

void DedupIndex::InsertKey(std::string key, Entry entry) {
  if (!enabled()) return;
  map_.insert_or_assign(key, entry);  // Re-stored after its window: the newest wins.
  by_time_.emplace_back(entry.at, std::move(key));
}

void DedupIndex::Expire(absl::Time now) {
  const absl::Time cutoff = now - window_;
  while (!by_time_.empty() && by_time_.front().first < cutoff) {
    auto it = map_.find(by_time_.front().second);
    // The key may have been stored again later; only the queue entry of its newest append
    // removes it.
    if (it != map_.end() && it->second.at == by_time_.front().first) map_.erase(it);
    by_time_.pop_front();
  }
}

}  // namespace hookstream::storage
