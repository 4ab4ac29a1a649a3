#include "server/storage/embedded_log.h"

#include <openssl/rand.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "hookstream/internal/records.pb.h"
#include "rocksdb/options.h"
#include "server/common/logging.h"
#include "server/storage/embedded_log_impl.h"
#include "server/storage/stream_index.h"

namespace hookstream::storage {
namespace embedded {
namespace {

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    HS_EVENT(FATAL, "log.no_entropy").Field("reason", "RAND_bytes failed: no entropy for the log identity");
  }
  return out;
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  return absl::UnavailableError(absl::StrCat(what, ": ", s.ToString()));
}

StoredEvent ToStoredEvent(uint64_t position, const RoutingFields& rf, absl::string_view bytes) {
  StoredEvent ev;
  ev.position = Position(position);
  ev.seq = Seq(rf.seq);
  ev.stream = std::string(rf.stream);
  ev.type = std::string(rf.type);
  ev.bytes = std::string(bytes);
  return ev;
}


std::string LogState::Encode() const {
  return absl::StrCat(EncodeBigEndian64(head), EncodeBigEndian64(event_count),
                      EncodeBigEndian64(bytes), EncodeBigEndian64(trimmed_through),
                      EncodeBigEndian64(static_cast<uint64_t>(trimmed_time_nanos)),
                      EncodeBigEndian64(streams_through));
}

std::optional<LogState> LogState::Decode(absl::string_view v) {
  LogState st;
  uint64_t t = 0;
  if ((v.size() != 40 && v.size() != 48) || !DecodeBigEndian64(v.substr(0, 8), &st.head) ||
      !DecodeBigEndian64(v.substr(8, 8), &st.event_count) ||
      !DecodeBigEndian64(v.substr(16, 8), &st.bytes) ||
      !DecodeBigEndian64(v.substr(24, 8), &st.trimmed_through) ||
      !DecodeBigEndian64(v.substr(32, 8), &t)) {
    return std::nullopt;
  }
  st.trimmed_time_nanos = static_cast<int64_t>(t);
  st.streams_through = st.head;  // Format 2 and older: records written with every commit.
  if (v.size() == 48 && !DecodeBigEndian64(v.substr(40, 8), &st.streams_through)) {
    return std::nullopt;
  }
  return st;
}

EmbeddedLog::~EmbeddedLog() {
  Close();
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  handles_.clear();
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

void EmbeddedLog::Append(std::vector<v1::EventInput> events, AppendCallback done) {
  {
    absl::MutexLock l(&mu_);
    if (!closing_) {
      queue_.push_back(PendingAppend{std::move(events), std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("the log is closing (server draining)"));
}

void EmbeddedLog::Close() {
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

LogStats EmbeddedLog::Stats() const {
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
    streams_.Load(sit->key().ToString(), StreamState::FromRecord(rec));
  }
  if (!sit->status().ok()) return FromRocks(sit->status(), "scanning streams");
  if (absl::Status st = ReplayStreams(); !st.ok()) return st;

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

// Brings the checkpointed stream records up to date with the events committed after the
// checkpoint (at most kCheckpointEvents of them, unless a crash hit a checkpoint write).
absl::Status EmbeddedLog::ReplayStreams() {
  if (state_.streams_through > state_.head) {
    return absl::DataLossError(absl::StrCat("the stream records are checkpointed through ",
                                            state_.streams_through, ", past the log's head ",
                                            state_.head));
  }
  StreamChanges replayed;
  uint64_t events = 0;
  if (state_.streams_through < state_.head) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    for (it->Seek(EncodeBigEndian64(state_.streams_through + 1)); it->Valid(); it->Next()) {
      v1::Event e;
      uint64_t pos = 0;
      if (!DecodeBigEndian64(View(it->key()), &pos) ||
          !e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
          e.stream().empty() || e.seq() == 0 || e.position() != pos) {
        return absl::DataLossError(absl::StrCat("the event at log key ",
                                                absl::BytesToHexString(View(it->key())),
                                                " is corrupt"));
      }
      StreamState& rec = replayed[e.stream()];
      if (rec.head_seq == 0) {
        if (const StreamState* base = streams_.Find(e.stream())) rec = *base;
      }
      if (e.seq() != rec.head_seq + 1) {
        return absl::DataLossError(absl::StrCat("stream \"", e.stream(), "\" has seq ", e.seq(),
                                                " at position ", pos, " after seq ", rec.head_seq));
      }
      rec.Append(e.seq(), pos, e.ingest_time().seconds() * 1'000'000'000 + e.ingest_time().nanos());
      ++events;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "replaying the stream records");
  }
  if (events > 0) {
    HS_EVENT(INFO, "log.streams.replayed")
        .Field("events", events)
        .Field("streams", replayed.size())
        .Field("from_position", state_.streams_through + 1);
  }
  // Replayed records stay dirty: the next checkpoint writes them.
  streams_.Apply(std::move(replayed), state_.head, /*checkpointed=*/false);
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

}  // namespace embedded

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options) {
  auto log = std::make_unique<embedded::EmbeddedLog>(options);
  if (absl::Status s = log->Open(); !s.ok()) return s;
  return log;
}

}  // namespace hookstream::storage
