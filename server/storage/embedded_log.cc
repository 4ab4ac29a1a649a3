#include "server/storage/embedded_log.h"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "hookstream/internal/records.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "server/common/logging.h"
#include "server/storage/dedup_index.h"
#include "server/storage/event_codec.h"
#include "server/storage/stream_index.h"

namespace hookstream::storage {
namespace {

constexpr char kIdentityKey[] = "identity";
constexpr char kStateKey[] = "state";
constexpr char kLogFamily[] = "log";
constexpr char kStreamsFamily[] = "streams";
constexpr char kIndexFamily[] = "index";
constexpr char kKvFamily[] = "kv";
// 2: the per-stream index may be incomplete (stream_index.h's gap record), which a version-1
// build would not know; version-1 stores are upgraded in place when opened.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kOldestReadableFormatVersion = 1;

// Debian's Abseil has its own string_view type, distinct from std::string_view.
absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }
rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  return absl::UnavailableError(absl::StrCat(what, ": ", s.ToString()));
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    HS_EVENT(FATAL, "log.no_entropy").Field("reason", "RAND_bytes failed: no entropy for the log identity");
  }
  return out;
}

// Head position, counters and the retention horizon, written with every group commit and trim
// so that a log whose events were all trimmed still knows its head (positions are never reused)
// and which tokens have expired.
struct LogState {
  uint64_t head = 0;
  uint64_t event_count = 0;
  uint64_t bytes = 0;
  uint64_t trimmed_through = 0;    // Highest position deleted by retention.
  int64_t trimmed_time_nanos = 0;  // Ingest time of that event (Unix ns).

  std::string Encode() const {
    return absl::StrCat(EncodeBigEndian64(head), EncodeBigEndian64(event_count),
                        EncodeBigEndian64(bytes), EncodeBigEndian64(trimmed_through),
                        EncodeBigEndian64(static_cast<uint64_t>(trimmed_time_nanos)));
  }
  static std::optional<LogState> Decode(absl::string_view v) {
    LogState st;
    uint64_t t = 0;
    if (v.size() != 40 || !DecodeBigEndian64(v.substr(0, 8), &st.head) ||
        !DecodeBigEndian64(v.substr(8, 8), &st.event_count) ||
        !DecodeBigEndian64(v.substr(16, 8), &st.bytes) ||
        !DecodeBigEndian64(v.substr(24, 8), &st.trimmed_through) ||
        !DecodeBigEndian64(v.substr(32, 8), &t)) {
      return std::nullopt;
    }
    st.trimmed_time_nanos = static_cast<int64_t>(t);
    return st;
  }
};

v1::StreamInfo ToStreamInfo(absl::string_view name, const internal::StreamRecord& r) {
  v1::StreamInfo info;
  info.set_stream(std::string(name));
  info.set_first_seq(r.first_seq());
  info.set_head_seq(r.head_seq());
  info.set_event_count(r.event_count());
  *info.mutable_last_event_time() = r.last_event_time();
  info.set_head_position(r.head_position());
  return info;
}

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return ts;
}

// A committed event read back from the log; `rf` was scanned from `bytes`.
StoredEvent ToStoredEvent(uint64_t position, const RoutingFields& rf, absl::string_view bytes) {
  StoredEvent ev;
  ev.position = Position(position);
  ev.seq = Seq(rf.seq);
  ev.stream = std::string(rf.stream);
  ev.type = std::string(rf.type);
  ev.bytes = std::string(bytes);
  return ev;
}

struct PendingAppend {
  std::vector<v1::EventInput> events;
  AppendCallback done;
};

class EmbeddedLog final : public Log {
 public:
  explicit EmbeddedLog(const EmbeddedLogOptions& options)
      : options_(options), dedup_(options.dedup_window) {}

  ~EmbeddedLog() override {
    Close();
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    handles_.clear();
    if (db_ != nullptr) db_->Close().PermitUncheckedError();
  }

  absl::Status Open();

