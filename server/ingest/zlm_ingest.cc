#include "server/ingest/zlm_ingest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/timestamp.pb.h"
#include "server/common/logging.h"
#include "server/ingest/hooks.h"
#include "server/ingest/replies.h"
#include "server/ingest/restore.h"

namespace hookstream::ingest {

// The answer to one hook request; shared by its item, the dedup waiters and the deadline queue.
// Whoever answers first wins (the Responder ignores later answers).
struct ZlmIngest::ReplySlot {
  http::Responder responder;
  HookReplies replies;

  bool Send(const std::string& body) const {
    http::Response r;
    r.body = body;
    return responder.Send(std::move(r));
  }
  bool Stored() const { return Send(replies.stored); }
  bool Failed() const { return Send(replies.storage_failed); }
};

struct ZlmIngest::Item {
  enum class Kind { kHook, kBoot, kLost };
  Kind kind = Kind::kHook;
  // kHook
  ParsedHook hook;
  std::shared_ptr<ReplySlot> slot;
  absl::Time arrived;
  bool late = false;
  // kBoot
  uint64_t boot = 0;
  std::string detected_by;
};

struct ZlmIngest::DedupEntry {
  absl::Time first_seen;
  bool durable = false;
  // Retries that came while the original was being stored: answered with it.
  std::vector<std::shared_ptr<ReplySlot>> waiters;
};

struct ZlmIngest::Server {
  explicit Server(const ZlmOptions& o) : reorder(o.reorder_window, o.late_tolerance) {}

  // Processing side: the state as of the batches built so far.
  ServerState state;
  absl::Time last_snapshot = absl::InfinitePast();
  bool in_flight = false;
  std::deque<Item> ready;  // Released in order, not yet in a batch.

  // Arrival side: boots and order as hooks come in.
  uint64_t arrival_boot = 0;
  bool arrival_has_start = false;
  std::string arrival_start_hash;
  uint64_t arrival_start_index = 0;
  uint64_t arrival_min_index = UINT64_MAX;            // Lowest hook_index seen in this boot.
  absl::Time arrival_boot_at = absl::InfinitePast();  // When this boot was noticed.
  bool keepalive_armed = false;
  absl::Time last_keepalive = absl::InfinitePast();
  bool lost_queued = false;
  ReorderBuffer<Item> reorder;
  absl::Time late_logged_at = absl::InfinitePast();
  uint64_t late_unlogged = 0;

