#include "hookstream/publisher.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backoff.h"
#include "grpc_status.h"

namespace hookstream::client {

bool IsRetryablePublishError(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

std::string Publisher::NewEventId() {
  thread_local absl::BitGen random;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(random),
                         absl::Uniform<uint64_t>(random));
}

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Create(std::shared_ptr<grpc::Channel> channel,
                                                             PublisherOptions options) {
  if (channel == nullptr) return absl::InvalidArgumentError("channel is null");
  if (options.max_batch_events < 1) {
    return absl::InvalidArgumentError("max_batch_events must be at least 1");
  }
  if (options.max_buffered_events < 1) {
    return absl::InvalidArgumentError("max_buffered_events must be at least 1");
  }
  if (options.linger < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("linger must not be negative");
  }
  if (options.attempt_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("attempt_timeout must be positive");
  }
  if (absl::Status s = ValidateBackoff(options.backoff); !s.ok()) return s;
  std::unique_ptr<Publisher> p(new Publisher(std::move(channel), std::move(options)));
  p->worker_ = std::thread([raw = p.get()] { raw->Run(); });
  p->worker_id_ = p->worker_.get_id();
  return p;
}

Publisher::Publisher(std::shared_ptr<grpc::Channel> channel, PublisherOptions options)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::EventStream::NewStub(channel_)) {}

Publisher::~Publisher() { Close(options_.close_timeout).IgnoreError(); }

void Publisher::Publish(v1::EventInput event, PublishCallback done) {
  if (event.id().empty()) event.set_id(NewEventId());
  if (event.source().empty()) event.set_source(options_.default_source);
  Pending pending;
  pending.bytes = event.ByteSizeLong();
  pending.event = std::move(event);
  pending.done = std::move(done);
  {
    absl::MutexLock l(&mu_);
    // The sender's own callbacks must not wait for the sender.
    if (!closing_ && std::this_thread::get_id() != worker_id_) {
      mu_.Await(absl::Condition(
          +[](Publisher* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return p->closing_ ||
                   p->queue_.size() + p->in_flight_ < p->options_.max_buffered_events;
          },
          this));
    }
    if (!closing_) {
      pending.queued = absl::Now();
      queued_bytes_ += pending.bytes;
      ++queued_total_;
      queue_.push_back(std::move(pending));
      return;
    }
    ++stats_.failed;
  }
  pending.done(absl::FailedPreconditionError("the publisher is closed"));
}

std::future<absl::StatusOr<PublishResult>> Publisher::Publish(v1::EventInput event) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<PublishResult>>>();
  std::future<absl::StatusOr<PublishResult>> future = promise->get_future();
  Publish(std::move(event), [promise](absl::StatusOr<PublishResult> result) {
    promise->set_value(std::move(result));
  });
  return future;
}

absl::Status Publisher::Flush(absl::Duration timeout) {
  if (std::this_thread::get_id() == worker_id_) {
    return absl::FailedPreconditionError("Flush() from a publish callback would wait for itself");
  }
  absl::MutexLock l(&mu_);
  // Events published later (by other threads) do not hold this Flush() up.
  struct Arg {
    Publisher* self;
    uint64_t target;
  } arg{this, queued_total_};
  ++flushing_;
  const bool done = mu_.AwaitWithTimeout(absl::Condition(
                                             +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                               return a->self->completed_total_ >= a->target;
                                             },
                                             &arg),
                                         timeout);
  --flushing_;
  if (!done) {
    return absl::DeadlineExceededError(absl::StrCat(arg.target - completed_total_,
                                                    " events still without a result after ",
                                                    absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

absl::Status Publisher::Close(absl::Duration timeout) {
  if (std::this_thread::get_id() == worker_id_) {
    return absl::FailedPreconditionError("Close() from a publish callback would wait for itself");
  }
  size_t cancelled = 0;
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
    const bool done = mu_.AwaitWithTimeout(absl::Condition(
                                               +[](Publisher* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                                 return p->queue_.empty() && p->in_flight_ == 0;
                                               },
                                               this),
                                           timeout);
    if (!done) {
      cancelled = queue_.size() + in_flight_;
      aborting_ = true;
      if (call_ != nullptr) call_->TryCancel();
    }
  }
  std::lock_guard<std::mutex> l(join_mu_);
  if (worker_.joinable()) worker_.join();
  if (cancelled > 0) {
    return absl::DeadlineExceededError(
        absl::StrCat(cancelled, " events were not acknowledged within ",
                     absl::FormatDuration(timeout), " and failed with CANCELLED"));
  }
  return absl::OkStatus();
}

Publisher::Stats Publisher::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

bool Publisher::BatchReadyLocked() const {
  return aborting_ || closing_ || flushing_ > 0 || queue_.size() >= options_.max_batch_events ||
         queued_bytes_ >= options_.max_batch_bytes;
}

void Publisher::Run() {
  while (true) {
    std::vector<Pending> batch;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](Publisher* p)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return p->closing_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // Closing, and nothing left.
      if (options_.linger > absl::ZeroDuration()) {
        // Let the batch fill, for up to `linger` after its oldest event was queued (a batch
        // forms while the previous one is in flight). Flush and Close send at once.
        mu_.AwaitWithDeadline(absl::Condition(this, &Publisher::BatchReadyLocked),
                              queue_.front().queued + options_.linger);
      }
      if (aborting_) {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
        queued_bytes_ = 0;
        in_flight_ = batch.size();
      } else {
        // An event with expected_seq goes alone: its ABORTED must not fail unrelated events.
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < options_.max_batch_events) {
          const Pending& next = queue_.front();
          const bool alone = next.event.has_expected_seq();
          if (!batch.empty() && (alone || bytes + next.bytes > options_.max_batch_bytes)) break;
          bytes += next.bytes;
          queued_bytes_ -= next.bytes;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
          if (alone) break;
        }
        in_flight_ = batch.size();
      }
    }
    bool aborting;
    {
      absl::MutexLock l(&mu_);
      aborting = aborting_;
    }
    const size_t taken = batch.size();
    if (aborting) {
      Complete(batch, absl::CancelledError("the publisher was closed before the event was sent"));
    } else {
      Send(std::move(batch));
    }
    absl::MutexLock l(&mu_);
    in_flight_ = 0;
    completed_total_ += taken;
  }
}

