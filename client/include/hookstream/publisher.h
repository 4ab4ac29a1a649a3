// hookstream::client::Publisher: batched, retried publishing that never stores an event twice.
//
// Publish() queues an event and returns at once; a background thread sends queued events in
// batches (up to `max_batch_events` / `max_batch_bytes`, waiting up to `linger` for a batch to
// fill; a batch forms while the previous one is in flight), one batch in flight at a time, so
// events are stored in the order they were published. A batch that fails with a retryable code
// is sent again, unchanged, after a backoff: every event has a stable (source, id) — the
// Publisher assigns a random 128-bit hex id to events that have none and `default_source` to
// events without a source — so a retry of a batch the server had already stored is
// de-duplicated (the result then says `duplicate`). Retries stop after `retry_budget`, which
// must stay below the server's dedup window (2 minutes by default).
//
// Batches are the Publisher's business, not the application's: an event that the server
// rejects (INVALID_ARGUMENT) fails alone, the rest of its batch is sent again without it, and
// an event with `expected_seq` is sent in a batch of its own, so its ABORTED fails only it.
//
// Thread-safety: every public method may be called from any thread. Result callbacks run on
// the Publisher's thread, one at a time, in publish order (except the FAILED_PRECONDITION of a
// Publish() after Close(), given on the caller's thread); they may call Publish() (which then
// never blocks) but not Flush(), Close() or the destructor.
//
// Lifetime: the destructor calls Close(close_timeout).
#ifndef HOOKSTREAM_CLIENT_PUBLISHER_H_
#define HOOKSTREAM_CLIENT_PUBLISHER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "hookstream/backoff.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hookstream::client {

struct PublisherOptions {
  // Source of events published without one. (source, id) is the de-duplication key.
  std::string default_source = "hookstream-cpp";
  size_t max_batch_events = 500;
  size_t max_batch_bytes = 1 << 20;
  // How long the oldest queued event may wait for a batch to fill.
  absl::Duration linger = absl::Milliseconds(5);
  BackoffOptions backoff;
  // Deadline of one Publish attempt.
  absl::Duration attempt_timeout = absl::Seconds(10);
  // Retrying a batch stops when the next attempt would start later than this after the first.
  absl::Duration retry_budget = absl::Seconds(60);
  // Publish() blocks while this many events are queued and unacknowledged.
  size_t max_buffered_events = 100000;
  // gRPC wait_for_ready for each attempt (see SubscriberOptions::wait_for_ready).
  bool wait_for_ready = false;
  // Called on every attempt's context, e.g. to add `authorization` metadata.
  std::function<void(grpc::ClientContext&)> configure_context;
  // Used by the destructor.
  absl::Duration close_timeout = absl::Seconds(10);
};

// The server's answer for one event.
struct PublishResult {
  std::string id;  // The id the event is stored under.
  uint64_t position = 0;
  uint64_t seq = 0;
  // (source, id) was already stored; position and seq are the original's. After a retry
  // (attempts > 1) this usually means the lost acknowledgement of an earlier attempt.
  bool duplicate = false;
  int attempts = 0;
};

using PublishCallback = std::function<void(absl::StatusOr<PublishResult>)>;

// True for the codes after which a batch is sent again (UNAVAILABLE, DEADLINE_EXCEEDED,
// CANCELLED, RESOURCE_EXHAUSTED, UNKNOWN, INTERNAL); the stable ids make that safe.
bool IsRetryablePublishError(absl::StatusCode code);

class Publisher {
 public:
  static absl::StatusOr<std::unique_ptr<Publisher>> Create(std::shared_ptr<grpc::Channel> channel,
                                                           PublisherOptions options);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Queues `event`; `done` gets its result. After Close(): FAILED_PRECONDITION at once.
  void Publish(v1::EventInput event, PublishCallback done);
  std::future<absl::StatusOr<PublishResult>> Publish(v1::EventInput event);

  // Sends what is queued without waiting for `linger` and waits until every event published
  // before the call has its result. DEADLINE_EXCEEDED on timeout.
  absl::Status Flush(absl::Duration timeout = absl::InfiniteDuration());

  // Refuses new events, waits up to `timeout` for the queued ones, then cancels the rest
  // (CANCELLED: an event in flight may or may not be stored). OK when nothing was cancelled.
  absl::Status Close(absl::Duration timeout);

  // A random 128-bit id in lowercase hex, as assigned to events published without one.
  static std::string NewEventId();

  struct Stats {
    uint64_t requests = 0;  // Publish RPCs sent, retries included.
    uint64_t retries = 0;
    uint64_t acknowledged = 0;  // Events with a successful result.
    uint64_t failed = 0;        // Events with an error result.
  };
  Stats stats() const;

 private:
  struct Pending {
    v1::EventInput event;
    size_t bytes = 0;
    absl::Time queued;
    PublishCallback done;
  };

  Publisher(std::shared_ptr<grpc::Channel> channel, PublisherOptions options);
  void Run();
  // Sends `batch` until it succeeds, fails for good or the publisher aborts; calls every `done`.
  void Send(std::vector<Pending> batch);
  void Complete(std::vector<Pending>& batch, const absl::Status& status);
  bool BatchReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PublisherOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventStream::Stub> stub_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // Events taken by the sender, not completed.
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;      // Flush() calls waiting.
  // Events queued, and events completed, since the start. Completion is in publish order (one
  // batch in flight), so "completed_ >= n" means the first n events have their results.
  uint64_t queued_total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool aborting_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  std::mutex join_mu_;  // Serializes joining the worker (Close() from several threads).
  std::thread worker_;
  std::thread::id worker_id_;  // Set once by Create(); callbacks run on this thread.
};

}  // namespace hookstream::client

#endif  // HOOKSTREAM_CLIENT_PUBLISHER_H_
