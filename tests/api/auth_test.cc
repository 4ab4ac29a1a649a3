// Access control end to end (DESIGN.md §9): bearer tokens with rights and stream scopes, expiry,
// and the per-token publish rate, against a real server in-process and over TCP.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/duration.pb.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

constexpr char kAll[] = "all-rights-token-0123456789";
constexpr char kPublisherA[] = "publisher-a-token-0123456789";
constexpr char kReaderA[] = "reader-a-token-0123456789";
constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kExpiring[] = "expiring-token-0123456789";

api::TokenSpec Token(const std::string& name, const std::string& secret, uint32_t rights,
                     std::vector<std::string> scopes = {},
                     absl::Time expires = absl::InfiniteFuture()) {
  api::TokenSpec t;
  t.name = name;
  t.secret = secret;
  t.rights = rights;
  for (const std::string& s : scopes) t.scopes.push_back(*StreamPattern::Parse(s, "scope"));
  t.expires_at = expires;
  return t;
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

class AuthTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.hub.session.checkpoint_interval = absl::Milliseconds(20);
    o.hub.tick_period = absl::Milliseconds(10);
    o.api.auth.clock = &clock_;
    o.api.auth.tokens = {
        Token("all", kAll, api::kRightPublish | api::kRightSubscribe),
        Token("publisher-a", kPublisherA, api::kRightPublish, {"tenantA/>"}),
        Token("reader-a", kReaderA, api::kRightSubscribe, {"tenantA/>"}),
        Token("admin", kAdmin, api::kRightAdmin),
        Token("expiring", kExpiring, api::kRightPublish | api::kRightSubscribe, {},
              clock_.Now() + absl::Hours(1)),
    };
    server_ = std::make_unique<TestServer>(GetParam(), o);
  }

  v1::EventStream::Stub& stub() { return server_->stub(); }

  grpc::Status Publish(const std::string& token, const std::vector<v1::EventInput>& events) {
    v1::PublishRequest req;
    for (const auto& e : events) *req.add_events() = e;
    v1::PublishResponse resp;
    return stub().Publish(Context(token).get(), req, &resp);
  }
  grpc::Status GetLog(const std::string& token, v1::LogInfo* info = nullptr) {
    v1::LogInfo i;
    grpc::Status s = stub().GetLog(Context(token).get(), v1::GetLogRequest(), &i);
    if (info != nullptr) *info = i;
    return s;
  }
  grpc::Status GetStream(const std::string& token, const std::string& stream) {
    v1::GetStreamRequest req;
    req.set_stream(stream);
    v1::StreamInfo info;
    return stub().GetStream(Context(token).get(), req, &info);
  }
  grpc::Status ListStreams(const std::string& token, std::vector<std::string>* names = nullptr) {
    v1::ListStreamsResponse resp;
    grpc::Status s = stub().ListStreams(Context(token).get(), v1::ListStreamsRequest(), &resp);
    if (names != nullptr) {
      for (const auto& i : resp.streams()) names->push_back(i.stream());
    }
    return s;
  }
  // The status a Subscribe call with `token` ends with (or OK once it was accepted).
  grpc::Status Subscribe(const std::string& token, std::vector<std::string> streams = {}) {
    SubscribeClient c(stub(), FromBeginning(std::move(streams)), token);
    if (c.WaitUntil([](const SubscribeClient::State& s) {
          return s.finished.has_value() || !s.messages.empty();
        })) {
      SubscribeClient::State st = c.Snapshot();
      if (st.finished) return *st.finished;
    }
    return grpc::Status::OK;
  }
  grpc::Status PublishStream(const std::string& token, const std::vector<v1::EventInput>& events) {
    auto ctx = Context(token);
    auto stream = stub().PublishStream(ctx.get());
    v1::PublishRequest req;
    for (const auto& e : events) *req.add_events() = e;
    stream->Write(req);
    stream->WritesDone();
    v1::PublishResponse resp;
    while (stream->Read(&resp)) {
    }
    return stream->Finish();
  }
  uint64_t Head() {
    v1::LogInfo info;
    EXPECT_TRUE(GetLog(kAdmin, &info).ok());
    return info.head_position();
  }

  ManualClock clock_;
  std::unique_ptr<TestServer> server_;
};

