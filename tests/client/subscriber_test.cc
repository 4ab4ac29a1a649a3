// The Subscriber against the real server: in-process and over TCP, and across server drains and
// restarts on one TCP channel (zero gaps, zero duplicates).
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hookstream/client.h"
#include "tests/client/collector.h"
#include "tests/client/restartable_server.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::client::Delivery;
using ::hookstream::client::Notice;
using ::hookstream::client::StartPoint;
using ::hookstream::client::Subscriber;
using ::hookstream::client::SubscriberOptions;
using ::hookstream::testing::Collector;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::Publish;
using ::hookstream::testing::RestartableServer;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

ServerOptions FastServer() {
  ServerOptions o;
  o.hub.session.checkpoint_interval = absl::Milliseconds(50);
  o.hub.tick_period = absl::Milliseconds(10);
  return o;
}

SubscriberOptions Fast(StartPoint start = StartPoint::Beginning()) {
  SubscriberOptions o;
  o.start = std::move(start);
  o.backoff.initial = absl::Milliseconds(10);
  o.backoff.max = absl::Milliseconds(200);
  return o;
}

std::unique_ptr<Subscriber> StartOrDie(std::shared_ptr<grpc::Channel> channel,
                                       SubscriberOptions options) {
  absl::StatusOr<std::unique_ptr<Subscriber>> s = Subscriber::Start(channel, std::move(options));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// Positions strictly increase by one (the filter matches everything), each stream's seqs by one.
void ExpectExactlyPositions(const std::vector<Delivery>& events, uint64_t first, uint64_t last) {
  ASSERT_EQ(events.size(), last - first + 1);
  std::map<std::string, uint64_t> seqs;
  for (size_t i = 0; i < events.size(); ++i) {
    const v1::Event& e = events[i].event;
    ASSERT_EQ(e.position(), first + i) << "gap or duplicate at index " << i;
    auto it = seqs.find(e.stream());
    if (it != seqs.end()) {
      ASSERT_EQ(e.seq(), it->second + 1) << e.stream();
    }
    seqs[e.stream()] = e.seq();
  }
}

class SubscriberTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override { server_ = std::make_unique<TestServer>(GetParam(), FastServer()); }
  v1::EventStream::Stub& stub() { return server_->stub(); }

  std::unique_ptr<TestServer> server_;
};

TEST_P(SubscriberTest, DeliversHistoryThenLiveInOrderToTheCallback) {
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("h/", i % 3))}).ok());
  Collector collector;
  auto sub = StartOrDie(server_->channel(), collector.Attach(Fast()));
  ASSERT_TRUE(collector.WaitUntil(
      [](const Collector::State& s) { return s.CountNotices(Notice::Kind::kCaughtUp) > 0; }));
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("h/", i % 4))}).ok());
  ASSERT_TRUE(collector.WaitForEvents(60));
  const auto state = collector.Snapshot();
  ExpectExactlyPositions(state.events, 1, 60);
  EXPECT_TRUE(state.gaps.empty());
  EXPECT_FALSE(state.error.has_value());
  EXPECT_EQ(sub->stats().delivered, 60u);
  EXPECT_EQ(state.notices.front().kind, Notice::Kind::kSubscribed);
  // The token covers the last event (a later heartbeat may have moved it on, never back).
  sub->Stop();
  testing::SubscribeClient resumed(stub(), testing::FromToken(sub->last_token()));
  ASSERT_TRUE(resumed.WaitForCaughtUp());
  EXPECT_TRUE(resumed.Snapshot().events.empty());
}

TEST_P(SubscriberTest, NextWaitsWithATimeoutAndReturnsCancelledAfterStop) {
  auto sub = StartOrDie(server_->channel(), Fast(StartPoint::Now()));
  EXPECT_TRUE(absl::IsDeadlineExceeded(sub->Next(absl::Milliseconds(30)).status()));
  ASSERT_TRUE(Publish(stub(), {MakeEvent("n/1")}).ok());
  // START_NOW: the event may have been published before the call was accepted. Publish until
  // one arrives.
  absl::StatusOr<Delivery> d = sub->Next(absl::Milliseconds(500));
  while (!d.ok()) {
    ASSERT_TRUE(absl::IsDeadlineExceeded(d.status())) << d.status();
    ASSERT_TRUE(Publish(stub(), {MakeEvent("n/1")}).ok());
    d = sub->Next(absl::Seconds(10));
  }
  EXPECT_EQ(d->event.stream(), "n/1");
  EXPECT_EQ(sub->last_token(), d->resume_token);
  absl::StatusOr<Delivery> blocked;
  std::thread consumer([&] { blocked = sub->Next(); });
  sub->Stop();
  consumer.join();
  EXPECT_TRUE(absl::IsCancelled(blocked.status())) << blocked.status();
  EXPECT_TRUE(absl::IsCancelled(sub->Next().status()));
}

