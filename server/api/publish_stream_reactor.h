// gRPC side of one PublishStream call: pipelined publishing. Requests are validated and
// appended as they arrive (up to `max_in_flight` at once); responses are written in request
// order, one write in flight. The first failing request ends the call with its status, after
// the responses of every request before it: a producer knows exactly what was acknowledged.
//
// Threads: gRPC reactions and the log's appender thread (append callbacks).
// Lifetime: deletes itself once gRPC is done (OnDone) and no append callback is pending.
#ifndef HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_
#define HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_

#include <atomic>
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_callback.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/api/validation.h"
#include "server/storage/log.h"

namespace hookstream::api {

class PublishStreamReactor final
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
 public:
  // `draining`, when it turns true, makes every later request fail the call with UNAVAILABLE.
  PublishStreamReactor(storage::Log* log, PublishLimits limits, size_t max_in_flight,
                       const std::atomic<bool>* draining);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~PublishStreamReactor() override = default;
  // One request's outcome slot, filled when its append completes.
  struct Slot {
    std::optional<absl::StatusOr<v1::PublishResponse>> outcome;
  };
  void Pump();
  void Unref();

  storage::Log* const log_;
  const PublishLimits limits_;
  const size_t max_in_flight_;
  const std::atomic<bool>* const draining_;
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // Requests not yet answered, in order.
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::PublishRequest request_;    // Owned by the read in flight.
  v1::PublishResponse response_;  // Owned by the write in flight.
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_PUBLISH_STREAM_REACTOR_H_