TEST_P(AuthTest, MissingUnknownOrMalformedTokensAreUnauthenticatedOnEveryRpc) {
  for (const std::string& token : {std::string(), std::string("not-a-configured-token-at-all"),
                                   std::string(kAll) + "x", std::string(kAll).substr(1)}) {
    SCOPED_TRACE(token);
    EXPECT_EQ(Publish(token, {MakeEvent("tenantA/x")}).error_code(), grpc::UNAUTHENTICATED);
    EXPECT_EQ(PublishStream(token, {MakeEvent("tenantA/x")}).error_code(), grpc::UNAUTHENTICATED);
    EXPECT_EQ(Subscribe(token).error_code(), grpc::UNAUTHENTICATED);
    EXPECT_EQ(GetStream(token, "tenantA/x").error_code(), grpc::UNAUTHENTICATED);
    EXPECT_EQ(ListStreams(token).error_code(), grpc::UNAUTHENTICATED);
    EXPECT_EQ(GetLog(token).error_code(), grpc::UNAUTHENTICATED);
  }
  // Not a bearer credential at all.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Basic ", kAll));
  v1::LogInfo info;
  grpc::Status s = stub().GetLog(&ctx, v1::GetLogRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("Bearer"));
  EXPECT_EQ(Head(), 0u) << "nothing was stored";
}

