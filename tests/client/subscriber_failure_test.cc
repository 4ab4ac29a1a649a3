// The Subscriber's failure handling against a scripted server: which endings are retried and
// from which token, which reach the application, the heartbeat watchdog, and the continuity
// check. The real server cannot produce these on demand (OUT_OF_RANGE needs retention, a silent
// server or a seq break needs a bug).
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hookstream/subscriber.h"
#include "tests/client/collector.h"
#include "tests/client/fake_event_stream.h"

namespace hookstream {
namespace {

using ::hookstream::client::Delivery;
using ::hookstream::client::Gap;
using ::hookstream::client::Notice;
using ::hookstream::client::StartPoint;
using ::hookstream::client::Subscriber;
using ::hookstream::client::SubscriberOptions;
using ::hookstream::testing::CheckpointMessage;
using ::hookstream::testing::Collector;
using ::hookstream::testing::Delivered;
using ::hookstream::testing::Events;
using ::hookstream::testing::FakeEventStream;
using ::hookstream::testing::GapMessage;
using ::hookstream::testing::HeartbeatMessage;
using ::hookstream::testing::Subscribed;
using ::testing::HasSubstr;

SubscriberOptions Fast() {
  SubscriberOptions o;
  o.start = StartPoint::Beginning();
  o.backoff.initial = absl::Milliseconds(5);
  o.backoff.max = absl::Milliseconds(50);
  return o;
}

std::unique_ptr<Subscriber> StartOrDie(std::shared_ptr<grpc::Channel> channel,
                                       SubscriberOptions options) {
  absl::StatusOr<std::unique_ptr<Subscriber>> s = Subscriber::Start(channel, std::move(options));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

std::vector<uint64_t> Positions(const std::vector<Delivery>& events) {
  std::vector<uint64_t> out;
  for (const auto& d : events) out.push_back(d.event.position());
  return out;
}

// Blocks the call until the fake shuts down (the client's cancel is not visible to a sync
// handler); the test ends it.
grpc::Status Hold(FakeEventStream& fake) {
  fake.WaitFor("never", absl::Seconds(60));
  return grpc::Status::OK;
}

class TerminalStatusTest : public ::testing::TestWithParam<grpc::StatusCode> {};

TEST_P(TerminalStatusTest, ReachesTheApplicationAfterTheEventsBeforeItAndIsNotRetried) {
  const grpc::StatusCode code = GetParam();
  FakeEventStream fake(
      [code](int call, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream&) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 2, 2)}));
        return grpc::Status(code, "scripted failure");
      });
  auto sub = StartOrDie(fake.channel(), Fast());
  absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.position(), 1u);
  d = sub->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->event.position(), 2u);
  d = sub->Next(absl::Seconds(10));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(static_cast<int>(d.status().code()), static_cast<int>(code));
  EXPECT_THAT(d.status().message(), HasSubstr("scripted failure"));
  EXPECT_EQ(sub->Next(absl::Milliseconds(1)).status(), d.status()) << "the error stays";
  EXPECT_EQ(sub->last_token(), "t2") << "the events before the error were delivered";
  EXPECT_EQ(sub->stats().calls, 1u) << "a terminal error is never retried";
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST_P(TerminalStatusTest, GoesToOnErrorInCallbackForm) {
  const grpc::StatusCode code = GetParam();
  FakeEventStream fake(
      [code](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream&) {
        w.Write(Subscribed());
        return grpc::Status(code, "scripted failure");
      });
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(Fast()));
  std::optional<absl::Status> error = collector.WaitForError();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(static_cast<int>(error->code()), static_cast<int>(code));
  EXPECT_EQ(fake.requests().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Codes, TerminalStatusTest,
    ::testing::Values(grpc::StatusCode::OUT_OF_RANGE, grpc::StatusCode::FAILED_PRECONDITION,
                      grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::PERMISSION_DENIED,
                      grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNIMPLEMENTED,
                      grpc::StatusCode::DATA_LOSS),
    [](const auto& info) { return absl::StrCat("Code", static_cast<int>(info.param)); });

class RetryableStatusTest : public ::testing::TestWithParam<grpc::StatusCode> {};

