#include "server/subscription/hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace hookstream::subscription {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

Hub::Hub(storage::Log* log, HubOptions options)
    : log_(log),
      options_(std::move(options)),
      tokens_(log->log_id(), log->token_key()),
      readers_(std::max(1, options_.reader_threads)) {
  {
    absl::MutexLock l(&mu_);
    head_ = log_->head();
  }
  log_->SetCommitListener(this);
  ticker_ = std::thread([this] { TickerLoop(); });
}

Hub::~Hub() {
  Shutdown();
  stop_ticker_.Notify();
  ticker_.join();
}

size_t Hub::session_count() const {
  absl::MutexLock l(&mu_);
  return sessions_.size();
}

Hub::SubscriberStats Hub::CollectSubscriberStats() const {
  SubscriberStats stats;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock l(&mu_);
    stats.head = head_;
    stats.live = live_.size();
    sessions.reserve(sessions_.size());
    for (const auto& [raw, session] : sessions_) sessions.push_back(session);
  }
  stats.lags.reserve(sessions.size());
  for (const std::shared_ptr<Session>& s : sessions) {
    const Position out = s->handed_out();
    stats.lags.push_back(out < stats.head ? stats.head.value() - out.value() : 0);
  }
  return stats;
}

absl::StatusOr<std::shared_ptr<Session>> Hub::Subscribe(const v1::SubscribeRequest& request,
                                                        const std::vector<StreamPattern>& scopes) {
  absl::StatusOr<Filter> filter = Filter::Create(
      std::vector<std::string>(request.streams().begin(), request.streams().end()),
      std::vector<std::string>(request.types().begin(), request.types().end()), scopes);
  if (!filter.ok()) return filter.status();

  SessionOptions so = options_.session;
  if (request.max_batch_events() > options_.max_batch_events_limit) {
    return absl::InvalidArgumentError(absl::StrCat("max_batch_events: at most ",
                                                   options_.max_batch_events_limit));
  }
  if (request.max_batch_bytes() > options_.max_batch_bytes_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_bytes: at most ", options_.max_batch_bytes_limit));
  }
  if (request.max_batch_events() > 0) so.max_batch_events = request.max_batch_events();
  if (request.max_batch_bytes() > 0) so.max_batch_bytes = request.max_batch_bytes();
  if (request.has_heartbeat_interval()) {
    const absl::Duration hb = FromProto(request.heartbeat_interval());
    if (hb < absl::ZeroDuration() || (hb > absl::ZeroDuration() && hb < options_.min_heartbeat_interval)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "heartbeat_interval: 0 (none) or at least ",
          absl::FormatDuration(options_.min_heartbeat_interval)));
    }
    so.heartbeat_interval = hb;
  }
  if (request.on_expired() != v1::SubscribeRequest::EXPIRED_FAIL &&
      request.on_expired() != v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST) {
    return absl::InvalidArgumentError("on_expired: unknown value");
  }

  so.restart_from_oldest_on_expiry =
      request.on_expired() == v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST;

  // Resolve the start point before taking the lock: a token costs a hash, a time a search.
  std::optional<Position> token_position;
  std::optional<Position> time_position;  // First position at or after from_time.
  bool time_expired = false;
  if (request.start_case() == v1::SubscribeRequest::kResumeToken) {
    absl::StatusOr<Position> p = tokens_.Decode(request.resume_token());
    if (!p.ok()) return p.status();
    // A token another server of a shared log handed out may be a moment ahead of this one.
    if (*p > log_->head()) log_->AwaitHead(*p, absl::Seconds(2));
    token_position = *p;
  } else if (request.start_case() == v1::SubscribeRequest::kFromTime) {
    const auto& ts = request.from_time();
    if (ts.nanos() < 0 || ts.nanos() > 999'999'999) {
      return absl::InvalidArgumentError("from_time: not a valid timestamp");
    }
    const absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
    // Events at or after t that retention deleted cannot be delivered.
    time_expired = log_->Stats().trimmed_through > Position(0) && t <= log_->Stats().trimmed_time;
    absl::StatusOr<Position> p = log_->FindByTime(t);
    if (!p.ok()) return p.status();
    time_position = *p;
  } else if (request.start_case() == v1::SubscribeRequest::kFrom &&
             request.from() != v1::SubscribeRequest::START_NOW &&
             request.from() != v1::SubscribeRequest::START_BEGINNING) {
    if (request.from() != v1::SubscribeRequest::START_LAST_PER_STREAM) {
      return absl::InvalidArgumentError("from: unknown start");
    }
  }

  absl::MutexLock l(&mu_);
  if (shutting_down_) return absl::UnavailableError("the server is draining");
  if (sessions_.size() >= options_.max_subscribers) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "subscriber limit reached (", options_.max_subscribers, " concurrent subscriptions)"));
  }
  const storage::LogStats stats = log_->Stats();
  Position start;
  Position expiry_base = stats.trimmed_through;
  std::optional<v1::SubscribeResponse> gap;
  if (token_position || time_position) {
    Position wanted;
    bool expired;
    if (token_position) {
      if (*token_position > head_) {
        return absl::FailedPreconditionError(absl::StrCat(
            "resume_token is at position ", token_position->value(), ", ahead of the log head ",
            head_.value()));
      }
      wanted = *token_position;
      expired = wanted < stats.trimmed_through;
    } else {
      wanted = std::min(Position(time_position->value() - 1), head_);
      expired = time_expired;
    }
    if (expired && !so.restart_from_oldest_on_expiry) {
      return ExpiredError(wanted, token_position ? "resume_token is at position"
                                                 : "from_time starts at position");
    }
    start = wanted;
    if (expired) {
      start = std::max(wanted, stats.trimmed_through);
      gap.emplace();
      gap->mutable_gap()->set_from_position(token_position ? wanted.value() : 0);
      gap->mutable_gap()->set_to_position(start.value());
    }
    expiry_base = start;
  } else if (request.start_case() == v1::SubscribeRequest::kFrom &&
             request.from() == v1::SubscribeRequest::START_BEGINNING) {
    // Everything before `oldest` is gone; oldest - 1 reads all that is retained.
    start = Position(stats.oldest.value() - 1);
  } else {
    start = head_;
  }

  auto session = std::make_shared<Session>(this, *std::move(filter), so, start, expiry_base);
  {
    absl::MutexLock sl(&session->mu_);
    v1::SubscribeResponse m;
    m.mutable_subscribed()->set_log_id(tokens_.log_id_text());
    m.mutable_subscribed()->set_head_position(head_.value());
    session->PushControlLocked(m, start, /*token=*/false);
    if (gap) session->PushControlLocked(*gap, start, /*token=*/false);
    // The snapshot is opened on the reader pool: listing many streams must not hold a gRPC
    // thread.
    session->in_snapshot_ = request.start_case() == v1::SubscribeRequest::kFrom &&
                            request.from() == v1::SubscribeRequest::START_LAST_PER_STREAM;
  }
  sessions_.emplace(session.get(), session);
  return session;
}

