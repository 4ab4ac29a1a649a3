#include "server/webhook/shim.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "server/common/logging.h"
#include "server/webhook/request.h"

namespace hookstream::webhook {
namespace {

constexpr size_t kScanPage = 1000;
constexpr absl::Duration kStorageRetry = absl::Seconds(1);
// Longest a loop turn sleeps with nothing due (bounds how stale a snapshot gets).
constexpr absl::Duration kIdlePoll = absl::Seconds(1);

std::string DeadPrefix(const Endpoint& ep) { return absl::StrCat(ep.key_prefix(), "dead/"); }

}  // namespace

WebhookShim::WebhookShim(storage::Log* log, subscription::Hub* hub, WebhookOptions options)
    : log_(log), hub_(hub), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<WebhookShim>> WebhookShim::Start(storage::Log* log,
                                                                subscription::Hub* hub,
                                                                WebhookOptions options) {
  std::unique_ptr<WebhookShim> shim(new WebhookShim(log, hub, std::move(options)));
  size_t connections = 0;
  const Position head = log->head();
  const absl::Time now = absl::Now();
  for (const EndpointConfig& config : shim->options_.endpoints) {
    auto ep = std::make_unique<Endpoint>(config, log->log_id(), shim->options_.tuning);
    connections += config.max_in_flight;
    absl::StatusOr<std::optional<std::string>> raw =
        log->GetMeta(absl::StrCat(ep->key_prefix(), "cursor"));
    if (!raw.ok()) return raw.status();
    std::optional<internal::WebhookCursor> cursor;
    if (raw->has_value()) {
      cursor.emplace();
      if (!cursor->ParseFromString(**raw)) {
        return absl::DataLossError(absl::StrCat("webhook ", config.name, ": damaged cursor"));
      }
    }
    // Count the dead letters; pick up replays a restart interrupted.
    uint64_t dead = 0;
    std::vector<std::pair<Position, internal::WebhookDeadLetter>> replays;
    std::string after;
    const std::string prefix = DeadPrefix(*ep);
    while (true) {
      auto page = log->ScanMeta(prefix, after, kScanPage);
      if (!page.ok()) return page.status();
      for (auto& [key, value] : *page) {
        ++dead;
        internal::WebhookDeadLetter record;
        uint64_t pos = 0;
        if (record.ParseFromString(value) && record.replay_requested() &&
            absl::SimpleAtoi(absl::string_view(key).substr(prefix.size()), &pos)) {
          replays.emplace_back(Position(pos), std::move(record));
        }
      }
      if (page->size() < kScanPage) break;
      after = page->back().first;
    }
    ep->Restore(cursor, head, dead);
    if (!replays.empty()) ep->Replay(std::move(replays), now);
    HS_EVENT(INFO, "webhook.endpoint.started")
        .Field("endpoint", config.name)
        .Field("format", FormatName(config.format))
        .Field("url", config.url)
        .Field("ordering", OrderingName(config.ordering))
        .Field("from_position", ep->read_cursor().value())
        .Field("disabled", cursor.has_value() && cursor->disabled())
        .Field("disabled_reason", cursor.has_value() ? cursor->disabled_reason() : "");
    shim->endpoints_.push_back(std::move(ep));
  }
  if (shim->endpoints_.empty()) return shim;
  absl::StatusOr<std::unique_ptr<CurlMulti>> curl = CurlMulti::Create(connections);
  if (!curl.ok()) return curl.status();
  shim->curl_ = *std::move(curl);
  WebhookShim* self = shim.get();
  hub->SetCommitObserver([self](Position head) {
    self->notified_head_.store(head.value(), std::memory_order_release);
    self->curl_->Wakeup();
  });
  shim->PublishSnapshot();
  shim->thread_ = std::thread([s = shim.get()] { s->Loop(); });
  return shim;
}

WebhookShim::~WebhookShim() { Stop(); }

void WebhookShim::Stop() {
  if (!thread_.joinable()) return;
  // No wake-up starts after this returns, so the multi handle can go.
  hub_->SetCommitObserver(nullptr);
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  curl_->Wakeup();
  thread_.join();
  curl_.reset();
}

void WebhookShim::Loop() {
  std::vector<CurlMulti::Completion> done;
  absl::flat_hash_map<const Endpoint::Item*, Endpoint*> owner;
  auto take_results = [&](absl::Time now) {
    for (CurlMulti::Completion& c : done) {
      auto* item = static_cast<Endpoint::Item*>(c.tag);
      auto it = owner.find(item);
      Endpoint* ep = it->second;
      owner.erase(it);
      ep->OnResult(item, c.result, now);
    }
    done.clear();
  };
  while (true) {
    std::vector<std::function<void()>> commands;
    {
      absl::MutexLock l(&mu_);
      if (stop_) break;
      commands.swap(commands_);
    }
    for (auto& c : commands) c();

    // `done` may already hold completions from the previous turn's second Perform.
    curl_->Perform(&done);
    absl::Time now = absl::Now();
    take_results(now);
    ReadEvents(now);
    // Results are durable before anything that depends on them is sent.
    if (FlushWrites(now)) {
      for (auto& ep : endpoints_) {
        while (Endpoint::Item* item = ep->NextReady(now)) {
          owner[item] = ep.get();
          curl_->Start(BuildRequest(ep->config(), *item->event, item->webhook_id,
                                    absl::ToUnixSeconds(now), item->attempts),
                       ep->config().timeout, item);
        }
      }
      curl_->Perform(&done);  // Gets new requests going; completions are taken next turn.
    }
    PublishSnapshot();

    absl::Time wake = now + kIdlePoll;
    for (auto& ep : endpoints_) wake = std::min(wake, ep->NextDue());
    if (!unwritten_.empty()) wake = std::min(wake, retry_write_at_);
    const Position head = log_->head();
    // The hub hears of a commit just before readers see the log's new head: look again soon.
    if (notified_head_.load(std::memory_order_acquire) > head.value()) {
      wake = std::min(wake, now + absl::Milliseconds(1));
    }
    for (auto& ep : endpoints_) {
      if (ep->ReadRoom() > 0 && ep->read_cursor() < head) {
        wake = std::min(wake, read_retry_at_);
      }
    }
    if (!done.empty()) wake = now;  // Completions arrived with the last Perform.
    // Also returns early on network activity and on Wakeup (commits, admin calls, Stop).
    curl_->Poll(wake - absl::Now());
  }
  // Requests still in flight are abandoned with the multi handle (sent again after a restart);
  // those that finished by now are recorded, so a drain resends as little as it can.
  curl_->Perform(&done);
  take_results(absl::Now());
  retry_write_at_ = absl::InfinitePast();
  FlushWrites(absl::Now());
  std::vector<std::function<void()>> left;
  {
    absl::MutexLock l(&mu_);
    loop_done_ = true;
    left.swap(commands_);
  }
  for (auto& c : left) c();  // RunOnLoop callers see loop_done_ and return UNAVAILABLE.
}

void WebhookShim::ReadEvents(absl::Time now) {
  if (now < read_retry_at_) return;
  const Position head = log_->head();
  for (auto& ep : endpoints_) {
    const size_t room = ep->ReadRoom();
    if (room == 0 || ep->read_cursor() >= head) continue;
    if (log_->trimmed_through() > ep->read_cursor()) {
      // Retention deleted events before they were delivered: say so, and go on from what is
      // left (the log has nothing else to send).
      HS_EVENT(ERROR, "webhook.events_expired")
          .Field("endpoint", ep->config().name)
          .Field("after_position", ep->read_cursor().value())
          .Field("trimmed_through", log_->trimmed_through().value())
          .Field("reason", "retention deleted events before they were delivered");
    }
    storage::ReadLimits limits;
    limits.max_events = room;
    limits.max_bytes = options_.read_bytes;
    const subscription::Filter& filter = ep->config().filter;
    absl::StatusOr<storage::ReadChunk> chunk = log_->Read(
        ep->read_cursor(), limits,
        [&filter](absl::string_view s, absl::string_view t) { return filter.Matches(s, t); });
    if (!chunk.ok()) {
      HS_EVENT(ERROR, "webhook.read_failed")
          .Field("endpoint", ep->config().name)
          .Field("status", chunk.status());
      read_retry_at_ = now + kStorageRetry;
      return;
    }
    ep->AddEvents(chunk->events, chunk->scanned_through, now);
  }
  read_retry_at_ = absl::InfinitePast();
}

bool WebhookShim::FlushWrites(absl::Time now) {
  for (auto& ep : endpoints_) ep->TakeWrites(now, &unwritten_);
  if (unwritten_.empty()) return true;
  if (now < retry_write_at_) return false;
  if (absl::Status s = log_->WriteMeta(unwritten_); !s.ok()) {
    // Nothing new is sent until the results so far are durable.
    HS_EVENT(ERROR, "webhook.cursor_write_failed").Field("status", s);
    retry_write_at_ = now + kStorageRetry;
    return false;
  }
  unwritten_.clear();
  retry_write_at_ = absl::InfinitePast();
  return true;
}

void WebhookShim::PublishSnapshot() {
  const Position head = log_->head();
  std::vector<EndpointSnapshot> snap;
  snap.reserve(endpoints_.size());
  for (auto& ep : endpoints_) snap.push_back(ep->Snapshot(head));
  absl::MutexLock l(&mu_);
  snapshot_.swap(snap);
}

std::vector<EndpointSnapshot> WebhookShim::Snapshot() const {
  absl::MutexLock l(&mu_);
  return snapshot_;
}

Endpoint* WebhookShim::Find(const std::string& name) const {
  for (auto& ep : endpoints_) {
    if (ep->config().name == name) return ep.get();
  }
  return nullptr;
}

absl::Status WebhookShim::RunOnLoop(std::function<void()> fn) {
  if (curl_ == nullptr) return absl::UnavailableError("the webhook shim is not running");
  auto ran = std::make_shared<absl::Notification>();
  auto ok = std::make_shared<bool>(false);
  {
    absl::MutexLock l(&mu_);
    if (loop_done_) return absl::UnavailableError("the webhook shim is stopping");
    commands_.push_back([this, fn = std::move(fn), ran, ok] {
      bool running;
      {
        absl::MutexLock l(&mu_);
        running = !loop_done_;
      }
      if (running) {
        fn();
        *ok = true;
      }
      ran->Notify();
    });
  }
  curl_->Wakeup();
  ran->WaitForNotification();
  return *ok ? absl::OkStatus() : absl::UnavailableError("the webhook shim is stopping");
}

absl::StatusOr<v1::ListDeadLettersResponse> WebhookShim::ListDeadLetters(
    const v1::ListDeadLettersRequest& request) const {
  const Endpoint* ep = Find(request.endpoint());
  if (ep == nullptr) {
    return absl::NotFoundError(absl::StrCat("no webhook endpoint \"", request.endpoint(), "\""));
  }
  if (request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: at most 1000");
  }
  const size_t size = request.page_size() == 0 ? 100 : request.page_size();
  const std::string prefix = DeadPrefix(*ep);
  std::string after;
  if (!request.page_token().empty()) {
    uint64_t pos;
    if (!absl::SimpleAtoi(request.page_token(), &pos)) {
      return absl::InvalidArgumentError("page_token: not a token of this call");
    }
    after = ep->DeadLetterKey(Position(pos));
  }
  auto page = log_->ScanMeta(prefix, after, size + 1);
  if (!page.ok()) return page.status();
  v1::ListDeadLettersResponse out;
  for (size_t i = 0; i < page->size() && i < size; ++i) {
    const auto& [key, value] = (*page)[i];
    internal::WebhookDeadLetter record;
    v1::Event event;
    uint64_t pos = 0;
    if (!record.ParseFromString(value) || !event.ParseFromString(record.event()) ||
        !absl::SimpleAtoi(absl::string_view(key).substr(prefix.size()), &pos)) {
      return absl::DataLossError(absl::StrCat("damaged dead letter ", key));
    }
    v1::DeadLetter* d = out.add_dead_letters();
    d->set_id(absl::StrCat(pos));
    d->set_position(pos);
    d->set_stream(event.stream());
    d->set_seq(event.seq());
    d->set_type(event.type());
    d->set_event_id(event.id());
    d->set_webhook_id(WebhookId(log_->log_id(), pos));
    d->set_attempts(record.attempts());
    d->set_last_error(record.last_error());
    const absl::Time at = absl::FromUnixMicros(record.dead_lettered_at_micros());
    d->mutable_dead_lettered_at()->set_seconds(absl::ToUnixSeconds(at));
    d->mutable_dead_lettered_at()->set_nanos(static_cast<int32_t>(
        (at - absl::FromUnixSeconds(absl::ToUnixSeconds(at))) / absl::Nanoseconds(1)));
    d->set_replaying(record.replay_requested());
  }
  if (page->size() > size) out.set_next_page_token(out.dead_letters().rbegin()->id());
  return out;
}

absl::StatusOr<v1::ReplayDeadLettersResponse> WebhookShim::ReplayDeadLetters(
    const v1::ReplayDeadLettersRequest& request) {
  Endpoint* ep = Find(request.endpoint());
  if (ep == nullptr) {
    return absl::NotFoundError(absl::StrCat("no webhook endpoint \"", request.endpoint(), "\""));
  }
  if (request.all() == (request.ids_size() > 0)) {
    return absl::InvalidArgumentError("give either ids or all");
  }
  std::vector<Position> ids;
  for (int i = 0; i < request.ids_size(); ++i) {
    uint64_t pos;
    if (!absl::SimpleAtoi(request.ids(i), &pos) || pos == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", i, "]: \"", request.ids(i), "\" is not a dead-letter id"));
    }
    ids.push_back(Position(pos));
  }
  v1::ReplayDeadLettersResponse out;
  absl::Status status;
  // Read and queue on the loop thread: the loop also rewrites and deletes these records.
  absl::Status ran = RunOnLoop([&] {
    std::vector<std::pair<Position, internal::WebhookDeadLetter>> records;
    auto add = [&](Position pos, const std::string& value) {
      internal::WebhookDeadLetter record;
      if (record.ParseFromString(value)) records.emplace_back(pos, std::move(record));
    };
    const std::string prefix = DeadPrefix(*ep);
    if (request.all()) {
      std::string after;
      while (true) {
        auto page = log_->ScanMeta(prefix, after, kScanPage);
        if (!page.ok()) {
          status = page.status();
          return;
        }
        for (auto& [key, value] : *page) {
          uint64_t pos = 0;
          if (absl::SimpleAtoi(absl::string_view(key).substr(prefix.size()), &pos)) {
            add(Position(pos), value);
          }
        }
        if (page->size() < kScanPage) break;
        after = page->back().first;
      }
    } else {
      for (Position pos : ids) {
        auto value = log_->GetMeta(ep->DeadLetterKey(pos));
        if (!value.ok()) {
          status = value.status();
          return;
        }
        if (!value->has_value()) {
          out.add_not_found(absl::StrCat(pos.value()));
        } else {
          add(pos, **value);
        }
      }
    }
    out.set_replayed(ep->Replay(std::move(records), absl::Now()));
  });
  if (!ran.ok()) return ran;
  if (!status.ok()) return status;
  return out;
}

absl::Status WebhookShim::EnableEndpoint(const std::string& name) {
  Endpoint* ep = Find(name);
  if (ep == nullptr) return absl::NotFoundError(absl::StrCat("no webhook endpoint \"", name, "\""));
  return RunOnLoop([ep] { ep->Enable(); });
}

}  // namespace hookstream::webhook
