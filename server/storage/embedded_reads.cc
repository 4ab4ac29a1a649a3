#include <algorithm>
#include <limits>

#include "hookstream/internal/records.pb.h"
#include "server/storage/embedded_log_impl.h"

namespace hookstream::storage::embedded {

absl::StatusOr<Position> EmbeddedLog::FindByTime(absl::Time t) const {
  // Ingest times grow with positions: binary search over positions, each probe the first
  // retained event at or after the probe position.
  uint64_t lo = oldest_pub_.load(std::memory_order_acquire);
  uint64_t hi = head_pub_.load(std::memory_order_acquire) + 1;  // Answer in [lo, hi].
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    it->Seek(EncodeBigEndian64(mid));
    uint64_t pos = 0;
    v1::Event e;
    if (!it->Valid()) {
      if (!it->status().ok()) return FromRocks(it->status(), "searching the log by time");
      hi = mid;
      continue;
    }
    if (!DecodeBigEndian64(View(it->key()), &pos) ||
        !e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("an event is corrupt on disk");
    }
    const absl::Time at =
        absl::FromUnixSeconds(e.ingest_time().seconds()) + absl::Nanoseconds(e.ingest_time().nanos());
    if (at >= t) {
      hi = mid;  // No event in [mid, pos): the answer is below mid, or pos itself.
    } else {
      lo = pos + 1;
    }
  }
  return Position(lo);
}

absl::StatusOr<ReadChunk> EmbeddedLog::Read(Position after, const ReadLimits& limits,
                                            ReadFilter filter) const {
  if (options_.faults.before_read) {
    if (absl::Status s = options_.faults.before_read(); !s.ok()) return s;
  }
  ReadChunk chunk;
  chunk.scanned_through = after;
  const uint64_t head = head_pub_.load(std::memory_order_acquire);
  if (after.value() >= head) return chunk;

  const std::string upper = EncodeBigEndian64(head + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  size_t scanned = 0;
  size_t bytes = 0;
  bool reached_end = true;
  for (it->Seek(EncodeBigEndian64(after.value() + 1)); it->Valid(); it->Next()) {
    if (scanned >= limits.max_scanned || chunk.events.size() >= limits.max_events ||
        bytes >= limits.max_bytes) {
      reached_end = false;
      break;
    }
    uint64_t pos;
    RoutingFields rf;
    const absl::string_view value = View(it->value());
    if (!DecodeBigEndian64(View(it->key()), &pos) || !ScanRoutingFields(value, &rf)) {
      return absl::DataLossError(
          absl::StrCat("the event after position ", chunk.scanned_through.value(),
                       " is corrupt on disk"));
    }
    ++scanned;
    chunk.scanned_through = Position(pos);
    if (!filter(rf.stream, rf.type)) continue;
    chunk.events.push_back(ToStoredEvent(pos, rf, value));
    bytes += chunk.events.back().bytes.size();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the log");
  if (reached_end) chunk.scanned_through = Position(head);
  return chunk;
}

// Reads the stream heads of one RocksDB snapshot: the state record of the same snapshot names

class EmbeddedSnapshotReader final : public SnapshotReader {
 public:
  EmbeddedSnapshotReader(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* log_cf,
                         const rocksdb::Snapshot* snapshot, Position head,
                         std::vector<uint64_t> positions)
      : db_(db), log_cf_(log_cf), snapshot_(snapshot), head_(head),
        positions_(std::move(positions)) {}
  ~EmbeddedSnapshotReader() override { db_->ReleaseSnapshot(snapshot_); }

  Position head() const override { return head_; }

  absl::StatusOr<std::vector<StoredEvent>> Next(const ReadLimits& limits) override {
    std::vector<StoredEvent> out;
    size_t bytes = 0;
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    while (next_ < positions_.size() && out.size() < limits.max_events &&
           bytes < limits.max_bytes) {
      const uint64_t pos = positions_[next_++];
      std::string value;
      rocksdb::Status s = db_->Get(ro, log_cf_, EncodeBigEndian64(pos), &value);
      if (s.IsNotFound()) continue;  // Trimmed before the snapshot (no keep_last_per_stream).
      if (!s.ok()) return FromRocks(s, "reading the stream snapshot");
      RoutingFields rf;
      if (!ScanRoutingFields(value, &rf)) {
        return absl::DataLossError(absl::StrCat("the event at position ", pos, " is corrupt"));
      }
      out.push_back(ToStoredEvent(pos, rf, value));
      bytes += out.back().bytes.size();
    }
    return out;
  }

 private:
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const log_cf_;
  const rocksdb::Snapshot* const snapshot_;
  const Position head_;
  const std::vector<uint64_t> positions_;  // Sorted.
  size_t next_ = 0;
};

absl::StatusOr<std::unique_ptr<SnapshotReader>> EmbeddedLog::OpenLastPerStream(
    absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const {
  // The stream table's heads and the position they are current through come from one critical
  // section; every listed head is committed, so a RocksDB snapshot taken afterwards holds it
  // (unless retention deleted it since, which the reader skips, as before).
  uint64_t through = 0;
  bool more = false;
  const std::vector<std::pair<std::string, StreamState>> heads = streams_.List(
      "", std::numeric_limits<size_t>::max(),
      [&](absl::string_view name, const StreamState& s) {
        return s.event_count > 0 && stream_filter(name);
      },
      &more, &through);
  std::vector<uint64_t> positions;
  positions.reserve(heads.size());
  for (const auto& [name, state] : heads) positions.push_back(state.head_position);
  std::sort(positions.begin(), positions.end());
  return std::make_unique<EmbeddedSnapshotReader>(db_.get(), log_cf_, db_->GetSnapshot(),
                                                  Position(through), std::move(positions));
}

absl::StatusOr<v1::StreamInfo> EmbeddedLog::GetStream(absl::string_view stream) const {
  StreamState state;
  if (!streams_.Get(stream, &state)) {
    return absl::NotFoundError(absl::StrCat("stream \"", stream, "\" has no events"));
  }
  return state.ToInfo(stream);
}

absl::StatusOr<std::vector<v1::StreamInfo>> EmbeddedLog::ListStreams(
    absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
    bool* more) const {
  std::vector<v1::StreamInfo> out;
  for (const auto& [name, state] : streams_.List(
           start_after, limit,
           [&](absl::string_view name, const StreamState&) { return keep(name); }, more)) {
    out.push_back(state.ToInfo(name));
  }
  return out;
}

}  // namespace hookstream::storage::embedded
