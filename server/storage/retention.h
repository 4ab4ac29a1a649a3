// Retention of the embedded log: which events a trim pass deletes. Planning only reads the
// store; the appender applies a plan in one write batch together with the counters and stream
// records it changes (the appender owns those), so trimming never races an append.
//
// A plan deletes every event at or below `through`, except, with keep_last_per_stream, the
// latest event of each stream. Tokens at positions below `through` expire (OUT_OF_RANGE):
// resuming from them would skip deleted events. Thread-safe: planning needs no lock.
#ifndef HOOKSTREAM_SERVER_STORAGE_RETENTION_H_
#define HOOKSTREAM_SERVER_STORAGE_RETENTION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"

namespace hookstream::storage {

class StreamTable;  // stream_table.h

struct RetentionPolicy {
  absl::Duration max_age = absl::ZeroDuration();  // Zero: no age limit.
  uint64_t max_bytes = 0;                          // Zero: no size limit.
  // Most events kept per stream (the oldest beyond it are deleted); zero: no limit.
  uint64_t max_events_per_stream = 0;
  bool keep_last_per_stream = false;
  // How often the background trimmer looks.
  absl::Duration check_interval = absl::Seconds(5);
  // Most events one pass deletes (bounds the appender's share of a pass).
  size_t max_deletes_per_pass = 100000;

  bool enabled() const {
    return max_age > absl::ZeroDuration() || max_bytes > 0 || max_events_per_stream > 0;
  }
};

struct StreamTrim {
  uint64_t removed = 0;
  uint64_t max_removed_seq = 0;  // Deleted seqs of a stream are always a prefix: first..this.
};

struct TrimPlan {
  uint64_t through = 0;  // Highest deleted position (0: nothing to do).
  std::vector<std::pair<uint64_t, uint64_t>> delete_ranges;  // [begin, end) of positions.
  std::vector<uint64_t> delete_positions;  // Single events (per-stream limit).
  absl::flat_hash_map<std::string, StreamTrim> streams;
  uint64_t removed_events = 0;
  uint64_t removed_bytes = 0;
  uint64_t new_oldest = 0;  // First retained position after the plan (head + 1 if none).
};

// Key of the per-stream index (stream, seq) -> (position, size): stream bytes, '\0', seq
// big-endian. Stream names hold no control characters, so streams sort apart.
std::string IndexKey(absl::string_view stream, uint64_t seq);
std::string EncodeIndexValue(uint64_t position, uint64_t size);

// Plans one pass: age (ingest time before now - max_age) and size (oldest events beyond
// max_bytes of `total_bytes`) over the log column family, then the per-stream limit through
// the stream index; stream heads and counts come from `streams`. `head` bounds the scan.
absl::StatusOr<TrimPlan> PlanTrim(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* log_cf,
                                  const StreamTable& streams,
                                  rocksdb::ColumnFamilyHandle* index_cf,
                                  const RetentionPolicy& policy, absl::Time now,
                                  uint64_t total_bytes, uint64_t head);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_RETENTION_H_
