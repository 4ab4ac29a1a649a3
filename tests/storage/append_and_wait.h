// Appends through the Log interface and waits for the outcome: the storage tests' common step.
#ifndef HOOKSTREAM_TESTS_STORAGE_APPEND_AND_WAIT_H_
#define HOOKSTREAM_TESTS_STORAGE_APPEND_AND_WAIT_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/storage/log.h"

namespace hookstream::storage {

// The callback runs on the log's appender thread; a log that never answers within a minute
// fails the append instead of hanging the test.
inline absl::StatusOr<v1::PublishResponse> AppendAndWait(Log& log,
                                                         std::vector<v1::EventInput> events) {
  struct State {
    absl::Notification done;
    absl::StatusOr<v1::PublishResponse> result;
  };
  auto state = std::make_shared<State>();
  log.Append(std::move(events), [state](absl::StatusOr<v1::PublishResponse> r) {
    state->result = std::move(r);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    return absl::DeadlineExceededError("append callback never ran");
  }
  return state->result;
}

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_TESTS_STORAGE_APPEND_AND_WAIT_H_
