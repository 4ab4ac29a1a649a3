// The embedded log's side of the dedup index (dedup_index.h): the index keeps only hashes of
// (source, id), so the appender confirms every hit against the event itself; these read the
// keys back. All run on the appender thread (or in Open, before it starts).
#include <tuple>

#include "server/common/logging.h"
#include "server/storage/embedded_log_impl.h"

namespace hookstream::storage::embedded {

// Rebuilds the dedup index from the tail of the log: ingest times are monotonic, so the events
// inside the window are the newest ones, scanned backwards until the first older one.
absl::Status EmbeddedLog::RecoverDedupWindow() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  const absl::Time cutoff = options_.clock->Now() - options_.dedup_window;
  std::vector<std::tuple<uint64_t, DedupIndex::Entry>> window;
  bool newest = true;
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    v1::Event e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat(
          "the event at log key ", absl::BytesToHexString(View(it->key())), " is corrupt"));
    }
    const absl::Time at = absl::FromUnixSeconds(e.ingest_time().seconds()) +
                          absl::Nanoseconds(e.ingest_time().nanos());
    if (newest) {
      last_ingest_ = at;
      newest = false;
    }
    if (!dedup_.enabled() || at < cutoff) break;
    // Server-assigned ids were never in the index (only producer-chosen ids are de-duplicated).
    if (e.id() == AssignedId(e.position())) continue;
    window.emplace_back(dedup_.Hash(e.source(), e.id()),
                        DedupIndex::Entry{Position(e.position()), Seq(e.seq()), at});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the dedup window");
  for (auto w = window.rbegin(); w != window.rend(); ++w) {
    dedup_.Insert(std::get<0>(*w), std::get<1>(*w));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> EmbeddedLog::HasKey(
    Position position, absl::string_view source, absl::string_view id,
    const std::vector<const v1::EventInput*>& group_inputs) const {
  if (position.value() > state_.head) {  // Appended earlier in the group being committed.
    const size_t i = position.value() - state_.head - 1;
    if (i >= group_inputs.size()) return false;  // Not reached: the index is undone with it.
    return group_inputs[i]->source() == source && group_inputs[i]->id() == id;
  }
  if (const auto* kept = dedup_.Kept(position)) {
    return kept->first == source && kept->second == id;
  }
  rocksdb::PinnableSlice bytes;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), log_cf_, EncodeBigEndian64(position.value()), &bytes);
  // Deleted by something other than retention (which keeps the keys): nothing to match.
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "reading an event back for the dedup check");
  v1::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("the event at position ", position.value(),
                                            " is corrupt (read for the dedup check)"));
  }
  return e.source() == source && e.id() == id;
}

void EmbeddedLog::KeepDedupKeys(const TrimPlan& plan) {
  // Retention normally deletes events long out of the window (nothing to do); a tight size
  // limit can delete some inside it, whose retries must still be answered as duplicates.
  dedup_.ForEachUpTo(Position(0), Position(plan.through), [&](const DedupIndex::Entry& entry) {
    if (dedup_.Kept(entry.position) != nullptr) return;
    std::string bytes;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), log_cf_,
                                 EncodeBigEndian64(entry.position.value()), &bytes);
    v1::Event e;
    if (s.ok() && e.ParseFromString(bytes)) {
      dedup_.Keep(entry.position, e.source(), e.id());
    } else if (!s.IsNotFound()) {
      // Its retry would be stored again: say so rather than lose it silently.
      HS_EVENT(WARNING, "log.dedup_key_lost")
          .Field("position", entry.position.value())
          .Field("error", s.ok() ? std::string("corrupt event") : s.ToString());
    }
  });
}

}  // namespace hookstream::storage::embedded
