// The per-stream records of the embedded log (first and head seq, head position, event count,
// last event time), kept in memory and checkpointed to the `streams` column family.
//
// Why in memory: with many streams, rewriting the record of every stream a group commit touched
// was a random-key RocksDB insert per event, the largest single cost of publishing (issue 9).
// Instead the appender changes the records here; a checkpoint writes the changed ones together
// with the position they are current through (the state record's `streams_through`), and
// opening the log replays the events after that position to bring them up to date (so a crash
// loses nothing: the events themselves are the truth, the records a summary of them).
//
// Threads: one writer, the log's appender thread, which reads without locking (nobody else
// writes) and changes under the lock; every other thread reads under the lock.
#ifndef HOOKSTREAM_SERVER_STORAGE_STREAM_TABLE_H_
#define HOOKSTREAM_SERVER_STORAGE_STREAM_TABLE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "hookstream/internal/records.pb.h"
#include "hookstream/v1/event_stream.pb.h"

namespace hookstream::storage {

struct StreamState {
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  uint64_t head_position = 0;
  uint64_t event_count = 0;
  int64_t last_event_nanos = 0;  // Ingest time of the head event, Unix ns.

  // The one way a stream grows, in a group commit and in recovery's replay alike.
  void Append(uint64_t seq, uint64_t position, int64_t ingest_nanos) {
    if (first_seq == 0) first_seq = seq;
    head_seq = seq;
    head_position = position;
    ++event_count;
    last_event_nanos = ingest_nanos;
  }

  internal::StreamRecord ToRecord() const;
  static StreamState FromRecord(const internal::StreamRecord& r);
  v1::StreamInfo ToInfo(absl::string_view name) const;
};

// Changes of one group commit or trim, by stream name.
using StreamChanges = absl::flat_hash_map<std::string, StreamState>;

class StreamTable {
 public:
  // ---- Appender thread only.
  // Loads a record read from the streams column family (recovery, before any reader).
  void Load(std::string name, StreamState state);
  // The current state of `name`, or nullptr. The pointer is valid until the next change.
  const StreamState* Find(absl::string_view name) const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  size_t size() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return streams_.size(); }
  uint64_t through() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return through_; }
  // Streams changed since the last checkpoint.
  size_t dirty_count() const { return dirty_.size(); }
  // What a checkpoint taken after applying `pending` must write: the records of every stream
  // changed since the last checkpoint or in `pending`, with their state after `pending`.
  std::vector<std::pair<std::string, StreamState>> CheckpointRecords(
      const StreamChanges& pending) const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Applies `changes`; the table is then current through log position `through`. When
  // `checkpointed`, the write that carried these changes also wrote CheckpointRecords(changes).
  void Apply(StreamChanges changes, uint64_t through, bool checkpointed);

  // ---- Any thread.
  bool Get(absl::string_view name, StreamState* out) const;
  // Copies of the streams named after `start_after` (in name order) for which keep() is true,
  // at most `limit`; *more tells whether another would follow. `through`, when set, receives
  // the position the copies are current through (taken atomically with them).
  std::vector<std::pair<std::string, StreamState>> List(
      absl::string_view start_after, size_t limit,
      absl::FunctionRef<bool(absl::string_view name, const StreamState&)> keep, bool* more,
      uint64_t* through = nullptr) const;

 private:
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, StreamState> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t through_ ABSL_GUARDED_BY(mu_) = 0;
  // Appender-only (never read by others).
  absl::flat_hash_set<std::string> dirty_;
};

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_STREAM_TABLE_H_
