// The webhook shim end to end, in-process: a real server, a real HTTP receiver, real requests.
#include <atomic>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hookstream/v1/webhook_admin.grpc.pb.h"
#include "server/webhook/signature.h"
#include "tests/http/http_client.h"
#include "tests/testutil/test_server.h"
#include "tests/webhook/checks.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr absl::Duration kWait = absl::Seconds(30);

v1::WebhookEndpointConfig Endpoint(const std::string& name, const std::string& url) {
  v1::WebhookEndpointConfig e;
  e.set_name(name);
  e.set_url(url);
  e.add_secrets(kSecret);
  // Long enough that a 2xx is never mistaken for a timeout on a loaded machine (that would be
  // a legitimate duplicate, but not what these tests look for).
  e.mutable_timeout()->set_seconds(2);
  for (int i = 0; i < 5; ++i) e.add_retry_schedule()->set_nanos(i == 0 ? 0 : 50'000'000);
  return e;
}

ServerOptions WithEndpoints(const std::vector<v1::WebhookEndpointConfig>& eps) {
  v1::WebhooksConfig c;
  for (const auto& e : eps) *c.add_endpoints() = e;
  absl::StatusOr<std::vector<webhook::EndpointConfig>> parsed = webhook::EndpointsFromConfig(c);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  ServerOptions o;
  o.webhooks.endpoints = *std::move(parsed);
  return o;
}

void PublishRoundRobin(TestServer& ts, int streams, int per_stream, const std::string& prefix) {
  for (int i = 0; i < per_stream; ++i) {
    std::vector<v1::EventInput> batch;
    for (int s = 0; s < streams; ++s) {
      batch.push_back(MakeEvent(absl::StrCat(prefix, s), "t", absl::StrCat("{\"i\":", i, "}")));
      batch.back().set_content_type("application/json");
    }
    ASSERT_TRUE(Publish(ts.stub(), batch).ok());
  }
}

bool AllDelivered(const std::vector<Received>& r, size_t n) {
  return DeliveredCounts(r).size() >= n;
}

std::unique_ptr<v1::WebhookAdmin::Stub> Admin(TestServer& ts) {
  return v1::WebhookAdmin::NewStub(ts.channel());
}

v1::WebhookEndpointStatus Status(TestServer& ts, const std::string& name) {
  grpc::ClientContext ctx;
  v1::ListEndpointsResponse resp;
  EXPECT_TRUE(Admin(ts)->ListEndpoints(&ctx, {}, &resp).ok());
  for (const auto& e : resp.endpoints()) {
    if (e.name() == name) return e;
  }
  ADD_FAILURE() << "no endpoint " << name;
  return {};
}

// Polls ListEndpoints until `done` holds for the endpoint (the shim records a result just after
// the receiver answered it); returns the last status seen.
v1::WebhookEndpointStatus WaitStatus(
    TestServer& ts, const std::string& name,
    const std::function<bool(const v1::WebhookEndpointStatus&)>& done) {
  v1::WebhookEndpointStatus st = Status(ts, name);
  for (const absl::Time end = absl::Now() + kWait; !done(st) && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(10));
    st = Status(ts, name);
  }
  return st;
}

// Answers by a hash of the webhook-id, so each event's fate is fixed whichever order it comes in:
// on the first attempt ~20% get 500, ~10% are held past the 2 s timeout, ~10% get 429 with
// Retry-After: 1; every later attempt gets 200.
Answer Flaky(const Received& r) {
  if (r.Header("hookstream-attempt") != "1") return {};
  const size_t h = std::hash<std::string>()(r.Header("webhook-id")) % 10;
  if (h < 2) return {500};
  if (h < 3) return {504, {}, absl::Milliseconds(2500)};
  if (h < 4) return {429, {{"Retry-After", "1"}}};
  return {};
}

