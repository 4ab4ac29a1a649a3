// The EmbeddedLog class, shared by the files that implement it (embedded_log.cc: open,
// recovery, metadata; embedded_commit.cc: the appender's group commit and retention;
// embedded_dedup.cc: the dedup window's recovery and key checks; embedded_reads.cc: reads,
// snapshots and stream info). Private to server/storage/.
#ifndef HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_IMPL_H_
#define HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_IMPL_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "server/storage/append_queue.h"
#include "server/storage/dedup_index.h"
#include "server/storage/embedded_log.h"
#include "server/storage/event_codec.h"
#include "server/storage/stream_table.h"

namespace hookstream::storage::embedded {

inline constexpr char kIdentityKey[] = "identity";
inline constexpr char kStateKey[] = "state";
inline constexpr char kLogFamily[] = "log";
inline constexpr char kStreamsFamily[] = "streams";
inline constexpr char kIndexFamily[] = "index";
inline constexpr char kKvFamily[] = "kv";
// 2: the per-stream index may be incomplete (stream_index.h's gap record), which a version-1
// build would not know. 3: the streams column family may lag the log (stream_table.h: records
// are checkpointed, the state record says through which position), which a version-2 build
// would take for current. Older stores are upgraded in place when opened.
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr uint32_t kOldestReadableFormatVersion = 1;
// A checkpoint of the stream records is written once this many events were committed since the
// last one: it bounds the replay on open (and costs one record write per stream changed).
inline constexpr uint64_t kCheckpointEvents = 64 * 1024;

// Debian's Abseil has its own string_view type, distinct from std::string_view.
inline absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}
inline rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what);
// A committed event read back from the log; `rf` was scanned from `bytes`.
StoredEvent ToStoredEvent(uint64_t position, const RoutingFields& rf, absl::string_view bytes);

// Head position, counters, the retention horizon and how far the stream records are
// checkpointed, written with every group commit and trim so that a log whose events were all
// trimmed still knows its head (positions are never reused) and which tokens have expired.
struct LogState {
  uint64_t head = 0;
  uint64_t event_count = 0;
  uint64_t bytes = 0;
  uint64_t trimmed_through = 0;    // Highest position deleted by retention.
  int64_t trimmed_time_nanos = 0;  // Ingest time of that event (Unix ns).
  // The streams column family holds the records as of this position (stream_table.h). Absent
  // before format 3, whose records were always current: decoded as `head` then.
  uint64_t streams_through = 0;

  std::string Encode() const;
  static std::optional<LogState> Decode(absl::string_view v);
};

class EmbeddedLog final : public Log {
 public:
  explicit EmbeddedLog(const EmbeddedLogOptions& options)
      : options_(options), dedup_(options.dedup_window, options.dedup_hash) {}

  ~EmbeddedLog() override;

  absl::Status Open();

  const std::string& log_id() const override { return log_id_; }
  const std::string& token_key() const override { return token_key_; }
  void SetCommitListener(CommitListener* listener) override { listener_ = listener; }

  void Append(std::vector<v1::EventInput> events, AppendCallback done) override;

  absl::StatusOr<ReadChunk> Read(Position after, const ReadLimits& limits,
                                 ReadFilter filter) const override;
  absl::StatusOr<v1::StreamInfo> GetStream(absl::string_view stream) const override;
  absl::StatusOr<std::unique_ptr<SnapshotReader>> OpenLastPerStream(
      absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const override;
  absl::StatusOr<std::vector<v1::StreamInfo>> ListStreams(
      absl::string_view start_after, size_t limit,
      absl::FunctionRef<bool(absl::string_view)> keep, bool* more) const override;

  LogStats Stats() const override;
  Position head() const override { return Position(head_pub_.load(std::memory_order_acquire)); }
  Position trimmed_through() const override {
    return Position(trimmed_pub_.load(std::memory_order_acquire));
  }
  absl::StatusOr<Position> FindByTime(absl::Time t) const override;
  absl::StatusOr<uint64_t> Trim() override;
  absl::Status WriteMeta(std::vector<MetaWrite> writes) override;
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) const override;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix, absl::string_view start_after, size_t limit) const override;

  void Close() override;

 private:
  absl::Status Recover();
  // embedded_dedup.cc: the dedup index keeps hashes only; these read the keys back.
  absl::Status RecoverDedupWindow();
  // Whether the event at `position` has (source, id): an event of the group being committed
  // (`group_inputs`, from state_.head + 1), a deleted event whose key was kept, or one read
  // back from the log (an event no longer there has no key).
  absl::StatusOr<bool> HasKey(Position position, absl::string_view source, absl::string_view id,
                              const std::vector<const v1::EventInput*>& group_inputs) const;
  // Before `plan` deletes events that may still be inside the dedup window: keeps their keys.
  void KeepDedupKeys(const TrimPlan& plan);
  void AppenderLoop();
  absl::Status ReplayStreams();
  void CommitGroup(std::vector<PendingAppend>& group);
  // Adds the stream records a checkpoint after `changes` writes, and the position they are
  // current through, to `batch` (stream_table.h).
  rocksdb::Status AddCheckpoint(const StreamChanges& changes, LogState* st,
                                rocksdb::WriteBatch* batch) const;
  // Writes a checkpoint on its own when records changed since the last one (on close).
  void Checkpoint();
  void ApplyTrim(const TrimPlan& plan);
  void TrimmerLoop();
  void PublishStats();
  // The id given to an event published without one: unique within this log.
  std::string AssignedId(uint64_t position) const {
    return absl::StrCat(absl::BytesToHexString(absl::string_view(log_id_).substr(0, 8)), "-",
                        position);
  }

  const EmbeddedLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* kv_cf_ = nullptr;
  std::string log_id_;
  std::string token_key_;
  CommitListener* listener_ = nullptr;

  // Whether events get (stream, seq) index entries: only per-stream retention reads them
  // (see stream_index.h).
  const bool index_on_ = options_.retention.max_events_per_stream > 0;

  // Appender-owned: after Open() only the appender thread touches these.
  // The store records from where the index is incomplete (set only while index_on_ is false).
  bool index_gap_recorded_ = false;
  StreamTable streams_;  // Written by the appender only; readable from any thread.
  DedupIndex dedup_;
  LogState state_;
  absl::Time last_ingest_ = absl::InfinitePast();

  // What readers see, published by the appender after each commit.
  std::atomic<uint64_t> head_pub_{0};
  std::atomic<uint64_t> oldest_pub_{1};
  std::atomic<uint64_t> count_pub_{0};
  std::atomic<uint64_t> bytes_pub_{0};
  std::atomic<uint64_t> stream_count_pub_{0};
  std::atomic<uint64_t> trimmed_pub_{0};
  std::atomic<int64_t> trimmed_time_pub_{0};

  absl::Mutex mu_;
  std::vector<PendingAppend> queue_ ABSL_GUARDED_BY(mu_);
  // A planned trim waiting for the appender, and how many were applied (Trim() waits on it).
  std::optional<TrimPlan> pending_trim_ ABSL_GUARDED_BY(mu_);
  uint64_t trims_applied_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex trim_mu_;  // One Trim() at a time. Lock order: trim_mu_ -> mu_.
  std::thread appender_;
  std::thread trimmer_;
  absl::Notification stop_trimmer_;
  std::once_flag join_once_;
};

}  // namespace hookstream::storage::embedded

#endif  // HOOKSTREAM_SERVER_STORAGE_EMBEDDED_LOG_IMPL_H_
