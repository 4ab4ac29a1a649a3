// hookstream::client::Subscriber: one logical subscription that survives disconnects.
//
// It runs Subscribe calls on a channel one after another. When a call breaks (UNAVAILABLE, a
// broken connection, a CANCELLED it did not cause, the server's drain, or no message for
// `missed_heartbeats` × `heartbeat_interval`), it waits (exponential backoff with jitter) and
// subscribes again from the token of the last event it delivered to the application, so the
// application sees every matching event once, in order, across disconnects and server restarts.
// Errors that a retry cannot fix (IsTerminalSubscribeError) end the subscription and reach the
// application; they are never skipped or retried.
//
// Delivery: pull events with Next(), or set `on_event` and they are pushed to it from a thread
// of the Subscriber. An event counts as delivered when it is handed to the application (Next()
// returns it, or `on_event` is called with it); last_token() then covers it, and a resume after
// a disconnect continues right after it. Events received but not yet delivered are dropped on a
// disconnect and fetched again.
//
// Continuity: when `types` is empty (the filter selects whole streams), each event's seq must be
// the previous seq of its stream in this Subscriber plus one. A break (a gap or a repeat) goes
// to `on_gap` before the event is delivered; without `on_gap` it ends the subscription with
// DATA_LOSS instead, so a break is never silent.
//
// Thread-safety: every public method may be called from any thread. Next() calls take turns
// (one hands out events at a time; a caller waiting for its turn still returns at its
// timeout). Callbacks run one at a time: `on_event`, `on_error`, `on_gap` and `on_notice` on
// the Subscriber's delivery thread in callback form, and `on_gap`/`on_notice` inside Next() on
// the caller's thread in pull form. Callbacks may call last_token() and Stop(), but must not
// destroy the Subscriber. Threads: one for the calls, one for the heartbeat watchdog (when
// heartbeats are on), one for delivery in callback form.
//
// Lifetime: the channel may be shared with other users. The destructor stops the subscription
// and waits for the Subscriber's threads (and so for a callback in progress).
#ifndef HOOKSTREAM_CLIENT_SUBSCRIBER_H_
#define HOOKSTREAM_CLIENT_SUBSCRIBER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "hookstream/backoff.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hookstream::client {

// Where a subscription starts while it has no token of its own yet.
class StartPoint {
 public:
  // Only events published after the subscription starts (the server's default).
  static StartPoint Now();
  // From the oldest retained event.
  static StartPoint Beginning();
  // The latest event of each matching stream, then live (passed through; the server may answer
  // UNIMPLEMENTED).
  static StartPoint LastPerStream();
  // Right after the event or checkpoint `token` was handed out with.
  static StartPoint Token(std::string token);
  // From a point in time (passed through; the server may answer UNIMPLEMENTED).
  static StartPoint Time(absl::Time time);

  void ApplyTo(v1::SubscribeRequest& request) const;

 private:
  using Value = std::variant<v1::SubscribeRequest::Start, std::string, absl::Time>;
  explicit StartPoint(Value v) : value_(std::move(v)) {}
  Value value_;
};

// An event handed to the application, with the token that resumes right after it.
struct Delivery {
  v1::Event event;
  std::string resume_token;
};

// Something the application must know was not delivered.
struct Gap {
  enum class Kind {
    // The event's seq is not its stream's previous seq + 1 (a hole, or a repeat).
    kSeqBreak,
    // The server skipped expired events (positions in (from, to]) because the request asked for
    // EXPIRED_RESTART_FROM_OLDEST.
    kServerGap,
  };
  Kind kind = Kind::kSeqBreak;
  std::string stream;          // kSeqBreak
  uint64_t expected_seq = 0;   // kSeqBreak
  uint64_t got_seq = 0;        // kSeqBreak
  uint64_t from_position = 0;  // kServerGap
  uint64_t to_position = 0;    // kServerGap

  std::string ToString() const;
};

// Control messages and connection changes, for logging and monitoring; nothing to act on.
struct Notice {
  enum class Kind {
    kSubscribed,    // A call was accepted: log_id, head_position.
    kCaughtUp,      // History exhausted, live delivery begins.
    kFellBehind,    // The server moved this slow reader back to reading from disk.
    kCheckpoint,    // Nothing matching up to `position`.
    kHeartbeat,     // Idle.
    kSnapshotEnd,   // End of a START_LAST_PER_STREAM snapshot.
    kDisconnected,  // The call ended with `status`; the next attempt follows in `retry_in`.
  };
  Kind kind = Kind::kSubscribed;
  std::string log_id;
  uint64_t head_position = 0;
  uint64_t position = 0;
  absl::Status status;
  absl::Duration retry_in;
  int attempt = 0;  // Consecutive failed attempts, from 1.

  std::string ToString() const;
};

