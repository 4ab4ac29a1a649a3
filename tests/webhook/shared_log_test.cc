// The webhook shim on a log several servers share (JetStream backend): both servers have the
// same endpoint configured, as an operator running two for availability would. One of them
// delivers it at a time (the holder of its lease): every event is delivered once, not once per
// server; when the holder stops, the other takes over from the shared cursor; when the holder
// is killed with kill -9, the other takes over after lease_time.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hookstream/v1/webhook_admin.grpc.pb.h"
#include "server/webhook/endpoint_config.h"
#include "tests/testutil/nats_server.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/test_server.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {
namespace {

using webhook::EndpointSnapshot;

class SharedLogShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveNatsServer()) GTEST_FAIL() << "nats-server is not installed (.ci/install-deps)";
    nats_.Start();
  }

  // A server on the test's JetStream log with endpoint "e" (per_stream) to the receiver.
  std::unique_ptr<TestServer> StartServer(absl::Duration lease_time = absl::Seconds(2)) {
    v1::WebhooksConfig c;
    v1::WebhookEndpointConfig* e = c.add_endpoints();
    e->set_name("e");
    e->set_url(rx_.Url("/e"));
    e->add_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ServerOptions o;
    o.webhooks.endpoints = *webhook::EndpointsFromConfig(c);
    storage::JetStreamLogOptions js;
    js.servers = nats_.urls();
    js.stream = "SHARED";
    js.subject_prefix = "shared";
    js.lease_time = lease_time;
    o.jetstream = js;
    return std::make_unique<TestServer>(Transport::kTcp, o);
  }

  static EndpointSnapshot::State StateOf(TestServer& ts) {
    return ts.server().webhooks()->Snapshot().at(0).state;
  }

  // Successful deliveries by webhook id.
  std::map<std::string, int> Delivered() const {
    std::map<std::string, int> out;
    for (const Received& r : rx_.Requests()) {
      if (r.ok()) ++out[r.Header("webhook-id")];
    }
    return out;
  }

  bool WaitDelivered(size_t n) const {
    return rx_.WaitFor(
        [n](const std::vector<Received>& all) {
          std::set<std::string> ids;
          for (const Received& r : all) {
            if (r.ok()) ids.insert(r.Header("webhook-id"));
          }
          return ids.size() >= n;
        },
        absl::Seconds(60));
  }

  void PublishThrough(TestServer& ts, int from, int count) {
    std::vector<v1::EventInput> events;
    for (int i = from; i < from + count; ++i) {
      events.push_back(MakeEvent(absl::StrCat("cam/", i % 3), "t", absl::StrCat("event ", i),
                                 absl::StrCat("id-", i)));
    }
    ASSERT_TRUE(Publish(ts.stub(), events).ok());
  }

  NatsFixture nats_{1};
  Receiver rx_;
};

TEST_F(SharedLogShimTest, OneServerDeliversAnEndpointAndTheOtherTakesOverWhenItStops) {
  std::unique_ptr<TestServer> a = StartServer();
  std::unique_ptr<TestServer> b = StartServer();
  // The first server to start took the lease; the other waits on standby, naming it.
  EXPECT_EQ(StateOf(*a), EndpointSnapshot::State::kActive);
  EXPECT_EQ(StateOf(*b), EndpointSnapshot::State::kStandby);
  const std::string a_holder = a->server().webhooks()->Snapshot().at(0).holder;
  EXPECT_EQ(b->server().webhooks()->Snapshot().at(0).holder, a_holder);
  EXPECT_FALSE(a_holder.empty());

  // Published through both servers: each event is delivered once.
  PublishThrough(*a, 0, 20);
  PublishThrough(*b, 20, 20);
  ASSERT_TRUE(WaitDelivered(40));
  // a has sent everything and has nothing in flight; b held the endpoint at no point.
  ASSERT_TRUE(PollUntil(
      [&] {
        const EndpointSnapshot e = a->server().webhooks()->Snapshot().at(0);
        return e.backlog == 0 && e.in_flight == 0;
      },
      absl::Seconds(30)));
  EXPECT_EQ(StateOf(*b), EndpointSnapshot::State::kStandby);
  EXPECT_EQ(b->server().webhooks()->Snapshot().at(0).attempts, 0u);
  for (const auto& [id, n] : Delivered()) EXPECT_EQ(n, 1) << id << " delivered " << n << " times";
  EXPECT_EQ(Delivered().size(), 40u);

  // The holder stops (releasing the lease): the other takes over and delivers what follows.
  a.reset();
  PublishThrough(*b, 40, 20);
  ASSERT_TRUE(WaitDelivered(60)) << Delivered().size() << " of 60 delivered";
  EXPECT_EQ(StateOf(*b), EndpointSnapshot::State::kActive);
  for (const auto& [id, n] : Delivered()) EXPECT_EQ(n, 1) << id << " delivered " << n << " times";
}

