// Guarantee 8 (DESIGN.md §3) against the real binary: a subscriber that stops reading while
// 200,000 events are published costs the server bounded memory, and when it reads again it
// gets every event, in order. (Its effect on publish throughput is a figure of bench/core.sh:
// tests here assert behaviour, not timing.)
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::ServerProcess;
using ::hookstream::testing::TempDir;

constexpr int kEvents = 200000;
constexpr int kBatch = 100;

std::unique_ptr<v1::EventStream::Stub> Connect(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return v1::EventStream::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));
}

void PublishAll(v1::EventStream::Stub& stub) {
  const std::string payload(256, 'p');
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int b = t; b < kEvents / kBatch; b += 4) {
        std::vector<v1::EventInput> batch;
        for (int k = 0; k < kBatch; ++k) {
          batch.push_back(MakeEvent(absl::StrCat("slow/", (b * kBatch + k) % 1000), "t", payload));
        }
        ASSERT_TRUE(testing::Publish(stub, batch).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST(SlowSubscriberTest, StalledSubscriberCostsBoundedMemoryAndLaterGetsEverythingInOrder) {
  TempDir dir;
  // A small ring, so that what the stalled subscriber pins would show if it were unbounded.
  const std::string config = dir.path() + "/hookstream.yaml";
  std::ofstream(config) << "subscribe:\n  live_ring_bytes: 4194304\n"
                        << "limits:\n  subscriber_buffer_bytes: 1048576\n";
  const std::vector<std::string> args = {absl::StrCat("--config=", config),
                                         "--http_listen=off"};

  // Baseline: the same publishing with nobody subscribed.
  long baseline_kib;
  {
    ServerProcess server(HOOKSTREAMD_PATH, dir.path() + "/base", dir.path() + "/base.log", args);
    server.Start();
    auto stub = Connect(server.port());
    PublishAll(*stub);
    baseline_kib = server.RssKib();
    ASSERT_TRUE(server.Terminate(absl::Seconds(30)).has_value());
  }

  ServerProcess server(HOOKSTREAMD_PATH, dir.path() + "/slow", dir.path() + "/slow.log", args);
  server.Start();
  auto stub = Connect(server.port());
  grpc::ClientContext ctx;
  v1::SubscribeRequest req;  // START_NOW: everything published from here on.
  auto reader = stub->Subscribe(&ctx, req);
  v1::SubscribeResponse msg;
  while (reader->Read(&msg) && !msg.has_caught_up()) {
  }
  ASSERT_TRUE(msg.has_caught_up());
  // The subscriber now reads nothing while everything is published.
  PublishAll(*stub);
  const long stalled_kib = server.RssKib();
  std::cout << "server RSS after " << kEvents << " events: " << baseline_kib
            << " KiB without a subscriber, " << stalled_kib << " KiB with a stalled one\n";
  // Unbounded, the stalled subscriber's queue alone would pin ~66 MB of events.
  EXPECT_LT(stalled_kib - baseline_kib, 32 * 1024)
      << "a stalled subscriber must cost bounded memory";

  uint64_t expect = 1;
  int fell_behind = 0;
  while (expect <= kEvents && reader->Read(&msg)) {
    if (msg.has_fell_behind()) ++fell_behind;
    if (!msg.has_events()) continue;
    for (const auto& e : msg.events().events()) {
      ASSERT_EQ(e.event().position(), expect) << "every event, in order";
      ++expect;
    }
  }
  EXPECT_EQ(expect, static_cast<uint64_t>(kEvents) + 1);
  EXPECT_GE(fell_behind, 1) << "it was moved back to reading from disk";
  ctx.TryCancel();
  ASSERT_TRUE(server.Terminate(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace hookstream