  const std::string& log_id() const override { return log_id_; }
  const std::string& token_key() const override { return token_key_; }
  void SetCommitListener(CommitListener* listener) override { listener_ = listener; }

  void Append(std::vector<v1::EventInput> events, AppendCallback done) override {
    {
      absl::MutexLock l(&mu_);
      if (!closing_) {
        queue_.push_back(PendingAppend{std::move(events), std::move(done)});
        return;
      }
    }
    std::move(done)(absl::UnavailableError("the log is closing (server draining)"));
  }

  absl::StatusOr<ReadChunk> Read(Position after, const ReadLimits& limits,
                                 ReadFilter filter) const override;
  absl::StatusOr<v1::StreamInfo> GetStream(absl::string_view stream) const override;
  absl::StatusOr<std::unique_ptr<SnapshotReader>> OpenLastPerStream(
      absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const override;
  absl::StatusOr<std::vector<v1::StreamInfo>> ListStreams(
      absl::string_view start_after, size_t limit,
      absl::FunctionRef<bool(absl::string_view)> keep, bool* more) const override;

  LogStats Stats() const override {
    LogStats s;
    s.log_id = log_id_;
    s.trimmed_through = Position(trimmed_pub_.load(std::memory_order_acquire));
    const int64_t tt = trimmed_time_pub_.load(std::memory_order_relaxed);
    s.trimmed_time = tt == 0 ? absl::InfinitePast() : absl::FromUnixNanos(tt);
    s.head = Position(head_pub_.load(std::memory_order_acquire));
    s.oldest = Position(oldest_pub_.load(std::memory_order_acquire));
    s.event_count = count_pub_.load(std::memory_order_relaxed);
    s.bytes = bytes_pub_.load(std::memory_order_relaxed);
    s.stream_count = stream_count_pub_.load(std::memory_order_relaxed);
    return s;
  }
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

  void Close() override {
    {
      absl::MutexLock l(&mu_);
      closing_ = true;
    }
    std::call_once(join_once_, [this] {
      stop_trimmer_.Notify();
      if (trimmer_.joinable()) trimmer_.join();
      if (appender_.joinable()) appender_.join();
    });
  }

 private:
  absl::Status Recover();
  absl::Status RecoverDedupWindow();
  void AppenderLoop();
  void CommitGroup(std::vector<PendingAppend>& group);
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
  absl::flat_hash_map<std::string, internal::StreamRecord> streams_;
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

absl::Status EmbeddedLog::Open() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create data dir ", options_.data_dir, ": ", ec.message()));
  }
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  db_opts.keep_log_file_num = 4;
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.write_buffer_size = 64 << 20;
  // The log's memtable only serves reads of the newest events (live delivery comes from the
  // hub's ring), and until a full memtable is flushed RSS holds two of them: 16 MiB bounds that
  // spike (64 MiB made the server's RSS jump by 64 MiB for seconds after every ~180k events).
  // Keys are ascending, so the extra L0 files move down without rewriting.
  rocksdb::ColumnFamilyOptions log_opts = cf_opts;
  log_opts.write_buffer_size = 16 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_opts},
      {kLogFamily, log_opts},
      {kStreamsFamily, cf_opts},
      {kIndexFamily, cf_opts},
      {kKvFamily, cf_opts},
  };
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, options_.data_dir, families, &handles_, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the store in ", options_.data_dir, ": ", s.ToString()));
  }
  db_.reset(raw);
  meta_cf_ = handles_[0];
  log_cf_ = handles_[1];
  streams_cf_ = handles_[2];
  index_cf_ = handles_[3];
  kv_cf_ = handles_[4];
  if (absl::Status st = Recover(); !st.ok()) return st;
  appender_ = std::thread([this] { AppenderLoop(); });
  if (options_.retention.enabled()) trimmer_ = std::thread([this] { TrimmerLoop(); });
  return absl::OkStatus();
}

