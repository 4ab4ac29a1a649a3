// ZLMediaKit drop-in ingest (DESIGN.md §6): takes the media server's native hook POSTs, restores
// their hook_index order per server and boot, drops its retries, stores each hook as an event
// (with the state events it implies) and answers the hook once that event is durable.
//
// Pipeline per media server:
//   HTTP thread: parse, redact, authenticate (ParseHookBody, tokens) -> arrival (under mu_):
//   boot detection, ReorderBuffer -> `ready` queue, in hook_index order -> one batch at a time:
//   dedup (retries get the original's answer), ServerState transitions, one atomic Log::Append
//   of the hook events, derived events and a state snapshot -> on the appender thread: answers,
//   next batch.
// One Append in flight per server keeps the log order equal to the processing order and makes a
// failed batch easy to undo (the state goes back, retries will come); batching whatever queued
// meanwhile keeps throughput at group-commit rates.
//
// Threads: HandleHook from the HTTP pool; append callbacks on the log's appender thread; one
// timer thread of its own (reorder windows, keepalive timeouts, storage timeouts). All state is
// under mu_; no Log call and no HTTP answer is made while holding it.
// Lifetime: must outlive the HTTP server's handlers and every Append it started (the log's
// Close() acks what is pending; destroy the ingest after it).
#ifndef HOOKSTREAM_SERVER_INGEST_ZLM_INGEST_H_
#define HOOKSTREAM_SERVER_INGEST_ZLM_INGEST_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/http_server.h"
#include "server/ingest/hook_body.h"
#include "server/ingest/reorder_buffer.h"
#include "server/ingest/server_state.h"
#include "server/ingest/zlm_options.h"
#include "server/storage/log.h"

namespace hookstream::ingest {

// The path prefix ZLMediaKit posts to: /index/hook/<hook name>.
inline constexpr char kHookPathPrefix[] = "/index/hook/";

class ZlmIngest {
 public:
  // Rebuilds the per-server state from `log` (restore.h) and starts the timer thread.
  // `log` must outlive the ingest.
  static absl::StatusOr<std::unique_ptr<ZlmIngest>> Start(storage::Log* log, ZlmOptions options);
  ~ZlmIngest();

  // The handler of POST /index/hook/<name>.
  void HandleHook(http::Request request, http::Responder responder);

  // Drain: hands every held hook to the log now (they are answered when durable) and stops the
  // timer thread. Hooks arriving later are answered 503.
  void Stop();

  // Servers tracked, and hooks held for ordering; for tests.
  size_t ServerCount();
  size_t HeldHooks();

 private:
  struct ReplySlot;
  struct Item;
  struct DedupEntry;
  struct Server;
  struct Batch;
  // Work found under mu_ and done after releasing it.
  struct Outbox;

  ZlmIngest(storage::Log* log, ZlmOptions options);

  void Arrive(ParsedHook hook, std::shared_ptr<ReplySlot> slot, Outbox* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NewArrivalBoot(Server& srv, absl::string_view detected_by, std::vector<Item>* flushed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the server's next batch when none is in flight.
  void Kick(Server& srv, Outbox* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAppended(std::unique_ptr<Batch> batch, absl::StatusOr<v1::PublishResponse> result);
  void TimerLoop();
  // One timer pass at clock time `now`; returns when the next pass is due.
  absl::Time TimerPass(absl::Time now, Outbox* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush(Outbox* out);
  // Answers and appends what `out` collected; without mu_.
  void Deliver(Outbox* out) ABSL_LOCKS_EXCLUDED(mu_);
  Server* FindOrAddServer(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Log* const log_;
  const ZlmOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::unique_ptr<Server>> servers_ ABSL_GUARDED_BY(mu_);
  // Servers holding hooks in their reorder buffer.
  absl::flat_hash_set<Server*> holding_ ABSL_GUARDED_BY(mu_);
  // Unanswered hooks by answer deadline (arrival + storage_timeout): monotonic.
  std::deque<std::pair<absl::Time, std::shared_ptr<ReplySlot>>> deadlines_ ABSL_GUARDED_BY(mu_);
  absl::Time last_keepalive_scan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_ZLM_INGEST_H_
