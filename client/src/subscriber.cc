#include "hookstream/subscriber.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backoff.h"
#include "grpc_status.h"

namespace hookstream::client {

StartPoint StartPoint::Now() { return StartPoint(v1::SubscribeRequest::START_NOW); }
StartPoint StartPoint::Beginning() { return StartPoint(v1::SubscribeRequest::START_BEGINNING); }
StartPoint StartPoint::LastPerStream() {
  return StartPoint(v1::SubscribeRequest::START_LAST_PER_STREAM);
}
StartPoint StartPoint::Token(std::string token) { return StartPoint(std::move(token)); }
StartPoint StartPoint::Time(absl::Time time) { return StartPoint(time); }

void StartPoint::ApplyTo(v1::SubscribeRequest& request) const {
  if (const auto* from = std::get_if<v1::SubscribeRequest::Start>(&value_)) {
    request.set_from(*from);
  } else if (const auto* token = std::get_if<std::string>(&value_)) {
    request.set_resume_token(*token);
  } else {
    const absl::Time t = std::get<absl::Time>(value_);
    const int64_t seconds = absl::ToUnixSeconds(t);  // Floors: nanos stay non-negative.
    request.mutable_from_time()->set_seconds(seconds);
    request.mutable_from_time()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  }
}

std::string Gap::ToString() const {
  if (kind == Kind::kServerGap) {
    return absl::StrCat("the server skipped expired positions ", from_position + 1, "..",
                        to_position);
  }
  if (got_seq < expected_seq) {
    return absl::StrCat("stream ", stream, ": seq ", got_seq, " again (expected ", expected_seq,
                        ")");
  }
  return absl::StrCat("stream ", stream, ": seq ", expected_seq, "..", got_seq - 1,
                      " missing (got ", got_seq, ")");
}

std::string Notice::ToString() const {
  switch (kind) {
    case Kind::kSubscribed:
      return absl::StrCat("subscribed: log ", log_id, ", head position ", head_position);
    case Kind::kCaughtUp:
      return "caught up";
    case Kind::kFellBehind:
      return "fell behind: reading from disk";
    case Kind::kCheckpoint:
      return absl::StrCat("checkpoint at position ", position);
    case Kind::kHeartbeat:
      return "heartbeat";
    case Kind::kSnapshotEnd:
      return "snapshot end";
    case Kind::kDisconnected:
      return absl::StrCat("disconnected (", status.ToString(), "); attempt ", attempt,
                          ", retrying in ", absl::FormatDuration(retry_in));
  }
  return "notice";
}

bool IsTerminalSubscribeError(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::unique_ptr<Subscriber>> Subscriber::Start(
    std::shared_ptr<grpc::Channel> channel, SubscriberOptions options) {
  if (channel == nullptr) return absl::InvalidArgumentError("channel is null");
  if (options.heartbeat_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat_interval must not be negative");
  }
  if (options.missed_heartbeats < 1) {
    return absl::InvalidArgumentError("missed_heartbeats must be at least 1");
  }
  if (options.max_buffered_events < 1) {
    return absl::InvalidArgumentError("max_buffered_events must be at least 1");
  }
  if (absl::Status s = ValidateBackoff(options.backoff); !s.ok()) return s;
  if (static_cast<bool>(options.on_event) != static_cast<bool>(options.on_error)) {
    return absl::InvalidArgumentError(
        "on_event and on_error go together: set both (callback form) or neither (Next())");
  }
  std::unique_ptr<Subscriber> s(new Subscriber(std::move(channel), std::move(options)));
  s->connection_thread_ = std::thread([p = s.get()] { p->ConnectionLoop(); });
  if (s->options_.heartbeat_interval > absl::ZeroDuration()) {
    s->watchdog_thread_ = std::thread([p = s.get()] { p->WatchdogLoop(); });
  }
  if (s->options_.on_event) {
    s->dispatch_thread_ = std::thread([p = s.get()] { p->DispatchLoop(); });
  }
  return s;
}

Subscriber::Subscriber(std::shared_ptr<grpc::Channel> channel, SubscriberOptions options)
    : options_(std::move(options)),
      check_seq_(options_.types.empty()),
      channel_(std::move(channel)),
      stub_(v1::EventStream::NewStub(channel_)) {}

Subscriber::~Subscriber() {
  Stop();
  std::lock_guard<std::mutex> l(join_mu_);
  if (dispatch_thread_.joinable()) dispatch_thread_.join();
}

void Subscriber::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (call_ != nullptr) call_->TryCancel();
  }
  std::lock_guard<std::mutex> l(join_mu_);
  if (connection_thread_.joinable()) connection_thread_.join();
  if (watchdog_thread_.joinable()) watchdog_thread_.join();
  // From a callback the delivery thread is this thread: the destructor joins it.
  if (dispatch_thread_.joinable() && dispatch_thread_.get_id() != std::this_thread::get_id()) {
    dispatch_thread_.join();
  }
}