absl::Status EmbeddedLog::Recover() {
  // Identity: created once, with the first open of an empty directory.
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kIdentityKey, &value);
  internal::LogIdentity identity;
  if (s.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    it->SeekToFirst();
    if (it->Valid()) {
      return absl::DataLossError(absl::StrCat("the store in ", options_.data_dir,
                                              " has events but no identity record"));
    }
    identity.set_format_version(kFormatVersion);
    identity.set_log_id(RandomBytes(16));
    identity.set_token_key(RandomBytes(32));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, kIdentityKey, identity.SerializeAsString());
    if (!s.ok()) return FromRocks(s, "writing the log identity");
  } else if (!s.ok()) {
    return FromRocks(s, "reading the log identity");
  } else if (!identity.ParseFromString(value) || identity.log_id().size() != 16 ||
             identity.token_key().size() != 32) {
    return absl::DataLossError("the log identity record is corrupt");
  } else if (identity.format_version() < kOldestReadableFormatVersion ||
             identity.format_version() > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the store has format version ", identity.format_version(), ", this build reads ",
        kOldestReadableFormatVersion, " to ", kFormatVersion));
  } else if (identity.format_version() < kFormatVersion) {
    // Upgrade before anything of the new format is written, so an older build refuses the
    // store instead of misreading it.
    identity.set_format_version(kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, kIdentityKey, identity.SerializeAsString());
    if (!s.ok()) return FromRocks(s, "upgrading the log identity");
  }
  log_id_ = identity.log_id();
  token_key_ = identity.token_key();

  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kStateKey, &value);
  if (s.ok()) {
    std::optional<LogState> st = LogState::Decode(value);
    if (!st) return absl::DataLossError("the log state record is corrupt");
    state_ = *st;
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading the log state");
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  it->SeekToFirst();
  uint64_t oldest = state_.head + 1;
  if (it->Valid()) {
    if (!DecodeBigEndian64(View(it->key()), &oldest)) {
      return absl::DataLossError("a log key is not a position");
    }
    it->SeekToLast();
    uint64_t last = 0;
    if (!it->Valid() || !DecodeBigEndian64(View(it->key()), &last) ||
        last != state_.head) {
      return absl::DataLossError(absl::StrCat("the last log position (", last,
                                              ") does not match the recorded head (",
                                              state_.head, ")"));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the log");
  oldest_pub_.store(oldest, std::memory_order_release);

  std::unique_ptr<rocksdb::Iterator> sit(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
  for (sit->SeekToFirst(); sit->Valid(); sit->Next()) {
    internal::StreamRecord rec;
    if (!rec.ParseFromArray(sit->value().data(), static_cast<int>(sit->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("the record of stream \"", View(sit->key()), "\" is corrupt"));
    }
    streams_.emplace(sit->key().ToString(), std::move(rec));
  }
  if (!sit->status().ok()) return FromRocks(sit->status(), "scanning streams");

  absl::StatusOr<std::optional<uint64_t>> gap = ReadIndexGap(db_.get(), meta_cf_);
  if (!gap.ok()) return gap.status();
  index_gap_recorded_ = gap->has_value();
  if (index_on_ && index_gap_recorded_) {
    HS_EVENT(INFO, "log.stream_index.rebuild")
        .Field("from_position", **gap)
        .Field("reason", "per-stream retention is on; these events were stored while it was off");
    absl::StatusOr<uint64_t> indexed =
        RebuildStreamIndex(db_.get(), meta_cf_, log_cf_, index_cf_, **gap);
    if (!indexed.ok()) return indexed.status();
    HS_EVENT(INFO, "log.stream_index.rebuilt").Field("events", *indexed);
    index_gap_recorded_ = false;
  }

  if (absl::Status st = RecoverDedupWindow(); !st.ok()) return st;
  PublishStats();
  return absl::OkStatus();
}

// Rebuilds the dedup index from the tail of the log: ingest times are monotonic, so the events
// inside the window are a suffix of the log.
absl::Status EmbeddedLog::RecoverDedupWindow() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  const absl::Time cutoff = options_.clock->Now() - options_.dedup_window;
  std::vector<std::tuple<std::string, std::string, DedupIndex::Entry>> window;
  bool newest = true;
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    v1::Event e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("the event at log key ",
                                              absl::BytesToHexString(View(it->key())),
                                              " is corrupt"));
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
    window.emplace_back(e.source(), e.id(), DedupIndex::Entry{Position(e.position()),
                                                               Seq(e.seq()), at});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the dedup window");
  for (auto w = window.rbegin(); w != window.rend(); ++w) {
    dedup_.Insert(std::get<0>(*w), std::get<1>(*w), std::get<2>(*w));
  }
  return absl::OkStatus();
}

void EmbeddedLog::PublishStats() {
  trimmed_time_pub_.store(state_.trimmed_time_nanos, std::memory_order_relaxed);
  trimmed_pub_.store(state_.trimmed_through, std::memory_order_release);
  count_pub_.store(state_.event_count, std::memory_order_relaxed);
  bytes_pub_.store(state_.bytes, std::memory_order_relaxed);
  stream_count_pub_.store(streams_.size(), std::memory_order_relaxed);
  head_pub_.store(state_.head, std::memory_order_release);
}

void EmbeddedLog::AppenderLoop() {
  std::vector<PendingAppend> group;
  while (true) {
    std::optional<TrimPlan> trim;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](EmbeddedLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return !self->queue_.empty() || self->pending_trim_.has_value() || self->closing_;
          },
          this));
      if (queue_.empty() && !pending_trim_) return;  // Closing and nothing pending.
      std::swap(trim, pending_trim_);
      size_t events = 0;
      size_t take = 0;
      while (take < queue_.size() && (take == 0 || events < options_.max_group_events)) {
        events += queue_[take].events.size();
        ++take;
      }
      group.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + take));
      queue_.erase(queue_.begin(), queue_.begin() + take);
    }
    if (trim) {
      ApplyTrim(*trim);
      absl::MutexLock l(&mu_);
      ++trims_applied_;
    }
    if (!group.empty()) CommitGroup(group);
    group.clear();
  }
}

