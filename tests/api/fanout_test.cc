// Fan-out at scale: ten thousand concurrent subscriptions, each on its own stream, held with
// the callback client API (no thread per subscription).
#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/client_callback.h"
#include "gtest/gtest.h"
#include "server/common/tsan_annotations.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;

// One subscription, driven by gRPC's callback API; records the streams of the events it gets.
class Reader : public grpc::ClientReadReactor<v1::SubscribeResponse> {
 public:
  Reader(v1::EventStream::Stub& stub, const std::string& stream, std::atomic<int>* caught_up,
         std::atomic<int>* done)
      : caught_up_(caught_up), done_(done) {
    request_.add_streams(stream);
    stub.async()->Subscribe(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_caught_up()) ++*caught_up_;
    if (response_.has_events()) {
      absl::MutexLock l(&mu_);
      for (const auto& e : response_.events().events()) {
        events_.push_back(std::make_pair(e.event().stream(), e.event().seq()));
      }
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& s) override {
    HS_TSAN_ACQUIRE(static_cast<grpc::internal::ClientReactor*>(this));
    absl::MutexLock l(&mu_);
    status_ = s;
    ++*done_;
  }
  void Cancel() { context_.TryCancel(); }
  std::vector<std::pair<std::string, uint64_t>> events() {
    absl::MutexLock l(&mu_);
    return events_;
  }
  size_t count() {
    absl::MutexLock l(&mu_);
    return events_.size();
  }

 private:
  grpc::ClientContext context_;
  v1::SubscribeRequest request_;
  v1::SubscribeResponse response_;
  std::atomic<int>* caught_up_;
  std::atomic<int>* done_;
  absl::Mutex mu_;
  std::vector<std::pair<std::string, uint64_t>> events_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

template <typename F>
bool WaitFor(F pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));  // Polling a condition, with a deadline.
  }
  return true;
}

TEST(FanoutTest, TenThousandSingleStreamSubscribersReceiveExactlyTheirEvents) {
  constexpr int kSubscribers = 10000;
  TestServer server(Transport::kInProcess);
  std::atomic<int> caught_up{0};
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<Reader>> readers;
  readers.reserve(kSubscribers);
  for (int i = 0; i < kSubscribers; ++i) {
    readers.push_back(std::make_unique<Reader>(server.stub(), absl::StrCat("fan/", i), &caught_up,
                                               &done));
  }
  ASSERT_TRUE(WaitFor([&] { return caught_up.load() == kSubscribers; }, absl::Seconds(120)))
      << caught_up.load() << " of " << kSubscribers << " subscriptions are live";
  EXPECT_EQ(server.server().hub()->session_count(), static_cast<size_t>(kSubscribers));

  // Two events for every stream, published in batches across streams.
  for (int round = 0; round < 2; ++round) {
    for (int first = 0; first < kSubscribers; first += 500) {
      std::vector<v1::EventInput> batch;
      for (int i = first; i < first + 500; ++i) batch.push_back(MakeEvent(absl::StrCat("fan/", i)));
      ASSERT_TRUE(testing::Publish(server.stub(), batch).ok());
    }
  }
  // Plus events nobody subscribed to.
  ASSERT_TRUE(testing::Publish(server.stub(), {MakeEvent("fan/none"), MakeEvent("other")}).ok());

  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& r : readers) {
          if (r->count() < 2) return false;
        }
        return true;
      },
      absl::Seconds(120)));
  for (int i = 0; i < kSubscribers; ++i) {
    auto events = readers[i]->events();
    ASSERT_EQ(events.size(), 2u) << "subscriber " << i;
    EXPECT_EQ(events[0], std::make_pair(absl::StrCat("fan/", i), uint64_t{1}));
    EXPECT_EQ(events[1], std::make_pair(absl::StrCat("fan/", i), uint64_t{2}));
  }
  for (auto& r : readers) r->Cancel();
  ASSERT_TRUE(WaitFor([&] { return done.load() == kSubscribers; }, absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return server.server().hub()->session_count() == 0; },
                      absl::Seconds(30)))
      << "every cancelled subscription leaves the hub";
}

}  // namespace
}  // namespace hookstream
