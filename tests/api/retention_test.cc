// Retention and explicit expiry (DESIGN.md §3.7): trimmed history is never skipped silently.
#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::FromToken;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::Publish;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

class RetentionTest : public ::testing::TestWithParam<Transport> {
 protected:
  // Retention by age with a manual clock; passes run only when the test calls Trim().
  std::unique_ptr<TestServer> StartServer(bool keep_last = false) {
    ServerOptions o;
    o.log.clock = &clock_;
    o.hub.clock = &clock_;
    o.log.retention.max_age = absl::Hours(1);
    o.log.retention.keep_last_per_stream = keep_last;
    o.log.retention.check_interval = absl::Hours(24);
    o.hub.ring_bytes = 1;  // Catch-ups read disk, where retention acts.
    return std::make_unique<TestServer>(GetParam(), o);
  }
  // Publishes `n` events at the current (manual) time; returns the token of the last one.
  std::string PublishAt(TestServer& s, int n, const std::string& prefix = "ret/") {
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(Publish(s.stub(), {MakeEvent(absl::StrCat(prefix, i % 3))}).ok());
    }
    return s.server().hub()->tokens().Encode(s.server().log()->head());
  }
  uint64_t Trim(TestServer& s) {
    absl::StatusOr<uint64_t> removed = s.server().log()->Trim();
    EXPECT_TRUE(removed.ok()) << removed.status();
    return removed.value_or(0);
  }

  ManualClock clock_;
};

TEST_P(RetentionTest, TokenOlderThanRetentionFailsWithOutOfRangeNamingTheOldestPosition) {
  auto s = StartServer();
  PublishAt(*s, 10);
  const std::string old_token = s->server().hub()->tokens().Encode(Position(9));
  clock_.Advance(absl::Hours(2));
  PublishAt(*s, 5);  // Positions 11-15, fresh.
  ASSERT_EQ(Trim(*s), 10u);

  SubscribeClient sub(s->stub(), FromToken(old_token));
  grpc::Status status = sub.WaitForFinish();
  ASSERT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("oldest retained position is 11"));
  v1::ErrorStatus rich;
  ASSERT_TRUE(rich.ParseFromString(status.error_details()));
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), "type.googleapis.com/hookstream.v1.ExpiredDetail");
  v1::ExpiredDetail detail;
  ASSERT_TRUE(rich.details(0).UnpackTo(&detail));
  EXPECT_EQ(detail.oldest_position(), 11u);
  EXPECT_EQ(detail.expired_through(), 10u);

  // A token at the horizon itself is still good: nothing after it was deleted.
  SubscribeClient at_horizon(s->stub(), FromToken(s->server().hub()->tokens().Encode(Position(10))));
  ASSERT_TRUE(at_horizon.WaitForEvents(5));
  EXPECT_EQ(at_horizon.Snapshot().events.front().event().position(), 11u);
}

TEST_P(RetentionTest, RestartFromOldestSendsAGapThenContinuesWithWhatIsLeft) {
  auto s = StartServer();
  PublishAt(*s, 3);
  const std::string old_token = s->server().hub()->tokens().Encode(Position(2));
  PublishAt(*s, 7);
  clock_.Advance(absl::Hours(2));
  PublishAt(*s, 4);  // 11-14.
  ASSERT_EQ(Trim(*s), 10u);
  v1::SubscribeRequest req = FromToken(old_token);
  req.set_on_expired(v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST);
  SubscribeClient sub(s->stub(), req);
  ASSERT_TRUE(sub.WaitForEvents(4));
  auto st = sub.Snapshot();
  ASSERT_GE(st.messages.size(), 3u);
  ASSERT_TRUE(st.messages[1].has_gap()) << "the gap comes before any event";
  EXPECT_EQ(st.messages[1].gap().from_position(), 2u);
  EXPECT_EQ(st.messages[1].gap().to_position(), 10u);
  EXPECT_EQ(st.events.front().event().position(), 11u);
  EXPECT_EQ(st.events.size(), 4u);
}