void EmbeddedLog::ApplyTrim(const TrimPlan& plan) {
  if (plan.through <= state_.trimmed_through) return;  // Stale plan.
  // Raise the horizon before the events disappear: a reader that misses them then sees it.
  LogState st = state_;
  st.trimmed_through = plan.through;
  {
    std::string bytes;
    if (db_->Get(rocksdb::ReadOptions(), log_cf_, EncodeBigEndian64(plan.through), &bytes).ok()) {
      v1::Event e;
      if (e.ParseFromString(bytes)) {
        st.trimmed_time_nanos = e.ingest_time().seconds() * 1'000'000'000 + e.ingest_time().nanos();
      }
    }
  }
  trimmed_time_pub_.store(st.trimmed_time_nanos, std::memory_order_relaxed);
  trimmed_pub_.store(st.trimmed_through, std::memory_order_release);

  rocksdb::WriteBatch batch;
  rocksdb::Status s;
  for (const auto& [begin, end] : plan.delete_ranges) {
    if (s.ok()) s = batch.DeleteRange(log_cf_, EncodeBigEndian64(begin), EncodeBigEndian64(end));
  }
  for (uint64_t pos : plan.delete_positions) {
    if (s.ok()) s = batch.Delete(log_cf_, EncodeBigEndian64(pos));
  }
  absl::flat_hash_map<std::string, internal::StreamRecord> changed;
  for (const auto& [name, trim] : plan.streams) {
    auto it = streams_.find(name);
    if (it == streams_.end()) continue;
    internal::StreamRecord rec = it->second;
    // A stream's deleted seqs are a prefix: its index entries go as one range (this also
    // clears entries left from a stretch when the index was kept, if it is not now).
    if (s.ok()) {
      s = batch.DeleteRange(index_cf_, IndexKey(name, rec.first_seq()),
                            IndexKey(name, trim.max_removed_seq + 1));
    }
    rec.set_event_count(rec.event_count() > trim.removed ? rec.event_count() - trim.removed : 0);
    rec.set_first_seq(std::max(rec.first_seq(), trim.max_removed_seq + 1));
    if (s.ok()) s = batch.Put(streams_cf_, name, rec.SerializeAsString());
    changed.emplace(name, std::move(rec));
  }
  st.event_count = st.event_count > plan.removed_events ? st.event_count - plan.removed_events : 0;
  st.bytes = st.bytes > plan.removed_bytes ? st.bytes - plan.removed_bytes : 0;
  if (s.ok()) s = batch.Put(meta_cf_, kStateKey, st.Encode());
  if (s.ok()) s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    // Nothing was deleted; the raised horizon only expires tokens early, never skips events.
    HS_EVENT(ERROR, "retention.delete_failed")
        .Field("through_position", plan.through)
        .Field("error", s.ToString());
    return;
  }
  for (auto& [name, rec] : changed) streams_.insert_or_assign(name, std::move(rec));
  state_ = st;
  uint64_t oldest = plan.new_oldest;
  if (oldest == 0) {  // Single deletions: look the first retained event up.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    it->SeekToFirst();
    oldest = state_.head + 1;
    if (it->Valid() && !DecodeBigEndian64(View(it->key()), &oldest)) oldest = state_.head + 1;
  }
  oldest_pub_.store(oldest, std::memory_order_release);
  PublishStats();
  HS_EVENT(INFO, "retention.deleted")
      .Field("events", plan.removed_events)
      .Field("bytes", plan.removed_bytes)
      .Field("through_position", plan.through)
      .Field("oldest_position", oldest);
}

