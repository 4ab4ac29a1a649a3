// Helpers shared by the JetStream backend's tests (tests/storage/jetstream/): events, a
// synchronous append, a commit listener that records, and a full read of the log.
#ifndef HOOKSTREAM_TESTS_STORAGE_JETSTREAM_JETSTREAM_TEST_UTIL_H_
#define HOOKSTREAM_TESTS_STORAGE_JETSTREAM_JETSTREAM_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/storage/log.h"
#include "tests/storage/append_and_wait.h"

namespace hookstream::storage::jstest {

inline constexpr absl::Duration kWait = absl::Seconds(60);

inline v1::EventInput Ev(absl::string_view stream, absl::string_view id = "",
                         absl::string_view type = "t", absl::string_view source = "src") {
  v1::EventInput e;
  e.set_stream(std::string(stream));
  e.set_id(std::string(id));
  e.set_source(std::string(source));
  e.set_type(std::string(type));
  e.set_data(absl::StrCat("data of ", stream, " ", id));
  return e;
}

using ::hookstream::storage::AppendAndWait;  // tests/storage/append_and_wait.h

// Records what the log's commit listener is told.
class Recorder : public CommitListener {
 public:
  void OnCommit(std::vector<StoredEvent>& events, Position head) override {
    absl::MutexLock l(&mu_);
    for (StoredEvent& e : events) events_.push_back(std::move(e));
    head_ = head;
  }
  std::vector<StoredEvent> events() const {
    absl::MutexLock l(&mu_);
    return events_;
  }
  bool WaitForHead(Position p) const {
    absl::MutexLock l(&mu_);
    auto reached = [this, p]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return head_ >= p; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<StoredEvent> events_ ABSL_GUARDED_BY(mu_);
  Position head_ ABSL_GUARDED_BY(mu_);
};

inline v1::Event Parse(const StoredEvent& e) {
  v1::Event ev;
  EXPECT_TRUE(ev.ParseFromString(e.bytes));
  return ev;
}

inline std::vector<StoredEvent> ReadAll(const Log& log, Position after = Position(0)) {
  std::vector<StoredEvent> out;
  ReadLimits limits;
  limits.max_events = 7;  // Several chunks: the cursor is reused between them.
  while (after < log.head()) {
    absl::StatusOr<ReadChunk> chunk = log.Read(after, limits, [](auto, auto) { return true; });
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok()) break;
    EXPECT_GT(chunk->scanned_through, after);
    if (chunk->scanned_through <= after) break;
    for (StoredEvent& e : chunk->events) out.push_back(std::move(e));
    after = chunk->scanned_through;
  }
  return out;
}

}  // namespace hookstream::storage::jstest

#endif  // HOOKSTREAM_TESTS_STORAGE_JETSTREAM_JETSTREAM_TEST_UTIL_H_
