// JetStreamLog's pipelined publishing. A per-stream seq needs the position of the stream's
// previous event, so two events of one stream cannot be in flight together; events of
// different streams can. A group is cut, in order, into rounds in which no stream appears
// twice; a round is published asynchronously on the one connection (JetStream stores it in
// that order) and its acknowledgements awaited together: one round trip per round instead of
// one per event. Whatever a round could not store (a conflict with another server, a lost
// answer) is finished by the synchronous path before the next round starts.
//
// Requests with expected_seq go through PublishEvents (checked before anything is stored).
// A pipelined request that fails may have stored events before and after the failing one
// (never an acknowledged one twice: retrying with the same ids de-duplicates them).
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {
namespace {

constexpr size_t kMaxRound = 1024;

}  // namespace

void JetStreamLog::OnAsyncAck(jsCtx* /*js*/, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                              void* self) {
  auto* log = static_cast<JetStreamLog*>(self);
  // With an ack handler, the published message is ours again once it is called (nats.c's
  // _handleAsyncReply hands it over and forgets it): destroy it on every path.
  NatsPtr<natsMsg> owned(msg);
  absl::MutexLock l(&log->async_mu_);
  auto it = log->async_acks_.find(msg);
  if (it == log->async_acks_.end()) return;  // A round that gave up on it (sync path retries).
  AsyncAck* ack = it->second;
  log->async_acks_.erase(it);
  ack->done = true;
  if (pae == nullptr && pa != nullptr) {
    ack->ok = true;
    ack->position = pa->Sequence;
    ack->duplicate = pa->Duplicate;
  } else if (pae != nullptr) {
    ack->code = pae->ErrCode;
  }
}

std::vector<absl::StatusOr<v1::PublishResponse>> JetStreamLog::PublishGroup(
    std::vector<PendingAppend>& group, uint64_t* max_position) {
  if (options_.faults.before_append) {
    if (absl::Status s = options_.faults.before_append(); !s.ok()) {
      return std::vector<absl::StatusOr<v1::PublishResponse>>(group.size(), s);
    }
  }
  const bool dedup = options_.dedup_window > absl::ZeroDuration();
  std::vector<v1::PublishResponse> resps(group.size());
  std::vector<absl::Status> errors(group.size());
  std::vector<bool> sequential(group.size(), false);
  struct Slot {
    size_t req;
    size_t index;
    std::string msg_id;
    StreamHead head;
    AsyncAck ack;
    bool sent = false;
  };
  std::vector<Slot> round;
  absl::flat_hash_set<std::string> round_streams;

  auto flush = [&] {
    if (round.empty()) return;
    {
      for (Slot& slot : round) {
        if (!errors[slot.req].ok()) continue;
        const v1::EventInput& in = group[slot.req].events[slot.index];
        absl::StatusOr<StreamHead> head = HeadOf(in.stream(), /*refresh=*/false);
        if (!head.ok()) continue;  // The sync path retries it.
        slot.head = *head;
        slot.msg_id = dedup ? DedupMsgId(in.source(), in.id()) : std::string();
        NatsPtr<natsMsg> msg;
        jsPubOptions po;
        if (!BuildMessage(StreamToSubject(options_.subject_prefix, in.stream()),
                          in.SerializeAsString(), slot.msg_id, slot.head, &msg, &po)
                 .ok()) {
          continue;
        }
        {
          absl::MutexLock l(&async_mu_);
          async_acks_[msg.get()] = &slot.ack;
        }
        natsMsg* raw = msg.release();
        if (js_PublishMsgAsync(js_.get(), &raw, &po) != NATS_OK) {
          absl::MutexLock l(&async_mu_);
          async_acks_.erase(raw);
          natsMsg_Destroy(raw);  // Still ours: the library takes it only on success.
          continue;
        }
        slot.sent = true;
      }
      jsPubOptions wait;
      jsPubOptions_Init(&wait);
      wait.MaxWait = absl::ToInt64Milliseconds(options_.request_timeout * 2);
      js_PublishAsyncComplete(js_.get(), &wait);
      absl::MutexLock l(&async_mu_);
      async_acks_.clear();  // Late answers are dropped; the sync path re-asks with the Msg-Id.
    }
    for (Slot& slot : round) {
      if (!errors[slot.req].ok()) continue;
      const v1::EventInput& in = group[slot.req].events[slot.index];
      v1::PublishResult* result = resps[slot.req].mutable_results(static_cast<int>(slot.index));
      absl::Status s;
      if (slot.ack.done && slot.ack.ok) {
        s = Acknowledged(in, slot.ack.position, slot.head.seq + 1, slot.ack.duplicate,
                         /*sent_before=*/false, result, max_position);
      } else {
        // Conflict (another server appended first): the message was not stored. No answer:
        // it may have been, and the retry's Msg-Id finds it.
        const bool maybe_stored =
            slot.sent && !(slot.ack.done && slot.ack.code == JSStreamWrongLastSequenceErr);
        if (maybe_stored && !dedup) {
          s = absl::UnavailableError(absl::StrCat("no answer from JetStream for events[",
                                                  slot.index,
                                                  "] and no de-duplication to "
                                                  "retry it safely"));
        } else {
          s = PublishOne(in, false, 0, slot.index, maybe_stored, result, max_position);
        }
      }
      if (!s.ok()) {
        errors[slot.req] = absl::Status(
            s.code(),
            absl::StrCat(s.message(), " (events of this batch other than events[", slot.index,
                         "] may be stored; publishing it again with the "
                         "same ids stores the rest and de-duplicates them)"));
      }
    }
    round.clear();
    round_streams.clear();
  };

  for (size_t r = 0; r < group.size(); ++r) {
    std::vector<v1::EventInput>& events = group[r].events;
    sequential[r] = std::any_of(events.begin(), events.end(),
                                [](const v1::EventInput& e) { return e.has_expected_seq(); });
    if (sequential[r]) {
      flush();  // Keep the order of requests.
      absl::StatusOr<v1::PublishResponse> one = PublishEvents(events, max_position);
      if (one.ok()) {
        resps[r] = *std::move(one);
      } else {
        errors[r] = one.status();
      }
      continue;
    }
    for (size_t i = 0; i < events.size(); ++i) {
      PrepareEvent(events[i]);
      resps[r].add_results();
      if (round_streams.contains(events[i].stream()) || round.size() >= kMaxRound) flush();
      round_streams.insert(events[i].stream());
      round.push_back(Slot{r, i, {}, {}, {}, false});
    }
  }
  flush();

  std::vector<absl::StatusOr<v1::PublishResponse>> out;
  out.reserve(group.size());
  for (size_t r = 0; r < group.size(); ++r) {
    if (errors[r].ok()) {
      out.push_back(std::move(resps[r]));
    } else {
      out.push_back(errors[r]);
    }
  }
  return out;
}

}  // namespace hookstream::storage::jetstream