// Two hookstreamd processes with the same configuration; the holder is killed with kill -9, so
// it neither releases its lease nor writes its last results: the other takes the endpoint
// over when the lease runs out, from the shared cursor. Nothing is lost; what the dead one had
// sent but not recorded is sent again.
TEST_F(SharedLogShimTest, AHolderKilledWithoutAWordIsReplacedAfterTheLeaseTime) {
  TempDir dir;
  const std::string config = dir.path() + "/hookstream.yaml";
  {
    std::ofstream out(config);
    out << "storage:\n  backend: jetstream\n  servers: [\"" << nats_.urls()[0]
        << "\"]\n  stream: SHARED\n  subject_prefix: shared\n  lease_time: 2s\n"
        << "webhooks:\n  endpoints:\n    - name: e\n      url: " << rx_.Url("/e")
        << "\n      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n";
  }
  auto spawn = [&](const std::string& name) {
    auto p = std::make_unique<ServerProcess>(
        HOOKSTREAMD_PATH, absl::StrCat(dir.path(), "/", name),
        absl::StrCat(dir.path(), "/", name, ".log"),
        std::vector<std::string>{"--http_listen=off", "--config=" + config});
    p->Start();
    return p;
  };
  auto stub_of = [](const ServerProcess& p) {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", p.port()),
                               grpc::InsecureChannelCredentials());
  };
  auto state_of = [&](const ServerProcess& p) {
    auto admin = v1::WebhookAdmin::NewStub(stub_of(p));
    grpc::ClientContext ctx;
    v1::ListEndpointsResponse resp;
    grpc::Status s = admin->ListEndpoints(&ctx, {}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.endpoints_size() == 1 ? resp.endpoints(0).state()
                                      : v1::WebhookEndpointStatus::STATE_UNSPECIFIED;
  };
  std::unique_ptr<ServerProcess> a = spawn("a");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  std::unique_ptr<ServerProcess> b = spawn("b");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_EQ(state_of(*a), v1::WebhookEndpointStatus::ACTIVE);
  EXPECT_EQ(state_of(*b), v1::WebhookEndpointStatus::STANDBY);

  auto publish = [&](const ServerProcess& p, int from, int count, absl::string_view label) {
    auto stub = v1::EventStream::NewStub(stub_of(p));
    std::vector<v1::EventInput> events;
    for (int i = from; i < from + count; ++i) {
      events.push_back(MakeEvent(absl::StrCat("cam/", i % 3), "t", absl::StrCat(label, i),
                                 absl::StrCat("id-", i)));
    }
    ASSERT_TRUE(Publish(*stub, events).ok());
  };
  publish(*a, 0, 30, "early event ");
  ASSERT_TRUE(WaitDelivered(30));
  a->Kill9();
  const absl::Time killed = absl::Now();
  publish(*b, 30, 30, "late event ");  // Only b can send these.
  ASSERT_TRUE(WaitDelivered(60)) << Delivered().size() << " of 60 delivered; b's log:\n"
                                 << b->Log();
  // Not before the lease ran out (2 s after a's last renewal, which came at most 2/3 s before
  // the kill).
  absl::Time first_after = absl::InfiniteFuture();
  for (const Received& r : rx_.Requests()) {
    // webhook-id is msg_<log id>_<position>; the late events are at positions 31 to 60.
    const std::string id = r.Header("webhook-id");
    uint64_t position = 0;
    ASSERT_TRUE(absl::SimpleAtoi(id.substr(id.rfind('_') + 1), &position)) << id;
    if (position > 30) first_after = std::min(first_after, r.at);
  }
  ASSERT_LT(first_after, absl::InfiniteFuture());
  EXPECT_GE(first_after - killed, absl::Seconds(1)) << "b delivered while a's lease ran";
  std::printf("webhook endpoint taken over %.2f s after kill -9 of its holder (lease_time 2 s)\n",
              absl::ToDoubleSeconds(first_after - killed));
  EXPECT_EQ(state_of(*b), v1::WebhookEndpointStatus::ACTIVE);
  EXPECT_EQ(Delivered().size(), 60u);
  ASSERT_TRUE(b->Terminate(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace hookstream::testing
