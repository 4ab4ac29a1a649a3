// JetStreamLog's publish path: one request's events, in order, each with the per-stream seq it
// takes and the position of its stream's previous event (Nats-Expected-Last-Subject-Sequence),
// so that publishers on several servers interleave without breaking seq density.
#include <openssl/rand.h>

#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {
namespace {

constexpr int kMaxConflictRetries = 1000;

std::string NewId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    HS_EVENT(FATAL, "jetstream.no_entropy").Field("reason", "RAND_bytes failed");
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(b), sizeof(b)));
}

// Error for a request that failed after `stored` of its events were stored (JetStream has no
// atomic batches): the message says so, and how to finish the batch exactly.
absl::Status PartialFailure(const absl::Status& cause, size_t stored) {
  if (stored == 0) return cause;
  return absl::Status(cause.code(),
                      absl::StrCat(cause.message(), " (events[0..", stored,
                                   ") of this batch were stored; publishing it again with the "
                                   "same ids stores the rest and de-duplicates them)"));
}

}  // namespace

absl::StatusOr<v1::PublishResponse> JetStreamLog::PublishEvents(std::vector<v1::EventInput>& events,
                                                                uint64_t* max_position) {
  // expected_seq is checked against fresh heads before anything is stored, so that only a
  // publisher racing on another server can fail a batch half way.
  {
    absl::flat_hash_map<std::string, uint64_t> seqs;
    for (size_t i = 0; i < events.size(); ++i) {
      const v1::EventInput& in = events[i];
      auto it = seqs.find(in.stream());
      if (it == seqs.end()) {
        if (!in.has_expected_seq()) continue;
        absl::StatusOr<StreamHead> h = HeadOf(in.stream(), /*refresh=*/true);
        if (!h.ok()) return h.status();
        it = seqs.emplace(in.stream(), h->seq).first;
      }
      if (in.has_expected_seq() && in.expected_seq() != it->second) {
        return absl::AbortedError(absl::StrCat("events[", i, "].expected_seq is ",
                                               in.expected_seq(), " but stream \"", in.stream(),
                                               "\" is at seq ", it->second));
      }
      ++it->second;  // Assumes no duplicate in between; the publish below re-checks exactly.
    }
  }

  v1::PublishResponse resp;
  for (size_t i = 0; i < events.size(); ++i) {
    v1::EventInput& in = events[i];
    const bool has_expected = in.has_expected_seq();
    const uint64_t expected = in.expected_seq();
    PrepareEvent(in);
    absl::Status s = PublishOne(in, has_expected, expected, i, /*sent_before=*/false,
                                resp.add_results(), max_position);
    if (!s.ok()) return PartialFailure(s, i);
  }
  return resp;
}

void JetStreamLog::PrepareEvent(v1::EventInput& in) const {
  in.clear_expected_seq();
  if (in.id().empty()) in.set_id(NewId());
}

