#include "server/api/publish_stream_reactor.h"

#include <utility>
#include <vector>

#include "server/api/status.h"
#include "server/common/tsan_annotations.h"

namespace hookstream::api {

PublishStreamReactor::PublishStreamReactor(storage::Log* log, PublishStreamLimits limits,
                                           PublishStreamHooks hooks)
    : log_(log), limits_(limits), hooks_(std::move(hooks)) {
  Pump();
}

void PublishStreamReactor::OnReadDone(bool ok) {
  if (!ok) {
    absl::MutexLock l(&mu_);
    read_in_flight_ = false;
    reads_done_ = true;  // Client half-closed (or the call broke).
  } else {
    const absl::Time arrived = absl::Now();
    const size_t bytes = request_.ByteSizeLong();
    absl::Status invalid = hooks_.check(request_);
    std::vector<v1::EventInput> events;
    if (invalid.ok()) {
      events.assign(std::make_move_iterator(request_.mutable_events()->begin()),
                    std::make_move_iterator(request_.mutable_events()->end()));
    }
    request_.Clear();
    const bool valid = invalid.ok();
    Slot* slot;
    {
      absl::MutexLock l(&mu_);
      slots_.emplace_back();
      slot = &slots_.back();  // std::deque keeps element addresses on push/pop at the ends.
      slot->bytes = bytes;
      slot_bytes_ += bytes;
      if (!valid) {
        read_in_flight_ = false;
        slot->outcome = std::move(invalid);
        reads_done_ = true;  // Nothing after a failed request is read.
      } else {
        refs_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (valid) {
      const size_t count = events.size();
      log_->Append(std::move(events), [this, slot, count,
                                       arrived](absl::StatusOr<v1::PublishResponse> r) {
        hooks_.on_outcome(r.status(), count, arrived);
        {
          absl::MutexLock l(&mu_);
          slot->outcome = std::move(r);
        }
        Pump();
        Unref();
      });
      // Only now may the next read start: until this request is in the log's queue, a Pump on
      // another thread (an append callback) starting it could let later requests be appended
      // first, storing this call's events out of request order (found under TSan's timing).
      absl::MutexLock l(&mu_);
      read_in_flight_ = false;
    }
  }
  Pump();
}

void PublishStreamReactor::Pump() {
  bool start_read = false;
  bool start_write = false;
  bool hint = false;
  bool finish = false;
  grpc::Status finish_status;
  {
    absl::MutexLock l(&mu_);
    if (finished_) return;
    if (!write_in_flight_ && !cancelled_ && !slots_.empty() && slots_.front().outcome) {
      absl::StatusOr<v1::PublishResponse>& outcome = *slots_.front().outcome;
      if (outcome.ok()) {
        response_ = std::move(*outcome);
        slot_bytes_ -= slots_.front().bytes;
        slots_.pop_front();
        write_in_flight_ = start_write = true;
        // The next answer is ready too (one group commit answers many requests at once): let
        // gRPC buffer this one so that the run goes out in one flush. gRPC (chttp2) completes
        // a hinted write without sending it, so a hinted write must never be the last: the
        // ready answer behind it is written next (or Finish, which flushes, ends the call).
        // Never the call's first write either: that one carries the initial metadata, and a
        // hinted write with it does not complete until something flushes (seen with gRPC
        // 1.51), which would stall the call.
        hint = wrote_once_ && !slots_.empty() && slots_.front().outcome.has_value();
        wrote_once_ = true;
      } else {
        // End the call with the first failure; every request before it was answered already,
        // since slots are answered in order.
        finish_status = ToGrpcStatus(outcome.status());
        finished_ = finish = true;
      }
    } else if (!write_in_flight_ && (cancelled_ || (reads_done_ && slots_.empty()))) {
      finish_status = cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK;
      finished_ = finish = true;
    }
    if (!finish && !read_in_flight_ && !reads_done_ && !cancelled_ &&
        slots_.size() < limits_.max_in_flight && slot_bytes_ < limits_.max_in_flight_bytes) {
      read_in_flight_ = start_read = true;
    }
  }
  // Outside the lock: gRPC may run reactions inline. The flags set above keep other threads
  // from starting the same operation until it completes.
  if (start_read) StartRead(&request_);
  if (start_write) {
    StartWrite(&response_, hint ? grpc::WriteOptions().set_buffer_hint() : grpc::WriteOptions());
  }
  if (finish) Finish(finish_status);
}

void PublishStreamReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock l(&mu_);
    write_in_flight_ = false;
    if (!ok) cancelled_ = true;
  }
  Pump();
}

void PublishStreamReactor::OnCancel() {
  HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
  {
    absl::MutexLock l(&mu_);
    cancelled_ = true;
  }
  Pump();
}

void PublishStreamReactor::OnDone() {
  HS_TSAN_ACQUIRE(static_cast<grpc::internal::ServerReactor*>(this));
  Unref();
}

void PublishStreamReactor::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace hookstream::api
