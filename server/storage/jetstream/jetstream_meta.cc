// JetStreamLog's metadata (webhook cursors, dead letters) in the KV bucket "<stream>_meta",
// shared by every hookstream server of the log, so a shim can move between servers.
// KV has no multi-key transactions: WriteMeta applies its writes one by one, in order, each
// durable (replicated) when it returns; a crash in between leaves the earlier ones applied.
#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {

absl::Status JetStreamLog::WriteMeta(std::vector<MetaWrite> writes) {
  for (const MetaWrite& w : writes) {
    const std::string key = MetaKeyToKv(w.key);
    natsStatus s;
    if (w.value.has_value()) {
      uint64_t rev = 0;
      s = kvStore_Put(&rev, kv_.get(), key.c_str(), w.value->data(),
                      static_cast<int>(w.value->size()));
    } else {
      s = kvStore_Delete(kv_.get(), key.c_str());
    }
    if (s != NATS_OK) return NatsStatus(s, "writing metadata");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> JetStreamLog::GetMeta(absl::string_view key) const {
  kvEntry* raw = nullptr;
  natsStatus s = kvStore_Get(&raw, kv_.get(), MetaKeyToKv(key).c_str());
  if (s == NATS_NOT_FOUND) return std::nullopt;
  if (s != NATS_OK) return NatsStatus(s, "reading metadata");
  NatsPtr<kvEntry> e(raw);
  const char* v = static_cast<const char*>(kvEntry_Value(e.get()));
  return std::string(v == nullptr ? "" : v, kvEntry_ValueLen(e.get()));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> JetStreamLog::ScanMeta(
    absl::string_view prefix, absl::string_view start_after, size_t limit) const {
  kvKeysList list{nullptr, 0};
  natsStatus s = kvStore_Keys(&list, kv_.get(), nullptr);
  if (s == NATS_NOT_FOUND) return std::vector<std::pair<std::string, std::string>>();
  if (s != NATS_OK) return NatsStatus(s, "listing metadata");
  std::vector<std::string> keys;
  for (int i = 0; i < list.Count; ++i) {
    std::optional<std::string> key = KvToMetaKey(list.Keys[i]);
    if (key && absl::StartsWith(*key, prefix) && *key > start_after)
      keys.push_back(*std::move(key));
  }
  kvKeysList_Destroy(&list);
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& key : keys) {
    if (out.size() == limit) break;
    absl::StatusOr<std::optional<std::string>> v = GetMeta(key);
    if (!v.ok()) return v.status();
    if (!v->has_value()) continue;  // Deleted since the listing.
    out.emplace_back(key, **v);
  }
  return out;
}

}  // namespace hookstream::storage::jetstream
