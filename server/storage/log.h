// The durable event log: the one interface every storage backend implements (the embedded
// RocksDB store now, NATS JetStream later).
//
// Writes: one appender per log assigns positions (global, strictly increasing) and per-stream
// seqs, de-duplicates (source, id) inside a window, checks expected_seq, and commits pending
// appends in groups; an append's callback runs only after its group is synced to disk.
// Reads: any thread, never blocked by the appender.
//
// Thread-safety: all methods are thread-safe. Callbacks and the CommitListener run on the
// appender thread and must not block.
#ifndef HOOKSTREAM_SERVER_STORAGE_LOG_H_
#define HOOKSTREAM_SERVER_STORAGE_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/common/types.h"

namespace hookstream::storage {

// A committed event as readers and the commit listener see it.
struct StoredEvent {
  Position position;
  Seq seq;
  std::string stream;
  std::string type;
  // The serialized hookstream.v1.Event (all fields, seq / position / ingest_time included).
  std::string bytes;
};

// Receives every committed group, in position order. Called on the appender thread after the
// group is durable and before the group's publishers are acknowledged, so that a subscriber
// never learns of an event later than its publisher does. May move from `events`.
class CommitListener {
 public:
  virtual ~CommitListener() = default;
  virtual void OnCommit(std::vector<StoredEvent>& events, Position head) = 0;
};

// Outcome of one Append: one result per input event, in order; or the error that rejected the
// whole batch (nothing of it stored). ABORTED: expected_seq mismatch. UNAVAILABLE: storage
// failure or the log is closing.
using AppendCallback = absl::AnyInvocable<void(absl::StatusOr<v1::PublishResponse>) &&>;

struct ReadChunk {
  // Matching events with position in (after, scanned_through], in position order.
  std::vector<StoredEvent> events;
  // Every event up to here was examined: resume the next read after it.
  Position scanned_through;
};

struct ReadLimits {
  size_t max_events = 1024;      // matching events returned
  size_t max_bytes = 1 << 20;    // bytes of matching events returned
  size_t max_scanned = 1 << 16;  // events examined (bounds the time one read takes)
};

// Filter pushed down into reads: (stream, type) -> deliver?
using ReadFilter = absl::FunctionRef<bool(absl::string_view stream, absl::string_view type)>;

struct LogStats {
  std::string log_id;  // 16 raw bytes.
  Position oldest;     // First retained position; head + 1 when the log is empty.
  Position head;       // Last committed position; 0 before the first event.
  // Highest position deleted by retention: a token below it has expired (resuming would skip
  // deleted events). Events below it may survive (keep_last_per_stream).
  Position trimmed_through;
  absl::Time trimmed_time = absl::InfinitePast();  // Ingest time of that event.
  uint64_t event_count = 0;                        // Retained events.
  uint64_t bytes = 0;                              // Bytes of retained events.
  uint64_t stream_count = 0;
};

// Hooks for tests to make storage operations fail (STYLE.md: fault injection points).
// Each hook, when set, runs before the operation; a non-OK status fails it.
struct FaultHooks {
  std::function<absl::Status()> before_append;  // before a group's synced write
  std::function<absl::Status()> before_read;    // before each Read()
};

// The latest event of each matching stream as of one moment (a consistent snapshot), read in
// position order in bounded chunks. Owned by one reader at a time.
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  // The log head the snapshot reflects: continue live reading after it.
  virtual Position head() const = 0;
  // The next events, in position order; empty when the snapshot is exhausted.
  virtual absl::StatusOr<std::vector<StoredEvent>> Next(const ReadLimits& limits) = 0;
};

// One change to the log's metadata: `value` stored under `key`, or the key deleted when unset.
struct MetaWrite {
  std::string key;
  std::optional<std::string> value;
};

class Log {
 public:
  virtual ~Log() = default;

  // 16 random bytes chosen when the data was created; new data gets a new one.
  virtual const std::string& log_id() const = 0;
  // Secret key of this log for resume-token MACs (32 bytes).
  virtual const std::string& token_key() const = 0;