struct SubscriberOptions {
  // Stream patterns ('*' one token, trailing '>' one or more); empty: all streams.
  std::vector<std::string> streams;
  // Event types, exact or a prefix ending in '*'; empty: all types.
  std::vector<std::string> types;
  StartPoint start = StartPoint::Now();
  v1::SubscribeRequest::OnExpired on_expired = v1::SubscribeRequest::EXPIRED_FAIL;
  // Upper bounds of one server message; 0: the server's defaults.
  uint32_t max_batch_events = 0;
  uint64_t max_batch_bytes = 0;
  // Asked of the server; zero: no heartbeats, and no watchdog.
  absl::Duration heartbeat_interval = absl::Seconds(15);
  // The watchdog gives up on a call that sent nothing for this many heartbeat intervals
  // (while the Subscriber was reading), cancels it and resumes.
  int missed_heartbeats = 3;
  BackoffOptions backoff;
  // Events received but not yet delivered; beyond it the Subscriber stops reading (gRPC's and
  // the server's flow control then hold the rest, and the server falls back to disk).
  size_t max_buffered_events = 1000;
  // gRPC wait_for_ready for each call: false fails fast (and reports kDisconnected) while the
  // server is unreachable; true waits for the channel (the watchdog still bounds the wait).
  bool wait_for_ready = false;
  // Called on every call's context before it starts, e.g. to add `authorization` metadata.
  std::function<void(grpc::ClientContext&)> configure_context;

  // Callback form: set `on_event` (and `on_error`, required with it) and events are pushed;
  // leave it unset for the pull form (Next()).
  std::function<void(const Delivery&)> on_event;
  // The terminal error, once; nothing is delivered after it.
  std::function<void(const absl::Status&)> on_error;
  std::function<void(const Gap&)> on_gap;
  std::function<void(const Notice&)> on_notice;
};

// True for the codes that end a subscription: retrying cannot succeed, and skipping would lose
// events (OUT_OF_RANGE: token expired; FAILED_PRECONDITION: token of another log, or ahead of
// it; INVALID_ARGUMENT: bad request or damaged token; PERMISSION_DENIED; UNAUTHENTICATED;
// UNIMPLEMENTED: a start mode the server does not serve; DATA_LOSS: stored data is damaged).
// Every other code, and OK (a call the server ended), is retried.
bool IsTerminalSubscribeError(absl::StatusCode code);

class Subscriber {
 public:
  // Starts subscribing in the background; fails only on bad options (INVALID_ARGUMENT).
  static absl::StatusOr<std::unique_ptr<Subscriber>> Start(std::shared_ptr<grpc::Channel> channel,
                                                           SubscriberOptions options);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Pull form: the next event, in order. DEADLINE_EXCEEDED when none came within `timeout`
  // (nothing is lost; call again); CANCELLED after Stop(); otherwise the terminal error, again
  // on every later call. FAILED_PRECONDITION in callback form.
  absl::StatusOr<Delivery> Next(absl::Duration timeout = absl::InfiniteDuration());

  // The token to persist: everything up to it was delivered (the last delivered event's, or a
  // later checkpoint/heartbeat/caught_up token that arrived with nothing pending). Empty until
  // the first one arrives.
  std::string last_token() const;

  // Ends the subscription: the call is cancelled, a blocked Next() returns CANCELLED, and in
  // callback form no callback starts after Stop() returns (unless it is called from a callback).
  void Stop();

  struct Stats {
    uint64_t calls = 0;       // Subscribe calls started.
    uint64_t delivered = 0;   // Events delivered.
    uint64_t seq_breaks = 0;  // Gaps of kind kSeqBreak found.
  };
  Stats stats() const;

 private:
  struct Item {
    enum class Kind { kEvent, kToken, kNotice, kGap, kTerminal };
    Kind kind = Kind::kEvent;
    Delivery delivery;    // kEvent
    std::string token;    // kToken
    Notice notice;        // kNotice
    Gap gap;              // kGap
    absl::Status status;  // kTerminal
  };

  Subscriber(std::shared_ptr<grpc::Channel> channel, SubscriberOptions options);

  absl::StatusOr<Delivery> NextImpl(absl::Duration timeout);
  void ConnectionLoop();
  void WatchdogLoop();
  void DispatchLoop();
  v1::SubscribeRequest BuildRequestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleMessageLocked(v1::SubscribeResponse& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ControlTokenLocked(const std::string& token) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushNoticeLocked(Notice notice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropUndeliveredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Continuity check for `event`; fills `gap` and returns false on a break.
  bool CheckSeq(const v1::Event& event, Gap& gap);

  const SubscriberOptions options_;
  const bool check_seq_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventStream::Stub> stub_;

  // Last seq per stream delivered; used only by the active consumer (consumer_active_).
  absl::flat_hash_map<std::string, uint64_t> last_seq_;

  mutable absl::Mutex mu_;
  // One Next() at a time hands out events; others wait (within their timeout) for their turn.
  bool consumer_active_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_events_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_token_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // A terminal error is queued.
  // The open call (null between calls) and whether it is being read (not paused for space).
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool watchdog_fired_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_activity_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);

  std::mutex join_mu_;  // Serializes joining the threads (Stop() from several threads).
  std::thread connection_thread_;
  std::thread watchdog_thread_;
  std::thread dispatch_thread_;
};

}  // namespace hookstream::client

#endif  // HOOKSTREAM_CLIENT_SUBSCRIBER_H_