TEST(WebhookDeliveryTest, PerStreamOrderHoldsThroughFailuresTimeoutsAndRetryAfter) {
  Receiver rx(Flaky);
  TestServer ts(Transport::kInProcess, WithEndpoints({Endpoint("ep", rx.Url("/hook"))}));
  constexpr int kStreams = 10, kPerStream = 20;
  PublishRoundRobin(ts, kStreams, kPerStream, "cam/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, kStreams * kPerStream); }, kWait));
  const std::vector<Received> got = rx.Requests();

  EXPECT_EQ(PerStreamOrderViolation(got), "");
  for (const auto& [id, n] : DeliveredCounts(got)) EXPECT_EQ(n, 1) << id << " delivered twice";
  const std::string key = *webhook::DecodeSecret(kSecret);
  std::map<std::string, std::vector<const Received*>> by_id;
  int failed_first = 0, held = 0, limited = 0;
  for (const Received& r : got) {
    int64_t ts_sec = 0;
    ASSERT_TRUE(absl::SimpleAtoi(r.Header("webhook-timestamp"), &ts_sec));
    EXPECT_EQ(r.Header("webhook-signature"),
              webhook::Sign(key, r.Header("webhook-id"), ts_sec, r.body));
    by_id[r.Header("webhook-id")].push_back(&r);
    failed_first += r.status == 500;
    held += r.status == 504;
    limited += r.status == 429;
  }
  EXPECT_GT(failed_first, 0);
  EXPECT_GT(held, 0);
  EXPECT_GT(limited, 0);
  for (const auto& [id, attempts] : by_id) {
    for (size_t i = 1; i < attempts.size(); ++i) {
      // Same event, same body, next attempt number.
      EXPECT_EQ(attempts[i]->body, attempts[0]->body);
      EXPECT_EQ(attempts[i]->Header("hookstream-attempt"), absl::StrCat(i + 1));
      if (attempts[i - 1]->status == 429) {
        EXPECT_GE(attempts[i]->at - attempts[i - 1]->at, absl::Milliseconds(990))
            << id << ": Retry-After not honoured";
      }
    }
  }
  const v1::WebhookEndpointStatus st =
      WaitStatus(ts, "ep", [](auto& s) { return s.delivered() == kStreams * kPerStream; });
  EXPECT_EQ(st.delivered(), uint64_t{kStreams * kPerStream});
  EXPECT_EQ(st.attempts(), got.size());
  EXPECT_EQ(st.cursor(), ts.server().log()->head().value());
  EXPECT_EQ(st.backlog(), 0u);
}

TEST(WebhookDeliveryTest, FifoSendsOneRequestAtATimeInPositionOrder) {
  Receiver rx([](const Received& r) {
    return SeqOf(r) % 3 == 0 && r.Header("hookstream-attempt") == "1" ? Answer{500} : Answer{};
  });
  auto ep = Endpoint("fifo", rx.Url("/f"));
  ep.set_ordering(v1::WebhookEndpointConfig::fifo);
  TestServer ts(Transport::kInProcess, WithEndpoints({ep}));
  PublishRoundRobin(ts, 3, 10, "s/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 30); }, kWait));
  uint64_t last = 0;
  for (const Received& r : rx.Requests()) {
    uint64_t pos = 0;
    ASSERT_TRUE(absl::SimpleAtoi(r.Header("hookstream-position"), &pos));
    EXPECT_GE(pos, last);  // Equal only for a retry of the same event.
    if (r.ok()) last = pos + 1;
    if (!r.ok()) last = pos;
  }
  EXPECT_EQ(rx.max_concurrent(), 1);
}

TEST(WebhookDeliveryTest, UnorderedSendsInParallelUpToMaxInFlight) {
  Receiver rx([](const Received&) { return Answer{200, {}, absl::Milliseconds(100)}; });
  auto ep = Endpoint("par", rx.Url("/p"));
  ep.set_ordering(v1::WebhookEndpointConfig::unordered);
  ep.set_max_in_flight(4);
  ep.mutable_timeout()->set_seconds(5);
  TestServer ts(Transport::kInProcess, WithEndpoints({ep}));
  PublishRoundRobin(ts, 1, 24, "one-stream/");  // One stream: per_stream would send serially.
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 24); }, kWait));
  EXPECT_GT(rx.max_concurrent(), 1);
  EXPECT_LE(rx.max_concurrent(), 4);
}