void Publisher::Send(std::vector<Pending> batch) {
  v1::PublishRequest request;
  for (const Pending& p : batch) *request.add_events() = p.event;
  Backoff backoff(options_.backoff);
  const absl::Time give_up = absl::Now() + options_.retry_budget;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    if (options_.configure_context) options_.configure_context(context);
    context.set_wait_for_ready(options_.wait_for_ready);
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.attempt_timeout));
    bool aborted = false;
    {
      absl::MutexLock l(&mu_);
      aborted = aborting_;
      if (!aborted) {
        call_ = &context;
        ++stats_.requests;
        if (attempt > 1) ++stats_.retries;
      }
    }
    if (aborted) {
      Complete(batch, absl::CancelledError(
                          attempt == 1 ? "the publisher was closed before the event was sent"
                                       : "the publisher was closed before the event was "
                                         "acknowledged; it may or may not be stored"));
      return;
    }
    v1::PublishResponse response;
    const grpc::Status grpc_status = stub_->Publish(&context, request, &response);
    bool aborting;
    {
      absl::MutexLock l(&mu_);
      call_ = nullptr;
      aborting = aborting_;
    }
    absl::Status status = FromGrpc(grpc_status);
    if (status.ok()) {
      if (response.results_size() != static_cast<int>(batch.size())) {
        Complete(batch,
                 absl::InternalError(absl::StrCat("the server answered ", response.results_size(),
                                                  " results for ", batch.size(), " events")));
        return;
      }
      {
        absl::MutexLock l(&mu_);
        stats_.acknowledged += batch.size();
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const v1::PublishResult& r = response.results(static_cast<int>(i));
        PublishResult result;
        result.id = r.id().empty() ? batch[i].event.id() : r.id();
        result.position = r.position();
        result.seq = r.seq();
        result.duplicate = r.duplicate();
        result.attempts = attempt;
        batch[i].done(std::move(result));
      }
      return;
    }
    if (aborting) {
      Complete(batch, absl::CancelledError(absl::StrCat(
                          "the publisher was closed before the event was acknowledged; it may "
                          "or may not be stored (last attempt: ",
                          status.ToString(), ")")));
      return;
    }
    if (IsRetryablePublishError(status.code())) {
      const absl::Duration delay = backoff.Next();
      if (absl::Now() + delay <= give_up) {
        absl::MutexLock l(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&aborting_), delay);
        continue;
      }
      status =
          absl::Status(status.code(),
                       absl::StrCat(status.message(), " (gave up after ", attempt, " attempts in ",
                                    absl::FormatDuration(options_.retry_budget), ")"));
    } else if (status.code() == absl::StatusCode::kInvalidArgument && batch.size() > 1) {
      // One bad event fails the whole (atomic) request: send each alone so that only the bad
      // one fails. Order is kept; ids are unchanged, so nothing can be stored twice.
      for (Pending& p : batch) {
        std::vector<Pending> single;
        single.push_back(std::move(p));
        Send(std::move(single));
      }
      return;
    }
    Complete(batch, status);
    return;
  }
}

void Publisher::Complete(std::vector<Pending>& batch, const absl::Status& status) {
  {
    absl::MutexLock l(&mu_);
    stats_.failed += batch.size();
  }
  for (Pending& p : batch) p.done(status);
}

}  // namespace hookstream::client
