// gRPC side of one Subscribe call: writes what its subscription::Session hands out, one write
// in flight at a time, and finishes the call exactly once (also on cancel and drain).
//
// Threads: gRPC reactions, plus WakeAndUnref from the hub, the ticker and the reader pool.
// Lifetime: deletes itself when gRPC is done with it (OnDone) and no waker holds a reference.
// Lock order: SubscribeReactor::mu_ -> Session::mu_.
#ifndef HOOKSTREAM_SERVER_API_SUBSCRIBE_REACTOR_H_
#define HOOKSTREAM_SERVER_API_SUBSCRIBE_REACTOR_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_callback.h"
#include "server/api/connection_limits.h"
#include "server/common/tsan_annotations.h"
#include "server/subscription/session.h"

namespace hookstream::api {

class SubscribeReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                               public subscription::Waker {
 public:
  // `lease` (the call's connection slot, may be null) is held until gRPC is done with the call
  // (OnDone), not until the reactor is gone: see OnDone.
  SubscribeReactor(std::shared_ptr<subscription::Session> session,
                   std::unique_ptr<ConnectionTracker::Lease> lease = nullptr);

  // subscription::Waker
  void Ref() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void WakeAndUnref() override {
    Pump();
    Unref();
  }

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~SubscribeReactor() override = default;
  void Pump();
  void Unref();

  const std::shared_ptr<subscription::Session> session_;
  // Touched only by the constructor and OnDone. Owned directly: a shared_ptr would cost a
  // control block per idle subscriber (issue 9).
  std::unique_ptr<ConnectionTracker::Lease> lease_;
  std::atomic<int> refs_{1};  // gRPC's, released in OnDone; plus one per pending wake.

  absl::Mutex mu_;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // The message in flight, empty between writes; touched only by the thread that started the
  // write (or its OnWriteDone) while write_in_flight_ is set.
  grpc::ByteBuffer buffer_;
};

// A write reactor that only finishes with an error: for Subscribe calls refused up front.
class RejectedWriteReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RejectedWriteReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override {
    HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
    delete this;
  }
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_SUBSCRIBE_REACTOR_H_