TEST(WebhookDeliveryTest, PerStreamSendsDifferentStreamsInParallel) {
  Receiver rx([](const Received&) { return Answer{200, {}, absl::Milliseconds(100)}; });
  auto ep = Endpoint("ps", rx.Url("/p"));
  ep.mutable_timeout()->set_seconds(5);
  ep.set_max_in_flight(3);
  TestServer ts(Transport::kInProcess, WithEndpoints({ep}));
  PublishRoundRobin(ts, 6, 3, "p/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 18); }, kWait));
  EXPECT_EQ(PerStreamOrderViolation(rx.Requests()), "");
  EXPECT_GT(rx.max_concurrent(), 1);
  EXPECT_LE(rx.max_concurrent(), 3);
}

TEST(WebhookDeliveryTest, ExhaustedEventIsDeadLetteredStreamMovesOnAndReplayDeliversIt) {
  std::atomic<bool> reject{true};
  Receiver rx([&](const Received& r) { return reject && SeqOf(r) == 2 ? Answer{500} : Answer{}; });
  TestServer ts(Transport::kInProcess, WithEndpoints({Endpoint("dl", rx.Url("/d"))}));
  PublishRoundRobin(ts, 1, 4, "x/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 3); }, kWait));
  std::vector<Received> got = rx.Requests();
  int attempts_seq2 = 0;
  for (const Received& r : got) attempts_seq2 += SeqOf(r) == 2;
  EXPECT_EQ(attempts_seq2, 5);  // The whole schedule.

  auto admin = Admin(ts);
  v1::ListDeadLettersRequest lreq;
  lreq.set_endpoint("dl");
  v1::ListDeadLettersResponse list;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->ListDeadLetters(&ctx, lreq, &list).ok());
  }
  ASSERT_EQ(list.dead_letters_size(), 1);
  const v1::DeadLetter& d = list.dead_letters(0);
  EXPECT_EQ(d.stream(), "x/0");
  EXPECT_EQ(d.seq(), 2u);
  EXPECT_EQ(d.attempts(), 5u);
  EXPECT_THAT(d.last_error(), HasSubstr("HTTP 500"));
  EXPECT_EQ(WaitStatus(ts, "dl", [](auto& s) { return s.dead_letters() == 1; }).dead_lettered(),
            1u);

  // Dead letters survive a restart.
  ts.Restart();
  admin = Admin(ts);
  reject = false;
  v1::ReplayDeadLettersRequest rreq;
  rreq.set_endpoint("dl");
  rreq.add_ids(d.id());
  rreq.add_ids("999999");
  v1::ReplayDeadLettersResponse rresp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->ReplayDeadLetters(&ctx, rreq, &rresp).ok());
  }
  EXPECT_EQ(rresp.replayed(), 1u);
  EXPECT_THAT(rresp.not_found(), ::testing::ElementsAre("999999"));
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 4); }, kWait));
  got = rx.Requests();
  EXPECT_EQ(got.back().Header("webhook-id"), d.webhook_id());
  EXPECT_TRUE(got.back().ok());
  // The list empties once the replay is delivered (written by the loop right after).
  bool empty = false;
  for (absl::Time end = absl::Now() + kWait; !empty && absl::Now() < end;) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->ListDeadLetters(&ctx, lreq, &list).ok());
    empty = list.dead_letters_size() == 0;
  }
  EXPECT_TRUE(empty);

  grpc::ClientContext ctx;
  v1::ListDeadLettersRequest unknown;
  unknown.set_endpoint("nope");
  EXPECT_EQ(admin->ListDeadLetters(&ctx, unknown, &list).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(WebhookDeliveryTest, HoldKeepsTheStreamWaitingUntilTheEventGoesThrough) {
  std::atomic<bool> reject{true};
  Receiver rx([&](const Received& r) {
    return reject && r.Header("hookstream-stream") == "h/0" && SeqOf(r) == 1 ? Answer{500}
                                                                             : Answer{};
  });
  auto ep = Endpoint("hold", rx.Url("/h"));
  ep.set_on_exhausted(v1::WebhookEndpointConfig::hold);
  TestServer ts(Transport::kInProcess, WithEndpoints({ep}));
  PublishRoundRobin(ts, 2, 3, "h/");
  // h/1 goes through; h/0 retries past its schedule and holds.
  ASSERT_TRUE(rx.WaitFor(
      [](auto& r) {
        int n = 0;
        for (const Received& x : r) n += x.Header("hookstream-stream") == "h/0";
        return AllDelivered(r, 3) && n >= 7;
      },
      kWait));
  for (const Received& r : rx.Requests()) {
    if (r.Header("hookstream-stream") == "h/0") {
      EXPECT_EQ(SeqOf(r), 1u);
    }
  }
  EXPECT_EQ(WaitStatus(ts, "hold",
                       [](auto& s) { return s.state() == v1::WebhookEndpointStatus::HOLDING; })
                .state(),
            v1::WebhookEndpointStatus::HOLDING);
  reject = false;
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 6); }, kWait));
  EXPECT_EQ(PerStreamOrderViolation(rx.Requests()), "");
  EXPECT_EQ(Status(ts, "hold").dead_letters(), 0u);
}