  absl::flat_hash_map<std::string, DedupEntry> dedup;          // "<boot>:<hash>"
  std::deque<std::pair<absl::Time, std::string>> dedup_order;  // Insertion (time) order.
};

struct ZlmIngest::Batch {
  Server* server = nullptr;
  std::vector<v1::EventInput> events;
  std::vector<std::shared_ptr<ReplySlot>> slots;  // Answered when the batch is durable.
  std::vector<std::string> dedup_keys;            // Entries this batch created.
  std::vector<Item> boots;                        // Boot markers, re-queued on failure.
  ServerState undo;                               // The state before the batch.
  absl::Time undo_last_snapshot;
};

struct ZlmIngest::Outbox {
  std::vector<std::unique_ptr<Batch>> batches;
  std::vector<std::pair<std::shared_ptr<ReplySlot>, bool>> replies;  // (slot, stored?)
};

namespace {

constexpr size_t kMaxBatchItems = 512;

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t ns = absl::ToUnixNanos(t);
  ts.set_seconds(ns / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  if (ts.nanos() < 0) {
    ts.set_seconds(ts.seconds() - 1);
    ts.set_nanos(ts.nanos() + 1'000'000'000);
  }
  return ts;
}

// Constant time, and no length leak: compares digests.
bool TokenEquals(absl::string_view a, absl::string_view b) {
  unsigned char da[EVP_MAX_MD_SIZE];
  unsigned char db[EVP_MAX_MD_SIZE];
  unsigned int la = 0;
  unsigned int lb = 0;
  EVP_Digest(a.data(), a.size(), da, &la, EVP_sha256(), nullptr);
  EVP_Digest(b.data(), b.size(), db, &lb, EVP_sha256(), nullptr);
  return la == lb && CRYPTO_memcmp(da, db, la) == 0;
}

http::Response Reject(int status, absl::string_view msg) {
  return http::JsonError(status, status, msg);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZlmIngest>> ZlmIngest::Start(storage::Log* log, ZlmOptions options) {
  std::unique_ptr<ZlmIngest> ingest(new ZlmIngest(log, std::move(options)));
  const ZlmOptions& o = ingest->options_;
  const absl::Time now = o.clock->Now();
  Restored restored;
  if (absl::Status s = RestoreFromLog(*log, o, now, &restored); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("zlm ingest: restoring state: ", s.message()));
  }
  {
    absl::MutexLock l(&ingest->mu_);
    size_t online = 0;
    for (auto& [id, r] : restored.servers) {
      auto srv = std::make_unique<Server>(o);
      srv->state = std::move(r.state);
      srv->last_snapshot = r.snapshot_time;
      srv->arrival_boot = srv->state.boot;
      srv->arrival_has_start = srv->state.boot_has_start;
      srv->arrival_start_hash = srv->state.boot_start_hash;
      srv->arrival_start_index = srv->state.boot_start_index;
      srv->arrival_min_index = srv->state.boot_has_start ? srv->state.boot_start_index : 0;
      // Keepalives missed while hookstream was down are not the media server's fault: a full
      // timeout from now.
      srv->keepalive_armed = srv->state.keepalive_armed && !srv->state.lost;
      srv->last_keepalive = now;
      srv->state.last_keepalive = now;
      if (srv->state.has_last_index) srv->reorder.AnchorAfter(srv->state.last_index);
      online += srv->state.online.size();
      ingest->servers_.emplace(id, std::move(srv));
    }
    for (const RestoredDedup& d : restored.dedup) {
      auto it = ingest->servers_.find(d.server_id);
      if (it == ingest->servers_.end()) continue;
      Server& srv = *it->second;
      auto [e, inserted] = srv.dedup.try_emplace(d.key);
      if (!inserted) continue;
      e->second.first_seen = d.first_seen;
      e->second.durable = true;
      srv.dedup_order.emplace_back(d.first_seen, d.key);
    }
    if (!restored.servers.empty()) {
      HS_EVENT(INFO, "zlm.restored")
          .Field("media_servers", restored.servers.size())
          .Field("streams_online", online)
          .Field("recent_hooks", restored.dedup.size());
    }
  }
  ingest->timer_ = std::thread([p = ingest.get()] { p->TimerLoop(); });
  return ingest;
}

ZlmIngest::ZlmIngest(storage::Log* log, ZlmOptions options)
    : log_(log), options_(std::move(options)) {}

ZlmIngest::~ZlmIngest() { Stop(); }

size_t ZlmIngest::ServerCount() {
  absl::MutexLock l(&mu_);
  return servers_.size();
}

size_t ZlmIngest::HeldHooks() {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [id, srv] : servers_) n += srv->reorder.size();
  return n;
}

void ZlmIngest::HandleHook(http::Request request, http::Responder responder) {
  auto reject = [&](int status, absl::string_view msg) {
    // request.path has no query string: the ?token= never reaches the log.
    HS_EVENT(WARNING, "zlm.hook.rejected")
        .Field("method", request.method)
        .Field("path", request.path)
        .Field("status", status)
        .Field("reason", msg);
    responder.Send(Reject(status, msg));
  };
  const absl::string_view name =
      absl::string_view(request.path)
          .substr(std::min(request.path.size(), sizeof(kHookPathPrefix) - 1));
  const HookSpec* spec = FindHook(name);
  if (spec == nullptr) {
    return reject(404, absl::StrCat("unknown hook \"", name,
                                    "\"; hookstream takes ZLMediaKit's 17 hooks at "
                                    "/index/hook/on_publish, /index/hook/on_play, ..."));
  }
  if (request.method != "POST") {
    return reject(405, absl::StrCat(spec->name, ": use POST, not ", request.method));
  }
  absl::StatusOr<ParsedHook> hook = ParseHookBody(*spec, request.body, request.Header("X-VHOST"));
  if (!hook.ok()) return reject(400, hook.status().message());
  if (!options_.tokens.empty()) {
    auto it = options_.tokens.find(hook->server_id);
    if (it == options_.tokens.end()) it = options_.tokens.find("*");
    const std::string* token = request.QueryArg("token");
    if (it == options_.tokens.end()) {
      return reject(
          401, absl::StrCat("media server \"", hook->server_id, "\" has no token in zlm.tokens"));
    }
    if (token == nullptr) {
      return reject(401, "missing ?token= in the hook URL (zlm.tokens is set)");
    }
    if (!TokenEquals(*token, it->second)) {
      return reject(401, absl::StrCat("wrong token for media server \"", hook->server_id, "\""));
    }
  }
  // The stored event is the body plus names and attributes: refuse what the log would.
  const size_t approx_bytes = hook->data.size() + hook->stream.size() + 2 * hook->server_id.size() +
                              spec->name.size() + 256;
  if (approx_bytes > options_.max_event_bytes) {
    return reject(413, absl::StrCat(spec->name, ": the event would be ", approx_bytes,
                                    " bytes, more than limits.max_event_bytes (",
                                    options_.max_event_bytes, ")"));
  }

  auto slot = std::make_shared<ReplySlot>();
  slot->replies = RepliesFor(*hook, options_);
  slot->responder = std::move(responder);
  Outbox out;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      http::Response r = Reject(503, "hookstream is draining; retry");
      r.close_connection = true;
      slot->responder.Send(std::move(r));
      return;
    }
    Arrive(*std::move(hook), std::move(slot), &out);
  }
  Deliver(&out);
}

