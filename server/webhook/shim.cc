#include "server/webhook/shim.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
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

std::string DeadPrefix(absl::string_view key_prefix) { return absl::StrCat(key_prefix, "dead/"); }
std::string DeadPrefix(const Endpoint& ep) { return DeadPrefix(ep.key_prefix()); }

std::string LeaseHolderName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  absl::BitGen gen;
  return absl::StrFormat("%s:%d:%08x", host, getpid(), absl::Uniform<uint32_t>(gen));
}

}  // namespace

WebhookShim::WebhookShim(storage::Log* log, subscription::Hub* hub, WebhookOptions options)
    : log_(log),
      hub_(hub),
      options_(std::move(options)),
      holder_(LeaseHolderName()),
      lease_time_(log->lease_time()) {}

absl::StatusOr<std::unique_ptr<WebhookShim>> WebhookShim::Start(storage::Log* log,
                                                                subscription::Hub* hub,
                                                                WebhookOptions options) {
  std::unique_ptr<WebhookShim> shim(new WebhookShim(log, hub, std::move(options)));
  if (shim->options_.endpoints.empty()) return shim;
  size_t connections = 0;
  for (const EndpointConfig& config : shim->options_.endpoints) {
    connections += config.max_in_flight;
  }
  shim->endpoints_.resize(shim->options_.endpoints.size());
  shim->leases_.resize(shim->options_.endpoints.size());
  const absl::Time now = absl::Now();
  if (shim->lease_time_ == absl::InfiniteDuration()) {
    for (size_t i = 0; i < shim->endpoints_.size(); ++i) {
      if (absl::Status s = shim->Take(i, now); !s.ok()) return s;
    }
  } else if (absl::Status s = shim->KeepLeases(now, /*strict=*/true); !s.ok()) {
    return s;
  }
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

absl::Status WebhookShim::Take(size_t i, absl::Time now) {
  const EndpointConfig& config = options_.endpoints[i];
  auto ep = std::make_unique<Endpoint>(config, log_->log_id(), options_.tuning);
  const Position head = log_->head();
  absl::StatusOr<std::optional<std::string>> raw =
      log_->GetMeta(absl::StrCat(ep->key_prefix(), "cursor"));
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
    auto page = log_->ScanMeta(prefix, after, kScanPage);
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
      .Field("disabled_reason", cursor.has_value() ? cursor->disabled_reason() : "")
      .Field("holder", holder_);
  endpoints_[i] = std::move(ep);
  leases_[i].holder = holder_;
  return absl::OkStatus();
}

void WebhookShim::GiveUp(size_t i, absl::string_view reason) {
  std::unique_ptr<Endpoint>& ep = endpoints_[i];
  if (ep == nullptr) return;
  HS_EVENT(WARNING, "webhook.endpoint.given_up")
      .Field("endpoint", ep->config().name)
      .Field("holder", leases_[i].holder)
      .Field("reason", reason);
  if (ep->in_flight() > 0) retired_.push_back(std::move(ep));
  ep.reset();
}

absl::Status WebhookShim::KeepLeases(absl::Time now, bool strict) {
  if (lease_time_ == absl::InfiniteDuration()) return absl::OkStatus();
  // Not renewed for two thirds of lease_time: another server may take it after the full
  // lease_time, so stop now (a NATS outage, or renewals that keep failing).
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i] != nullptr && now - leases_[i].renewed > lease_time_ * 2 / 3) {
      GiveUp(i, "its lease was not renewed in time");
    }
  }
  if (now < next_lease_at_) return absl::OkStatus();
  next_lease_at_ = now + lease_time_ / 3;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const absl::Time asked = absl::Now();
    const std::string name = absl::StrCat(EndpointKeyPrefix(options_.endpoints[i].name), "lease");
    absl::StatusOr<std::string> holder = log_->HoldLease(name, holder_);
    if (!holder.ok()) {
      if (strict) return holder.status();
      HS_EVENT(ERROR, "webhook.lease_failed")
          .Field("endpoint", options_.endpoints[i].name)
          .Field("status", holder.status());
      continue;  // Given up above once it is too old.
    }
    leases_[i].holder = *holder;
    if (*holder != holder_) {
      GiveUp(i, "another server holds its lease");
      continue;
    }
    leases_[i].renewed = asked;
    if (endpoints_[i] == nullptr) {
      if (absl::Status s = Take(i, now); !s.ok()) {
        if (strict) return s;
        HS_EVENT(ERROR, "webhook.endpoint.take_failed")
            .Field("endpoint", options_.endpoints[i].name)
            .Field("status", s);
        // Let another server try: this one retries at the next renewal if the lease is free.
        (void)log_->ReleaseLease(name, holder_);
        leases_[i].holder.clear();
      }
    }
  }
  return absl::OkStatus();
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
    retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                  [](const auto& ep) { return ep->in_flight() == 0; }),
                   retired_.end());
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
    (void)KeepLeases(now, /*strict=*/false);  // Logs its failures and retries.
    now = absl::Now();
    ReadEvents(now);
    // Results are durable before anything that depends on them is sent.
    if (FlushWrites(now)) {
      for (auto& ep : endpoints_) {
        if (ep == nullptr) continue;
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
    for (auto& ep : endpoints_) {
      if (ep != nullptr) wake = std::min(wake, ep->NextDue());
    }
    if (!unwritten_.empty()) wake = std::min(wake, retry_write_at_);
    if (lease_time_ != absl::InfiniteDuration()) {
      wake = std::min(wake, next_lease_at_);
      for (size_t i = 0; i < endpoints_.size(); ++i) {  // When KeepLeases would give it up.
        if (endpoints_[i] != nullptr)
          wake = std::min(wake, leases_[i].renewed + lease_time_ * 2 / 3);
      }
    }
    const Position head = log_->head();
    // The hub hears of a commit just before readers see the log's new head: look again soon.
    if (notified_head_.load(std::memory_order_acquire) > head.value()) {
      wake = std::min(wake, now + absl::Milliseconds(1));
    }
    for (auto& ep : endpoints_) {
      if (ep != nullptr && ep->ReadRoom() > 0 && ep->read_cursor() < head) {
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
  // Another server takes over at once instead of after lease_time.
  for (size_t i = 0; i < endpoints_.size() && lease_time_ != absl::InfiniteDuration(); ++i) {
    if (endpoints_[i] == nullptr) continue;
    const std::string name = absl::StrCat(endpoints_[i]->key_prefix(), "lease");
    if (absl::Status s = log_->ReleaseLease(name, holder_); !s.ok()) {
      HS_EVENT(INFO, "webhook.lease_not_released")
          .Field("endpoint", options_.endpoints[i].name)
          .Field("status", s)
          .Field("reason", "it frees itself after lease_time");
    }
  }
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
    if (ep == nullptr) continue;
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
  for (auto& ep : endpoints_) {
    if (ep != nullptr) ep->TakeWrites(now, &unwritten_);
  }
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
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i] != nullptr) {
      snap.push_back(endpoints_[i]->Snapshot(head));
    } else {
      EndpointSnapshot standby;
      standby.name = options_.endpoints[i].name;
      standby.url = options_.endpoints[i].url;
      standby.state = EndpointSnapshot::State::kStandby;
      snap.push_back(std::move(standby));
    }
    snap.back().holder = leases_[i].holder;
  }
  absl::MutexLock l(&mu_);
  snapshot_.swap(snap);
}