  // Set once, before the first Append.
  virtual void SetCommitListener(CommitListener* listener) = 0;

  // Appends a batch atomically. Inputs are assumed validated (names, sizes); `done` is called
  // exactly once, on the appender thread (or inline when the log is closed).
  virtual void Append(std::vector<v1::EventInput> events, AppendCallback done) = 0;

  // Reads committed events after `after` (exclusive), up to the head at the time of the call.
  virtual absl::StatusOr<ReadChunk> Read(Position after, const ReadLimits& limits,
                                         ReadFilter filter) const = 0;

  // A snapshot of the latest retained event of every stream `stream_filter` accepts whose type
  // `filter` accepts (START_LAST_PER_STREAM).
  virtual absl::StatusOr<std::unique_ptr<SnapshotReader>> OpenLastPerStream(
      absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const = 0;

  // Stream metadata; NOT_FOUND when the stream has no events.
  virtual absl::StatusOr<v1::StreamInfo> GetStream(absl::string_view stream) const = 0;
  // Streams in name order, strictly after `start_after`, those for which `keep` is true,
  // at most `limit` of them. Sets *more when further streams may follow.
  virtual absl::StatusOr<std::vector<v1::StreamInfo>> ListStreams(
      absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
      bool* more) const = 0;

  virtual LogStats Stats() const = 0;
  virtual Position head() const = 0;
  // Waits until head() reaches `position` or `timeout` passes, and returns head(). A log that
  // hands out every token itself is never behind them and returns at once; a shared log (the
  // JetStream backend) may learn of another server's appends a moment later.
  virtual Position AwaitHead(Position position, absl::Duration timeout) const {
    (void)position;
    (void)timeout;
    return head();
  }
  // The retention horizon (LogStats::trimmed_through). Raised before the deleted events
  // disappear, so a reader that finds events missing then sees the horizon past its cursor.
  virtual Position trimmed_through() const = 0;

  // First position whose event was ingested at or after `t` (head + 1 when none), among the
  // retained events.
  virtual absl::StatusOr<Position> FindByTime(absl::Time t) const = 0;

  // Runs one retention pass now and waits until it is applied (the background trimmer runs
  // the same). Returns the number of events deleted.
  virtual absl::StatusOr<uint64_t> Trim() = 0;

  // Small durable key/value metadata kept with the log, beside the events (webhook endpoint
  // cursors and dead letters). Keys are opaque bytes, by convention "<component>/<...>".
  // WriteMeta applies all `writes` atomically and returns once they are durable.
  virtual absl::Status WriteMeta(std::vector<MetaWrite> writes) = 0;
  // The value under `key`, nullopt when absent.
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) const = 0;
  // Entries whose key starts with `prefix` and sorts strictly after `start_after` (empty: from
  // the first), in key order, at most `limit` of them.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix, absl::string_view start_after, size_t limit) const = 0;

  // Leases: which one of the servers sharing this log does a piece of work (a webhook
  // endpoint's deliveries). HoldLease takes the lease `name` for `holder` when nobody holds it,
  // renews it when `holder` does, and returns who holds it after the call (`holder`: the caller
  // has it for lease_time() from the call). A lease not renewed for lease_time() is free again;
  // ReleaseLease frees it at once if `holder` has it. A log that one server alone opens (the
  // embedded store locks its directory) has nobody to share with: every lease is the caller's,
  // for ever.
  virtual absl::Duration lease_time() const { return absl::InfiniteDuration(); }
  virtual absl::StatusOr<std::string> HoldLease(absl::string_view name, absl::string_view holder) {
    (void)name;
    return std::string(holder);
  }
  virtual absl::Status ReleaseLease(absl::string_view name, absl::string_view holder) {
    (void)name;
    (void)holder;
    return absl::OkStatus();
  }

  // Stops accepting appends (they fail with UNAVAILABLE), commits what is pending, acks it,
  // and stops the appender. Idempotent.
  virtual void Close() = 0;
};

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_LOG_H_
