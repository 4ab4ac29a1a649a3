#include "server/api/subscribe_reactor.h"

#include <string>
#include <utility>
#include <variant>

#include "server/api/status.h"
#include "server/common/tsan_annotations.h"

namespace hookstream::api {
namespace {

// Wraps the message without copying it: gRPC frees the string when it is done with the slice,
// on one of its threads (hence the TSan handoff on the string: tsan_annotations.h).
grpc::ByteBuffer ToByteBuffer(std::string message) {
  auto* holder = new std::string(std::move(message));
  HS_TSAN_RELEASE(holder);
  grpc::Slice slice(
      holder->data(), holder->size(),
      [](void* p) {
        HS_TSAN_ACQUIRE(p);
        delete static_cast<std::string*>(p);
      },
      holder);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

SubscribeReactor::SubscribeReactor(std::shared_ptr<subscription::Session> session,
                                   std::unique_ptr<ConnectionTracker::Lease> lease)
    : session_(std::move(session)), lease_(std::move(lease)) {
  session_->Attach(this);
  Pump();
}

void SubscribeReactor::Pump() {
  subscription::Session::Step step;
  {
    absl::MutexLock l(&mu_);
    if (finished_ || write_in_flight_) return;
    step = session_->Next();
    if (std::holds_alternative<std::string>(step)) {
      write_in_flight_ = true;
    } else if (std::holds_alternative<subscription::Session::Finish>(step)) {
      finished_ = true;
    } else {
      return;
    }
  }
  // Outside the lock: gRPC may run OnWriteDone inline. The flags set above keep every other
  // thread from starting a write or finishing until this operation completes.
  if (auto* message = std::get_if<std::string>(&step)) {
    buffer_ = ToByteBuffer(std::move(*message));
    StartWrite(&buffer_);
  } else {
    Finish(ToGrpcStatus(std::get<subscription::Session::Finish>(step).status));
  }
}

void SubscribeReactor::OnWriteDone(bool ok) {
  // gRPC is done with the message: free it now rather than when the next one replaces it (an
  // idle subscription would otherwise hold its last message for as long as it stays idle).
  buffer_.Clear();
  {
    absl::MutexLock l(&mu_);
    write_in_flight_ = false;
  }
  // A failed write means the stream is broken (client gone): end the session.
  if (!ok) session_->Cancel();
  Pump();
}

void SubscribeReactor::OnCancel() {
  HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
  session_->Cancel();
  Pump();
}

void SubscribeReactor::OnDone() {
  HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
  session_->Detach();
  session_->Cancel();
  // The slot goes back now: a wake in flight may keep this reactor alive past the server's
  // shutdown (the last Unref on a subscription reader thread), and the lease points into the
  // service, which is destroyed once gRPC has run every OnDone (found by TSan).
  lease_.reset();
  Unref();
}

void SubscribeReactor::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace hookstream::api