void ZlmIngest::Deliver(Outbox* out) {
  size_t timed_out = 0;
  for (auto& [slot, stored] : out->replies) {
    if (stored) {
      slot->Stored();
    } else if (slot->Failed()) {
      ++timed_out;
    }
  }
  if (timed_out > 0) {
    HS_EVENT(WARNING, "zlm.hooks.not_stored")
        .Field("hooks", timed_out)
        .Field("storage_timeout", options_.storage_timeout)
        .Field("reason", "storage failed or slower than zlm.storage_timeout: answered per "
                         "zlm.policy.on_storage_failure");
  }
  out->replies.clear();
  for (auto& b : out->batches) {
    Batch* raw = b.release();
    std::vector<v1::EventInput> events = std::move(raw->events);
    log_->Append(std::move(events), [this, raw](absl::StatusOr<v1::PublishResponse> r) {
      OnAppended(std::unique_ptr<Batch>(raw), std::move(r));
    });
  }
  out->batches.clear();
}

ZlmIngest::Server* ZlmIngest::FindOrAddServer(const std::string& id) {
  auto it = servers_.find(id);
  if (it != servers_.end()) return it->second.get();
  if (servers_.size() >= options_.max_servers) return nullptr;
  auto srv = std::make_unique<Server>(options_);
  srv->state.server_id = id;
  Server* raw = srv.get();
  servers_.emplace(id, std::move(srv));
  return raw;
}

void ZlmIngest::NewArrivalBoot(Server& srv, absl::string_view detected_by,
                               std::vector<Item>* flushed) {
  // What the old boot still holds goes first, in order; then the boot marker.
  srv.reorder.ReleaseAll(flushed);
  ++srv.arrival_boot;
  Item marker;
  marker.kind = Item::Kind::kBoot;
  marker.boot = srv.arrival_boot;
  marker.detected_by = std::string(detected_by);
  flushed->push_back(std::move(marker));
  srv.reorder.Reset();
  srv.arrival_boot_at = options_.clock->Now();
  srv.arrival_min_index = UINT64_MAX;
  srv.arrival_has_start = false;
  srv.arrival_start_hash.clear();
  srv.arrival_start_index = 0;
  srv.keepalive_armed = false;
  srv.lost_queued = false;
}