TEST(WebhookDeliveryTest, GoneDisablesTheEndpointAcrossRestartsUntilEnabled) {
  std::atomic<bool> gone{true};
  Receiver rx([&](const Received&) { return gone ? Answer{410} : Answer{}; });
  TestServer ts(Transport::kInProcess, WithEndpoints({Endpoint("gone", rx.Url("/g"))}));
  PublishRoundRobin(ts, 1, 3, "g/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return !r.empty(); }, kWait));
  ASSERT_EQ(WaitStatus(ts, "gone",
                       [](auto& s) { return s.state() == v1::WebhookEndpointStatus::DISABLED; })
                .state(),
            v1::WebhookEndpointStatus::DISABLED);
  gone = false;
  // Disabled: nothing more is sent, also after a restart.
  ts.Restart();
  EXPECT_EQ(Status(ts, "gone").state(), v1::WebhookEndpointStatus::DISABLED);
  EXPECT_THAT(Status(ts, "gone").disabled_reason(), HasSubstr("410"));
  PublishRoundRobin(ts, 1, 1, "g/");
  EXPECT_FALSE(rx.WaitFor([](auto& r) { return r.size() > 1; }, absl::Milliseconds(500)));
  grpc::ClientContext ctx;
  v1::EnableEndpointRequest req;
  req.set_endpoint("gone");
  v1::EnableEndpointResponse resp;
  ASSERT_TRUE(Admin(ts)->EnableEndpoint(&ctx, req, &resp).ok());
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 4); }, kWait));
  EXPECT_EQ(PerStreamOrderViolation(rx.Requests()), "");
  EXPECT_EQ(
      WaitStatus(ts, "gone", [](auto& s) { return s.state() == v1::WebhookEndpointStatus::ACTIVE; })
          .state(),
      v1::WebhookEndpointStatus::ACTIVE);
}

TEST(WebhookDeliveryTest, RedirectsAreNotFollowed) {
  Receiver rx([](const Received& r) {
    return r.path == "/moved" ? Answer{302, {{"Location", "/elsewhere"}}} : Answer{};
  });
  TestServer ts(Transport::kInProcess, WithEndpoints({Endpoint("r", rx.Url("/moved"))}));
  PublishRoundRobin(ts, 1, 1, "r/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return r.size() >= 5; }, kWait));
  for (const Received& r : rx.Requests()) EXPECT_EQ(r.path, "/moved");
  const v1::WebhookEndpointStatus st =
      WaitStatus(ts, "r", [](auto& s) { return s.failures() >= 5; });
  EXPECT_THAT(st.last_error(), HasSubstr("redirect"));
  EXPECT_THAT(st.last_error(), HasSubstr("not followed"));
}

TEST(WebhookDeliveryTest, RestartResendsNothingThatWasDelivered) {
  Receiver rx;
  TestServer ts(Transport::kInProcess, WithEndpoints({Endpoint("c", rx.Url("/c"))}));
  PublishRoundRobin(ts, 5, 10, "c/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 50); }, kWait));
  // A request whose answer the shim has not taken yet is in flight, and is sent again after a
  // restart; this test is about the ones it has recorded.
  ASSERT_EQ(WaitStatus(ts, "c", [](auto& s) { return s.delivered() == 50; }).delivered(), 50u);
  ts.Restart();
  PublishRoundRobin(ts, 5, 1, "c/");
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 55); }, kWait));
  EXPECT_EQ(rx.Requests().size(), 55u);
  EXPECT_EQ(PerStreamOrderViolation(rx.Requests()), "");
}

TEST(WebhookDeliveryTest, ZlmFormatForwardsIngestedHookBodiesToTheHookUrl) {
  Receiver rx;
  auto ep = Endpoint("zlm", rx.Url("/index/hook/{hook}"));
  ep.set_format(v1::WebhookEndpointConfig::zlm);
  ep.add_types("zlm.on_*");
  ServerOptions o = WithEndpoints({ep});
  o.http_listen = "127.0.0.1:0";
  TestServer ts(Transport::kInProcess, o);
  // As ZLMediaKit sends it: its own spacing and key order.
  const std::string body =
      "{\n  \"app\" : \"live\",\n  \"hook_index\" : 5,\n  \"id\" : \"2-11\",\n  \"ip\" : "
      "\"127.0.0.1\",\n  \"mediaServerId\" : \"zlm-1\",\n  \"originType\" : 1,\n  "
      "\"originTypeStr\" : \"rtmp_push\",\n  \"params\" : \"\",\n  \"port\" : 41176,\n  "
      "\"protocol\" : \"rtmp\",\n  \"schema\" : \"rtmp\",\n  \"stream\" : \"test\",\n  "
      "\"vhost\" : \"__defaultVhost__\"\n}\n";
  HttpClient client;
  const HttpResult posted = client.Post(LocalUrl(ts.server().http_port(), "/index/hook/on_publish"),
                                        body, {"Content-Type: application/json"});
  ASSERT_EQ(posted.status, 200) << posted.error << posted.body;
  ASSERT_TRUE(rx.WaitFor([](auto& r) { return AllDelivered(r, 1); }, kWait));
  const Received r = rx.Requests()[0];
  EXPECT_EQ(r.path, "/index/hook/on_publish");
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("hookstream-stream"), "__defaultVhost__/live/test");
  EXPECT_EQ(r.Header("hookstream-seq"), "1");
}

}  // namespace
}  // namespace hookstream::testing
