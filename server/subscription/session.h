// One subscription's delivery state machine, independent of gRPC.
//
// A session is *catching up* (reading history from disk on the reader pool, or from the hub's
// in-memory ring) or *live* (registered in the hub, fed by commits). A live session whose
// buffered events exceed its bound is demoted back to catching up (`fell_behind`) and re-reads
// from the last position it handed out, so a slow reader costs bounded memory and never slows
// the appender. Everything queued is handed out in order by Next(), one message at a time, to
// the transport that writes it.
//
// Threads: Next/Detach/Cancel from the transport (gRPC reactor) threads; Offer and
// AppendAndMaybeJoin from the hub (under the hub's lock); Tick from the hub's ticker; ReadStep
// on the reader pool. Lock order: hub -> session.
// Lifetime: shared by the transport, the hub and in-flight read tasks.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_SESSION_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_SESSION_H_

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/common/types.h"
#include "server/storage/log.h"
#include "server/subscription/compact_queue.h"
#include "server/subscription/filter.h"
#include "server/subscription/wire.h"

namespace hookstream::subscription {

class Hub;

struct SessionOptions {
  size_t max_batch_events = 1000;
  size_t max_batch_bytes = 1 << 20;
  // Events buffered beyond what is being written; a live session past it falls behind.
  size_t buffer_bytes = 1 << 20;
  // Idle time before a heartbeat; zero: none.
  absl::Duration heartbeat_interval = absl::Seconds(15);
  // How often a session whose filter matched nothing gets a checkpoint.
  absl::Duration checkpoint_interval = absl::Seconds(1);
  // When retention overtakes a catching-up session: fail with OUT_OF_RANGE, or send a gap and
  // continue from what is left.
  bool restart_from_oldest_on_expiry = false;
};

// The transport's side: told when the session may have a message. Ref() is called under the
// session's lock, WakeAndUnref() right after it is released, so the transport cannot go away
// in between.
class Waker {
 public:
  virtual ~Waker() = default;
  virtual void Ref() = 0;
  virtual void WakeAndUnref() = 0;
};

// The checkpoint and heartbeat messages at one head, encoded at most once per ticker pass and
// shared by every session that is at that head: with ten thousand idle subscribers a pass
// would otherwise make ten thousand identical tokens. Used by the ticker thread only.
class TickMessages {
 public:
  TickMessages(const TokenCodec& tokens, Position head) : tokens_(tokens), head_(head) {}
  Position head() const { return head_; }
  const std::string& Checkpoint();
  const std::string& Heartbeat();

 private:
  const TokenCodec& tokens_;
  const Position head_;
  std::string checkpoint_;  // Empty until first asked for.
  std::string heartbeat_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  struct Finish {
    absl::Status status;
  };
  struct Nothing {};
  // What the transport should do next: write a message, finish the call, or wait for a wake.
  using Step = std::variant<std::string, Finish, Nothing>;

  // `expiry_base`: the retention horizon the start point already accounts for; the session has
  // expired if the horizon passes both it and the session's cursor.
  Session(Hub* hub, Filter filter, SessionOptions options, Position start, Position expiry_base);
  ~Session();

  // Transport side.
  void Attach(Waker* waker);
  // The transport is gone (or going): no Waker call starts after this returns.
  void Detach();
  // The next message to write, or Finish once (then nothing more), or Nothing for now.
  Step Next();
  // The client went away: stop reading and leave the hub.
  void Cancel();

  const Filter& filter() const { return filter_; }
  const SessionOptions& options() const { return options_; }

 private:
  friend class Hub;

  struct Item {
    LiveEventPtr event;   // Set for an event...
    std::string control;  // ...else a serialized control message.
    Position covers;      // Everything up to here is handled once this item is out.
    bool carries_token = false;
  };
  enum class Mode { kCatchingUp, kLive, kFinished };

  // Hub side, hub lock held. Queues a matching live event; false when the session fell behind
  // (it then leaves the live index). Sets *wake when the transport must be woken.
  bool Offer(const LiveEventPtr& event, Waker** wake);
  // Queues ring events after the cursor, up to the budget; with `live` the session becomes
  // live at `head`. Returns the waker to wake, if any.
  Waker* AppendAndMaybeJoin(absl::Span<const LiveEventPtr> events, Position through, bool live,
                            Position head);
  // Periodic, from the ticker without the hub lock: queues checkpoints and heartbeats when
  // due. `at_head.head()` must be a head every event up to which was already offered.
  Waker* Tick(absl::Time now, TickMessages& at_head);
  // Ends the session with `status` after the message in flight (drain, storage failure).
  Waker* Terminate(absl::Status status);
  Position cursor() const;
  // Everything up to here was handed to the transport (metrics: lag behind the head).
  Position handed_out() const;
  bool finished() const;

  // Reader pool: one step of catching up (snapshot, else ring, else disk).
  void ReadStep();
  // One chunk of the START_LAST_PER_STREAM snapshot; snapshot_end after the last.
  void SnapshotStep(std::unique_ptr<storage::SnapshotReader> snapshot);

  void MaybeScheduleReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushControlLocked(const v1::SubscribeResponse& msg, Position covers, bool token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushEncodedControlLocked(std::string encoded, Position covers, bool token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushEventLocked(LiveEventPtr event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Waker* WakerForLocked(bool was_empty) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the session with `status` (kept if one is already set), dropping what is queued.
  Waker* FinishLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Hub* const hub_;
  const Filter filter_;
  const SessionOptions options_;

  mutable absl::Mutex mu_;
  Waker* waker_ ABSL_GUARDED_BY(mu_) = nullptr;
  CompactQueue<Item> pending_ ABSL_GUARDED_BY(mu_);  // Nothing allocated while idle.
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Everything matching up to here is queued (or was handed out).
  Position cursor_ ABSL_GUARDED_BY(mu_);
  // Everything up to here was handed to the transport.
  Position handed_out_ ABSL_GUARDED_BY(mu_);
  // Covered position of the last token the client got (event, checkpoint, heartbeat, ...).
  Position token_through_ ABSL_GUARDED_BY(mu_);
  absl::Time last_message_time_ ABSL_GUARDED_BY(mu_);
  absl::Time last_token_time_ ABSL_GUARDED_BY(mu_);
  Position expiry_base_ ABSL_GUARDED_BY(mu_);
  // START_LAST_PER_STREAM: the snapshot still being delivered (read tasks only, one at a time).
  std::unique_ptr<storage::SnapshotReader> snapshot_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  // The small members together, with no padding between them: one session is 296 bytes, and
  // with its shared_ptr control block (make_shared) 312, which fits jemalloc's 320-byte class
  // instead of the 384-byte one (64 bytes less per idle subscriber; issue 9).
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kCatchingUp;
  // From the start of a START_LAST_PER_STREAM session until its snapshot_end is queued.
  bool in_snapshot_ ABSL_GUARDED_BY(mu_) = false;
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_returned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_SESSION_H_
