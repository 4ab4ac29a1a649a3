// The JetStreamLog class, shared by the files that implement it (jetstream_log.cc: connection,
// identity, appender, tailer; jetstream_reads.cc: reads and stream info; jetstream_meta.cc: the
// KV metadata). Private to server/storage/jetstream/.
#ifndef HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_IMPL_H_
#define HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_IMPL_H_

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/append_queue.h"
#include "server/storage/jetstream/jetstream_log.h"
#include "server/storage/jetstream/nats_util.h"

namespace hookstream::storage::jetstream {

// The last known event of a stream: its position and per-stream seq.
struct StreamHead {
  uint64_t position = 0;
  uint64_t seq = 0;
};

// On a clustered stream, where a publish must land (jetstream_heads.cc): right after position
// `last` of the JetStream stream (Nats-Expected-Last-Sequence) and, for the later events of a
// pipelined round, right after the round's previous event (Nats-Expected-Last-Msg-Id). Unset:
// only the per-subject check (exact on a single-replica stream).
struct Anchor {
  bool set = false;
  uint64_t last = 0;
  std::string prev_msg_id;
};

class JetStreamLog final : public Log {
 public:
  explicit JetStreamLog(const JetStreamLogOptions& options);
  ~JetStreamLog() override;

  absl::Status Open();

  const std::string& log_id() const override { return log_id_; }
  const std::string& token_key() const override { return token_key_; }
  void SetCommitListener(CommitListener* listener) override;
  void Append(std::vector<v1::EventInput> events, AppendCallback done) override;
  absl::StatusOr<ReadChunk> Read(Position after, const ReadLimits& limits,
                                 ReadFilter filter) const override;
  absl::StatusOr<std::unique_ptr<SnapshotReader>> OpenLastPerStream(
      absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const override;
  absl::StatusOr<v1::StreamInfo> GetStream(absl::string_view stream) const override;
  absl::StatusOr<std::vector<v1::StreamInfo>> ListStreams(
      absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
      bool* more) const override;
  LogStats Stats() const override;
  Position head() const override { return Position(head_pub_.load(std::memory_order_acquire)); }
  Position AwaitHead(Position position, absl::Duration timeout) const override;
  Position trimmed_through() const override {
    return Position(horizon_.load(std::memory_order_acquire));
  }
  absl::StatusOr<Position> FindByTime(absl::Time t) const override;
  // JetStream enforces the limits itself on every write and on its own age timer: there is no
  // pass to run here. Refreshes the horizon and reports 0.
  absl::StatusOr<uint64_t> Trim() override;
  absl::Status WriteMeta(std::vector<MetaWrite> writes) override;
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) const override;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      absl::string_view prefix, absl::string_view start_after, size_t limit) const override;
  absl::Duration lease_time() const override { return lease_time_; }
  absl::StatusOr<std::string> HoldLease(absl::string_view name, absl::string_view holder) override;
  absl::Status ReleaseLease(absl::string_view name, absl::string_view holder) override;
  void Close() override;

  // Reads one message: at `sequence`, or the first at/after it on `next_by_subject`, or the last
  // on `last_by_subject`. NOT_FOUND when there is none. Any replica answers a direct get, and
  // one that has not applied the latest messages yet does not have them: on a clustered
  // stream its NOT_FOUND is confirmed by the stream leader (LeaderGet) before it is believed.
  // A replica holds a prefix of the stream, so answers by position and next-by-subject are
  // then exact; a last-by-subject answer can still be older than the truth: where that
  // matters (GetStream), read from the leader. Every new read path picks one of these.
  absl::StatusOr<RawMessage> DirectGet(uint64_t sequence, const std::string* next_by_subject,
                                       const std::string* last_by_subject) const;
  // The same read answered by the stream leader ($JS.API.STREAM.MSG.GET), which has applied
  // every message it acknowledged.
  absl::StatusOr<RawMessage> LeaderGet(uint64_t sequence, const std::string* next_by_subject,
                                       const std::string* last_by_subject) const;
  // The stored event (serialized hookstream.v1.Event) of a message.
  absl::StatusOr<StoredEvent> ToStored(RawMessage raw) const;
  const std::string& subject_prefix() const { return options_.subject_prefix; }
  const std::string& all_subjects() const { return all_subjects_; }

