// Records what a Subscriber hands to the application in callback form, so a test can wait (with
// a deadline, never a sleep) for what it expects.
#ifndef HOOKSTREAM_TESTS_CLIENT_COLLECTOR_H_
#define HOOKSTREAM_TESTS_CLIENT_COLLECTOR_H_

#include <functional>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hookstream/subscriber.h"

namespace hookstream::testing {

class Collector {
 public:
  struct State {
    std::vector<client::Delivery> events;
    std::vector<client::Gap> gaps;
    std::vector<client::Notice> notices;
    std::optional<absl::Status> error;

    int CountNotices(client::Notice::Kind kind) const {
      int n = 0;
      for (const auto& x : notices) n += x.kind == kind ? 1 : 0;
      return n;
    }
  };

  // Sets the callbacks of `options` to record into this collector.
  client::SubscriberOptions Attach(client::SubscriberOptions options) {
    options.on_event = [this](const client::Delivery& d) {
      absl::MutexLock l(&mu_);
      state_.events.push_back(d);
    };
    options.on_error = [this](const absl::Status& s) {
      absl::MutexLock l(&mu_);
      state_.error = s;
    };
    options.on_gap = [this](const client::Gap& g) {
      absl::MutexLock l(&mu_);
      state_.gaps.push_back(g);
    };
    options.on_notice = [this](const client::Notice& n) {
      absl::MutexLock l(&mu_);
      state_.notices.push_back(n);
    };
    return options;
  }

  bool WaitUntil(const std::function<bool(const State&)>& pred,
                 absl::Duration timeout = absl::Seconds(20)) {
    struct Arg {
      const std::function<bool(const State&)>* pred;
      const State* state;
    };
    absl::MutexLock l(&mu_);
    Arg arg{&pred, &state_};
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](Arg* a) { return (*a->pred)(*a->state); }, &arg),
                                timeout);
  }
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    return WaitUntil([n](const State& s) { return s.events.size() >= n || s.error; }, timeout) &&
           Snapshot().events.size() >= n;
  }
  std::optional<absl::Status> WaitForError(absl::Duration timeout = absl::Seconds(20)) {
    WaitUntil([](const State& s) { return s.error.has_value(); }, timeout);
    return Snapshot().error;
  }
  State Snapshot() {
    absl::MutexLock l(&mu_);
    return state_;
  }

 private:
  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_CLIENT_COLLECTOR_H_