TEST_P(AuthTest, ExpiredTokenIsRefused) {
  ASSERT_TRUE(Publish(kExpiring, {MakeEvent("a/1")}).ok());
  ASSERT_TRUE(Subscribe(kExpiring).ok());
  clock_.Advance(absl::Hours(1));
  grpc::Status s = Publish(kExpiring, {MakeEvent("a/1")});
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("expired"));
  EXPECT_EQ(Subscribe(kExpiring).error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(ListStreams(kExpiring).error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(Head(), 1u);
}

TEST_P(AuthTest, RightsAreEnforcedPerRpc) {
  // publish only
  EXPECT_TRUE(Publish(kPublisherA, {MakeEvent("tenantA/cam1")}).ok());
  EXPECT_TRUE(PublishStream(kPublisherA, {MakeEvent("tenantA/cam1")}).ok());
  for (const grpc::Status& s :
       {Subscribe(kPublisherA), GetStream(kPublisherA, "tenantA/cam1"), ListStreams(kPublisherA),
        GetLog(kPublisherA)}) {
    EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << s.error_message();
  }
  // subscribe only
  EXPECT_TRUE(Subscribe(kReaderA).ok());
  EXPECT_TRUE(GetStream(kReaderA, "tenantA/cam1").ok());
  EXPECT_TRUE(ListStreams(kReaderA).ok());
  grpc::Status s = Publish(kReaderA, {MakeEvent("tenantA/cam1")});
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("\"publish\" right"));
  EXPECT_EQ(PublishStream(kReaderA, {MakeEvent("tenantA/cam1")}).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(GetLog(kReaderA).error_code(), grpc::PERMISSION_DENIED);
  // admin only
  EXPECT_TRUE(GetLog(kAdmin).ok());
  EXPECT_EQ(Publish(kAdmin, {MakeEvent("x/y")}).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(Subscribe(kAdmin).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(Head(), 2u);
}

TEST_P(AuthTest, PublishOutsideTheScopesStoresNothing) {
  grpc::Status s = Publish(kPublisherA, {MakeEvent("tenantA/cam1"), MakeEvent("tenantB/cam1")});
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("events[1].stream"));
  EXPECT_THAT(s.error_message(), HasSubstr("tenantA/>"));
  s = PublishStream(kPublisherA, {MakeEvent("tenantB/cam1")});
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(Publish(kPublisherA, {MakeEvent("tenantA")}).error_code(), grpc::PERMISSION_DENIED)
      << "tenantA/> needs a second token";
  EXPECT_EQ(Head(), 0u);
}

TEST_P(AuthTest, ScopedSubscriberNeverSeesOtherTenantsWhateverItsFilter) {
  // History before the subscribers start, then live traffic while they run, mixed tenants.
  auto publish_mix = [&](int round) {
    std::vector<v1::EventInput> batch;
    for (int i = 0; i < 20; ++i) {
      const std::string tenant = i % 2 == 0 ? "tenantA" : "tenantB";
      batch.push_back(MakeEvent(absl::StrCat(tenant, "/cam", i % 4), i % 3 == 0 ? "zlm.x" : "t",
                                absl::StrCat(round, "-", i)));
    }
    batch.push_back(MakeEvent("tenantAB/cam1"));  // A prefix of the scope, not inside it.
    batch.push_back(MakeEvent("tenantA"));        // The scope's first token alone.
    ASSERT_TRUE(Publish(kAll, batch).ok());
  };
  publish_mix(0);

  const std::vector<std::vector<std::string>> filters = {
      {}, {">"}, {"*/cam0"}, {"tenantA/cam0", "tenantB/>"}, {"tenantA/>"}, {"*/*"}, {"tenantA"}};
  std::vector<std::unique_ptr<SubscribeClient>> subs;
  for (const auto& f : filters) {
    v1::SubscribeRequest req = FromBeginning(f);
    subs.push_back(std::make_unique<SubscribeClient>(stub(), req, kReaderA));
  }
  // A types filter does not widen anything either.
  v1::SubscribeRequest typed = FromBeginning({">"});
  typed.add_types("zlm.*");
  subs.push_back(std::make_unique<SubscribeClient>(stub(), typed, kReaderA));

  for (int round = 1; round <= 3; ++round) publish_mix(round);
  // The marker comes after every other event: once a subscriber has it (or a checkpoint past
  // it), it has been offered everything before.
  ASSERT_TRUE(Publish(kAll, {MakeEvent("tenantA/cam0", "zlm.marker")}).ok());
  const uint64_t head = Head();

  // "tenantA" alone lies outside tenantA/>: PERMISSION_DENIED, not an empty subscription.
  EXPECT_EQ(subs[6]->WaitForFinish().error_code(), grpc::PERMISSION_DENIED);

  for (size_t i = 0; i < subs.size(); ++i) {
    if (i == 6) continue;
    SCOPED_TRACE(i);
    ASSERT_TRUE(subs[i]->WaitUntil([head](const SubscribeClient::State& s) {
      for (const auto& m : s.messages) {
        if (m.has_checkpoint() && m.checkpoint().position() >= head) return true;
      }
      return !s.events.empty() && s.events.back().event().position() == head;
    })) << "subscriber " << i << " never reached the head";
    const SubscribeClient::State st = subs[i]->Snapshot();
    EXPECT_FALSE(st.finished.has_value());
    std::map<std::string, uint64_t> seqs;
    int tenant_a_events = 0;
    for (const auto& d : st.events) {
      const v1::Event& e = d.event();
      ASSERT_TRUE(absl::StartsWith(e.stream(), "tenantA/"))
          << "subscriber " << i << " received " << e.stream();
      ++tenant_a_events;
      auto it = seqs.find(e.stream());
      // tenantA streams are complete and gap-free for a subscriber whose filter covers them
      // (the last subscriber filters by type, which skips seqs by design).
      if (it != seqs.end() && i + 1 != subs.size()) {
        EXPECT_EQ(e.seq(), it->second + 1) << e.stream();
      }
      seqs[e.stream()] = e.seq();
    }
    EXPECT_GT(tenant_a_events, 0);
  }
  // The unfiltered ones got every tenantA event: 4 rounds x 10 + the marker.
  EXPECT_EQ(subs[0]->Snapshot().events.size(), 41u);
  EXPECT_EQ(subs[1]->Snapshot().events.size(), 41u);
  EXPECT_EQ(subs[4]->Snapshot().events.size(), 41u);
}

TEST_P(AuthTest, SubscribeWithFilterEntirelyOutsideScopesIsDenied) {
  grpc::Status s = Subscribe(kReaderA, {"tenantB/>"});
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("tenantA/>"));
}

TEST_P(AuthTest, StreamQueriesAreLimitedToTheScopes) {
  ASSERT_TRUE(Publish(kAll, {MakeEvent("tenantA/cam1"), MakeEvent("tenantB/cam1"),
                             MakeEvent("other")})
                  .ok());
  EXPECT_TRUE(GetStream(kReaderA, "tenantA/cam1").ok());
  grpc::Status s = GetStream(kReaderA, "tenantB/cam1");
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  std::vector<std::string> names;
  ASSERT_TRUE(ListStreams(kReaderA, &names).ok());
  EXPECT_EQ(names, std::vector<std::string>{"tenantA/cam1"});
  names.clear();
  ASSERT_TRUE(ListStreams(kAll, &names).ok());
  EXPECT_EQ(names.size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Transports, AuthTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp),
                         [](const auto& info) { return testing::TransportName(info.param); });

// The per-token publish rate (token bucket), on a manual clock.
class RateLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.api.auth.clock = &clock_;
    o.api.auth.publish_events_per_second = 10;
    o.api.auth.publish_burst_events = 10;
    o.api.auth.tokens = {Token("one", kAll, api::kRightPublish | api::kRightAdmin),
                         Token("two", kPublisherA, api::kRightPublish)};
    server_ = std::make_unique<TestServer>(Transport::kInProcess, o);
  }
  grpc::Status Publish(const std::string& token, int events) {
    v1::PublishRequest req;
    for (int i = 0; i < events; ++i) *req.add_events() = MakeEvent("tenantA/x");
    v1::PublishResponse resp;
    return server_->stub().Publish(Context(token).get(), req, &resp);
  }

  ManualClock clock_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(RateLimitTest, PublishBeyondTheTokensRateIsResourceExhaustedWithRetryInfo) {
  ASSERT_TRUE(Publish(kAll, 6).ok());
  ASSERT_TRUE(Publish(kAll, 4).ok());
  grpc::Status s = Publish(kAll, 3);
  ASSERT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("limits.publish_events_per_second"));
  EXPECT_THAT(s.error_message(), HasSubstr("retry in 300ms"));
  v1::ErrorStatus rich;
  ASSERT_TRUE(rich.ParseFromString(s.error_details()));
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  // google.rpc.RetryInfo {Duration retry_delay = 1}: read it as the Duration it wraps.
  const std::string& bytes = rich.details(0).value();
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], '\x0a');
  google::protobuf::Duration delay;
  ASSERT_TRUE(delay.ParseFromString(bytes.substr(2)));
  EXPECT_EQ(delay.seconds(), 0);
  EXPECT_EQ(delay.nanos(), 300'000'000);

  // Another token has its own budget.
  EXPECT_TRUE(Publish(kPublisherA, 10).ok());
  // Refilled at 10 events/s.
  clock_.Advance(absl::Milliseconds(300));
  EXPECT_TRUE(Publish(kAll, 3).ok());
  EXPECT_EQ(Publish(kAll, 1).error_code(), grpc::RESOURCE_EXHAUSTED);
  // A request larger than the bucket can never pass: said so, not "retry".
  clock_.Advance(absl::Hours(1));
  s = Publish(kAll, 11);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("limits.publish_burst_events"));

  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAll));
  v1::LogInfo info;
  ASSERT_TRUE(server_->stub().GetLog(&ctx, v1::GetLogRequest(), &info).ok());
  EXPECT_EQ(info.head_position(), 23u) << "refused publishes stored nothing";
}

}  // namespace
}  // namespace hookstream