std::string Subscriber::last_token() const {
  absl::MutexLock l(&mu_);
  return last_token_;
}

Subscriber::Stats Subscriber::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

v1::SubscribeRequest Subscriber::BuildRequestLocked() const {
  v1::SubscribeRequest request;
  for (const auto& s : options_.streams) request.add_streams(s);
  for (const auto& t : options_.types) request.add_types(t);
  if (last_token_.empty()) {
    options_.start.ApplyTo(request);
  } else {
    request.set_resume_token(last_token_);
  }
  request.set_max_batch_events(options_.max_batch_events);
  request.set_max_batch_bytes(options_.max_batch_bytes);
  const absl::Duration hb = options_.heartbeat_interval;
  const int64_t seconds = absl::ToInt64Seconds(hb);
  request.mutable_heartbeat_interval()->set_seconds(seconds);
  request.mutable_heartbeat_interval()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(hb - absl::Seconds(seconds))));
  request.set_on_expired(options_.on_expired);
  return request;
}

void Subscriber::ConnectionLoop() {
  Backoff backoff(options_.backoff);
  const absl::Duration silence = options_.heartbeat_interval * options_.missed_heartbeats;
  while (true) {
    grpc::ClientContext context;
    if (options_.configure_context) options_.configure_context(context);
    context.set_wait_for_ready(options_.wait_for_ready);
    v1::SubscribeRequest request;
    {
      absl::MutexLock l(&mu_);
      if (stopping_ || ended_) return;
      request = BuildRequestLocked();
      call_ = &context;
      reading_ = true;
      watchdog_fired_ = false;
      last_activity_ = absl::Now();
      ++stats_.calls;
    }
    std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader =
        stub_->Subscribe(&context, request);
    bool got_message = false;
    v1::SubscribeResponse message;
    while (reader->Read(&message)) {
      got_message = true;
      absl::MutexLock l(&mu_);
      last_activity_ = absl::Now();
      HandleMessageLocked(message);
      message.Clear();
      if (queued_events_ >= options_.max_buffered_events && !stopping_ && !ended_) {
        // Stop reading until the application takes events; the watchdog pauses meanwhile.
        reading_ = false;
        mu_.Await(absl::Condition(
            +[](Subscriber* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return s->stopping_ || s->ended_ ||
                     s->queued_events_ < s->options_.max_buffered_events;
            },
            this));
        reading_ = true;
        last_activity_ = absl::Now();
      }
      if (stopping_ || ended_) {
        context.TryCancel();
        break;
      }
    }
    const grpc::Status status = reader->Finish();

    absl::MutexLock l(&mu_);
    call_ = nullptr;
    reading_ = false;
    if (stopping_ || ended_) return;
    absl::Status reason = FromGrpc(status);
    if (watchdog_fired_) {
      reason = absl::UnavailableError(absl::StrCat("no message for ", absl::FormatDuration(silence),
                                                   " (", options_.missed_heartbeats,
                                                   " heartbeat intervals): call cancelled"));
    } else if (!reason.ok() && IsTerminalSubscribeError(reason.code())) {
      EndLocked(reason);
      return;
    } else if (reason.ok()) {
      reason = absl::UnavailableError("the server ended the subscription");
    }
    if (got_message) backoff.Reset();
    Notice notice;
    notice.kind = Notice::Kind::kDisconnected;
    notice.status = reason;
    notice.retry_in = backoff.Next();
    notice.attempt = backoff.attempt();
    DropUndeliveredLocked();
    PushNoticeLocked(notice);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Subscriber* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->stopping_ || s->ended_; },
            this),
        notice.retry_in);
  }
}