absl::Status Hub::ExpiredError(Position position, absl::string_view what) const {
  const storage::LogStats stats = log_->Stats();
  absl::Status s = absl::OutOfRangeError(absl::StrCat(
      what, " ", position.value(), ", which retention has passed: events up to position ",
      stats.trimmed_through.value(), " were deleted; the oldest retained position is ",
      stats.oldest.value(),
      " (subscribe from the beginning, or with on_expired = EXPIRED_RESTART_FROM_OLDEST)"));
  v1::ExpiredDetail detail;
  detail.set_oldest_position(stats.oldest.value());
  detail.set_expired_through(stats.trimmed_through.value());
  s.SetPayload("type.googleapis.com/hookstream.v1.ExpiredDetail",
               absl::Cord(detail.SerializeAsString()));
  return s;
}

Hub::RingResult Hub::CatchUpFromRing(Session* session, Position from) {
  Waker* wake = nullptr;
  RingResult result;
  {
    absl::MutexLock l(&mu_);
    if (!sessions_.contains(session) || session->finished()) return RingResult::kStopped;
    if (from >= head_) {
      wake = session->AppendAndMaybeJoin({}, from, /*live=*/true, head_);
      AddLiveLocked(session);
      result = RingResult::kJoinedLive;
    } else if (ring_.empty() || ring_.front()->position > from.next() ||
               from < log_->trimmed_through()) {
      // Not in memory, or retention may have deleted some of it (the ring still holds what
      // retention took): disk tells.
      return RingResult::kNotCovered;
    } else {
      // Positions in the ring are dense: index = position - first position.
      size_t i = from.value() + 1 - ring_.front()->position.value();
      std::vector<LiveEventPtr> matched;
      size_t bytes = 0;
      const size_t budget = std::max<size_t>(session->options().buffer_bytes / 2, 1);
      Position through = from;
      for (; i < ring_.size() && bytes < budget; ++i) {
        const LiveEventPtr& e = ring_[i];
        through = e->position;
        if (session->filter().Matches(e->stream, e->type)) {
          bytes += e->entry.size();
          matched.push_back(e);
        }
      }
      const bool live = through == head_;
      wake = session->AppendAndMaybeJoin(matched, through, live, head_);
      if (live) AddLiveLocked(session);
      result = live ? RingResult::kJoinedLive : RingResult::kProgressed;
    }
  }
  if (wake != nullptr) wake->WakeAndUnref();
  return result;
}

void Hub::AddLiveLocked(Session* session) {
  if (!live_.insert(session).second) return;
  live_index_.Add(session->filter().patterns(), session);
}