TEST_P(SubscriberTest, FilteredSubscriptionTokenMovesOnWithCheckpoints) {
  Collector collector;
  SubscriberOptions options = Fast(StartPoint::Now());
  options.streams = {"wanted/one"};
  auto sub = StartOrDie(server_->channel(), collector.Attach(options));
  ASSERT_TRUE(collector.WaitUntil(
      [](const Collector::State& s) { return s.CountNotices(Notice::Kind::kCaughtUp) > 0; }));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("noise/x")}).ok());
  ASSERT_TRUE(collector.WaitUntil([](const Collector::State& s) {
    for (const auto& n : s.notices) {
      if (n.kind == Notice::Kind::kCheckpoint && n.position == 20) return true;
    }
    return false;
  }));
  const std::string token = sub->last_token();
  sub.reset();
  ASSERT_TRUE(Publish(stub(), {MakeEvent("noise/x"), MakeEvent("wanted/one")}).ok());
  SubscriberOptions again = Fast(StartPoint::Token(token));
  again.streams = {"wanted/one"};
  auto resumed = StartOrDie(server_->channel(), again);
  absl::StatusOr<Delivery> d = resumed->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.position(), 22u) << "the checkpoint token skipped the 20 noise events";
}

TEST_P(SubscriberTest, IdleSubscriptionStaysOnOneCallThanksToHeartbeats) {
  Collector collector;
  SubscriberOptions options = Fast();
  options.heartbeat_interval = absl::Milliseconds(100);
  options.missed_heartbeats = 3;
  auto sub = StartOrDie(server_->channel(), collector.Attach(options));
  ASSERT_TRUE(collector.WaitUntil(
      [](const Collector::State& s) { return s.CountNotices(Notice::Kind::kHeartbeat) >= 6; }));
  EXPECT_EQ(sub->stats().calls, 1u);
  EXPECT_EQ(collector.Snapshot().CountNotices(Notice::Kind::kDisconnected), 0);
}

TEST_P(SubscriberTest, TokenOfAnotherLogIsFailedPreconditionForTheApplication) {
  ASSERT_TRUE(Publish(stub(), {MakeEvent("a/b")}).ok());
  auto first = StartOrDie(server_->channel(), Fast());
  absl::StatusOr<Delivery> d = first->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok()) << d.status();
  TestServer other(GetParam(), FastServer());
  ASSERT_TRUE(Publish(other.stub(), {MakeEvent("a/b")}).ok());
  Collector collector;
  auto sub =
      StartOrDie(other.channel(), collector.Attach(Fast(StartPoint::Token(d->resume_token))));
  std::optional<absl::Status> error = collector.WaitForError();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(error->message(), HasSubstr("another log"));
  EXPECT_EQ(sub->stats().calls, 1u);
  EXPECT_TRUE(collector.Snapshot().events.empty());
}

TEST_P(SubscriberTest, DamagedTokenIsInvalidArgumentAndNotRetried) {
  auto sub = StartOrDie(server_->channel(), Fast(StartPoint::Token("garbled-token")));
  absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("resume_token"));
  EXPECT_EQ(sub->stats().calls, 1u);
}

INSTANTIATE_TEST_SUITE_P(Transports, SubscriberTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp),
                         [](const auto& info) { return TransportName(info.param); });

TEST(SubscriberRestartTest, ResumesAcrossDrainsAndRestartsWithoutGapsOrDuplicates) {
  RestartableServer server(FastServer());
  auto channel = server.Channel();
  auto stub = v1::EventStream::NewStub(channel);
  Collector collector;
  auto sub = StartOrDie(channel, collector.Attach(Fast()));

  // Publishes `n` events over 5 streams, retrying through the restarts (stable ids).
  int published = 0;
  auto publish = [&](int n) {
    for (int i = 0; i < n; ++i, ++published) {
      v1::EventInput e = MakeEvent(absl::StrCat("r/", published % 5), "t", "x",
                                   absl::StrCat("ev-", published), "restart-test");
      ASSERT_TRUE(server.PublishRetrying(*stub, e));
    }
  };
  publish(100);
  ASSERT_TRUE(collector.WaitForEvents(100));
  server.Restart();  // While idle: the drain ends the call with UNAVAILABLE.
  publish(100);
  ASSERT_TRUE(collector.WaitForEvents(200));
  // While events flow: restart in the middle of a burst.
  std::thread burst([&] { publish(300); });
  ASSERT_TRUE(collector.WaitForEvents(250));
  server.Restart();
  burst.join();
  ASSERT_TRUE(collector.WaitForEvents(500));

  const auto state = collector.Snapshot();
  ExpectExactlyPositions(state.events, 1, 500);
  EXPECT_TRUE(state.gaps.empty()) << state.gaps.front().ToString();
  EXPECT_FALSE(state.error.has_value()) << *state.error;
  EXPECT_GE(state.CountNotices(Notice::Kind::kDisconnected), 2);
  EXPECT_GE(sub->stats().calls, 3u);
}

}  // namespace
}  // namespace hookstream