void Subscriber::WatchdogLoop() {
  const absl::Duration silence = options_.heartbeat_interval * options_.missed_heartbeats;
  absl::MutexLock l(&mu_);
  while (!stopping_ && !ended_) {
    if (!reading_) {
      mu_.Await(absl::Condition(
          +[](Subscriber* s)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->stopping_ || s->ended_ || s->reading_; },
          this));
      continue;
    }
    const absl::Time deadline = last_activity_ + silence;
    if (absl::Now() >= deadline) {
      watchdog_fired_ = true;
      reading_ = false;
      call_->TryCancel();
      continue;
    }
    // Woken early only to stop; a changed last_activity_ is seen when the deadline comes.
    mu_.AwaitWithDeadline(
        absl::Condition(
            +[](Subscriber* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->stopping_ || s->ended_; },
            this),
        deadline);
  }
}

void Subscriber::HandleMessageLocked(v1::SubscribeResponse& message) {
  Notice notice;
  switch (message.message_case()) {
    case v1::SubscribeResponse::kSubscribed:
      notice.kind = Notice::Kind::kSubscribed;
      notice.log_id = message.subscribed().log_id();
      notice.head_position = message.subscribed().head_position();
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kEvents:
      for (v1::DeliveredEvent& d : *message.mutable_events()->mutable_events()) {
        Item item;
        item.kind = Item::Kind::kEvent;
        item.delivery.event = std::move(*d.mutable_event());
        item.delivery.resume_token = std::move(*d.mutable_resume_token());
        queue_.push_back(std::move(item));
        ++queued_events_;
      }
      return;
    case v1::SubscribeResponse::kCheckpoint:
      ControlTokenLocked(message.checkpoint().resume_token());
      notice.kind = Notice::Kind::kCheckpoint;
      notice.position = message.checkpoint().position();
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kCaughtUp:
      ControlTokenLocked(message.caught_up().resume_token());
      notice.kind = Notice::Kind::kCaughtUp;
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kHeartbeat:
      ControlTokenLocked(message.heartbeat().resume_token());
      notice.kind = Notice::Kind::kHeartbeat;
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kSnapshotEnd:
      ControlTokenLocked(message.snapshot_end().resume_token());
      notice.kind = Notice::Kind::kSnapshotEnd;
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kFellBehind:
      notice.kind = Notice::Kind::kFellBehind;
      PushNoticeLocked(std::move(notice));
      return;
    case v1::SubscribeResponse::kGap: {
      Item item;
      item.kind = Item::Kind::kGap;
      item.gap.kind = Gap::Kind::kServerGap;
      item.gap.from_position = message.gap().from_position();
      item.gap.to_position = message.gap().to_position();
      queue_.push_back(std::move(item));
      return;
    }
    default:
      return;  // A message this client does not know: nothing to act on.
  }
}

void Subscriber::ControlTokenLocked(const std::string& token) {
  if (token.empty()) return;
  if (queued_events_ == 0) {
    last_token_ = token;  // Everything before it was delivered already.
    return;
  }
  Item item;
  item.kind = Item::Kind::kToken;
  item.token = token;
  queue_.push_back(std::move(item));
}

void Subscriber::PushNoticeLocked(Notice notice) {
  if (!options_.on_notice) return;
  Item item;
  item.kind = Item::Kind::kNotice;
  item.notice = std::move(notice);
  queue_.push_back(std::move(item));
}

void Subscriber::DropUndeliveredLocked() {
  queue_.clear();
  queued_events_ = 0;
}

void Subscriber::EndLocked(absl::Status status) {
  ended_ = true;
  Item item;
  item.kind = Item::Kind::kTerminal;
  item.status = std::move(status);
  queue_.push_back(std::move(item));
  if (call_ != nullptr) call_->TryCancel();
}

bool Subscriber::CheckSeq(const v1::Event& event, Gap& gap) {
  auto it = last_seq_.find(event.stream());
  if (it == last_seq_.end() || event.seq() == it->second + 1) return true;
  gap.kind = Gap::Kind::kSeqBreak;
  gap.stream = event.stream();
  gap.expected_seq = it->second + 1;
  gap.got_seq = event.seq();
  return false;
}