absl::StatusOr<uint64_t> EmbeddedLog::Trim() {
  absl::MutexLock trim_lock(&trim_mu_);
  absl::StatusOr<TrimPlan> plan =
      PlanTrim(db_.get(), log_cf_, streams_cf_, index_cf_, options_.retention, options_.clock->Now(),
               bytes_pub_.load(std::memory_order_relaxed), head().value());
  if (!plan.ok()) return plan.status();
  if (plan->removed_events == 0) return 0;
  const uint64_t removed = plan->removed_events;
  absl::MutexLock l(&mu_);
  if (closing_) return absl::UnavailableError("the log is closing");
  std::pair<EmbeddedLog*, uint64_t> wait(this, trims_applied_ + 1);
  pending_trim_ = *std::move(plan);
  mu_.Await(absl::Condition(
      +[](std::pair<EmbeddedLog*, uint64_t>* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return a->first->trims_applied_ >= a->second;
      },
      &wait));
  return removed;
}

void EmbeddedLog::TrimmerLoop() {
  while (!stop_trimmer_.WaitForNotificationWithTimeout(options_.retention.check_interval)) {
    // Passes are bounded; keep going while there is more to delete.
    while (!stop_trimmer_.HasBeenNotified()) {
      absl::StatusOr<uint64_t> removed = Trim();
      if (!removed.ok()) {
        HS_EVENT(WARNING, "retention.pass_failed").Field("error", removed.status());
        break;
      }
      if (*removed < options_.retention.max_deletes_per_pass) break;
    }
  }
}

absl::Status EmbeddedLog::WriteMeta(std::vector<MetaWrite> writes) {
  rocksdb::WriteBatch batch;
  for (const MetaWrite& w : writes) {
    rocksdb::Status s = w.value.has_value() ? batch.Put(kv_cf_, ToSlice(w.key), ToSlice(*w.value))
                                            : batch.Delete(kv_cf_, ToSlice(w.key));
    if (!s.ok()) return FromRocks(s, "writing metadata");
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &batch), "writing metadata");
}