TEST_P(RetryableStatusTest, ResumesFromTheTokenOfTheLastDeliveredEvent) {
  const grpc::StatusCode code = GetParam();
  FakeEventStream fake([code](int call, const v1::SubscribeRequest& r, FakeEventStream::Writer& w,
                              FakeEventStream& f) {
    w.Write(Subscribed());
    if (call == 0) {
      w.Write(Events({Delivered("a", 1, 1), Delivered("a", 2, 2), Delivered("a", 3, 3)}));
      // Two of three are delivered when the call breaks; the third was only received.
      f.WaitFor("two delivered");
      return grpc::Status(code, "scripted break");
    }
    const int after = std::stoi(r.resume_token().substr(1));
    for (int i = after + 1; i <= 4; ++i) w.Write(Events({Delivered("a", i, i)}));
    return Hold(f);
  });
  Collector notices;  // Only its notice recorder is used (pull form).
  SubscriberOptions options = Fast();
  options.on_notice = notices.Attach(SubscriberOptions()).on_notice;
  auto sub = StartOrDie(fake.channel(), options);
  std::vector<Delivery> got;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
    ASSERT_TRUE(d.ok()) << d.status();
    got.push_back(*d);
  }
  fake.Release("two delivered");
  // Consume nothing more until the Subscriber has resumed: event 3 stays undelivered.
  ASSERT_TRUE(fake.WaitForCalls(2));
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
    ASSERT_TRUE(d.ok()) << d.status();
    got.push_back(*d);
  }
  EXPECT_EQ(Positions(got), (std::vector<uint64_t>{1, 2, 3, 4})) << "no gap, no duplicate";
  const auto requests = fake.requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].from(), v1::SubscribeRequest::START_BEGINNING);
  EXPECT_EQ(requests[1].resume_token(), "t2") << "the last delivered event, not the last received";
  // The disconnect was reported, with its cause.
  ASSERT_TRUE(notices.WaitUntil(
      [](const Collector::State& s) { return s.CountNotices(Notice::Kind::kDisconnected) > 0; }));
  for (const Notice& n : notices.Snapshot().notices) {
    if (n.kind != Notice::Kind::kDisconnected) continue;
    if (code != grpc::StatusCode::OK) {
      EXPECT_EQ(static_cast<int>(n.status.code()), static_cast<int>(code));
    }
    EXPECT_EQ(n.attempt, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Codes, RetryableStatusTest,
    ::testing::Values(grpc::StatusCode::OK, grpc::StatusCode::UNAVAILABLE,
                      grpc::StatusCode::CANCELLED, grpc::StatusCode::RESOURCE_EXHAUSTED,
                      grpc::StatusCode::ABORTED, grpc::StatusCode::INTERNAL,
                      grpc::StatusCode::UNKNOWN, grpc::StatusCode::DEADLINE_EXCEEDED),
    [](const auto& info) { return absl::StrCat("Code", static_cast<int>(info.param)); });

TEST(SubscriberFailureTest, WithoutATokenYetARetryUsesTheOriginalStartPoint) {
  FakeEventStream fake(
      [](int call, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        if (call < 2) {
          // Received, never delivered: the application did not ask yet.
          w.Write(Events({Delivered("a", 1, 1)}));
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "drain");
        }
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 2, 2)}));
        return Hold(f);
      });
  SubscriberOptions options = Fast();
  options.streams = {"a", "b/>"};
  options.types = {"x.*"};
  options.max_batch_events = 7;
  options.heartbeat_interval = absl::Milliseconds(1500);
  auto sub = StartOrDie(fake.channel(), options);
  ASSERT_TRUE(fake.WaitForCalls(3));
  absl::StatusOr<Delivery> d1 = sub->Next(absl::Seconds(10));
  absl::StatusOr<Delivery> d2 = sub->Next(absl::Seconds(10));
  ASSERT_TRUE(d1.ok() && d2.ok());
  EXPECT_EQ(d1->event.position(), 1u);
  EXPECT_EQ(d2->event.position(), 2u);
  for (const v1::SubscribeRequest& r : fake.requests()) {
    EXPECT_EQ(r.from(), v1::SubscribeRequest::START_BEGINNING);
    EXPECT_THAT(r.streams(), ::testing::ElementsAre("a", "b/>"));
    EXPECT_THAT(r.types(), ::testing::ElementsAre("x.*"));
    EXPECT_EQ(r.max_batch_events(), 7u);
    EXPECT_EQ(r.heartbeat_interval().seconds(), 1);
    EXPECT_EQ(r.heartbeat_interval().nanos(), 500'000'000);
  }
}