absl::StatusOr<Delivery> Subscriber::Next(absl::Duration timeout) {
  if (options_.on_event) {
    return absl::FailedPreconditionError("Next() is for the pull form; on_event is set");
  }
  return NextImpl(timeout);
}

absl::StatusOr<Delivery> Subscriber::NextImpl(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock l(&mu_);
  // Our turn: callbacks run outside mu_, so one consumer at a time must own the delivery.
  if (!mu_.AwaitWithDeadline(absl::Condition(
                                 +[](Subscriber* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                   return s->stopping_ || !s->consumer_active_;
                                 },
                                 this),
                             deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no event within ", absl::FormatDuration(timeout)));
  }
  if (stopping_) return absl::CancelledError("the subscriber was stopped");
  consumer_active_ = true;
  struct Release {
    Subscriber* s;
    ~Release() ABSL_NO_THREAD_SAFETY_ANALYSIS { s->consumer_active_ = false; }
  } release{this};  // Runs with mu_ held (declared after the lock).
  // Callbacks run without mu_.
  auto call_unlocked = [this](const auto& callback, const auto& arg)
                           ABSL_NO_THREAD_SAFETY_ANALYSIS {
                             mu_.Unlock();
                             callback(arg);
                             mu_.Lock();
                           };
  while (true) {
    const bool ready = mu_.AwaitWithDeadline(absl::Condition(
                                                 +[](Subscriber* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                                   return s->stopping_ || !s->queue_.empty();
                                                 },
                                                 this),
                                             deadline);
    if (stopping_) return absl::CancelledError("the subscriber was stopped");
    if (!ready) {
      return absl::DeadlineExceededError(
          absl::StrCat("no event within ", absl::FormatDuration(timeout)));
    }
    Item& front = queue_.front();
    if (front.kind == Item::Kind::kTerminal) return front.status;
    Gap seq_gap;
    bool seq_break = false;
    if (front.kind == Item::Kind::kEvent && check_seq_ &&
        !CheckSeq(front.delivery.event, seq_gap)) {
      seq_break = true;
      ++stats_.seq_breaks;
      if (!options_.on_gap) {
        // Nobody to tell: end here rather than deliver past a break silently.
        DropUndeliveredLocked();
        EndLocked(absl::DataLossError(
            absl::StrCat("per-stream seq continuity broken: ", seq_gap.ToString())));
        return queue_.front().status;
      }
    }
    Item item = std::move(front);
    queue_.pop_front();
    switch (item.kind) {
      case Item::Kind::kToken:
        last_token_ = std::move(item.token);
        break;
      case Item::Kind::kNotice:
        call_unlocked(options_.on_notice, item.notice);
        break;
      case Item::Kind::kGap:
        last_seq_.clear();  // The server skipped events on request: seqs jump.
        if (options_.on_gap) call_unlocked(options_.on_gap, item.gap);
        break;
      case Item::Kind::kEvent:
        --queued_events_;
        ++stats_.delivered;
        last_token_ = item.delivery.resume_token;
        // Tokens right behind the event cover nothing undelivered now.
        while (!queue_.empty() && queue_.front().kind == Item::Kind::kToken) {
          last_token_ = std::move(queue_.front().token);
          queue_.pop_front();
        }
        if (check_seq_) last_seq_[item.delivery.event.stream()] = item.delivery.event.seq();
        if (seq_break) call_unlocked(options_.on_gap, seq_gap);
        return std::move(item.delivery);
      case Item::Kind::kTerminal:
        break;  // Handled above.
    }
  }
}

void Subscriber::DispatchLoop() {
  while (true) {
    absl::StatusOr<Delivery> delivery = NextImpl(absl::InfiniteDuration());
    if (delivery.ok()) {
      options_.on_event(*delivery);
      continue;
    }
    // CANCELLED only comes from Stop() (a CANCELLED call is retried, never terminal).
    if (!absl::IsCancelled(delivery.status())) options_.on_error(delivery.status());
    return;
  }
}

}  // namespace hookstream::client
