// A storage::Log test double that holds appends: it wraps a real log, counts every Append handed
// to it (requests and events) and, while holding, keeps them, callbacks uncalled, until Release()
// hands them to the real log in arrival order. Lets a test see exactly how far a caller reads
// ahead of its answers, then let the answers come as one burst. Everything else is forwarded.
//
// Thread-safe. Appends are forwarded under the same lock they are counted under, so the real
// log receives them in the order they arrived, also when a released append's callback triggers
// a new Append on another thread while Release is still forwarding.
#ifndef HOOKSTREAM_TESTS_TESTUTIL_HOLDING_LOG_H_
#define HOOKSTREAM_TESTS_TESTUTIL_HOLDING_LOG_H_

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/storage/log.h"
#include "tests/testutil/forwarding_log.h"

namespace hookstream::testing {

class HoldingLog final : public ForwardingLog {
 public:
  explicit HoldingLog(std::unique_ptr<storage::Log> inner) : ForwardingLog(std::move(inner)) {}
  // Held appends go to the real log (which answers them, or fails them if closed).
  ~HoldingLog() override { Release(); }

  // Appends from now on are held.
  void Hold() {
    absl::MutexLock l(&mu_);
    holding_ = true;
  }
  // Hands every held append to the real log, in arrival order; later appends pass through.
  void Release() {
    absl::MutexLock l(&mu_);
    holding_ = false;
    for (Held& h : held_) inner_->Append(std::move(h.events), std::move(h.done));
    held_.clear();
  }
  // Hands the oldest held append to the real log and keeps holding the rest; false when none
  // is held.
  bool ReleaseOldest() {
    absl::MutexLock l(&mu_);
    if (held_.empty()) return false;
    inner_->Append(std::move(held_.front().events), std::move(held_.front().done));
    held_.pop_front();
    return true;
  }
  // Appends handed to this log so far (held or not), and the events in them.
  size_t appends() const {
    absl::MutexLock l(&mu_);
    return appends_;
  }
  size_t events() const {
    absl::MutexLock l(&mu_);
    return events_;
  }
  // Waits until at least `n` appends were handed over; false on timeout.
  bool WaitForAppends(size_t n, absl::Duration timeout) const {
    absl::MutexLock l(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return appends_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  void Append(std::vector<v1::EventInput> events, storage::AppendCallback done) override {
    absl::MutexLock l(&mu_);
    ++appends_;
    events_ += events.size();
    if (holding_) {
      held_.push_back(Held{std::move(events), std::move(done)});
    } else {
      inner_->Append(std::move(events), std::move(done));
    }
  }

  void Close() override {
    Release();
    inner_->Close();
  }

 private:
  struct Held {
    std::vector<v1::EventInput> events;
    storage::AppendCallback done;
  };

  mutable absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  size_t appends_ ABSL_GUARDED_BY(mu_) = 0;
  size_t events_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_HOLDING_LOG_H_