std::vector<EndpointSnapshot> WebhookShim::Snapshot() const {
  absl::MutexLock l(&mu_);
  return snapshot_;
}

absl::StatusOr<size_t> WebhookShim::Find(const std::string& name) const {
  for (size_t i = 0; i < options_.endpoints.size(); ++i) {
    if (options_.endpoints[i].name == name) return i;
  }
  return absl::NotFoundError(absl::StrCat("no webhook endpoint \"", name, "\""));
}

absl::StatusOr<Endpoint*> WebhookShim::Held(size_t i) const {
  if (endpoints_[i] != nullptr) return endpoints_[i].get();
  return absl::FailedPreconditionError(absl::StrCat(
      "webhook endpoint \"", options_.endpoints[i].name, "\" is delivered by another server (",
      leases_[i].holder.empty() ? "none right now" : leases_[i].holder, "); ask that one"));
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
  absl::StatusOr<size_t> index = Find(request.endpoint());
  if (!index.ok()) return index.status();
  // Reads the shared metadata only: any server answers, whichever delivers the endpoint.
  const std::string key_prefix = EndpointKeyPrefix(options_.endpoints[*index].name);
  if (request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: at most 1000");
  }
  const size_t size = request.page_size() == 0 ? 100 : request.page_size();
  const std::string prefix = DeadPrefix(key_prefix);
  std::string after;
  if (!request.page_token().empty()) {
    uint64_t pos;
    if (!absl::SimpleAtoi(request.page_token(), &pos)) {
      return absl::InvalidArgumentError("page_token: not a token of this call");
    }
    after = DeadLetterKey(key_prefix, Position(pos));
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
  absl::StatusOr<size_t> index = Find(request.endpoint());
  if (!index.ok()) return index.status();
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
    absl::StatusOr<Endpoint*> held = Held(*index);
    if (!held.ok()) {
      status = held.status();
      return;
    }
    Endpoint* ep = *held;
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
  absl::StatusOr<size_t> index = Find(name);
  if (!index.ok()) return index.status();
  absl::Status status;
  absl::Status ran = RunOnLoop([&] {
    absl::StatusOr<Endpoint*> held = Held(*index);
    if (held.ok()) {
      (*held)->Enable();
    } else {
      status = held.status();
    }
  });
  return ran.ok() ? status : ran;
}

}  // namespace hookstream::webhook