absl::Status JetStreamLog::PublishOne(const v1::EventInput& in, bool has_expected,
                                      uint64_t expected, size_t index, bool sent_before,
                                      v1::PublishResult* result, uint64_t* max_position) {
  const bool dedup = options_.dedup_window > absl::ZeroDuration();
  const std::string subject = StreamToSubject(options_.subject_prefix, in.stream());
  const std::string data = in.SerializeAsString();
  // Every event carries a Msg-Id when de-duplication is on (server-assigned ids too): a
  // publish whose answer was lost is retried, and JetStream answers the retry with the
  // original position instead of storing it twice.
  const std::string msg_id = dedup ? DedupMsgId(in.source(), in.id()) : std::string();
  bool refresh = sent_before;
  int conflicts = 0;
  uint64_t through = 0;  // Clustered: the stream position the head is exact at.
  const absl::Time give_up = absl::Now() + options_.publish_retry_for;
  absl::Duration backoff = absl::Milliseconds(20);
  while (true) {
    absl::StatusOr<StreamHead> head = HeadOf(in.stream(), refresh, &through);
    if (!head.ok()) {
      if (absl::Now() >= give_up) return head.status();
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
      backoff = std::min(backoff * 2, absl::Seconds(1));
      continue;
    }
    if (has_expected && expected != head->seq) {
      if (!refresh) {  // The cache may be behind another server's appends.
        refresh = true;
        continue;
      }
      return absl::AbortedError(absl::StrCat("events[", index, "].expected_seq is ", expected,
                                             " but stream \"", in.stream(), "\" is at seq ",
                                             head->seq));
    }
    NatsPtr<natsMsg> msg;
    jsPubOptions po;
    Anchor anchor;
    anchor.set = clustered_;
    anchor.last = through;
    if (absl::Status st = BuildMessage(subject, data, msg_id, *head, anchor, &msg, &po); !st.ok()) {
      return st;
    }
    jsPubAck* raw_ack = nullptr;
    jsErrCode ec = static_cast<jsErrCode>(0);
    natsStatus s = js_PublishMsg(&raw_ack, js_.get(), msg.get(), &po, &ec);
    NatsPtr<jsPubAck> ack(raw_ack);
    if (s == NATS_OK) {
      return Acknowledged(in, ack->Sequence, head->seq + 1, ack->Duplicate, sent_before, result,
                          max_position);
    }
    if (ec == JSStreamWrongLastSequenceErr) {
      // Another publisher appended to this stream first: take its head and try again.
      if (++conflicts > kMaxConflictRetries) {
        return absl::UnavailableError(
            absl::StrCat("stream \"", in.stream(), "\": ", conflicts,
                         " publish conflicts in a row with other servers"));
      }
      if (clustered_) {
        AfterConflict(through, in.stream());
        refresh = false;
      } else {
        refresh = true;
      }
      continue;
    }
    // No answer (timeout, disconnected, leader election): the message may or may not be
    // stored. Retry with the same Msg-Id; without de-duplication a retry could store it
    // twice, so fail instead.
    const absl::Status error = NatsStatus(s, absl::StrCat("publishing to ", subject), ec);
    if (ec != 0) return error;  // JetStream answered: not transient.
    if (!dedup || absl::Now() >= give_up) return error;
    sent_before = true;
    HS_EVENT(WARNING, "jetstream.publish.retry").Field("status", error);
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

absl::Status JetStreamLog::BuildMessage(const std::string& subject, const std::string& data,
                                        const std::string& msg_id, const StreamHead& head,
                                        const Anchor& anchor, NatsPtr<natsMsg>* msg,
                                        jsPubOptions* po) const {
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return NatsStatus(s, "building a message");
  msg->reset(raw);
  const std::string seq_text = absl::StrCat(head.seq + 1);
  s = natsMsgHeader_Set(raw, kSeqHeader, seq_text.c_str());
  if (s != NATS_OK) return NatsStatus(s, "setting a header");
  if (anchor.set) {
    // Checked when the message is applied, in log order (jetstream_heads.cc). Set by hand:
    // the client library cannot send an expected last sequence of 0 (an empty stream).
    const std::string last_text = absl::StrCat(anchor.last);
    s = natsMsgHeader_Set(raw, "Nats-Expected-Last-Sequence", last_text.c_str());
    if (s == NATS_OK && !anchor.prev_msg_id.empty()) {
      s = natsMsgHeader_Set(raw, "Nats-Expected-Last-Msg-Id", anchor.prev_msg_id.c_str());
    }
    if (s != NATS_OK) return NatsStatus(s, "setting a header");
  }
  jsPubOptions_Init(po);
  po->MaxWait = absl::ToInt64Milliseconds(options_.request_timeout);
  if (!msg_id.empty()) po->MsgId = msg_id.c_str();  // Points into the caller's string.
  // The stream's previous event: a publish from another server in between fails this one
  // (exactly on a single-replica stream; on a clustered one, with the anchor above).
  if (head.position == 0) {
    po->ExpectNoMessage = true;
  } else if (!options_.lag_faults.leader_behind) {
    po->ExpectLastSubjectSeq = head.position;
  }
  return absl::OkStatus();
}

absl::Status JetStreamLog::Acknowledged(const v1::EventInput& in, uint64_t position, uint64_t seq,
                                        bool duplicate, bool sent_before, v1::PublishResult* result,
                                        uint64_t* max_position) {
  StreamHead stored{position, seq};
  if (duplicate) {
    // The original's seq is in its header. An original stored by an earlier attempt of this
    // very call is not a duplicate for the client.
    absl::StatusOr<RawMessage> orig = DirectGet(position, nullptr, nullptr);
    if (!orig.ok()) return orig.status();
    stored.seq = orig->stream_seq;
  }
  {
    absl::MutexLock l(&heads_mu_);
    if (!clustered_) {
      StreamHead& cached = heads_[in.stream()];
      if (stored.position > cached.position) cached = stored;
    } else if (!duplicate) {
      // A stored event is its stream's head. It landed right after its anchor: at
      // heads_through_ + 1 nothing else came in between, so the model covers it too. (A
      // duplicate's original may be old: the tailer records it in order.)
      StreamHead& cached = heads_[in.stream()];
      if (stored.position > cached.position) cached = stored;
      if (heads_through_ + 1 == position) heads_through_ = position;
    }
  }
  result->set_position(stored.position);
  result->set_seq(stored.seq);
  result->set_duplicate(duplicate && !sent_before);
  result->set_id(in.id());
  *max_position = std::max(*max_position, stored.position);
  return absl::OkStatus();
}

}  // namespace hookstream::storage::jetstream
