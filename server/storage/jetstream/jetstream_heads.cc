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
//     or the model rebased after a stalled tail): the tailer adds every message it delivers
//     above the floor, this server's acknowledgements add its own;
//   - a stream missing from heads_ (its last event is at or below the floor) is learned
//     before it is published to (LearnHeads), never read from a replica (a replica may be
//     behind, and a leader that has not applied everything would not refuse its stale answer).
//     A probe, an empty message on the stream's subject, is proposed to the Raft log with
//     Nats-Expected-Last-Subject-Sequence 0 (the one per-subject value 2.9 checks when it
//     applies) and a Nats-Expected-Last-Msg-Id that no message has, so it is always refused
//     and never stored. Applied in log order, after everything this server has seen, it is
//     refused either by the per-subject check, whose answer names the subject's last
//     position N at that point in the log ("wrong last sequence: N"), or by the Msg-Id check
//     (the subject had no message). A message never changes, so message N read from any
//     replica that has it gives its seq. That head is exact as of the probe; the stream's
//     later messages are above the floor, so the tailer and the acknowledgements record them.
// The stream-wide anchor also covers a learned head that lies ahead of L (the probe was
// applied after messages the tailer has not delivered yet): the stream's last position is
// then past L, so the publish is refused until the model catches up.
// A refused publish (another server appended first) waits for the tailer to reach JetStream's
// new last position and tries again. The cost: publishes from all servers are serialised on
// the one stream position (a server's own rounds are still pipelined), a server that loses a
// race waits for its tailer before retrying, and a stream's first publish through a server
// since it started costs one more round trip (its probe; a round's probes go together).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {

namespace {

// The Nats-Expected-Last-Msg-Id of a probe. No stored message has it (hookstream's Msg-Ids are
// hex SHA-256 digests or "hs-chain-<hex>"), so a probe the per-subject check lets through is
// refused by this one: a probe is never stored.
constexpr char kProbeLastMsgId[] = "hs-probe";

}  // namespace

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
    const absl::Time give_up = absl::Now() + options_.publish_retry_for;
    absl::Duration backoff = absl::Milliseconds(20);
    while (true) {
      {
        absl::MutexLock l(&heads_mu_);
        if (through != nullptr) *through = heads_through_;
        if (auto it = heads_.find(stream); it != heads_.end()) return it->second;
      }
      // Not in the model: learn it (a replica's answer would not be exact).
      absl::Status learned = LearnHeads({&stream})[0];
      if (learned.ok()) continue;
      if (absl::Now() >= give_up) return learned;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
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

std::vector<absl::Status> JetStreamLog::LearnHeads(const std::vector<const std::string*>& streams) {
  const size_t n = streams.size();
  std::vector<absl::Status> out(n);
  std::vector<std::string> subjects(n);
  std::vector<AsyncAck> acks(n);
  std::vector<bool> sent(n, false);
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    subjects[i] = StreamToSubject(options_.subject_prefix, *streams[i]);
    natsMsg* raw = nullptr;
    natsStatus s = natsMsg_Create(&raw, subjects[i].c_str(), nullptr, nullptr, 0);
    NatsPtr<natsMsg> msg(raw);
    // Both checked when the probe is applied, in log order.
    if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Expected-Last-Subject-Sequence", "0");
    if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Expected-Last-Msg-Id", kProbeLastMsgId);
    if (s != NATS_OK) {
      out[i] = NatsStatus(s, "building a head probe");
      continue;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = absl::ToInt64Milliseconds(options_.request_timeout);
    {
      absl::MutexLock l(&async_mu_);
      async_acks_[raw] = &acks[i];
    }
    msg.release();
    if (js_PublishMsgAsync(js_.get(), &raw, &po) == NATS_OK) {
      sent[i] = any = true;
      continue;
    }
    {
      absl::MutexLock l(&async_mu_);
      async_acks_.erase(raw);
    }
    natsMsg_Destroy(raw);  // Still ours: the library takes it only on success.
    out[i] = absl::UnavailableError("could not send a head probe to JetStream");
  }
  if (any) {
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = absl::ToInt64Milliseconds(options_.request_timeout * 2);
    js_PublishAsyncComplete(js_.get(), &wait);
  }
  {
    absl::MutexLock l(&async_mu_);
    async_acks_.clear();  // Late answers are dropped; the caller asks again.
  }

  for (size_t i = 0; i < n; ++i) {
    if (!sent[i]) continue;
    const AsyncAck& ack = acks[i];
    const std::string& stream = *streams[i];
    StreamHead head;  // {0, 0}: the stream had no event when the probe was applied.
    if (!ack.done) {
      out[i] = absl::UnavailableError(
          absl::StrCat("no answer from JetStream to the head probe of stream \"", stream, "\""));
      continue;
    }
    if (ack.ok) {
      // Only a JetStream that does not check Nats-Expected-Last-Msg-Id gets here.
      HS_EVENT(ERROR, "jetstream.heads.probe_stored")
          .Field("stream", stream)
          .Field("position", ack.position)
          .Field("reason", "JetStream did not refuse a head probe");
      out[i] = absl::InternalError(
          absl::StrCat("JetStream stored the head probe of stream \"", stream, "\" at position ",
                       ack.position, " instead of refusing it (unsupported nats-server?)"));
      continue;
    }
    if (ack.code == JSStreamWrongLastSequenceErr && ack.named_last > 0) {
      absl::StatusOr<RawMessage> last = DirectGet(ack.named_last, nullptr, nullptr);
      if (!last.ok()) {
        // Deleted since, or a replica that has not stored it yet: probe again.
        out[i] = absl::UnavailableError(absl::StrCat("reading the last event of stream \"", stream,
                                                     "\" at position ", ack.named_last, ": ",
                                                     last.status().message()));
        continue;
      }
      if (last->subject != subjects[i]) {
        out[i] = absl::InternalError(
            absl::StrCat("JetStream named position ", ack.named_last, " as the last of stream \"",
                         stream, "\", but that message is on subject ", last->subject));
        continue;
      }
      head = StreamHead{last->sequence, last->stream_seq};
    } else if (ack.code != JSStreamWrongLastMsgIDErr) {
      out[i] = NatsStatus(NATS_ERR, absl::StrCat("probing the head of stream \"", stream, "\""),
                          ack.code);
      continue;
    }
    absl::MutexLock l(&heads_mu_);
    auto [it, inserted] = heads_.try_emplace(stream, head);
    // The tailer or an acknowledgement may have recorded a later event meanwhile.
    if (!inserted && head.position > it->second.position) it->second = head;
  }
  return out;
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
  // each stream is learned again before its next publish (LearnHeads).
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
  // The stream-wide anchor held, so the per-subject check refused: retention deleted the
  // head, or the leader has not applied it yet. Learn the stream again (LearnHeads).
  absl::MutexLock l(&heads_mu_);
  heads_.erase(stream);
}

}  // namespace hookstream::storage::jetstream
