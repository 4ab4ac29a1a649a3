// The embedded, crash-safe log on RocksDB: the default backend, no setup needed.
//
// Layout (column families):
//   default  identity (log id, token key), state (head position, counters), index gap
//   log      big-endian position -> serialized hookstream.v1.Event
//   streams  stream name -> hookstream.internal.StreamRecord
//   index    (stream, seq) -> position, size: kept only while per-stream retention is set,
//            rebuilt on open when it is turned on (stream_index.h)
//   kv       Log::WriteMeta's key/value metadata (webhook cursors, dead letters)
// One appender thread takes every pending append, assigns positions and seqs, writes one
// WriteBatch with sync (group commit), tells the CommitListener, then acks. Restart recovers the
// head, stream heads and the dedup window from disk.
#ifndef HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_
#define HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/storage/log.h"
#include "server/storage/retention.h"

namespace hookstream::storage {

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
};

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_H_