void Hub::RemoveLiveLocked(Session* session) {
  if (live_.erase(session) == 0) return;
  live_index_.Remove(session->filter().patterns(), session);
}

void Hub::Remove(Session* session) {
  std::shared_ptr<Session> keep;  // Released after the lock.
  absl::MutexLock l(&mu_);
  RemoveLiveLocked(session);
  auto it = sessions_.find(session);
  if (it != sessions_.end()) {
    keep = std::move(it->second);
    sessions_.erase(it);
  }
}

void Hub::SetCommitObserver(std::function<void(Position head)> observer) {
  absl::MutexLock l(&mu_);
  commit_observer_ = std::move(observer);
}

void Hub::OnCommit(std::vector<storage::StoredEvent>& events, Position head) {
  // Encode once, outside the lock: every subscriber shares these bytes.
  std::vector<LiveEventPtr> live;
  live.reserve(events.size());
  size_t group_bytes = 0;
  for (storage::StoredEvent& se : events) {
    LiveEventPtr ev = ToLiveEvent(se, tokens_);
    group_bytes += ev->entry.size();
    live.push_back(std::move(ev));
  }

  std::vector<Waker*> wakes;
  {
    absl::MutexLock l(&mu_);
    if (!live.empty() && live.front()->position != head_.next()) {
      // Positions were skipped: a shared log (JetStream) deleted events before this server saw
      // them. The ring must stay dense, and live sessions must not skip silently: they end with
      // UNAVAILABLE and resume from their tokens, where the log's horizon reports the expiry.
      ring_.clear();
      ring_bytes_ = 0;
      std::vector<Session*> ended(live_.begin(), live_.end());
      for (Session* s : ended) {
        RemoveLiveLocked(s);
        if (Waker* w = s->Terminate(absl::UnavailableError(
                "events were deleted before this server delivered them: resume from your token"));
            w != nullptr) {
          wakes.push_back(w);
        }
      }
    }
    head_ = head;
    for (const LiveEventPtr& e : live) ring_.push_back(e);
    ring_bytes_ += group_bytes;
    // Keep at least this group, so that a reader that saw the log's head before this commit
    // can always finish from the ring.
    while (ring_.size() > live.size() && ring_bytes_ > options_.ring_bytes) {
      ring_bytes_ -= ring_.front()->entry.size();
      ring_.pop_front();
    }

    std::vector<Session*> fell_behind;
    auto offer = [&](Session* s, const LiveEventPtr& e) {
      Waker* w = nullptr;
      if (!s->Offer(e, &w)) fell_behind.push_back(s);
      if (w != nullptr) wakes.push_back(w);
    };
    for (const LiveEventPtr& e : live) {
      // A session indexed under several matching patterns is offered the event more than
      // once; Offer ignores what it already queued.
      live_index_.ForEachMatch(e->stream, [&](Session* s) {
        if (s->filter().MatchesType(e->type)) offer(s, e);
      });
      // Sessions that fell behind leave the live set before the next event is offered.
      for (Session* s : fell_behind) RemoveLiveLocked(s);
      fell_behind.clear();
    }
    if (commit_observer_) commit_observer_(head);
  }
  for (Waker* w : wakes) w->WakeAndUnref();
}

void Hub::Shutdown() {
  std::vector<Waker*> wakes;
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
    for (auto& [raw, session] : sessions_) {
      RemoveLiveLocked(raw);
      if (Waker* w = session->Terminate(absl::UnavailableError(
              "the server is draining: resume from your last token on another server or later"));
          w != nullptr) {
        wakes.push_back(w);
      }
    }
  }
  for (Waker* w : wakes) w->WakeAndUnref();
}

bool Hub::WaitUntilNoSessions(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](absl::flat_hash_map<Session*, std::shared_ptr<Session>>* s) { return s->empty(); },
          &sessions_),
      timeout);
}

void Hub::TickerLoop() {
  std::vector<std::shared_ptr<Session>> sessions;
  while (!stop_ticker_.WaitForNotificationWithTimeout(options_.tick_period)) {
    // Take the head and the session list under the lock, tick outside it: with ten thousand
    // sessions the walk must not hold up commits. Every event up to `head` was offered before
    // `head` was published, so a session with nothing queued has handled everything up to it.
    Position head;
    {
      absl::MutexLock l(&mu_);
      head = head_;
      sessions.clear();
      sessions.reserve(sessions_.size());
      for (auto& [raw, session] : sessions_) sessions.push_back(session);
    }
    const absl::Time now = options_.clock->Now();
    TickMessages at_head(tokens_, head);
    for (const std::shared_ptr<Session>& session : sessions) {
      if (Waker* w = session->Tick(now, at_head); w != nullptr) w->WakeAndUnref();
    }
    sessions.clear();  // Release them before sleeping.
  }
}

}  // namespace hookstream::subscription
