// The webhook shim inside the server's operations surface: its per-endpoint counters on
// /metrics, and WebhookAdmin behind the same access control as EventStream (the admin right).
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "hookstream/v1/webhook_admin.grpc.pb.h"
#include "server/api/auth.h"
#include "server/webhook/endpoint_config.h"
#include "tests/http/http_client.h"
#include "tests/testutil/test_server.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {
namespace {

constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kReader[] = "reader-token-0123456789";

ServerOptions WithEndpoint(const std::string& url) {
  v1::WebhooksConfig c;
  v1::WebhookEndpointConfig* e = c.add_endpoints();
  e->set_name("ep");
  e->set_url(url);
  e->mutable_timeout()->set_seconds(2);
  e->add_retry_schedule();                               // at once
  e->add_retry_schedule()->set_nanos(50'000'000);       // then 50 ms later
  absl::StatusOr<std::vector<webhook::EndpointConfig>> parsed = webhook::EndpointsFromConfig(c);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  ServerOptions o;
  o.webhooks.endpoints = *std::move(parsed);
  o.http_listen = "127.0.0.1:0";
  return o;
}

// The value of one sample line "name{labels} value" of a Prometheus exposition; -1 if absent.
double Sample(const std::string& body, const std::string& series) {
  const std::string prefix = series + " ";
  for (size_t at = 0; at < body.size();) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(prefix.size()), &v)) return v;
    }
    at = end + 1;
  }
  return -1;
}

TEST(WebhookOperationsTest, MetricsCountAttemptsFailuresAndDeliveriesPerEndpoint) {
  // Every event's first attempt fails with 500, the retry succeeds.
  Receiver rx([](const Received& r) -> Answer {
    if (r.Header("hookstream-attempt") == "1") return {500};
    return {};
  });
  TestServer ts(Transport::kTcp, WithEndpoint(rx.Url("/hook")));
  HttpClient http;
  const std::string url = LocalUrl(ts.server().http_port(), "/metrics");
  const std::string delivered = R"(hookstream_webhook_delivered_total{endpoint="ep"})";
  HttpResult before = http.Get(url);
  ASSERT_EQ(before.status, 200) << before.error;
  EXPECT_EQ(Sample(before.body, delivered), 0);

  ASSERT_TRUE(Publish(ts.stub(), {MakeEvent("cam/1"), MakeEvent("cam/1"), MakeEvent("cam/2")}).ok());
  std::string body;
  for (const absl::Time end = absl::Now() + absl::Seconds(30);
       Sample(body, delivered) < 3 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(20));
    body = http.Get(url).body;
  }
  EXPECT_EQ(Sample(body, delivered), 3);
  EXPECT_EQ(Sample(body, R"(hookstream_webhook_attempts_total{endpoint="ep"})"), 6);
  EXPECT_EQ(Sample(body, R"(hookstream_webhook_failures_total{endpoint="ep"})"), 3);
  EXPECT_EQ(Sample(body, R"(hookstream_webhook_backlog_events{endpoint="ep"})"), 0);
  EXPECT_EQ(Sample(body, R"(hookstream_webhook_endpoint_up{endpoint="ep"})"), 1);
}

TEST(WebhookOperationsTest, AdminCallsNeedTheAdminRight) {
  Receiver rx;
  ServerOptions o = WithEndpoint(rx.Url("/hook"));
  api::TokenSpec admin;
  admin.name = "admin";
  admin.secret = kAdmin;
  admin.rights = api::kRightAdmin;
  api::TokenSpec reader;
  reader.name = "reader";
  reader.secret = kReader;
  reader.rights = api::kRightSubscribe;
  o.api.auth.tokens = {admin, reader};
  TestServer ts(Transport::kTcp, o);
  std::unique_ptr<v1::WebhookAdmin::Stub> stub = v1::WebhookAdmin::NewStub(ts.channel());

  auto list = [&](const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::ListEndpointsResponse resp;
    grpc::Status s = stub->ListEndpoints(&ctx, {}, &resp);
    EXPECT_EQ(s.ok(), resp.endpoints_size() == 1);
    return s.error_code();
  };
  EXPECT_EQ(list(""), grpc::UNAUTHENTICATED);
  EXPECT_EQ(list("not-a-token"), grpc::UNAUTHENTICATED);
  EXPECT_EQ(list(kReader), grpc::PERMISSION_DENIED);
  EXPECT_EQ(list(kAdmin), grpc::OK);

  // A replay without the right changes nothing (there is nothing to replay either way, so the
  // code is the point).
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kReader));
  v1::ReplayDeadLettersRequest req;
  req.set_endpoint("ep");
  req.set_all(true);
  v1::ReplayDeadLettersResponse resp;
  EXPECT_EQ(stub->ReplayDeadLetters(&ctx, req, &resp).error_code(), grpc::PERMISSION_DENIED);
}

}  // namespace
}  // namespace hookstream::testing
