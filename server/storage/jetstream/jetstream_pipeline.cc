// JetStreamLog's pipelined publishing. A per-stream seq needs the position of the stream's
// previous event, so two events of one stream cannot be in flight together; events of
// different streams can. A group is cut, in order, into rounds in which no stream appears
// twice; a round is published asynchronously on the one connection (JetStream stores it in
// that order) and its acknowledgements awaited together: one round trip per round instead of
// one per event. Whatever a round could not store (a conflict with another server, a lost
// answer) is published again as a smaller round before the next round starts.
//
// On a clustered stream the events of a round form a chain (jetstream_heads.cc): the first is
// anchored right after the model's position L, event k right after L + k and right after event
// k - 1 (its Msg-Id). Without the chain, another server's event could take the place of a
// refused event k - 1 and event k, whose head was computed without it, would pass.
//
// Requests with expected_seq go through PublishEvents (checked before anything is stored).
// A pipelined request that fails may have stored events before and after the failing one
// (never an acknowledged one twice: retrying with the same ids de-duplicates them).
#include <openssl/rand.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {
namespace {

constexpr size_t kMaxRound = 1024;
constexpr int kMaxAttempts = 1000;

// A chain link for a clustered stream without de-duplication (hookstream then sends no
// Msg-Id of its own): unique, so it never de-duplicates anything.
std::string ChainMsgId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    HS_EVENT(FATAL, "jetstream.no_entropy").Field("reason", "RAND_bytes failed");
  }
  return absl::StrCat("hs-chain-", absl::BytesToHexString(
                                       absl::string_view(reinterpret_cast<char*>(b), sizeof(b))));
}

// The error of a request one of whose events could not be stored.
absl::Status SlotFailure(const absl::Status& cause, size_t index) {
  return absl::Status(
      cause.code(),
      absl::StrCat(cause.message(), " (events of this batch other than events[", index,
                   "] may be stored; publishing it again with the same ids "
                   "stores the rest and de-duplicates them)"));
}

}  // namespace

void JetStreamLog::OnAsyncAck(jsCtx* /*js*/, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                              void* self) {
  auto* log = static_cast<JetStreamLog*>(self);
  // With an ack handler, the published message is ours again once it is called (nats.c's
  // _handleAsyncReply hands it over and forgets it): destroy it on every path.
  NatsPtr<natsMsg> owned(msg);
  absl::MutexLock l(&log->async_mu_);
  auto it = log->async_acks_.find(msg);
  if (it == log->async_acks_.end()) return;  // A round that gave up on it (and retried it).
  AsyncAck* ack = it->second;
  log->async_acks_.erase(it);
  ack->done = true;
  if (pae == nullptr && pa != nullptr) {
    ack->ok = true;
    ack->position = pa->Sequence;
    ack->duplicate = pa->Duplicate;
  } else if (pae != nullptr) {
    ack->code = pae->ErrCode;
    if (pae->ErrCode == JSStreamWrongLastSequenceErr) {
      ack->named_last = WrongLastSequenceOf(pae->ErrText).value_or(0);
    }
  }
}

