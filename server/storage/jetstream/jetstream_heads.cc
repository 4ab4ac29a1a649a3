// JetStreamLog's stream heads: what a publish names as its stream's previous event, so that
// per-stream seqs stay dense and unique with any number of hookstream servers writing.
//
// Single replica (R1): nats-server checks Nats-Expected-Last-Subject-Sequence while it stores,
// one message after another, so the check is exact. Heads are a cache; a conflict re-reads the
// stream's head and retries.
//
// Clustered (R3, R5) with nats-server 2.9: the per-subject check is made by the stream leader
// BEFORE it proposes the message to Raft, against the messages already applied, and not again
// when the message is applied (stream.go processJetStreamMsg skips it "if clustered", except
// for an expected 0). Two servers publishing to one stream at the same instant both pass and
// both store the same seq. What nats-server 2.9 does check at apply time, in log order on
// every replica, is the stream-wide Nats-Expected-Last-Sequence (against the stream's last
// sequence) and Nats-Expected-Last-Msg-Id. So on a clustered stream every publish is anchored
// to the whole stream: "store this only if the stream's last position is L" (and, inside a
// pipelined round, "only if the last message is the round's previous one"). Its seq is then
// exact provided this server knows every stream's head as of L. That knowledge is the model:
//   - heads_through_ = L, the position through which the model has seen every message;
//   - heads_ = the head of every stream written after heads_floor_ (where the log was opened,
//     or the model rebased after a stalled tail): the tailer adds every message it delivers,
//     this server's acknowledgements add its own. A stream missing from heads_ has its last
//     event at or below the floor; its head is read from a replica (direct get) and the
//     per-subject check, also sent, makes the leader refuse it if that replica was behind.
//     (Only a leader that has not applied everything yet could miss that: README.)
// A refused publish (another server appended first) waits for the tailer to reach JetStream's
// new last position and tries again. The cost: publishes from all servers are serialised on
// the one stream position (a server's own rounds are still pipelined), and a server that
// loses a race waits for its tailer before retrying.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {

absl::StatusOr<StreamHead> JetStreamLog::ReadHead(const std::string& stream) const {
  const std::string subject = StreamToSubject(options_.subject_prefix, stream);
  absl::StatusOr<RawMessage> last = DirectGet(0, nullptr, &subject);
  if (last.ok()) return StreamHead{last->sequence, last->stream_seq};
  if (absl::IsNotFound(last.status())) return StreamHead{};
  return last.status();
}

absl::StatusOr<StreamHead> JetStreamLog::HeadOf(const std::string& stream, bool refresh,
                                                uint64_t* through) {
  if (clustered_) {
    if (refresh) SyncModel();
    uint64_t at;
    {
      absl::MutexLock l(&heads_mu_);
      at = heads_through_;
      if (through != nullptr) *through = at;
      if (auto it = heads_.find(stream); it != heads_.end()) return it->second;
    }
    // Not cached: the model must stay "every stream written since the log was opened", and a
    // replica's answer is not exact. Acknowledged() records the head once a publish passed.
    return ReadHead(stream);
  }
  if (!refresh) {
    absl::MutexLock l(&heads_mu_);
    if (auto it = heads_.find(stream); it != heads_.end()) return it->second;
  }
  absl::StatusOr<StreamHead> h = ReadHead(stream);
  if (!h.ok()) return h.status();
  absl::MutexLock l(&heads_mu_);
  StreamHead& cached = heads_[stream];
  if (h->position >= cached.position || refresh) cached = *h;
  return cached;
}

uint64_t JetStreamLog::KnownHeads(const std::vector<const std::string*>& streams,
                                  std::vector<StreamHead>* heads, std::vector<bool>* known) {
  heads->assign(streams.size(), StreamHead{});
  known->assign(streams.size(), false);
  absl::MutexLock l(&heads_mu_);
  for (size_t i = 0; i < streams.size(); ++i) {
    if (auto it = heads_.find(*streams[i]); it != heads_.end()) {
      (*heads)[i] = it->second;
      (*known)[i] = true;
    }
  }
  return heads_through_;
}

absl::StatusOr<uint64_t> JetStreamLog::StreamLastSeq() const {
  jsStreamInfo* raw = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js_.get(), options_.stream.c_str(), nullptr, &ec);
  if (s != NATS_OK) return NatsStatus(s, "reading the stream's last position", ec);
  NatsPtr<jsStreamInfo> info(raw);
  return info->State.LastSeq;
}

void JetStreamLog::AwaitModel(uint64_t last) {
  absl::MutexLock l(&heads_mu_);
  auto reached = [this, last]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(heads_mu_) { return heads_through_ >= last; };
  if (heads_mu_.AwaitWithTimeout(absl::Condition(&reached), options_.request_timeout)) return;
  // The tailer did not get there: JetStream deleted the last messages before it saw them
  // (retention), or it is cut off. Forget every head rather than trust an incomplete model:
  // streams are read again from JetStream (the per-subject check guards those reads).
  HS_EVENT(WARNING, "jetstream.heads.rebased")
      .Field("model_position", heads_through_)
      .Field("stream_position", last)
      .Field("action", "re-reading stream heads from JetStream");
  heads_.clear();
  heads_through_ = std::max(heads_through_, last);
  heads_floor_ = heads_through_;
}

void JetStreamLog::SyncModel() {
  absl::StatusOr<uint64_t> last = StreamLastSeq();
  if (last.ok()) AwaitModel(*last);  // Else the next publish is refused and retried.
}

void JetStreamLog::AfterConflict(uint64_t expected_last, const std::string& stream) {
  absl::StatusOr<uint64_t> last = StreamLastSeq();
  if (!last.ok()) return;  // The caller backs off and retries.
  if (*last != expected_last) {
    AwaitModel(*last);
    return;
  }
  // The stream-wide anchor held, so the per-subject check refused: the head came from a
  // replica that was behind, retention deleted it, or the leader has not applied it yet.
  absl::MutexLock l(&heads_mu_);
  heads_.erase(stream);
}

}  // namespace hookstream::storage::jetstream