 private:
  // A pull consumer positioned at `next`, kept between catch-up reads of one subscriber.
  struct Cursor {
    NatsPtr<natsSubscription> sub;
    uint64_t next = 0;
  };

  absl::Status Connect();
  absl::Status EnsureStream();
  absl::Status LoadIdentity(int64_t stream_created_nanos);
  // Opens the KV bucket `bucket`, created (History 1, the log's replicas, entries deleted
  // `ttl` after their last write; zero: never) when missing. On a replicated log its reads go
  // to its stream leader (see LoadIdentity). Sets *ttl to the bucket's own.
  absl::StatusOr<NatsPtr<kvStore>> OpenBucket(const std::string& bucket, absl::Duration* ttl);
  void AppenderLoop();
  // Publishes one request's events in order; raises *max_position to the highest position used.
  absl::StatusOr<v1::PublishResponse> PublishEvents(std::vector<v1::EventInput>& events,
                                                    uint64_t* max_position);
  // One event of a pipelined round (jetstream_pipeline.cc).
  struct RoundSlot {
    size_t req = 0;
    size_t index = 0;
    bool sent_before = false;  // An earlier attempt got no answer: it may be stored.
    bool refresh = false;      // Refused by a per-subject check: re-read the head.
  };
  // Stores a round (events of distinct streams) with one round trip per attempt; retries what
  // was refused or not answered. Fills the responses, or the errors of failed requests.
  void PublishRound(std::vector<RoundSlot> todo, std::vector<PendingAppend>& group,
                    std::vector<v1::PublishResponse>* resps, std::vector<absl::Status>* errors,
                    uint64_t* max_position);
  // Publishes a group: requests without expected_seq are pipelined (jetstream_pipeline.cc),
  // the others go through PublishEvents. One outcome per request.
  std::vector<absl::StatusOr<v1::PublishResponse>> PublishGroup(std::vector<PendingAppend>& group,
                                                                uint64_t* max_position);
  // Assigns a missing id and drops expected_seq (the stored input carries neither).
  void PrepareEvent(v1::EventInput& in) const;
  // Publishes one prepared event synchronously until it is stored (conflicts and lost answers
  // retried); fills `result`.
  absl::Status PublishOne(const v1::EventInput& in, bool has_expected, uint64_t expected,
                          size_t index, bool sent_before, v1::PublishResult* result,
                          uint64_t* max_position);
  absl::Status BuildMessage(const std::string& subject, const std::string& data,
                            const std::string& msg_id, const StreamHead& head, const Anchor& anchor,
                            NatsPtr<natsMsg>* msg, jsPubOptions* po) const;
  // Records a JetStream acknowledgement in `result` and the stream head cache.
  absl::Status Acknowledged(const v1::EventInput& in, uint64_t position, uint64_t seq,
                            bool duplicate, bool sent_before, v1::PublishResult* result,
                            uint64_t* max_position);
  static void OnAsyncAck(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self);
  // --- Stream heads (jetstream_heads.cc) ---
  // The head a publish to `stream` builds on. Single replica: cached, `refresh` reads it from
  // JetStream. Clustered: exact as of position *through (the model the tailer and this
  // server's acknowledgements keep; a stream the model does not know is learned first,
  // LearnHeads); `refresh` first brings the model up to JetStream's current last position.
  absl::StatusOr<StreamHead> HeadOf(const std::string& stream, bool refresh,
                                    uint64_t* through = nullptr);
  // Single replica: the last message of `stream` as JetStream has it ({0, 0}: none).
  absl::StatusOr<StreamHead> ReadHead(const std::string& stream) const;
  // Clustered: learns the exact heads of `streams` (ones the model does not know) through the
  // stream's Raft log, with one probe each, all in one round trip, and records them in the
  // model. One status per stream (not OK: not learned, try again).
  std::vector<absl::Status> LearnHeads(const std::vector<const std::string*>& streams);
  // Clustered: the model position and, where the model knows them, the heads of `streams`, all
  // exact as of that position.
  uint64_t KnownHeads(const std::vector<const std::string*>& streams,
                      std::vector<StreamHead>* heads, std::vector<bool>* known);
  // Clustered, after a publish anchored at `expected_last` was refused: catch the model up with
  // JetStream (other servers appended), or forget `stream`'s head (its per-subject check
  // failed: retention deleted the head, or the leader has not applied it yet; it is
  // learned again).
  void AfterConflict(uint64_t expected_last, const std::string& stream);
  // Clustered: waits until the model reaches JetStream's current last position.
  void SyncModel();
  void AwaitModel(uint64_t last);
  absl::StatusOr<uint64_t> StreamLastSeq() const;
  void StartTailer();
  void TailerLoop();
  void Deliver(std::vector<RawMessage>& batch);
  void RaiseHorizon(uint64_t through) const;
  void RefreshHorizon() const;
  absl::StatusOr<NatsPtr<natsSubscription>> NewCursor(uint64_t start) const;

