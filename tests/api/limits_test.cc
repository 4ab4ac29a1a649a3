// Resource limits over TCP (each channel below is its own connection): connections with calls in
// flight, subscribers per connection, message size.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

// A stub on a connection of its own (no subchannel shared with other channels).
struct Connection {
  explicit Connection(int port) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                        grpc::InsecureChannelCredentials(), args);
    stub = v1::EventStream::NewStub(channel);
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::EventStream::Stub> stub;
};

v1::SubscribeRequest Live() { return v1::SubscribeRequest(); }

// The outcome of a Subscribe call: OK once it is accepted (first message), else its error.
grpc::Status TrySubscribe(v1::EventStream::Stub& stub,
                          std::unique_ptr<SubscribeClient>* keep = nullptr) {
  auto c = std::make_unique<SubscribeClient>(stub, Live());
  c->WaitUntil([](const SubscribeClient::State& s) {
    return s.finished.has_value() || !s.messages.empty();
  });
  SubscribeClient::State st = c->Snapshot();
  if (st.finished) return *st.finished;
  if (keep != nullptr) *keep = std::move(c);
  return grpc::Status::OK;
}

// Retries `f` until it returns OK or the deadline passes (a released slot is freed when the
// server's reactor is done, shortly after the client sees the call end).
grpc::Status EventuallyOk(const std::function<grpc::Status()>& f) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status s;
  do {
    s = f();
    if (s.ok()) break;
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  return s;
}

TEST(LimitsTest, SubscribersPerConnectionAreLimited) {
  ServerOptions o;
  o.api.connections.max_subscribers_per_connection = 2;
  TestServer server(Transport::kTcp, o);
  Connection a(server.server().grpc_port());
  Connection b(server.server().grpc_port());
  std::unique_ptr<SubscribeClient> s1, s2, s3;
  ASSERT_TRUE(TrySubscribe(*a.stub, &s1).ok());
  ASSERT_TRUE(TrySubscribe(*a.stub, &s2).ok());
  grpc::Status s = TrySubscribe(*a.stub);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("limits.max_subscribers_per_connection"));
  // Publishing on the same connection is not a subscription.
  v1::PublishRequest req;
  *req.add_events() = MakeEvent("a/b");
  v1::PublishResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(a.stub->Publish(&ctx, req, &resp).ok());
  // Another connection has its own allowance.
  EXPECT_TRUE(TrySubscribe(*b.stub, &s3).ok());
  // Ending one frees its slot.
  s1->Cancel();
  s1->WaitForFinish();
  std::unique_ptr<SubscribeClient> again;
  EXPECT_TRUE(EventuallyOk([&] { return TrySubscribe(*a.stub, &again); }).ok());
}

TEST(LimitsTest, ConnectionsWithCallsInFlightAreLimited) {
  ServerOptions o;
  o.api.connections.max_connections = 1;
  TestServer server(Transport::kTcp, o);
  Connection a(server.server().grpc_port());
  Connection b(server.server().grpc_port());
  std::unique_ptr<SubscribeClient> held;
  ASSERT_TRUE(TrySubscribe(*a.stub, &held).ok());
  grpc::ClientContext ctx;
  v1::LogInfo info;
  grpc::Status s = b.stub->GetLog(&ctx, v1::GetLogRequest(), &info);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("limits.max_connections"));
  // The connection that holds the slot keeps working.
  grpc::ClientContext ctx2;
  EXPECT_TRUE(a.stub->GetLog(&ctx2, v1::GetLogRequest(), &info).ok());
  held->Cancel();
  held->WaitForFinish();
  EXPECT_TRUE(EventuallyOk([&] {
                grpc::ClientContext c;
                return b.stub->GetLog(&c, v1::GetLogRequest(), &info);
              }).ok());
}

TEST(LimitsTest, OversizedMessageIsResourceExhausted) {
  ServerOptions o;
  o.max_message_bytes = 64 << 10;
  o.api.publish.max_event_bytes = 32 << 10;
  TestServer server(Transport::kTcp, o);
  // Over the message limit: refused by gRPC before any handler.
  grpc::Status s = testing::Publish(server.stub(), {MakeEvent("a/b", "t", std::string(100 << 10, 'x'))});
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
  // Under it but over the event limit: the handler's INVALID_ARGUMENT naming the field.
  s = testing::Publish(server.stub(), {MakeEvent("a/b", "t", std::string(40 << 10, 'x'))});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("events[0]"));
  EXPECT_TRUE(testing::Publish(server.stub(), {MakeEvent("a/b", "t", "small")}).ok());
}

}  // namespace
}  // namespace hookstream