void ZlmIngest::Arrive(ParsedHook hook, std::shared_ptr<ReplySlot> slot, Outbox* out) {
  const absl::Time now = options_.clock->Now();
  Server* found = FindOrAddServer(hook.server_id);
  if (found == nullptr) {
    slot->responder.Send(Reject(503, absl::StrCat("too many media servers (zlm.max_servers = ",
                                                  options_.max_servers, ")")));
    return;
  }
  Server& srv = *found;
  deadlines_.emplace_back(now + options_.storage_timeout, slot);

  const HookId id = hook.spec->id;
  if (id == HookId::kOnServerKeepalive) {
    srv.keepalive_armed = true;
    srv.last_keepalive = now;
  } else if (id == HookId::kOnServerExited) {
    srv.keepalive_armed = false;
  }

  Item item;
  item.kind = Item::Kind::kHook;
  item.slot = std::move(slot);
  item.arrived = now;
  std::vector<Item> released;
  if (srv.arrival_boot == 0) {
    NewArrivalBoot(srv, "first_contact", &released);  // No server_restarted: nothing before.
  }
  if (!hook.hook_index.has_value()) {
    // Old ZLMediaKit versions number nothing: arrival order is all there is.
    item.hook = std::move(hook);
    released.push_back(std::move(item));
  } else {
    const uint64_t index = *hook.hook_index;
    bool new_boot = false;
    absl::string_view detected_by = kBootByIndex;
    bool adopt = false;
    if (id == HookId::kOnServerStarted) {
      const bool retry = srv.arrival_has_start && hook.content_hash == srv.arrival_start_hash &&
                         index > srv.arrival_start_index;
      // The start of the boot we are already in (noticed by its index reset, before this
      // on_server_started arrived).
      adopt = !retry && !srv.arrival_has_start && index <= srv.arrival_min_index &&
              now - srv.arrival_boot_at <= options_.late_tolerance;
      if (!retry && !adopt) {
        new_boot = true;
        detected_by = kBootByStarted;
      }
      if (!retry) {
        srv.arrival_has_start = true;
        srv.arrival_start_hash = hook.content_hash;
        srv.arrival_start_index = index;
      }
    }
    ReorderBuffer<Item>::Verdict verdict = ReorderBuffer<Item>::Verdict::kHold;
    if (!new_boot) {
      verdict = srv.reorder.Classify(index, now);
      if (verdict == ReorderBuffer<Item>::Verdict::kNewBoot && adopt) {
        verdict = ReorderBuffer<Item>::Verdict::kLate;
      }
      if (verdict == ReorderBuffer<Item>::Verdict::kNewBoot) new_boot = true;
    }
    if (new_boot) {
      const bool started = id == HookId::kOnServerStarted;
      NewArrivalBoot(srv, detected_by, &released);
      if (started) {
        srv.arrival_has_start = true;
        srv.arrival_start_hash = hook.content_hash;
        srv.arrival_start_index = index;
      }
      srv.arrival_min_index = index;
      if (id == HookId::kOnServerKeepalive) {
        srv.keepalive_armed = true;
        srv.last_keepalive = now;
      }
      verdict = ReorderBuffer<Item>::Verdict::kHold;
    }
    srv.arrival_min_index = std::min(srv.arrival_min_index, index);
    item.hook = std::move(hook);
    if (verdict == ReorderBuffer<Item>::Verdict::kLate) {
      // At most one line a second per server: an overloaded host makes many late at once.
      ++srv.late_unlogged;
      if (now - srv.late_logged_at >= absl::Seconds(1)) {
        HS_EVENT(WARNING, "zlm.hooks.late")
            .Field("hooks", srv.late_unlogged)
            .Field("media_server", item.hook.server_id)
            .Field("latest_hook", item.hook.spec->name)
            .Field("latest_hook_index", index)
            .Field("reason", "after their reorder window: stored out of order, marked zlm.late");
        srv.late_logged_at = now;
        srv.late_unlogged = 0;
      }
      item.late = true;
      released.push_back(std::move(item));
    } else {
      srv.reorder.Add(index, std::move(item), now);
    }
  }
  srv.reorder.Release(now, &released);
  for (Item& i : released) srv.ready.push_back(std::move(i));
  if (!srv.reorder.empty()) {
    holding_.insert(&srv);
    wake_ = true;  // The timer thread must see the new deadline.
  } else {
    holding_.erase(&srv);
  }
  Kick(srv, out);
}

