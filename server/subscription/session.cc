#include "server/subscription/session.h"

#include <algorithm>
#include <utility>

#include "server/subscription/hub.h"

namespace hookstream::subscription {
namespace {

v1::SubscribeResponse Checkpoint(const TokenCodec& tokens, Position p) {
  v1::SubscribeResponse m;
  m.mutable_checkpoint()->set_resume_token(tokens.Encode(p));
  m.mutable_checkpoint()->set_position(p.value());
  return m;
}

}  // namespace

const std::string& TickMessages::Checkpoint() {
  if (checkpoint_.empty()) checkpoint_ = EncodeControlMessage(subscription::Checkpoint(tokens_, head_));
  return checkpoint_;
}

const std::string& TickMessages::Heartbeat() {
  if (heartbeat_.empty()) {
    v1::SubscribeResponse m;
    m.mutable_heartbeat()->set_resume_token(tokens_.Encode(head_));
    heartbeat_ = EncodeControlMessage(m);
  }
  return heartbeat_;
}

Session::Session(Hub* hub, Filter filter, SessionOptions options, Position start,
                 Position expiry_base)
    : hub_(hub), filter_(std::move(filter)), options_(options) {
  absl::MutexLock l(&mu_);
  cursor_ = start;
  expiry_base_ = expiry_base;
  handed_out_ = start;
  token_through_ = start;
  last_message_time_ = hub_->clock()->Now();
  last_token_time_ = last_message_time_;
}

Session::~Session() = default;

void Session::Attach(Waker* waker) {
  absl::MutexLock l(&mu_);
  waker_ = waker;
}

void Session::Detach() {
  absl::MutexLock l(&mu_);
  waker_ = nullptr;
}

void Session::Cancel() {
  {
    absl::MutexLock l(&mu_);
    mode_ = Mode::kFinished;
    if (!final_status_) final_status_ = absl::CancelledError("subscriber went away");
    pending_.clear();
    pending_bytes_ = 0;
  }
  hub_->Remove(this);
}

Position Session::cursor() const {
  absl::MutexLock l(&mu_);
  return cursor_;
}

Position Session::handed_out() const {
  absl::MutexLock l(&mu_);
  return handed_out_;
}

bool Session::finished() const {
  absl::MutexLock l(&mu_);
  return mode_ == Mode::kFinished;
}

Waker* Session::WakerForLocked(bool was_empty) {
  if (!was_empty || waker_ == nullptr) return nullptr;
  waker_->Ref();
  return waker_;
}

void Session::PushControlLocked(const v1::SubscribeResponse& msg, Position covers, bool token) {
  PushEncodedControlLocked(EncodeControlMessage(msg), covers, token);
}

void Session::PushEncodedControlLocked(std::string encoded, Position covers, bool token) {
  Item item;
  item.control = std::move(encoded);
  item.covers = covers;
  item.carries_token = token;
  pending_bytes_ += item.control.size();
  pending_.push_back(std::move(item));
}

void Session::PushEventLocked(LiveEventPtr event) {
  Item item;
  item.covers = event->position;
  item.carries_token = true;
  pending_bytes_ += event->entry.size();
  cursor_ = event->position;
  item.event = std::move(event);
  pending_.push_back(std::move(item));
}

bool Session::Offer(const LiveEventPtr& event, Waker** wake) {
  absl::MutexLock l(&mu_);
  if (mode_ != Mode::kLive) return false;
  if (event->position <= cursor_) return true;  // Already queued from the ring.
  if (pending_bytes_ + event->entry.size() > options_.buffer_bytes && !pending_.empty()) {
    // Fell behind: drop what is queued (the reader will fetch it again from disk) and resume
    // reading after what was handed out. Nothing queued may stay: a checkpoint behind dropped
    // events would claim them delivered.
    const bool was_empty = pending_.empty();
    pending_.clear();
    pending_bytes_ = 0;
    cursor_ = handed_out_;
    mode_ = Mode::kCatchingUp;
    v1::SubscribeResponse m;
    m.mutable_fell_behind();
    PushControlLocked(m, handed_out_, /*token=*/false);
    *wake = WakerForLocked(was_empty);
    return false;
  }
  const bool was_empty = pending_.empty();
  PushEventLocked(event);
  *wake = WakerForLocked(was_empty);
  return true;
}

Waker* Session::AppendAndMaybeJoin(absl::Span<const LiveEventPtr> events, Position through,
                                   bool live, Position head) {
  absl::MutexLock l(&mu_);
  if (mode_ != Mode::kCatchingUp) return nullptr;
  const bool was_empty = pending_.empty();
  for (const LiveEventPtr& e : events) {
    if (e->position > cursor_) PushEventLocked(e);
  }
  cursor_ = std::max(cursor_, through);
  if (live) {
    mode_ = Mode::kLive;
    cursor_ = std::max(cursor_, head);
    v1::SubscribeResponse m;
    m.mutable_caught_up()->set_resume_token(hub_->tokens().Encode(cursor_));
    PushControlLocked(m, cursor_, /*token=*/true);
  }
  return WakerForLocked(was_empty && !pending_.empty());
}

Waker* Session::Tick(absl::Time now, TickMessages& at_head) {
  absl::MutexLock l(&mu_);
  // Between messages a session holds no queue storage: most subscribers are idle most of the
  // time, and the ticker visits each one a few times a second.
  pending_.ReleaseIfEmpty();
  if (mode_ == Mode::kFinished || final_status_ || !pending_.empty() || in_snapshot_) {
    return nullptr;
  }
  // With nothing queued, everything matching up to `covered` was handed out.
  const Position head = at_head.head();
  const Position covered = mode_ == Mode::kLive ? std::max(cursor_, head) : cursor_;
  std::string m;
  if (covered > token_through_ && now - last_token_time_ >= options_.checkpoint_interval) {
    m = covered == head ? at_head.Checkpoint()
                        : EncodeControlMessage(Checkpoint(hub_->tokens(), covered));
  } else if (options_.heartbeat_interval > absl::ZeroDuration() &&
             now - last_message_time_ >= options_.heartbeat_interval) {
    if (covered == head) {
      m = at_head.Heartbeat();
    } else {
      v1::SubscribeResponse hb;
      hb.mutable_heartbeat()->set_resume_token(hub_->tokens().Encode(covered));
      m = EncodeControlMessage(hb);
    }
  } else {
    return nullptr;
  }
  cursor_ = covered;
  PushEncodedControlLocked(std::move(m), covered, /*token=*/true);
  return WakerForLocked(true);
}

Waker* Session::Terminate(absl::Status status) {
  absl::MutexLock l(&mu_);
  if (mode_ == Mode::kFinished) return nullptr;
  return FinishLocked(std::move(status));
}

Waker* Session::FinishLocked(absl::Status status) {
  mode_ = Mode::kFinished;
  if (!final_status_) final_status_ = std::move(status);
  pending_.clear();
  pending_bytes_ = 0;
  // Wake even with an empty queue: the transport must come and take the Finish.
  return WakerForLocked(true);
}

Session::Step Session::Next() {
  absl::MutexLock l(&mu_);
  if (final_status_) {
    if (finish_returned_) return Nothing{};
    finish_returned_ = true;
    return Finish{*final_status_};
  }
  if (pending_.empty()) {
    MaybeScheduleReadLocked();
    return Nothing{};
  }
  const absl::Time now = hub_->clock()->Now();
  last_message_time_ = now;
  if (pending_.front().event == nullptr) {
    Item item = std::move(pending_.front());
    pending_.pop_front();
    pending_bytes_ -= item.control.size();
    handed_out_ = std::max(handed_out_, item.covers);
    if (item.carries_token) {
      token_through_ = std::max(token_through_, item.covers);
      last_token_time_ = now;
    }
    MaybeScheduleReadLocked();
    return std::move(item.control);
  }
  std::vector<LiveEventPtr> batch;
  size_t bytes = 0;
  while (!pending_.empty() && pending_.front().event != nullptr &&
         batch.size() < options_.max_batch_events &&
         (batch.empty() || bytes + pending_.front().event->entry.size() <= options_.max_batch_bytes)) {
    Item& item = pending_.front();
    bytes += item.event->entry.size();
    pending_bytes_ -= item.event->entry.size();
    handed_out_ = item.covers;
    batch.push_back(std::move(item.event));
    pending_.pop_front();
  }
  token_through_ = handed_out_;
  last_token_time_ = now;
  MaybeScheduleReadLocked();
  hub_->CountDelivered(batch.size(), bytes);
  return EncodeEventsMessage(batch);
}

void Session::MaybeScheduleReadLocked() {
  if (mode_ != Mode::kCatchingUp || read_in_flight_ || final_status_ ||
      pending_bytes_ > options_.buffer_bytes / 2) {
    return;
  }
  read_in_flight_ = true;
  hub_->readers().Schedule([self = shared_from_this()] { self->ReadStep(); });
}

void Session::SnapshotStep(std::unique_ptr<storage::SnapshotReader> snapshot) {
  storage::ReadLimits limits;
  limits.max_bytes = std::max<size_t>(options_.buffer_bytes / 2, 1);
  limits.max_events = std::max<size_t>(options_.max_batch_events, 1);
  absl::StatusOr<std::vector<storage::StoredEvent>> chunk = snapshot->Next(limits);
  std::vector<LiveEventPtr> events;
  if (chunk.ok()) {
    for (storage::StoredEvent& se : *chunk) {
      if (!filter_.MatchesType(se.type)) continue;
      events.push_back(ToLiveEvent(se, hub_->tokens()));
    }
  }
  Waker* wake = nullptr;
  {
    absl::MutexLock l(&mu_);
    read_in_flight_ = false;
    if (mode_ != Mode::kCatchingUp || final_status_) return;
    const bool was_empty = pending_.empty();
    if (!chunk.ok()) {
      wake = FinishLocked(chunk.status());
    } else {
      for (LiveEventPtr& e : events) {
        Item item;
        item.covers = e->position;
        item.carries_token = true;
        pending_bytes_ += e->entry.size();
        item.event = std::move(e);
        pending_.push_back(std::move(item));
      }
      if (chunk->empty()) {
        // The snapshot reflects the log up to its head: continue right after it.
        in_snapshot_ = false;
        cursor_ = snapshot->head();
        v1::SubscribeResponse m;
        m.mutable_snapshot_end()->set_resume_token(hub_->tokens().Encode(cursor_));
        PushControlLocked(m, cursor_, /*token=*/true);
      } else {
        snapshot_ = std::move(snapshot);
      }
      MaybeScheduleReadLocked();
      wake = WakerForLocked(was_empty && !pending_.empty());
    }
  }
  if (wake != nullptr) wake->WakeAndUnref();
  if (!chunk.ok()) hub_->Remove(this);
}

void Session::ReadStep() {
  Position from;
  std::unique_ptr<storage::SnapshotReader> snapshot;
  bool in_snapshot;
  {
    absl::MutexLock l(&mu_);
    from = cursor_;
    snapshot = std::move(snapshot_);
    in_snapshot = in_snapshot_;
  }
  if (in_snapshot) {
    if (snapshot == nullptr) {
      absl::StatusOr<std::unique_ptr<storage::SnapshotReader>> opened =
          hub_->log()->OpenLastPerStream(
              [this](absl::string_view stream) { return filter_.MatchesStream(stream); });
      if (!opened.ok()) {
        Waker* wake = Terminate(opened.status());
        {
          absl::MutexLock l(&mu_);
          read_in_flight_ = false;
        }
        if (wake != nullptr) wake->WakeAndUnref();
        hub_->Remove(this);
        return;
      }
      snapshot = *std::move(opened);
    }
    SnapshotStep(std::move(snapshot));
    return;
  }
  Waker* wake = nullptr;
  switch (hub_->CatchUpFromRing(this, from)) {
    case Hub::RingResult::kJoinedLive:
    case Hub::RingResult::kProgressed:
    case Hub::RingResult::kStopped: {
      absl::MutexLock l(&mu_);
      read_in_flight_ = false;
      // The ring step woke the transport if it queued anything; continue if still behind.
      MaybeScheduleReadLocked();
      return;
    }
    case Hub::RingResult::kNotCovered:
      break;
  }

  storage::ReadLimits limits;
  limits.max_bytes = std::max<size_t>(options_.buffer_bytes / 2, 1);
  limits.max_events = std::max<size_t>(options_.max_batch_events, 1);
  absl::StatusOr<storage::ReadChunk> chunk = hub_->log()->Read(
      from, limits,
      [this](absl::string_view stream, absl::string_view type) {
        return filter_.Matches(stream, type);
      });
  // Encode outside the lock: one token and one entry per event.
  std::vector<LiveEventPtr> events;
  if (chunk.ok()) {
    events.reserve(chunk->events.size());
    for (storage::StoredEvent& se : chunk->events) {
      events.push_back(ToLiveEvent(se, hub_->tokens()));
    }
  }
  // Retention raises its horizon before deleting: if it passed our cursor, this chunk may be
  // missing events. Never skip silently: fail, or say so with a gap.
  const Position horizon = hub_->log()->trimmed_through();
  {
    absl::MutexLock l(&mu_);
    read_in_flight_ = false;
    if (mode_ != Mode::kCatchingUp || final_status_) return;
    const bool was_empty = pending_.empty();
    if (chunk.ok() && horizon > from && horizon > expiry_base_) {
      if (!options_.restart_from_oldest_on_expiry) {
        chunk = hub_->ExpiredError(from, "the subscription fell behind retention at position");
      } else {
        v1::SubscribeResponse m;
        m.mutable_gap()->set_from_position(from.value());
        m.mutable_gap()->set_to_position(horizon.value());
        PushControlLocked(m, horizon, /*token=*/false);
        cursor_ = std::max(cursor_, horizon);
        expiry_base_ = horizon;
        chunk->events.clear();
        events.clear();
        chunk->scanned_through = cursor_;
      }
    }
    if (!chunk.ok()) {
      wake = FinishLocked(chunk.status());
    } else {
      for (LiveEventPtr& e : events) {
        if (e->position > cursor_) PushEventLocked(std::move(e));
      }
      cursor_ = std::max(cursor_, chunk->scanned_through);
      // A long stretch of history that matches nothing still moves the client's token.
      const absl::Time now = hub_->clock()->Now();
      if (events.empty() && pending_.empty() && cursor_ > token_through_ &&
          now - last_token_time_ >= options_.checkpoint_interval) {
        PushControlLocked(Checkpoint(hub_->tokens(), cursor_), cursor_, /*token=*/true);
      }
      MaybeScheduleReadLocked();
      wake = WakerForLocked(was_empty && !pending_.empty());
    }
  }
  if (wake != nullptr) wake->WakeAndUnref();
  if (!chunk.ok()) hub_->Remove(this);
}

}  // namespace hookstream::subscription
