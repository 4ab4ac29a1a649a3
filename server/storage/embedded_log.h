// The embedded, crash-safe log on RocksDB: the default backend, no setup needed.
//
// Layout (column families):
//   default  identity (log id, token key), state (head position, counters, checkpoint
//            position of the stream records), index gap
//   log      big-endian position -> serialized hookstream.v1.Event
//   streams  stream name -> hookstream.internal.StreamRecord, as of the last checkpoint
//            (stream_table.h: the records live in memory between checkpoints)
//   index    (stream, seq) -> position, size: kept only while per-stream retention is set,
//            rebuilt on open when it is turned on (stream_index.h)
//   kv       Log::WriteMeta's key/value metadata (webhook cursors, dead letters)
// One appender thread takes every pending append, assigns positions and seqs, writes one
// WriteBatch with sync (group commit), tells the CommitListener, then acks. Restart recovers the
// head, the stream records (checkpoint + replay of the events after it) and the dedup window.
#ifndef HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_
#define HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/storage/log.h"
#include "server/storage/retention.h"

namespace hookstream::storage {

// What one group commit did, for metrics.
struct GroupCommitInfo {
  size_t requests = 0;    // Appends in the group.
  size_t events = 0;      // Events written.
  // Events of accepted requests answered from the dedup window (nothing written for them).
  size_t duplicates = 0;
  uint64_t bytes = 0;     // Bytes of events written.
  // The synced write of the batch (zero when nothing was written).
  absl::Duration sync_time;
  bool ok = true;  // False when the write failed (nothing acknowledged).
};

struct EmbeddedLogOptions {
  // Created when missing.
  std::string data_dir = "./data";
  // How long (source, id) pairs are remembered; zero turns de-duplication off.
  absl::Duration dedup_window = absl::Minutes(2);
  // Most events one group commit takes; bounds commit latency under a flood.
  size_t max_group_events = 64 * 1024;
  // Retention; the background trimmer runs only when a limit is set.
  RetentionPolicy retention;
  // Source of ingest times and of the dedup window; not owned, must outlive the log.
  Clock* clock = Clock::Real();
  FaultHooks faults;
  // Tests only: the hash the dedup index keys (source, id) by (null: absl::HashOf). A test
  // makes keys collide with it; hits are always confirmed against the stored event.
  std::function<uint64_t(absl::string_view source, absl::string_view id)> dedup_hash;
  // Called on the appender thread after every group commit, before its appends are
  // acknowledged; must be cheap and must not block.
  std::function<void(const GroupCommitInfo&)> on_group_commit;
};

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_
