#include "server/webhook/endpoint.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/common/logging.h"
#include "server/webhook/request.h"

namespace hookstream::webhook {

Endpoint::Endpoint(EndpointConfig config, std::string log_id, EndpointTuning tuning)
    : config_(std::move(config)),
      log_id_(std::move(log_id)),
      tuning_(tuning),
      key_prefix_(EndpointKeyPrefix(config_.name)) {}

std::string EndpointKeyPrefix(absl::string_view name) {
  return absl::StrCat("webhook/", name, "/");
}

std::string DeadLetterKey(absl::string_view key_prefix, Position p) {
  return absl::StrFormat("%sdead/%020u", key_prefix, p.value());
}

void Endpoint::Restore(const std::optional<internal::WebhookCursor>& cursor, Position head,
                       uint64_t dead_letters) {
  dead_letters_ = dead_letters;
  if (!cursor.has_value()) {
    // A new endpoint gets what is published from now on. Written at once, so that a crash
    // before its first delivery does not move its start past events published meanwhile.
    read_cursor_ = head;
    cursor_dirty_ = true;
    return;
  }
  read_cursor_ = Position(cursor->through());
  written_through_ = read_cursor_;
  for (uint64_t p : cursor->done()) {
    if (p > cursor->through()) done_above_.insert(Position(p));
  }
  disabled_ = cursor->disabled();
  disabled_reason_ = cursor->disabled_reason();
}

size_t Endpoint::ReadRoom() const {
  if (disabled_) return 0;
  const size_t used = pending_.size();
  return used >= tuning_.window_events ? 0 : tuning_.window_events - used;
}

std::deque<Position>* Endpoint::QueueFor(const Item& item, std::string* key) {
  switch (config_.ordering) {
    case Ordering::kPerStream:
      *key = item.event->stream();
      break;
    case Ordering::kFifo:
      key->clear();
      break;
    case Ordering::kUnordered:
      return nullptr;
  }
  return &queues_[*key];
}

void Endpoint::AddEvents(std::vector<storage::StoredEvent>& events, Position scanned_through,
                         absl::Time now) {
  for (storage::StoredEvent& se : events) {
    if (done_above_.count(se.position) > 0) continue;  // Finished before a restart.
    auto event = std::make_shared<v1::Event>();
    if (!event->ParseFromString(se.bytes)) {
      // The log checks its records; an unparsable one is a storage bug, not input.
      HS_EVENT(ERROR, "webhook.event_unreadable")
          .Field("endpoint", config_.name)
          .Field("position", se.position.value())
          .Field("action", "skipped");
      continue;
    }
    auto [it, inserted] = pending_.try_emplace(se.position);
    if (!inserted) continue;
    Item& item = it->second;
    item.position = se.position;
    item.event = std::move(event);
    item.webhook_id = WebhookId(log_id_, se.position.value());
    std::string key;
    std::deque<Position>* queue = QueueFor(item, &key);
    if (queue != nullptr) queue->push_back(item.position);
    // Eligible now unless an earlier event of its queue is still waiting.
    if (queue == nullptr || queue->size() == 1) Schedule(&item, now + config_.retry_schedule[0]);
  }
  if (scanned_through > read_cursor_) read_cursor_ = scanned_through;
}

void Endpoint::Schedule(Item* item, absl::Time due) {
  item->due = due;
  due_.emplace(due, item->replay, item->position.value());
}

Endpoint::Item* Endpoint::NextReady(absl::Time now) {
  if (disabled_ || in_flight_ >= config_.max_in_flight || due_.empty()) return nullptr;
  const auto [due, replay, position] = *due_.begin();
  if (due > now) return nullptr;
  due_.erase(due_.begin());
  auto& items = replay ? replays_ : pending_;
  auto it = items.find(Position(position));
  if (it == items.end()) return nullptr;  // Invariant: scheduled items exist.
  Item* item = &it->second;
  item->in_flight = true;
  ++item->attempts;
  ++in_flight_;
  ++attempts_;
  return item;
}

absl::Time Endpoint::NextDue() const {
  if (disabled_ || in_flight_ >= config_.max_in_flight || due_.empty()) {
    return absl::InfiniteFuture();
  }
  return std::get<0>(*due_.begin());
}

absl::Duration Endpoint::Jittered(absl::Duration d) {
  if (d <= absl::ZeroDuration() || tuning_.jitter <= 0) return d;
  return d * absl::Uniform(rng_, 1.0 - tuning_.jitter, 1.0 + tuning_.jitter);
}

void Endpoint::FinishMain(Item* item, absl::Time now) {
  std::string key;
  std::deque<Position>* queue = QueueFor(*item, &key);
  if (queue != nullptr) {
    // Only a queue's front is ever sent, so the finished item is the front.
    if (!queue->empty() && queue->front() == item->position) queue->pop_front();
    if (queue->empty()) {
      queues_.erase(key);
    } else {
      auto next = pending_.find(queue->front());
      if (next != pending_.end()) Schedule(&next->second, now + config_.retry_schedule[0]);
    }
  }
  if (item->holding) --holding_;
  done_above_.insert(item->position);
  pending_.erase(item->position);
  cursor_dirty_ = true;
}

void Endpoint::PutDeadLetter(const Item& item, uint32_t attempts, const std::string& error,
                             bool replay, absl::Time now) {
  internal::WebhookDeadLetter record;
  record.set_event(item.event->SerializeAsString());
  record.set_attempts(attempts);
  record.set_last_error(error);
  record.set_dead_lettered_at_micros(absl::ToUnixMicros(now));
  record.set_replay_requested(replay);
  writes_.push_back({DeadLetterKey(item.position), record.SerializeAsString()});
}

void Endpoint::OnResult(Item* item, const AttemptResult& result, absl::Time now) {
  item->in_flight = false;
  --in_flight_;
  if (result.kind != AttemptResult::Kind::kDelivered) {
    last_error_ = result.error;
    last_error_time_ = now;
  }
  switch (result.kind) {
    case AttemptResult::Kind::kDelivered:
      ++delivered_;
      if (item->replay) {
        writes_.push_back({DeadLetterKey(item->position), std::nullopt});
        --dead_letters_;
        replays_.erase(item->position);
      } else {
        FinishMain(item, now);
      }
      return;
    case AttemptResult::Kind::kGone:
      // The receiver says the endpoint is gone for good: stop sending until an operator
      // enables it again; the event is sent again then (not counted as an attempt).
      HS_EVENT(WARNING, "webhook.endpoint.disabled")
          .Field("endpoint", config_.name)
          .Field("reason", result.error);
      disabled_ = true;
      disabled_reason_ = result.error;
      cursor_dirty_ = true;
      --item->attempts;
      Schedule(item, now);
      return;
    case AttemptResult::Kind::kFailed:
      break;
  }
  ++failures_;
  const size_t steps = config_.retry_schedule.size();
  if (item->attempts < steps) {
    absl::Duration delay = Jittered(config_.retry_schedule[item->attempts]);
    if (result.retry_after.has_value()) delay = std::max(delay, *result.retry_after);
    Schedule(item, now + delay);
    return;
  }
  if (item->replay) {
    // A replay exhausted again: back on the list, with the attempts of both rounds.
    PutDeadLetter(*item, item->attempts, result.error, false, now);
    replays_.erase(item->position);
    return;
  }
  if (config_.on_exhausted == OnExhausted::kDeadLetter) {
    PutDeadLetter(*item, item->attempts, result.error, false, now);
    ++dead_lettered_;
    ++dead_letters_;
    FinishMain(item, now);
    return;
  }
  // hold: the stream (fifo: the endpoint) waits; keep trying at the last step's pace.
  if (!item->holding) {
    item->holding = true;
    ++holding_;
  }
  absl::Duration delay = Jittered(config_.retry_schedule.back());
  if (result.retry_after.has_value()) delay = std::max(delay, *result.retry_after);
  Schedule(item, now + delay);
}

size_t Endpoint::Replay(std::vector<std::pair<Position, internal::WebhookDeadLetter>> records,
                        absl::Time now) {
  size_t queued = 0;
  for (auto& [position, record] : records) {
    ++queued;
    if (replays_.count(position) > 0) continue;  // Already under way.
    auto event = std::make_shared<v1::Event>();
    if (!event->ParseFromString(record.event())) {
      HS_EVENT(ERROR, "webhook.dead_letter_unreadable")
          .Field("endpoint", config_.name)
          .Field("position", position.value());
      --queued;
      continue;
    }
    Item& item = replays_[position];
    item.position = position;
    item.event = std::move(event);
    item.webhook_id = WebhookId(log_id_, position.value());
    item.replay = true;
    // Remembered durably, so that a restart continues the replay.
    if (!record.replay_requested()) {
      record.set_replay_requested(true);
      writes_.push_back({DeadLetterKey(position), record.SerializeAsString()});
    }
    Schedule(&item, now);
  }
  return queued;
}

void Endpoint::Enable() {
  if (!disabled_) return;
  disabled_ = false;
  disabled_reason_.clear();
  cursor_dirty_ = true;
}

Position Endpoint::Watermark() const {
  return pending_.empty() ? read_cursor_ : pending_.begin()->first.prev();
}

void Endpoint::TakeWrites(absl::Time now, std::vector<storage::MetaWrite>* out) {
  const Position through = Watermark();
  done_above_.erase(done_above_.begin(), done_above_.upper_bound(through));
  // A cursor that only moved over events the filter skipped costs a rescan if lost, never a
  // resend: write it lazily rather than syncing once per read.
  const bool idle_due =
      through != written_through_ && now - last_cursor_write_ >= tuning_.idle_cursor_interval;
  if (cursor_dirty_ || idle_due) {
    internal::WebhookCursor c;
    c.set_through(through.value());
    for (Position p : done_above_) c.add_done(p.value());
    c.set_disabled(disabled_);
    c.set_disabled_reason(disabled_reason_);
    out->push_back({absl::StrCat(key_prefix_, "cursor"), c.SerializeAsString()});
    cursor_dirty_ = false;
    written_through_ = through;
    last_cursor_write_ = now;
  }
  for (storage::MetaWrite& w : writes_) out->push_back(std::move(w));
  writes_.clear();
}

EndpointSnapshot Endpoint::Snapshot(Position head) const {
  EndpointSnapshot s;
  s.name = config_.name;
  s.url = config_.url;
  s.state = disabled_      ? EndpointSnapshot::State::kDisabled
            : holding_ > 0 ? EndpointSnapshot::State::kHolding
                           : EndpointSnapshot::State::kActive;
  s.disabled_reason = disabled_reason_;
  s.cursor = written_through_;
  s.backlog = pending_.size() + replays_.size() +
              (head > read_cursor_ ? head.value() - read_cursor_.value() : 0);
  s.in_flight = in_flight_;
  s.last_error = last_error_;
  s.last_error_time = last_error_time_;
  s.attempts = attempts_;
  s.failures = failures_;
  s.delivered = delivered_;
  s.dead_lettered = dead_lettered_;
  s.dead_letters = dead_letters_;
  return s;
}

}  // namespace hookstream::webhook