void ZlmIngest::Kick(Server& srv, Outbox* out) {
  if (srv.in_flight || srv.ready.empty()) return;
  const absl::Time now = options_.clock->Now();
  auto batch = std::make_unique<Batch>();
  batch->server = &srv;
  batch->undo = srv.state;
  batch->undo_last_snapshot = srv.last_snapshot;
  ServerState& st = srv.state;
  bool state_changed = false;

  auto add_derived = [&](const std::vector<DerivedEvent>& derived, absl::string_view from) {
    for (const DerivedEvent& d : derived) {
      v1::EventInput e;
      e.set_stream(d.stream);
      e.set_type(d.type);
      e.set_source(st.server_id);
      e.set_content_type("application/json");
      e.set_data(d.data);
      *e.mutable_time() = ToProto(now);
      (*e.mutable_attributes())[kAttrServer] = st.server_id;
      (*e.mutable_attributes())[kAttrBoot] = absl::StrCat(st.boot);
      if (!from.empty()) (*e.mutable_attributes())[kAttrDerivedFrom] = std::string(from);
      batch->events.push_back(std::move(e));
    }
  };

  size_t taken = 0;
  while (!srv.ready.empty() && taken < kMaxBatchItems) {
    Item item = std::move(srv.ready.front());
    srv.ready.pop_front();
    ++taken;
    switch (item.kind) {
      case Item::Kind::kBoot: {
        Transition t = BeginBoot(st, item.boot, item.detected_by, now);
        add_derived(t.before, "");
        add_derived(t.after, "");
        state_changed = true;
        batch->boots.push_back(std::move(item));
        break;
      }
      case Item::Kind::kLost: {
        srv.lost_queued = false;
        const absl::Duration timeout = KeepaliveTimeout(st, options_.keepalive_timeout);
        if (!KeepaliveExpired(st, now, timeout)) break;
        HS_EVENT(WARNING, "zlm.server.lost")
            .Field("media_server", st.server_id)
            .Field("no_keepalive_for", now - st.last_keepalive);
        Transition t = MarkLost(st, now, timeout);
        add_derived(t.after, "");
        state_changed = true;
        break;
      }
      case Item::Kind::kHook: {
        const ParsedHook& h = item.hook;
        const std::string key = absl::StrCat(st.boot, ":", h.content_hash);
        if (h.spec->dedup) {
          auto it = srv.dedup.find(key);
          if (it != srv.dedup.end() &&
              it->second.first_seen + options_.dedup_window > item.arrived) {
            // A retry: nothing stored, the original's answer.
            if (h.hook_index.has_value() && (!st.has_last_index || *h.hook_index > st.last_index)) {
              st.has_last_index = true;
              st.last_index = *h.hook_index;
            }
            if (it->second.durable) {
              out->replies.emplace_back(item.slot, true);
            } else {
              it->second.waiters.push_back(item.slot);
            }
            break;
          }
        }
        Transition t = ApplyHook(st, h, now);
        state_changed |= t.state_changed;
        add_derived(t.before, h.spec->name);
        v1::EventInput e;
        e.set_id(absl::StrCat(h.content_hash, ".", st.boot, ".",
                              h.hook_index.has_value()
                                  ? absl::StrCat(*h.hook_index)
                                  : absl::StrCat("t", absl::ToUnixMicros(item.arrived))));
        e.set_stream(h.stream);
        e.set_type(absl::StrCat("zlm.", h.spec->name));
        e.set_source(h.server_id);
        e.set_content_type("application/json");
        e.set_data(h.data);
        *e.mutable_time() = ToProto(item.arrived);
        auto& attrs = *e.mutable_attributes();
        attrs[kAttrHook] = std::string(h.spec->name);
        if (h.hook_index.has_value()) attrs[kAttrHookIndex] = absl::StrCat(*h.hook_index);
        attrs[kAttrServer] = h.server_id;
        attrs[kAttrBoot] = absl::StrCat(st.boot);
        if (item.late) attrs[kAttrLate] = "true";
        batch->events.push_back(std::move(e));
        add_derived(t.after, h.spec->name);
        if (h.spec->dedup) {
          auto [it, inserted] = srv.dedup.insert_or_assign(key, DedupEntry{});
          it->second.first_seen = item.arrived;
          srv.dedup_order.emplace_back(item.arrived, key);
          batch->dedup_keys.push_back(key);
        }
        batch->slots.push_back(item.slot);
        break;
      }
    }
  }
  if (batch->events.empty()) return;  // Only retries and stale markers.
  if (state_changed || now - srv.last_snapshot >= options_.snapshot_interval) {
    v1::EventInput snap;
    snap.set_stream(SnapshotStream(st.server_id));
    snap.set_type("zlm.state");
    snap.set_source(st.server_id);
    snap.set_content_type("application/json");
    snap.set_data(EncodeSnapshot(st));
    *snap.mutable_time() = ToProto(now);
    (*snap.mutable_attributes())[kAttrServer] = st.server_id;
    (*snap.mutable_attributes())[kAttrBoot] = absl::StrCat(st.boot);
    batch->events.push_back(std::move(snap));
    srv.last_snapshot = now;
  }
  srv.in_flight = true;
  out->batches.push_back(std::move(batch));
}

