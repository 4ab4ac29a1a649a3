// JetStreamLog's tailer: an ordered consumer over the whole stream feeds the CommitListener, so
// every hookstream server sees every append (its own and other servers'), in position order.
// The tailer also publishes the head and keeps the expiry horizon fresh.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {

void JetStreamLog::StartTailer() {
  std::call_once(tailer_once_, [this] { tailer_ = std::thread([this] { TailerLoop(); }); });
}

Position JetStreamLog::AwaitHead(Position position, absl::Duration timeout) const {
  absl::MutexLock l(&head_mu_);
  const uint64_t want = position.value();
  auto reached = [this, want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(head_mu_) { return head_ >= want; };
  head_mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  return Position(head_);
}

void JetStreamLog::TailerLoop() {
  NatsPtr<natsSubscription> sub;
  absl::Time next_refresh = absl::InfinitePast();
  while (!stop_tailer_.load()) {
    if (sub == nullptr) {
      // The ordered consumer re-creates itself after disconnects and leader changes, from the
      // last sequence it delivered; this loop only creates the first one (and retries that).
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Ordered = true;
      uint64_t start;
      {
        absl::MutexLock l(&head_mu_);
        start = head_ + 1;
      }
      so.Config.DeliverPolicy = js_DeliverByStartSequence;
      so.Config.OptStartSeq = start;
      so.Stream = options_.stream.c_str();
      natsSubscription* raw = nullptr;
      jsErrCode ec = static_cast<jsErrCode>(0);
      natsStatus s = js_SubscribeSync(&raw, js_.get(), all_subjects_.c_str(), nullptr, &so, &ec);
      if (s != NATS_OK) {
        HS_EVENT(WARNING, "jetstream.tailer.start_failed")
            .Field("status", NatsStatus(s, "starting the tailer", ec))
            .Field("action", "retrying");
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      natsSubscription_SetPendingLimits(raw, -1, -1);
      sub.reset(raw);
    }
    if (absl::Now() >= next_refresh) {
      RefreshHorizon();
      next_refresh = absl::Now() + absl::Seconds(1);
    }
    std::vector<RawMessage> batch;
    natsMsg* raw_msg = nullptr;
    natsStatus s = natsSubscription_NextMsg(&raw_msg, sub.get(), 100);
    while (s == NATS_OK) {
      NatsPtr<natsMsg> msg(raw_msg);
      RawMessage raw;
      if (absl::Status st = ParseMessage(msg.get(), /*from_direct_get=*/false, &raw); !st.ok()) {
        // A message hookstream did not write cannot be delivered; it still takes a position.
        HS_EVENT(ERROR, "jetstream.tailer.failed").Field("status", st);
        raw.stream_seq = 0;
      }
      batch.push_back(std::move(raw));
      if (batch.size() >= 1024) break;
      int pending = 0;
      if (natsSubscription_GetPending(sub.get(), &pending, nullptr) != NATS_OK || pending == 0) {
        break;
      }
      s = natsSubscription_NextMsg(&raw_msg, sub.get(), 100);
    }
    if (!batch.empty()) Deliver(batch);
  }
}

void JetStreamLog::Deliver(std::vector<RawMessage>& batch) {
  uint64_t head;
  {
    absl::MutexLock l(&head_mu_);
    head = head_;
  }
  std::vector<StoredEvent> events;
  uint64_t last = head;
  auto flush = [&] {
    if (last == head) return;
    {
      absl::MutexLock l(&listener_mu_);
      // Listener first, then the head: a reader never sees a position the subscription
      // registry has not been told about.
      if (listener_ != nullptr) listener_->OnCommit(events, Position(last));
    }
    events.clear();
    head = last;
    absl::MutexLock l(&head_mu_);
    head_ = last;
    head_pub_.store(last, std::memory_order_release);
  };
  for (RawMessage& raw : batch) {
    const uint64_t pos = raw.sequence;
    if (pos <= last) continue;  // Redelivered after a consumer reset.
    if (pos != last + 1) {
      // Deleted before this server saw them: expire tokens below, then hand over what we have
      // and the rest as a new (non-dense) group, which the hub treats as a break.
      RaiseHorizon(pos - 1);
      flush();
    }
    if (raw.stream_seq != 0) {
      absl::StatusOr<StoredEvent> ev = ToStored(std::move(raw));
      if (ev.ok()) {
        absl::MutexLock l(&heads_mu_);
        // At or below the floor the model learns nothing from the tail: a stream last written
        // there is learned when it is published to (jetstream_heads.cc), and an old event
        // would pass for the head of a stream written again since.
        if (ev->position.value() <= heads_floor_) {
          events.push_back(*std::move(ev));
          last = pos;
          continue;
        }
        StreamHead& h = heads_[ev->stream];
        if (h.position != 0 && ev->position.value() > h.position && ev->seq.value() != h.seq + 1) {
          // Should never happen: each publish names its stream's previous event, anchored to
          // the whole stream on a clustered one (jetstream_heads.cc). A stream written by
          // something else than hookstream, or a broken JetStream, would do it: say it loudly.
          HS_EVENT(ERROR, "jetstream.seq_not_dense")
              .Field("stream", ev->stream)
              .Field("seq", ev->seq.value())
              .Field("position", ev->position.value())
              .Field("previous_seq", h.seq)
              .Field("previous_position", h.position)
              .Field("reason", "two events of the stream name the same predecessor");
        }
        if (ev->position.value() > h.position)
          h = StreamHead{ev->position.value(), ev->seq.value()};
        events.push_back(*std::move(ev));
      } else {
        HS_EVENT(ERROR, "jetstream.tailer.failed").Field("status", ev.status());
      }
    }
    last = pos;
  }
  {
    // The model of stream heads (jetstream_heads.cc) now covers every message through `last`.
    absl::MutexLock l(&heads_mu_);
    heads_through_ = std::max(heads_through_, last);
  }
  flush();
}

void JetStreamLog::RaiseHorizon(uint64_t through) const {
  uint64_t cur = horizon_.load(std::memory_order_acquire);
  while (cur < through && !horizon_.compare_exchange_weak(cur, through)) {
  }
}

void JetStreamLog::RefreshHorizon() const {
  jsStreamInfo* raw = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&raw, js_.get(), options_.stream.c_str(), nullptr, &ec) != NATS_OK) return;
  NatsPtr<jsStreamInfo> info(raw);
  const jsStreamState& st = info->State;
  // Everything below the first retained sequence is gone (an empty stream: all of it).
  RaiseHorizon(st.Msgs == 0 ? st.LastSeq : (st.FirstSeq == 0 ? 0 : st.FirstSeq - 1));
  if (st.Msgs > 0) horizon_time_.store(st.FirstTime, std::memory_order_relaxed);
}

}  // namespace hookstream::storage::jetstream