TEST_P(RetentionTest, FromTimeStartsAtTheFirstEventIngestedAtOrAfterIt) {
  auto s = StartServer();
  PublishAt(*s, 6);
  clock_.Advance(absl::Minutes(10));
  const absl::Time later = clock_.Now();
  PublishAt(*s, 4, "later/");
  v1::SubscribeRequest req;
  *req.mutable_from_time() = ToProto(later);
  SubscribeClient sub(s->stub(), req);
  ASSERT_TRUE(sub.WaitForCaughtUp());
  auto st = sub.Snapshot();
  ASSERT_EQ(st.events.size(), 4u);
  EXPECT_EQ(st.events.front().event().position(), 7u);
  v1::SubscribeRequest all;
  *all.mutable_from_time() = ToProto(later - absl::Hours(100));
  SubscribeClient everything(s->stub(), all);
  ASSERT_TRUE(everything.WaitForCaughtUp());
  EXPECT_EQ(everything.Snapshot().events.size(), 10u) << "nothing was trimmed: all of it";
  v1::SubscribeRequest future;
  *future.mutable_from_time() = ToProto(later + absl::Hours(1));
  SubscribeClient none(s->stub(), future);
  ASSERT_TRUE(none.WaitForCaughtUp());
  EXPECT_TRUE(none.Snapshot().events.empty());
}

TEST_P(RetentionTest, FromTimeInsideTrimmedHistoryIsOutOfRange) {
  auto s = StartServer();
  const absl::Time start = clock_.Now();
  PublishAt(*s, 5);
  clock_.Advance(absl::Hours(2));
  PublishAt(*s, 5);
  ASSERT_EQ(Trim(*s), 5u);
  v1::SubscribeRequest req;
  *req.mutable_from_time() = ToProto(start);
  SubscribeClient sub(s->stub(), req);
  EXPECT_EQ(sub.WaitForFinish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  *req.mutable_from_time() = ToProto(clock_.Now());
  SubscribeClient fresh(s->stub(), req);
  ASSERT_TRUE(fresh.WaitForCaughtUp());
  EXPECT_EQ(fresh.Snapshot().events.size(), 5u);
}

TEST_P(RetentionTest, KeepLastPerStreamKeepsTheLatestEventOfEveryStream) {
  auto s = StartServer(/*keep_last=*/true);
  PublishAt(*s, 9, "keep/");  // Streams keep/0..2, three events each; heads at 7, 8, 9.
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(Trim(*s), 6u);
  grpc::ClientContext ctx;
  v1::GetStreamRequest get;
  get.set_stream("keep/1");
  v1::StreamInfo info;
  ASSERT_TRUE(s->stub().GetStream(&ctx, get, &info).ok());
  EXPECT_EQ(info.event_count(), 1u);
  EXPECT_EQ(info.first_seq(), 3u);
  EXPECT_EQ(info.head_seq(), 3u);
  SubscribeClient sub(s->stub(), FromBeginning());
  ASSERT_TRUE(sub.WaitForCaughtUp());
  auto st = sub.Snapshot();
  ASSERT_EQ(st.events.size(), 3u);
  EXPECT_EQ(st.events[0].event().position(), 7u);
  EXPECT_EQ(st.events[2].event().position(), 9u);
  // The next publish continues the stream's seqs.
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(s->stub(), {MakeEvent("keep/1")}, &resp).ok());
  EXPECT_EQ(resp.results(0).seq(), 4u);
}