  const JetStreamLogOptions options_;
  const std::string all_subjects_;  // "<prefix>.>"
  const std::string kv_bucket_;
  const std::string leases_bucket_;
  NatsPtr<natsConnection> conn_;
  NatsPtr<jsCtx> js_;
  NatsPtr<kvStore> kv_;
  NatsPtr<kvStore> leases_;
  absl::Duration lease_time_;
  std::string log_id_;
  std::string token_key_;

  // Published by the tailer after the listener saw the events.
  std::atomic<uint64_t> head_pub_{0};
  // Expiry horizon: highest position known deleted (from stream info, or met by a reader).
  mutable std::atomic<uint64_t> horizon_{0};
  mutable std::atomic<int64_t> horizon_time_{0};  // Ingest time of the first retained event.
  mutable absl::Mutex head_mu_;                   // Waiters for the head (AwaitHead, acks).
  uint64_t head_ ABSL_GUARDED_BY(head_mu_) = 0;

  absl::Mutex listener_mu_;
  CommitListener* listener_ ABSL_GUARDED_BY(listener_mu_) = nullptr;
  std::once_flag tailer_once_;
  std::thread tailer_;
  std::atomic<bool> stop_tailer_{false};

  // Single replica: a cache of each stream's head (conflicts refresh it). Clustered: the
  // model, exact as of heads_through_: every stream written after this server opened the log
  // is in heads_, and so is every stream learned since (jetstream_heads.cc).
  absl::Mutex heads_mu_;
  absl::flat_hash_map<std::string, StreamHead> heads_ ABSL_GUARDED_BY(heads_mu_);
  uint64_t heads_through_ ABSL_GUARDED_BY(heads_mu_) = 0;
  // Where the model started (the log opened, or was rebased): the tailer records no head at
  // or below it (streams last written there are learned, LearnHeads).
  uint64_t heads_floor_ ABSL_GUARDED_BY(heads_mu_) = 0;
  bool clustered_ = false;  // The JetStream stream has more than one replica. Set by Open.

  absl::Mutex mu_;
  std::vector<PendingAppend> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::thread appender_;
  std::once_flag close_once_;

  // Acknowledgements of the pipelined publishes in flight, by message (set by OnAsyncAck).
  struct AsyncAck {
    bool done = false;
    bool ok = false;
    uint64_t position = 0;
    bool duplicate = false;
    jsErrCode code = static_cast<jsErrCode>(0);
    uint64_t named_last = 0;  // The position a "wrong last sequence" refusal names.
  };
  absl::Mutex async_mu_;
  absl::flat_hash_map<const natsMsg*, AsyncAck*> async_acks_ ABSL_GUARDED_BY(async_mu_);

  mutable absl::Mutex cursors_mu_;
  mutable std::vector<Cursor> cursors_ ABSL_GUARDED_BY(cursors_mu_);
};

}  // namespace hookstream::storage::jetstream

#endif  // HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_IMPL_H_