void ZlmIngest::OnAppended(std::unique_ptr<Batch> batch,
                           absl::StatusOr<v1::PublishResponse> result) {
  Outbox out;
  {
    absl::MutexLock l(&mu_);
    Server& srv = *batch->server;
    srv.in_flight = false;
    if (result.ok()) {
      for (const std::string& key : batch->dedup_keys) {
        auto it = srv.dedup.find(key);
        if (it == srv.dedup.end()) continue;
        it->second.durable = true;
        for (auto& w : it->second.waiters) out.replies.emplace_back(std::move(w), true);
        it->second.waiters.clear();
      }
      for (auto& s : batch->slots) out.replies.emplace_back(std::move(s), true);
    } else {
      HS_EVENT(ERROR, "zlm.store_failed")
          .Field("hooks", batch->slots.size())
          .Field("media_server", srv.state.server_id)
          .Field("error", result.status())
          .Field("reply", "per zlm.policy.on_storage_failure");
      srv.state = std::move(batch->undo);
      srv.last_snapshot = batch->undo_last_snapshot;
      for (const std::string& key : batch->dedup_keys) {
        auto it = srv.dedup.find(key);
        if (it == srv.dedup.end()) continue;
        for (auto& w : it->second.waiters) out.replies.emplace_back(std::move(w), false);
        srv.dedup.erase(it);
      }
      for (auto& s : batch->slots) out.replies.emplace_back(std::move(s), false);
      // The boots still happened: they go first again. The next batch waits for the next hook
      // or timer pass, so a broken (or closed) log is not retried in a tight loop.
      for (auto it = batch->boots.rbegin(); it != batch->boots.rend(); ++it) {
        srv.ready.push_front(std::move(*it));
      }
    }
    if (result.ok()) Kick(srv, &out);
  }
  Deliver(&out);
}

absl::Time ZlmIngest::TimerPass(absl::Time now, Outbox* out) {
  absl::Time next = now + options_.timer_tick;
  // Reorder windows.
  std::vector<Server*> holding(holding_.begin(), holding_.end());
  for (Server* srv : holding) {
    std::vector<Item> released;
    srv->reorder.Release(now, &released);
    for (Item& i : released) srv->ready.push_back(std::move(i));
    if (srv->reorder.empty()) {
      holding_.erase(srv);
    } else if (auto d = srv->reorder.NextDeadline(); d.has_value()) {
      next = std::min(next, *d);
    }
    Kick(*srv, out);
  }
  // Keepalive timeouts (a coarse scan is enough: they are seconds long) and dedup expiry.
  if (now - last_keepalive_scan_ >= absl::Milliseconds(250) || now < last_keepalive_scan_) {
    last_keepalive_scan_ = now;
    for (auto& [id, srv] : servers_) {
      const absl::Duration timeout = KeepaliveTimeout(srv->state, options_.keepalive_timeout);
      if (srv->keepalive_armed && !srv->lost_queued && !srv->state.lost &&
          now - srv->last_keepalive >= timeout) {
        Item lost;
        lost.kind = Item::Kind::kLost;
        srv->ready.push_back(std::move(lost));
        srv->lost_queued = true;
        srv->keepalive_armed = false;  // Re-armed by the next keepalive.
        Kick(*srv, out);
      }
      Kick(*srv, out);  // Resumes after a failed batch.
      while (!srv->dedup_order.empty() &&
             srv->dedup_order.front().first + options_.dedup_window <= now) {
        auto it = srv->dedup.find(srv->dedup_order.front().second);
        if (it != srv->dedup.end() && it->second.first_seen == srv->dedup_order.front().first) {
          if (!it->second.durable) break;  // Still being stored: its retries wait on it.
          srv->dedup.erase(it);
        }
        srv->dedup_order.pop_front();
      }
    }
  }
  // Storage timeouts.
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    out->replies.emplace_back(std::move(deadlines_.front().second), false);
    deadlines_.pop_front();
  }
  // Drop answered slots at the front so the queue stays short.
  while (!deadlines_.empty() && deadlines_.front().second.use_count() == 1) {
    deadlines_.pop_front();
  }
  if (!deadlines_.empty()) next = std::min(next, deadlines_.front().first);
  return next;
}

void ZlmIngest::TimerLoop() {
  while (true) {
    Outbox out;
    absl::Duration wait;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      const absl::Time now = options_.clock->Now();
      const absl::Time next = TimerPass(now, &out);
      wait = std::clamp(next - now, absl::ZeroDuration(), options_.timer_tick);
    }
    Deliver(&out);
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
    if (wait > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
    wake_ = false;
  }
}

void ZlmIngest::Flush(Outbox* out) {
  absl::MutexLock l(&mu_);
  for (auto& [id, srv] : servers_) {
    std::vector<Item> released;
    srv->reorder.ReleaseAll(&released);
    for (Item& i : released) srv->ready.push_back(std::move(i));
    Kick(*srv, out);
  }
  holding_.clear();
}

void ZlmIngest::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
  }
  Outbox out;
  Flush(&out);
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (timer_.joinable()) timer_.join();
  Deliver(&out);
}

}  // namespace hookstream::ingest