TEST(SubscriberFailureTest, MissedHeartbeatsCancelTheCallAndResume) {
  FakeEventStream fake(
      [](int call, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", call + 1, call + 1)}));
        return Hold(f);  // Then silence: no heartbeat, no end.
      });
  SubscriberOptions options = Fast();
  options.heartbeat_interval = absl::Milliseconds(100);
  options.missed_heartbeats = 3;
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(options));
  ASSERT_TRUE(collector.WaitForEvents(2));
  const auto state = collector.Snapshot();
  EXPECT_EQ(Positions(state.events), (std::vector<uint64_t>{1, 2}));
  const auto requests = fake.requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[1].resume_token(), "t1");
  bool reported = false;
  for (const Notice& n : state.notices) {
    if (n.kind == Notice::Kind::kDisconnected) {
      reported = true;
      EXPECT_THAT(n.status.message(), HasSubstr("heartbeat"));
    }
  }
  EXPECT_TRUE(reported);
}

TEST(SubscriberFailureTest, ControlTokensNeverMoveThePersistedTokenPastAnUndeliveredEvent) {
  FakeEventStream fake(
      [](int call, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 2, 2)}));
        w.Write(CheckpointMessage("c9", 9));
        f.WaitFor("heartbeat");
        w.Write(HeartbeatMessage("h10"));
        return Hold(f);
      });
  SubscriberOptions options = Fast();
  int heartbeats = 0;
  int checkpoints = 0;
  options.on_notice = [&](const Notice& n) {
    heartbeats += n.kind == Notice::Kind::kHeartbeat ? 1 : 0;
    checkpoints += n.kind == Notice::Kind::kCheckpoint ? 1 : 0;
  };
  auto sub = StartOrDie(fake.channel(), options);
  absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(sub->last_token(), "t1") << "the checkpoint behind event 2 covers it: not yet";
  d = sub->Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok());
  // Notices are handed out inside Next(): call it until the checkpoint has been seen.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (checkpoints == 0 && absl::Now() < deadline) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(sub->Next(absl::Milliseconds(20)).status()));
  }
  EXPECT_EQ(sub->last_token(), "c9") << "nothing undelivered before it";
  fake.Release("heartbeat");
  while (heartbeats == 0 && absl::Now() < deadline) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(sub->Next(absl::Milliseconds(20)).status()));
  }
  EXPECT_EQ(sub->last_token(), "h10");
}

TEST(SubscriberFailureTest, SeqBreakGoesToOnGapBeforeTheEvent) {
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 2, 2), Delivered("b", 7, 3),
                        Delivered("a", 4, 4), Delivered("a", 4, 5), Delivered("b", 8, 6)}));
        return Hold(f);
      });
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(Fast()));
  ASSERT_TRUE(collector.WaitForEvents(6));
  const auto state = collector.Snapshot();
  EXPECT_EQ(Positions(state.events), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}))
      << "reported, then delivered: the application decides";
  ASSERT_EQ(state.gaps.size(), 2u);
  EXPECT_EQ(state.gaps[0].kind, Gap::Kind::kSeqBreak);
  EXPECT_EQ(state.gaps[0].stream, "a");
  EXPECT_EQ(state.gaps[0].expected_seq, 3u);
  EXPECT_EQ(state.gaps[0].got_seq, 4u);
  EXPECT_THAT(state.gaps[0].ToString(), HasSubstr("seq 3..3 missing"));
  EXPECT_EQ(state.gaps[1].expected_seq, 5u) << "a repeat is a break too";
  EXPECT_EQ(state.gaps[1].got_seq, 4u);
  EXPECT_EQ(sub->stats().seq_breaks, 2u);
}

TEST(SubscriberFailureTest, SeqBreakWithoutOnGapEndsWithDataLossInsteadOfSkipping) {
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 3, 2)}));
        return Hold(f);
      });
  auto sub = StartOrDie(fake.channel(), Fast());
  ASSERT_TRUE(sub->Next(absl::Seconds(10)).ok());
  absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("stream a"));
  EXPECT_EQ(sub->last_token(), "t1") << "the event after the break was not delivered";
}

TEST(SubscriberFailureTest, ContinuityIsNotCheckedWhenTypesSelectPartOfAStream) {
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1), Delivered("a", 5, 5)}));
        return Hold(f);
      });
  SubscriberOptions options = Fast();
  options.types = {"t"};
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(options));
  ASSERT_TRUE(collector.WaitForEvents(2));
  EXPECT_TRUE(collector.Snapshot().gaps.empty());
}

