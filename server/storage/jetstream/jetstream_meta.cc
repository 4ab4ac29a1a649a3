// JetStreamLog's metadata (webhook cursors, dead letters) in the KV bucket "<stream>_meta",
// shared by every hookstream server of the log, so a shim can move between servers; and its
// leases (which server delivers a webhook endpoint) in "<stream>_leases".
//
// A lease is a KV entry whose value names its holder. Taking a free one (its subject has no
// message) is a create, i.e. a publish with Nats-Expected-Last-Subject-Sequence 0, which
// nats-server 2.9 checks when each replica applies it, in log order (the head probes of
// jetstream_heads.cc rely on the same): of servers racing for a free lease exactly one gets it.
// Renewing is an update conditional on the revision the holder read. Nothing ever writes to a
// held lease but its holder, and it leaves no message behind when it ends: the bucket's max age
// deletes an entry lease_time after its last write (a holder that stops renewing, dead or cut
// off from NATS, frees it on JetStream's clock, not on the hookstream servers' clocks), and a
// release purges the key's subject (no delete marker, after which taking it would be an
// update, which 2.9 checks only before proposing it).
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

absl::StatusOr<std::string> JetStreamLog::HoldLease(absl::string_view name,
                                                    absl::string_view holder) {
  if (holder.empty()) return absl::InvalidArgumentError("a lease holder needs a name");
  const std::string key = MetaKeyToKv(name);
  const std::string me(holder);
  absl::Status last;
  // A refused create or update means another server wrote the key in between: read it again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    kvEntry* raw = nullptr;
    natsStatus s = kvStore_Get(&raw, leases_.get(), key.c_str());
    uint64_t rev = 0;
    if (s == NATS_NOT_FOUND) {
      s = kvStore_Create(&rev, leases_.get(), key.c_str(), me.data(), static_cast<int>(me.size()));
      if (s == NATS_OK) return me;
      last = NatsStatus(s, absl::StrCat("taking the lease ", name));
      continue;
    }
    if (s != NATS_OK) return NatsStatus(s, absl::StrCat("reading the lease ", name));
    NatsPtr<kvEntry> e(raw);
    const char* v = static_cast<const char*>(kvEntry_Value(e.get()));
    std::string value(v == nullptr ? "" : v, kvEntry_ValueLen(e.get()));
    if (value != me) return value;
    s = kvStore_Update(&rev, leases_.get(), key.c_str(), me.data(), static_cast<int>(me.size()),
                       kvEntry_Revision(e.get()));
    if (s == NATS_OK) return me;
    last = NatsStatus(s, absl::StrCat("renewing the lease ", name));
  }
  return last;
}

absl::Status JetStreamLog::ReleaseLease(absl::string_view name, absl::string_view holder) {
  const std::string key = MetaKeyToKv(name);
  kvEntry* raw = nullptr;
  natsStatus s = kvStore_Get(&raw, leases_.get(), key.c_str());
  if (s == NATS_NOT_FOUND) return absl::OkStatus();
  if (s != NATS_OK) return NatsStatus(s, absl::StrCat("reading the lease ", name));
  NatsPtr<kvEntry> e(raw);
  const char* v = static_cast<const char*>(kvEntry_Value(e.get()));
  if (absl::string_view(v == nullptr ? "" : v, kvEntry_ValueLen(e.get())) != holder) {
    return absl::OkStatus();  // Not ours (any more).
  }
  // Ours and renewed lately (its holder releases it while it still renews): nobody else can
  // have written it since the read.
  const std::string subject = absl::StrCat("$KV.", leases_bucket_, ".", key);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Stream.Purge.Subject = subject.c_str();
  jsErrCode ec = static_cast<jsErrCode>(0);
  s = js_PurgeStream(js_.get(), absl::StrCat("KV_", leases_bucket_).c_str(), &jo, &ec);
  if (s != NATS_OK) return NatsStatus(s, absl::StrCat("releasing the lease ", name), ec);
  return absl::OkStatus();
}

}  // namespace hookstream::storage::jetstream
