// The subscription registry: creates sessions from Subscribe requests, feeds live sessions from
// commits, keeps recent commits in an in-memory ring, and runs the ticker for checkpoints and
// heartbeats (etcd's watchable store: synced sessions fed from memory, unsynced ones read disk).
//
// The appender calls OnCommit under no lock of ours; the hub's lock is the seam: a catching-up
// session joins the live set under it only once it has everything up to the head the appender
// last published, so nothing is missed or doubled at the handoff.
//
// Fan-out cost: live sessions are indexed by their stream patterns in a token trie, so an event
// costs work only for the sessions whose patterns match its stream.
//
// Threads: Subscribe from gRPC threads; OnCommit on the appender thread; the ticker on its own
// thread; catch-up reads on the reader pool. Lock order: Hub::mu_ -> Session::mu_.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_HUB_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_HUB_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/common/clock.h"
#include "server/common/thread_pool.h"
#include "server/storage/log.h"
#include "server/subscription/pattern_index.h"
#include "server/subscription/session.h"
#include "server/subscription/token.h"

namespace hookstream::subscription {

struct HubOptions {
  // Bytes of recent committed events kept in memory for live delivery and short catch-ups.
  size_t ring_bytes = 64 << 20;
  int reader_threads = 2;
  size_t max_subscribers = 100000;
  // Defaults and bounds for sessions.
  SessionOptions session;
  size_t max_batch_events_limit = 10000;
  size_t max_batch_bytes_limit = 4 << 20;
  // Shortest heartbeat a client may ask for.
  absl::Duration min_heartbeat_interval = absl::Milliseconds(100);
  // How often the ticker looks for due checkpoints and heartbeats (real time).
  absl::Duration tick_period = absl::Milliseconds(100);
  Clock* clock = Clock::Real();
};

class Hub : public storage::CommitListener {
 public:
  // `log` must outlive the hub; the hub registers itself as its commit listener.
  Hub(storage::Log* log, HubOptions options);
  ~Hub() override;

  // Validates the request and starts a session: INVALID_ARGUMENT (filter, token, limits),
  // FAILED_PRECONDITION (token of another log, or ahead of the log), OUT_OF_RANGE (token
  // older than what is retained), RESOURCE_EXHAUSTED (too many subscribers), UNAVAILABLE
  // (draining), UNIMPLEMENTED (start modes not served yet). `scopes` (the caller's token's
  // stream patterns; empty: all) narrow the filter (Filter::Create): PERMISSION_DENIED when
  // the request asks only for streams outside them.
  absl::StatusOr<std::shared_ptr<Session>> Subscribe(const v1::SubscribeRequest& request,
                                                     const std::vector<StreamPattern>& scopes = {});

  // Ends every session with UNAVAILABLE and refuses new ones (server drain).
  void Shutdown();
  // Waits until every session has been released by its transport; false on timeout.
  bool WaitUntilNoSessions(absl::Duration timeout);

  void OnCommit(std::vector<storage::StoredEvent>& events, Position head) override;

  // Called on the appender thread after every commit with the new head (must not block): lets
  // a reader of the log (the webhook shim) sleep until there is something new. nullptr clears
  // it; once this returns, the previous observer is not running and will not be called.
  void SetCommitObserver(std::function<void(Position head)> observer);

  // OUT_OF_RANGE for a start (or cursor) at `position` that retention has passed, with an
  // ExpiredDetail payload naming what is left.
  absl::Status ExpiredError(Position position, absl::string_view what) const;

  const TokenCodec& tokens() const { return tokens_; }
  storage::Log* log() const { return log_; }
  ThreadPool& readers() { return readers_; }
  Clock* clock() const { return options_.clock; }
  size_t session_count() const;

  // For metrics: every session's lag (log positions between the head and what it has handed
  // to its transport) as of one scrape. Takes each session's lock briefly, not the hub's
  // during the walk.
  struct SubscriberStats {
    Position head;
    size_t live = 0;               // Sessions fed from commits.
    std::vector<uint64_t> lags;    // One per session.
  };
  SubscriberStats CollectSubscriberStats() const;
  // Events and message bytes handed to transports since start.
  uint64_t delivered_events() const { return delivered_events_.load(std::memory_order_relaxed); }
  uint64_t delivered_bytes() const { return delivered_bytes_.load(std::memory_order_relaxed); }

 private:
  friend class Session;

  enum class RingResult { kJoinedLive, kProgressed, kNotCovered, kStopped };
  // Catches `session` up from the ring after `from`; joins it to the live set on reaching the
  // head. kNotCovered: the ring does not reach back to `from` (read disk).
  RingResult CatchUpFromRing(Session* session, Position from);
  void Remove(Session* session);
  void AddLiveLocked(Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLiveLocked(Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TickerLoop();
  // From Session::Next, under the session's lock only.
  void CountDelivered(size_t events, size_t bytes) {
    delivered_events_.fetch_add(events, std::memory_order_relaxed);
    delivered_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }

  storage::Log* const log_;
  const HubOptions options_;
  const TokenCodec tokens_;

  mutable absl::Mutex mu_;
  Position head_ ABSL_GUARDED_BY(mu_);
  std::deque<LiveEventPtr> ring_ ABSL_GUARDED_BY(mu_);  // Dense positions, oldest first.
  size_t ring_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<Session*, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  PatternIndex<Session> live_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Session*> live_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(Position)> commit_observer_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> delivered_events_{0};
  std::atomic<uint64_t> delivered_bytes_{0};

  ThreadPool readers_;
  absl::Notification stop_ticker_;
  std::thread ticker_;
};

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_HUB_H_