void JetStreamLog::PublishRound(std::vector<RoundSlot> todo, std::vector<PendingAppend>& group,
                                std::vector<v1::PublishResponse>* resps,
                                std::vector<absl::Status>* errors, uint64_t* max_position) {
  const bool dedup = options_.dedup_window > absl::ZeroDuration();
  const absl::Time give_up = absl::Now() + options_.publish_retry_for;
  absl::Duration backoff = absl::Milliseconds(20);
  for (int attempt = 1;; ++attempt) {
    todo.erase(std::remove_if(todo.begin(), todo.end(),
                              [&](const RoundSlot& s) { return !(*errors)[s.req].ok(); }),
               todo.end());
    if (todo.empty()) return;
    const size_t n = todo.size();
    auto event = [&](size_t i) -> const v1::EventInput& {
      return group[todo[i].req].events[todo[i].index];
    };
    std::vector<const std::string*> streams(n);
    for (size_t i = 0; i < n; ++i) streams[i] = &event(i).stream();
    std::vector<StreamHead> heads(n);
    std::vector<bool> have(n, false);
    uint64_t base = 0;  // Clustered: the model position, at which `heads` are exact.
    if (clustered_) {
      base = KnownHeads(streams, &heads, &have);
      std::vector<const std::string*> unknown;
      for (size_t i = 0; i < n; ++i) {
        if (!have[i]) unknown.push_back(streams[i]);
      }
      if (!unknown.empty()) {
        // Streams the model does not know: learn them all in one round trip. One that could
        // not be learned is not sent this time (nor, the chain broken, what follows it).
        std::vector<absl::Status> learned = LearnHeads(unknown);
        for (size_t i = 0; i < learned.size(); ++i) {
          if (learned[i].ok()) continue;
          HS_EVENT(WARNING, "jetstream.heads.probe_failed")
              .Field("stream", *unknown[i])
              .Field("status", learned[i])
              .Field("action", "retrying");
          break;  // One line per attempt is enough.
        }
        base = KnownHeads(streams, &heads, &have);
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        absl::StatusOr<StreamHead> h = HeadOf(*streams[i], todo[i].refresh || todo[i].sent_before);
        if (h.ok()) {
          heads[i] = *h;
          have[i] = true;
        }
      }
    }

    // Publish asynchronously, in order. A clustered chain stops at the first event that cannot
    // be sent: the ones after it would only be refused.
    std::vector<AsyncAck> acks(n);
    std::vector<std::string> msg_ids(n);
    std::vector<bool> sent(n, false);
    std::vector<uint64_t> anchor_last(n, 0);
    size_t chained = 0;
    for (size_t i = 0; i < n; ++i) {
      const v1::EventInput& in = event(i);
      if (have[i]) {
        msg_ids[i] =
            dedup ? DedupMsgId(in.source(), in.id()) : (clustered_ ? ChainMsgId() : std::string());
        Anchor anchor;
        anchor.set = clustered_;
        anchor.last = anchor_last[i] = base + chained;
        if (clustered_ && chained > 0) anchor.prev_msg_id = msg_ids[i - 1];
        NatsPtr<natsMsg> msg;
        jsPubOptions po;
        if (BuildMessage(StreamToSubject(options_.subject_prefix, in.stream()),
                         in.SerializeAsString(), msg_ids[i], heads[i], anchor, &msg, &po)
                .ok()) {
          {
            absl::MutexLock l(&async_mu_);
            async_acks_[msg.get()] = &acks[i];
          }
          natsMsg* raw = msg.release();
          if (js_PublishMsgAsync(js_.get(), &raw, &po) == NATS_OK) {
            sent[i] = true;
            ++chained;
            continue;
          }
          absl::MutexLock l(&async_mu_);
          async_acks_.erase(raw);
          natsMsg_Destroy(raw);  // Still ours: the library takes it only on success.
        }
      }
      if (clustered_) break;
    }
    if (chained > 0) {
      jsPubOptions wait;
      jsPubOptions_Init(&wait);
      wait.MaxWait = absl::ToInt64Milliseconds(options_.request_timeout * 2);
      js_PublishAsyncComplete(js_.get(), &wait);
    }
    {
      absl::MutexLock l(&async_mu_);
      async_acks_.clear();  // Late answers are dropped; a retry's Msg-Id finds the message.
    }

    std::vector<RoundSlot> again;
    bool conflict = false;
    bool unanswered = false;
    uint64_t conflict_last = 0;
    std::string conflict_stream;
    for (size_t i = 0; i < n; ++i) {
      RoundSlot& slot = todo[i];
      const v1::EventInput& in = event(i);
      const AsyncAck& ack = acks[i];
      absl::Status s;
      if (sent[i] && ack.done && ack.ok) {
        s = Acknowledged(in, ack.position, heads[i].seq + 1, ack.duplicate, slot.sent_before,
                         (*resps)[slot.req].mutable_results(static_cast<int>(slot.index)),
                         max_position);
      } else if (sent[i] && ack.done &&
                 (ack.code == JSStreamWrongLastSequenceErr ||
                  ack.code == JSStreamWrongLastMsgIDErr)) {
        // Refused, so not stored: another server appended first, or the head was stale.
        if (!conflict) {
          conflict = true;
          conflict_last = anchor_last[i];
          conflict_stream = in.stream();
        }
        slot.refresh = true;
        again.push_back(slot);
        continue;
      } else if (sent[i] && ack.done && ack.code != 0) {
        s = NatsStatus(NATS_ERR, absl::StrCat("publishing to stream \"", in.stream(), "\""),
                       ack.code);  // JetStream answered: not transient.
      } else if (sent[i]) {
        // No answer: it may be stored. Only its Msg-Id makes a retry safe.
        if (!dedup) {
          s = absl::UnavailableError(absl::StrCat("no answer from JetStream for events[",
                                                  slot.index,
                                                  "] and no de-duplication to retry it safely"));
        } else {
          slot.sent_before = true;
          unanswered = true;
          again.push_back(slot);
          continue;
        }
      } else {
        again.push_back(slot);  // Not sent (head unreadable, or after a broken chain).
        continue;
      }
      if (!s.ok()) (*errors)[slot.req] = SlotFailure(s, slot.index);
    }
    todo = std::move(again);
    if (todo.empty()) return;
    if (attempt >= kMaxAttempts || absl::Now() >= give_up) {
      for (const RoundSlot& slot : todo) {
        if (!(*errors)[slot.req].ok()) continue;
        (*errors)[slot.req] =
            SlotFailure(absl::UnavailableError(absl::StrCat(
                            "stream \"", group[slot.req].events[slot.index].stream(),
                            "\": not stored after ", attempt,
                            " attempts (publish conflicts with other servers, or JetStream not "
                            "answering)")),
                        slot.index);
      }
      return;
    }
    if (conflict && clustered_) AfterConflict(conflict_last, conflict_stream);
    if (unanswered || !conflict) {
      if (unanswered) {
        HS_EVENT(WARNING, "jetstream.publish.retry")
            .Field("events", todo.size())
            .Field("reason", "no answer from JetStream");
      }
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }
}

std::vector<absl::StatusOr<v1::PublishResponse>> JetStreamLog::PublishGroup(
    std::vector<PendingAppend>& group, uint64_t* max_position) {
  if (options_.faults.before_append) {
    if (absl::Status s = options_.faults.before_append(); !s.ok()) {
      return std::vector<absl::StatusOr<v1::PublishResponse>>(group.size(), s);
    }
  }
  std::vector<v1::PublishResponse> resps(group.size());
  std::vector<absl::Status> errors(group.size());
  std::vector<RoundSlot> round;
  absl::flat_hash_set<std::string> round_streams;
  auto flush = [&] {
    if (round.empty()) return;
    PublishRound(std::move(round), group, &resps, &errors, max_position);
    round.clear();
    round_streams.clear();
  };

  for (size_t r = 0; r < group.size(); ++r) {
    std::vector<v1::EventInput>& events = group[r].events;
    const bool sequential = std::any_of(
        events.begin(), events.end(), [](const v1::EventInput& e) { return e.has_expected_seq(); });
    if (sequential) {
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
      RoundSlot slot;
      slot.req = r;
      slot.index = i;
      round.push_back(slot);
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
