// gRPC side of one PublishStream call: pipelined publishing. Requests are validated and
// appended as they arrive (read ahead while fewer than `max_in_flight` requests and
// `max_in_flight_bytes` of them are unanswered); responses are written in request order, one
// write in flight, and answers that are ready together leave in one flush (gRPC's buffer
// hint on all but the last of them). The first failing request ends the call with its
// status, after the responses of every request before it: a producer knows exactly what was
// acknowledged.
//
// Threads: gRPC reactions and the log's appender thread (append callbacks).
// Lifetime: deletes itself once gRPC is done (OnDone) and no append callback is pending.
#ifndef HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_
#define HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_callback.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/api/validation.h"
#include "server/common/tsan_annotations.h"
#include "server/storage/log.h"

namespace hookstream::api {

// How far a PublishStream call reads ahead of its answers. A group commit can only take what
// was read: with one event per request and a slow fsync, a small count bound starved the group
// commit and let requests queue in the client (issue 9, W2 at 20,000/s); the byte bound keeps
// memory per call in check when requests are large.
struct PublishStreamLimits {
  size_t max_in_flight = 1024;
  size_t max_in_flight_bytes = 4 << 20;
};

// What the service decides for a PublishStream call.
struct PublishStreamHooks {
  // Runs on every request before it is appended (drain, validation, auth scopes, rate); an
  // error fails the call with it.
  std::function<absl::Status(const v1::PublishRequest&)> check;
  // Told of every appended request's outcome: its status, event count and arrival time.
  std::function<void(const absl::Status&, size_t events, absl::Time arrived)> on_outcome;
  // Held until the reactor is gone (the call's connection slot).
  std::shared_ptr<void> lease;
};

class PublishStreamReactor final
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
 public:
  PublishStreamReactor(storage::Log* log, PublishStreamLimits limits, PublishStreamHooks hooks);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~PublishStreamReactor() override = default;
  // One request's outcome slot, filled when its append completes.
  struct Slot {
    std::optional<absl::StatusOr<v1::PublishResponse>> outcome;
    size_t bytes = 0;  // Size of the request.
  };
  void Pump();
  void Unref();

  storage::Log* const log_;
  const PublishStreamLimits limits_;
  const PublishStreamHooks hooks_;
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // Requests not yet answered, in order.
  size_t slot_bytes_ ABSL_GUARDED_BY(mu_) = 0;   // Sum of their sizes.
  // A read is started and its request not yet handed to the log (appends go in request order).
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool wrote_once_ ABSL_GUARDED_BY(mu_) = false;  // A write was started (initial metadata sent).
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::PublishRequest request_;    // Owned by the read in flight.
  v1::PublishResponse response_;  // Owned by the write in flight.
};

// A bidi reactor that only finishes with an error: for PublishStream calls refused up front.
class RejectedBidiReactor final
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
 public:
  explicit RejectedBidiReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override {
    HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
    delete this;
  }
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_