TEST_P(RetentionTest, CatchingUpSubscriberOvertakenByRetentionIsToldNeverSkipped) {
  for (bool restart : {false, true}) {
    auto s = StartServer();
    // 20 MB: more than gRPC's flow-control windows hold, so the server is still reading
    // history when retention strikes.
    for (int i = 0; i < 200; ++i) {
      std::vector<v1::EventInput> batch(100, MakeEvent("bulk/a", "t", std::string(1000, 'b')));
      ASSERT_TRUE(Publish(s->stub(), batch).ok());
    }
    v1::SubscribeRequest req = FromBeginning();
    req.set_max_batch_events(10);
    if (restart) req.set_on_expired(v1::SubscribeRequest::EXPIRED_RESTART_FROM_OLDEST);
    SubscribeClient sub(s->stub(), req);
    ASSERT_TRUE(sub.WaitForEvents(10));
    sub.Pause();
    clock_.Advance(absl::Hours(2));
    PublishAt(*s, 3);  // 20001-20003 stay.
    ASSERT_EQ(Trim(*s), 20000u);
    sub.Resume();
    if (!restart) {
      EXPECT_EQ(sub.WaitForFinish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
      auto st = sub.Snapshot();
      for (size_t i = 0; i < st.events.size(); ++i) {
        ASSERT_EQ(st.events[i].event().position(), i + 1) << "no silent skip before the error";
      }
    } else {
      const bool done = sub.WaitUntil([](const SubscribeClient::State& st) {
        return !st.events.empty() && st.events.back().event().position() == 20003;
      });
      auto st = sub.Snapshot();
      ASSERT_TRUE(done) << st.events.size() << " events, last message: "
                        << st.messages.back().ShortDebugString().substr(0, 300);
      uint64_t expect = 1;
      bool gap_seen = false;
      for (const auto& m : st.messages) {
        if (m.has_gap()) {
          EXPECT_EQ(m.gap().from_position(), expect - 1);
          EXPECT_EQ(m.gap().to_position(), 20000u);
          expect = m.gap().to_position() + 1;
          gap_seen = true;
        }
        if (m.has_events()) {
          for (const auto& e : m.events().events()) {
            ASSERT_EQ(e.event().position(), expect) << "events continue exactly after the gap";
            ++expect;
          }
        }
      }
      EXPECT_TRUE(gap_seen);
    }
    s->Stop();
  }
}

TEST_P(RetentionTest, MaxEventsPerStreamKeepsTheNewestOfEachStreamAndExpiresOlderTokens) {
  ServerOptions o;
  o.log.clock = &clock_;
  o.hub.clock = &clock_;
  o.log.retention.max_events_per_stream = 3;
  o.log.retention.check_interval = absl::Hours(24);
  TestServer s(GetParam(), o);
  // busy/a gets 10 events, quiet/b 2, interleaved: positions 1..12.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Publish(s.stub(), {MakeEvent("busy/a")}).ok());
    if (i % 5 == 0) {
      ASSERT_TRUE(Publish(s.stub(), {MakeEvent("quiet/b")}).ok());
    }
  }
  ASSERT_EQ(Trim(s), 7u);
  grpc::ClientContext ctx;
  v1::GetStreamRequest get;
  get.set_stream("busy/a");
  v1::StreamInfo info;
  ASSERT_TRUE(s.stub().GetStream(&ctx, get, &info).ok());
  EXPECT_EQ(info.event_count(), 3u);
  EXPECT_EQ(info.first_seq(), 8u);
  EXPECT_EQ(info.head_seq(), 10u);
  SubscribeClient all(s.stub(), FromBeginning());
  ASSERT_TRUE(all.WaitForCaughtUp());
  auto st = all.Snapshot();
  ASSERT_EQ(st.events.size(), 5u);  // quiet/b 1-2, busy/a 8-10.
  std::map<std::string, std::vector<uint64_t>> seqs;
  for (const auto& d : st.events) seqs[d.event().stream()].push_back(d.event().seq());
  EXPECT_EQ(seqs["busy/a"], (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_EQ(seqs["quiet/b"], (std::vector<uint64_t>{1, 2}));
  // busy/a's seq 7 (position 9: quiet/b took 2 and 8) was deleted: a token before it would
  // skip it, so it expired.
  const uint64_t horizon = s.server().log()->trimmed_through().value();
  EXPECT_EQ(horizon, 9u);
  SubscribeClient old(s.stub(), FromToken(s.server().hub()->tokens().Encode(Position(horizon - 1))));
  EXPECT_EQ(old.WaitForFinish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  // A second pass finds nothing more; a restart keeps the result.
  EXPECT_EQ(Trim(s), 0u);
  s.Restart();
  ASSERT_EQ(Trim(s), 0u);
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(s.stub(), {MakeEvent("busy/a")}, &resp).ok());
  EXPECT_EQ(resp.results(0).seq(), 11u);
  EXPECT_EQ(Trim(s), 1u);
}

INSTANTIATE_TEST_SUITE_P(Transports, RetentionTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp),
                         [](const auto& info) { return TransportName(info.param); });

}  // namespace
}  // namespace hookstream