absl::StatusOr<std::optional<std::string>> EmbeddedLog::GetMeta(absl::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kv_cf_, ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading metadata");
  return value;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> EmbeddedLog::ScanMeta(
    absl::string_view prefix, absl::string_view start_after, size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), kv_cf_));
  if (start_after.empty() || start_after < prefix) {
    it->Seek(ToSlice(prefix));
  } else {
    it->Seek(ToSlice(start_after));
    if (it->Valid() && View(it->key()) == start_after) it->Next();
  }
  for (; it->Valid() && out.size() < limit; it->Next()) {
    absl::string_view key = View(it->key());
    if (!absl::StartsWith(key, prefix)) break;
    out.emplace_back(std::string(key), std::string(View(it->value())));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning metadata");
  return out;
}

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

void EmbeddedLog::CommitGroup(std::vector<PendingAppend>& group) {
  // Ingest times never go backwards, even if the wall clock does: the dedup window and
  // from_time starts rely on it.
  const absl::Time now = std::max(options_.clock->Now(), last_ingest_);
  dedup_.Expire(now);
  const google::protobuf::Timestamp now_proto = ToProtoTime(now);

  std::vector<absl::StatusOr<v1::PublishResponse>> outcomes;
  outcomes.reserve(group.size());
  std::vector<StoredEvent> committed;
  // Changes of the requests accepted so far in this group, applied after the write succeeds.
  absl::flat_hash_map<std::string, internal::StreamRecord> staged_streams;
  absl::flat_hash_map<std::string, DedupIndex::Entry> staged_dedup;
  std::vector<std::string> staged_dedup_order;  // DedupIndex keys, in append order.
  uint64_t next = state_.head;
  uint64_t added_bytes = 0;
  GroupCommitInfo info;
  info.requests = group.size();

  for (PendingAppend& req : group) {
    // A request is atomic. Only an expected_seq check can reject it part-way, so a request
    // with one stages its changes in request-local overlays first; any other request (the
    // common case, and for one-event PublishStream requests most of the cost) writes straight
    // into the group's staging.
    const bool can_fail = std::any_of(req.events.begin(), req.events.end(),
                                      [](const v1::EventInput& e) { return e.has_expected_seq(); });
    absl::flat_hash_map<std::string, internal::StreamRecord> local_streams;
    absl::flat_hash_map<std::string, DedupIndex::Entry> local_dedup;
    std::vector<std::string> local_dedup_order;
    std::vector<StoredEvent> local_events;
    auto& req_streams = can_fail ? local_streams : staged_streams;
    auto& req_dedup = can_fail ? local_dedup : staged_dedup;
    auto& req_dedup_order = can_fail ? local_dedup_order : staged_dedup_order;
    auto& req_events = can_fail ? local_events : committed;
    v1::PublishResponse resp;
    absl::Status error;
    uint64_t p = next;
    uint64_t req_bytes = 0;
    size_t req_duplicates = 0;

    for (size_t i = 0; i < req.events.size(); ++i) {
      v1::EventInput& in = req.events[i];
      v1::PublishResult* result = resp.add_results();
      std::string key;
      if (dedup_.enabled() && !in.id().empty()) {
        key = DedupIndex::Key(in.source(), in.id());
        std::optional<DedupIndex::Entry> dup;
        if (auto r = req_dedup.find(key); r != req_dedup.end()) {
          dup = r->second;
        } else if (auto g = can_fail ? staged_dedup.find(key) : staged_dedup.end();
                   g != staged_dedup.end()) {
          dup = g->second;
        } else {
          dup = dedup_.FindKey(key, now);
        }
        if (dup) {
          result->set_position(dup->position.value());
          result->set_seq(dup->seq.value());
          result->set_duplicate(true);
          result->set_id(in.id());
          ++req_duplicates;
          continue;
        }
      }

      internal::StreamRecord* rec;
      if (auto r = req_streams.find(in.stream()); r != req_streams.end()) {
        rec = &r->second;
      } else {
        internal::StreamRecord base;
        if (auto g = can_fail ? staged_streams.find(in.stream()) : staged_streams.end();
            g != staged_streams.end()) {
          base = g->second;
        } else if (auto c = streams_.find(in.stream()); c != streams_.end()) {
          base = c->second;
        }
        rec = &req_streams.emplace(in.stream(), std::move(base)).first->second;
      }
      if (in.has_expected_seq() && in.expected_seq() != rec->head_seq()) {
        error = absl::AbortedError(absl::StrCat(
            "events[", i, "].expected_seq is ", in.expected_seq(), " but stream \"", in.stream(),
            "\" is at seq ", rec->head_seq()));
        break;
      }

      ++p;
      const uint64_t seq = rec->head_seq() + 1;
      if (rec->first_seq() == 0) rec->set_first_seq(seq);
      rec->set_head_seq(seq);
      rec->set_head_position(p);
      rec->set_event_count(rec->event_count() + 1);
      *rec->mutable_last_event_time() = now_proto;

      if (in.id().empty()) in.set_id(AssignedId(p));
      in.clear_expected_seq();
      StoredEvent ev;
      ev.position = Position(p);
      ev.seq = Seq(seq);
      in.SerializeToString(&ev.bytes);
      AppendAssignedFields(seq, p, now, &ev.bytes);
      ev.stream = std::move(*in.mutable_stream());
      ev.type = std::move(*in.mutable_type());
      req_bytes += ev.bytes.size();
      if (!key.empty()) {
        req_dedup.emplace(key, DedupIndex::Entry{ev.position, ev.seq, now});
        req_dedup_order.push_back(std::move(key));
      }
      result->set_position(p);
      result->set_seq(seq);
      result->set_id(in.id());
      req_events.push_back(std::move(ev));
    }

    if (!error.ok()) {
      outcomes.emplace_back(std::move(error));
      continue;
    }
    if (can_fail) {
      for (auto& [name, rec] : local_streams) staged_streams.insert_or_assign(name, std::move(rec));
      for (auto& [k, e] : local_dedup) staged_dedup.insert_or_assign(k, e);
      for (auto& so : local_dedup_order) staged_dedup_order.push_back(std::move(so));
      for (StoredEvent& ev : local_events) committed.push_back(std::move(ev));
    }
    next = p;
    added_bytes += req_bytes;
    info.duplicates += req_duplicates;
    outcomes.emplace_back(std::move(resp));
  }

  if (!committed.empty()) {
    LogState st = state_;
    st.head = next;
    st.event_count += committed.size();
    st.bytes += added_bytes;
    rocksdb::WriteBatch batch;
    rocksdb::Status s;
    if (!index_on_ && !index_gap_recorded_) {
      s = batch.Put(meta_cf_, kIndexGapKey, EncodeBigEndian64(committed.front().position.value()));
    }
    for (const StoredEvent& ev : committed) {
      if (!s.ok()) break;
      s = batch.Put(log_cf_, EncodeBigEndian64(ev.position.value()), ev.bytes);
      if (s.ok() && index_on_) {
        s = batch.Put(index_cf_, IndexKey(ev.stream, ev.seq.value()),
                      EncodeIndexValue(ev.position.value(), ev.bytes.size()));
      }
    }
    for (const auto& [name, rec] : staged_streams) {
      if (!s.ok()) break;
      s = batch.Put(streams_cf_, name, rec.SerializeAsString());
    }
    if (s.ok()) s = batch.Put(meta_cf_, kStateKey, st.Encode());
    absl::Status write_status = FromRocks(s, "building the write batch");
    if (write_status.ok() && options_.faults.before_append) {
      write_status = options_.faults.before_append();
    }
    if (write_status.ok()) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      const absl::Time write_start = absl::Now();
      write_status = FromRocks(db_->Write(wo, &batch), "committing to the log");
      info.sync_time = absl::Now() - write_start;
    }
    info.ok = write_status.ok();
    if (info.ok) {
      info.events = committed.size();
      info.bytes = added_bytes;
    }
    if (!write_status.ok()) {
      HS_EVENT(ERROR, "log.commit_failed")
          .Field("events", committed.size())
          .Field("acknowledged", 0)
          .Field("error", write_status);
      for (auto& o : outcomes) {
        if (o.ok()) o = absl::UnavailableError(write_status.message());
      }
      committed.clear();
    } else {
      if (!index_on_) index_gap_recorded_ = true;
      for (auto& [name, rec] : staged_streams) streams_.insert_or_assign(name, std::move(rec));
      for (std::string& key : staged_dedup_order) {
        const DedupIndex::Entry entry = staged_dedup.at(key);
        dedup_.InsertKey(std::move(key), entry);
      }
      state_ = st;
      last_ingest_ = now;
      if (oldest_pub_.load(std::memory_order_relaxed) > state_.head) {
        oldest_pub_.store(committed.front().position.value(), std::memory_order_release);
      }
      // Listener first, then readers' head: a reader never sees a position the subscription
      // registry has not been told about.
      if (listener_ != nullptr) listener_->OnCommit(committed, Position(state_.head));
      PublishStats();
    }
  }

  if (options_.on_group_commit) options_.on_group_commit(info);
  for (size_t i = 0; i < group.size(); ++i) {
    std::move(group[i].done)(std::move(outcomes[i]));
  }
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
// the head, so the snapshot and "everything after head" meet with no gap and no overlap.
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
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  LogState st;
  rocksdb::Status s = db_->Get(ro, meta_cf_, kStateKey, &value);
  if (s.ok()) {
    std::optional<LogState> decoded = LogState::Decode(value);
    if (!decoded) {
      db_->ReleaseSnapshot(snapshot);
      return absl::DataLossError("the log state record is corrupt");
    }
    st = *decoded;
  } else if (!s.IsNotFound()) {
    db_->ReleaseSnapshot(snapshot);
    return FromRocks(s, "reading the log state");
  }
  std::vector<uint64_t> positions;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!stream_filter(View(it->key()))) continue;
    internal::StreamRecord rec;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      db_->ReleaseSnapshot(snapshot);
      return absl::DataLossError("a stream record is corrupt");
    }
    if (rec.event_count() > 0) positions.push_back(rec.head_position());
  }
  if (!it->status().ok()) {
    db_->ReleaseSnapshot(snapshot);
    return FromRocks(it->status(), "listing streams for a snapshot");
  }
  std::sort(positions.begin(), positions.end());
  return std::make_unique<EmbeddedSnapshotReader>(db_.get(), log_cf_, snapshot,
                                                  Position(st.head), std::move(positions));
}