TEST(SubscriberFailureTest, ServerGapIsReportedAndRestartsContinuity) {
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest& r, FakeEventStream::Writer& w, FakeEventStream& f) {
        EXPECT_EQ(r.on_expired(), v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST);
        w.Write(Subscribed());
        w.Write(Events({Delivered("a", 1, 1)}));
        w.Write(GapMessage(1, 9));
        w.Write(Events({Delivered("a", 11, 10)}));
        return Hold(f);
      });
  SubscriberOptions options = Fast();
  options.on_expired = v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST;
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(options));
  ASSERT_TRUE(collector.WaitForEvents(2));
  const auto state = collector.Snapshot();
  ASSERT_EQ(state.gaps.size(), 1u);
  EXPECT_EQ(state.gaps[0].kind, Gap::Kind::kServerGap);
  EXPECT_EQ(state.gaps[0].from_position, 1u);
  EXPECT_EQ(state.gaps[0].to_position, 9u);
}

TEST(SubscriberFailureTest, FullBufferPausesReadingWithoutTrippingTheWatchdog) {
  // Serves positions 1..50 after the request's token, then goes silent.
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest& r, FakeEventStream::Writer& w, FakeEventStream& f) {
        const int after = r.resume_token().empty() ? 0 : std::stoi(r.resume_token().substr(1));
        w.Write(Subscribed());
        for (int i = after + 1; i <= 50; ++i) w.Write(Events({Delivered("a", i, i)}));
        return Hold(f);
      });
  SubscriberOptions options = Fast();
  options.max_buffered_events = 4;
  options.heartbeat_interval = absl::Milliseconds(100);
  options.missed_heartbeats = 1;
  auto sub = StartOrDie(fake.channel(), options);
  ASSERT_TRUE(sub->Next(absl::Seconds(10)).ok());
  // The application now takes its time. A probe on a silent server measures it: its watchdog
  // (5 x 100 ms) fires only after the paused subscriber's own (100 ms) would have.
  FakeEventStream silent(
      [](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        return Hold(f);
      });
  SubscriberOptions probe_options = Fast();
  probe_options.heartbeat_interval = absl::Milliseconds(100);
  probe_options.missed_heartbeats = 5;
  auto probe = StartOrDie(silent.channel(), probe_options);
  ASSERT_TRUE(silent.WaitForCalls(2)) << "the probe's watchdog fires after 500 ms";
  EXPECT_EQ(fake.requests().size(), 1u) << "a read paused for buffer space is not a dead server";
  for (int i = 2; i <= 50; ++i) {
    absl::StatusOr<Delivery> d = sub->Next(absl::Seconds(10));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->event.position(), static_cast<uint64_t>(i));
  }
}

TEST(SubscriberFailureTest, ConcurrentNextCallsEachKeepTheirOwnTimeout) {
  FakeEventStream fake(
      [](int, const v1::SubscribeRequest&, FakeEventStream::Writer& w, FakeEventStream& f) {
        w.Write(Subscribed());
        f.WaitFor("send");
        w.Write(Events({Delivered("a", 1, 1)}));
        return Hold(f);
      });
  auto sub = StartOrDie(fake.channel(), Fast());
  absl::StatusOr<Delivery> waiting;
  absl::Notification done;
  std::thread patient([&] {
    waiting = sub->Next();
    done.Notify();
  });
  // Whether or not the patient consumer is inside Next() already, this one must time out.
  EXPECT_TRUE(absl::IsDeadlineExceeded(sub->Next(absl::Milliseconds(50)).status()));
  fake.Release("send");
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  patient.join();
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->event.position(), 1u);
}

TEST(SubscriberFailureTest, BadOptionsAreRejected) {
  FakeEventStream fake([](int, const v1::SubscribeRequest&, FakeEventStream::Writer&,
                          FakeEventStream& f) { return grpc::Status::OK; });
  SubscriberOptions no_error = Fast();
  no_error.on_event = [](const Delivery&) {};
  EXPECT_EQ(Subscriber::Start(fake.channel(), no_error).status().code(),
            absl::StatusCode::kInvalidArgument);
  SubscriberOptions bad_backoff = Fast();
  bad_backoff.backoff.jitter = 2;
  EXPECT_EQ(Subscriber::Start(fake.channel(), bad_backoff).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Subscriber::Start(nullptr, Fast()).status().code(), absl::StatusCode::kInvalidArgument);
  SubscriberOptions callback = Fast();
  Collector collector;
  auto sub = StartOrDie(fake.channel(), collector.Attach(callback));
  EXPECT_EQ(sub->Next(absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace hookstream