absl::StatusOr<v1::StreamInfo> EmbeddedLog::GetStream(absl::string_view stream) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), streams_cf_, ToSlice(stream), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("stream \"", stream, "\" has no events"));
  }
  if (!s.ok()) return FromRocks(s, "reading a stream record");
  internal::StreamRecord rec;
  if (!rec.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("the record of stream \"", stream, "\" is corrupt"));
  }
  return ToStreamInfo(stream, rec);
}

absl::StatusOr<std::vector<v1::StreamInfo>> EmbeddedLog::ListStreams(
    absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
    bool* more) const {
  std::vector<v1::StreamInfo> out;
  *more = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), streams_cf_));
  it->Seek(ToSlice(start_after));
  if (it->Valid() && !start_after.empty() && View(it->key()) == start_after) it->Next();
  for (; it->Valid(); it->Next()) {
    const absl::string_view name = View(it->key());
    if (!keep(name)) continue;
    if (out.size() == limit) {
      *more = true;
      break;
    }
    internal::StreamRecord rec;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("the record of stream \"", name, "\" is corrupt"));
    }
    out.push_back(ToStreamInfo(name, rec));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing streams");
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options) {
  auto log = std::make_unique<EmbeddedLog>(options);
  if (absl::Status s = log->Open(); !s.ok()) return s;
  return log;
}

}  // namespace hookstream::storage
