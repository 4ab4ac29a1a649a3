// Scale-out under failure (issue 10): a 3-node nats-server cluster with an R3 stream and two
// hookstreamd processes on it. Publishers write through both servers, mostly to the same
// streams at the same time (DESIGN §3: dense, unique per-stream seqs whatever the number of
// servers), while subscribers on both
// read (each sees the other server's publishes live), disconnect at random
// and resume from their last processed token. Midway one NATS node and then one hookstreamd are
// killed with SIGKILL; every client moves to the surviving server with its token. Afterwards:
// every acknowledged event is stored exactly once at the position it was acknowledged with,
// positions and per-stream seqs are dense, and every subscriber processed exactly the matching
// events, in order.
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/storage/jetstream/jetstream_log.h"
#include "server/subscription/filter.h"
#include "tests/testutil/nats_server.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::FromToken;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::NatsFixture;
using ::hookstream::testing::ServerProcess;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TempDir;

constexpr int kPublishers = 2;  // One per hookstreamd.
constexpr int kEventsPerPublisher = 600;

std::unique_ptr<v1::EventStream::Stub> StubFor(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return v1::EventStream::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));
}

struct Processed {
  uint64_t position;
  std::string id;
};

TEST(JetStreamClusterTest, ClientsResumeOnTheSurvivorAfterANatsNodeAndAServerDie) {
  if (!testing::HaveNatsServer())
    GTEST_FAIL() << "nats-server is not installed (.ci/install-deps installs it)";
  const uint32_t seed = std::random_device()();
  std::cout << "cluster seed: " << seed << "\n";
  NatsFixture nats(3);
  nats.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  // The cluster elects its JetStream leader after start: create the R3 stream once it can.
  storage::JetStreamLogOptions js;
  js.servers = nats.urls();
  js.replicas = 3;
  js.connect_timeout = absl::Seconds(2);
  absl::Status created;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        absl::StatusOr<std::unique_ptr<storage::Log>> log = storage::OpenJetStreamLog(js);
        created = log.status();
        if (!log.ok()) absl::SleepFor(absl::Milliseconds(200));
        return log.ok();
      },
      absl::Seconds(60)))
      << created;

  TempDir dir;
  const std::string config = dir.path() + "/hookstream.yaml";
  {
    std::ofstream out(config);
    out << "storage:\n  backend: jetstream\n  replicas: 3\n  request_timeout: 2s\n"
        << "  servers: [\"" << absl::StrJoin(nats.urls(), "\", \"") << "\"]\n";
  }
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<ServerProcess>(
        HOOKSTREAMD_PATH, absl::StrCat(dir.path(), "/unused", i),
        absl::StrCat(dir.path(), "/hookstreamd", i, ".log"),
        std::vector<std::string>{absl::StrCat("--config=", config), "--http_listen=off"}));
    servers.back()->Start();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  std::vector<std::unique_ptr<v1::EventStream::Stub>> stubs;
  for (auto& s : servers) stubs.push_back(StubFor(s->port()));
  std::atomic<bool> a_dead{false};
  // Clients use their own server while it lives, then the survivor (server 1).
  auto stub_for = [&](int home) -> v1::EventStream::Stub& {
    return *stubs[home == 0 && a_dead.load() ? 1 : home];
  };

  std::atomic<int> published{0};
  absl::Mutex ack_mu;
  std::map<std::string, std::pair<uint64_t, uint64_t>> acked;  // id -> (position, seq)
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      std::mt19937 rng(seed + p);
      int n = 0;
      while (n < kEventsPerPublisher) {
        const int size = std::min<int>(1 + rng() % 10, kEventsPerPublisher - n);
        v1::PublishRequest req;
        for (int k = 0; k < size; ++k) {
          // Two of every three events go to streams both publishers write at once through
          // their two servers (the per-stream seqs must stay dense and unique across servers);
          // the third to a stream of the publisher's own, which moves to the survivor after
          // its server dies.
          const int i = (n + k) % 3;
          const std::string stream = i < 2 ? absl::StrCat("s/", i) : absl::StrCat("c", p, "/2");
          *req.add_events() = MakeEvent(stream, "t", std::string(16 + rng() % 100, 'x'),
                                        absl::StrCat("p", p, "-", n + k), "cluster");
        }
        v1::PublishResponse resp;
        for (int attempt = 0;; ++attempt) {
          ASSERT_LT(attempt, 1000) << "publish never succeeded";
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(40));
          grpc::Status s = stub_for(p).Publish(&ctx, req, &resp);
          if (s.ok()) break;
          ASSERT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                      s.error_code() == grpc::StatusCode::CANCELLED)
              << s.error_code() << " " << s.error_message();
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        absl::MutexLock l(&ack_mu);
        for (int k = 0; k < size; ++k) {
          const auto& r = resp.results(k);
          auto [it, inserted] =
              acked.emplace(req.events(k).id(), std::make_pair(r.position(), r.seq()));
          EXPECT_TRUE(inserted) << "id acknowledged twice";
        }
        n += size;
        published += size;
      }
    });
  }

  // Subscribers, two per server: all events, and one shared stream.
  const std::vector<std::vector<std::string>> filters = {{}, {"s/1"}, {}, {"*/2"}};
  std::vector<std::vector<Processed>> processed(filters.size());
  std::atomic<bool> publishing_done{false};
  std::vector<std::atomic<size_t>> expected(filters.size());
  for (auto& e : expected) e = SIZE_MAX;
  std::vector<std::thread> subscribers;
  for (size_t w = 0; w < filters.size(); ++w) {
    subscribers.emplace_back([&, w] {
      const int home = static_cast<int>(w % 2);
      std::mt19937 rng(seed * 31 + w);
      std::string token;
      const absl::Time deadline = absl::Now() + absl::Seconds(150);
      while (processed[w].size() < expected[w].load() && absl::Now() < deadline) {
        v1::SubscribeRequest req =
            token.empty() ? FromBeginning(filters[w]) : FromToken(token, filters[w]);
        SubscribeClient sub(stub_for(home), req);
        const size_t take = 1 + rng() % 300;
        sub.WaitUntil(
            [&](const SubscribeClient::State& s) {
              return s.events.size() >= take || s.finished.has_value() ||
                     (publishing_done && s.caught_up > 0 &&
                      processed[w].size() + s.events.size() >= expected[w].load());
            },
            absl::Seconds(2));
        SubscribeClient::State st = sub.Snapshot();
        if (st.finished && !st.finished->ok()) {
          // A killed server: UNAVAILABLE (or CANCELLED as the connection breaks).
          EXPECT_TRUE(st.finished->error_code() == grpc::StatusCode::UNAVAILABLE ||
                      st.finished->error_code() == grpc::StatusCode::CANCELLED)
              << st.finished->error_code() << " " << st.finished->error_message();
        }
        const size_t n = std::min(take, st.events.size());
        for (size_t i = 0; i < n; ++i) {
          const v1::Event& e = st.events[i].event();
          processed[w].push_back({e.position(), e.id()});
          token = st.events[i].resume_token();
        }
      }
    });
  }

  const int total = kPublishers * kEventsPerPublisher;
  auto wait_published = [&](int target) {
    while (published.load() < target) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  };
  wait_published(total / 3);
  nats.node(0).Kill9();  // A NATS node (perhaps the stream's leader) dies.
  wait_published(2 * total / 3);
  servers[0]->Kill9();  // And a hookstream server.
  a_dead = true;
  for (auto& t : publishers) t.join();

  // The final log, read from the survivor: everything acknowledged, once, in order, dense.
  std::vector<v1::Event> log;
  {
    SubscribeClient all(*stubs[1], FromBeginning());
    ASSERT_TRUE(all.WaitForEvents(total, absl::Seconds(60)));
    for (const auto& d : all.Snapshot().events) log.push_back(d.event());
  }
  ASSERT_EQ(log.size(), static_cast<size_t>(total));
  std::map<std::string, const v1::Event*> by_id;
  std::map<std::string, uint64_t> seqs;
  int seq_errors = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(log[i].position(), i + 1) << "positions are dense";
    ASSERT_TRUE(by_id.emplace(log[i].id(), &log[i]).second) << "stored twice: " << log[i].id();
    const uint64_t want = ++seqs[log[i].stream()];
    if (log[i].seq() != want && ++seq_errors <= 5) {
      ADD_FAILURE() << "stream " << log[i].stream() << " at position " << log[i].position()
                    << ": seq " << log[i].seq() << ", want " << want << " (dense and unique)";
    }
    seqs[log[i].stream()] = log[i].seq();
  }
  EXPECT_EQ(seq_errors, 0) << "per-stream seqs are not dense";
  {
    absl::MutexLock l(&ack_mu);
    ASSERT_EQ(acked.size(), log.size());
    for (const auto& [id, ps] : acked) {
      ASSERT_TRUE(by_id.count(id)) << "acknowledged but missing: " << id;
      EXPECT_EQ(by_id[id]->position(), ps.first) << id;
      EXPECT_EQ(by_id[id]->seq(), ps.second) << id;
    }
  }
  for (size_t w = 0; w < filters.size(); ++w) {
    auto filter = subscription::Filter::Create(filters[w], {});
    ASSERT_TRUE(filter.ok());
    size_t n = 0;
    for (const auto& e : log) n += filter->Matches(e.stream(), e.type()) ? 1 : 0;
    expected[w] = n;
  }
  publishing_done = true;
  for (auto& t : subscribers) t.join();
  for (size_t w = 0; w < filters.size(); ++w) {
    auto filter = subscription::Filter::Create(filters[w], {});
    std::vector<uint64_t> want;
    for (const auto& e : log) {
      if (filter->Matches(e.stream(), e.type())) want.push_back(e.position());
    }
    std::vector<uint64_t> got;
    for (const auto& p : processed[w]) got.push_back(p.position);
    ASSERT_EQ(got.size(), want.size()) << "subscriber " << w << " missed or repeated events";
    EXPECT_EQ(got, want) << "subscriber " << w << ": exactly the matching events, in order";
  }
  EXPECT_TRUE(servers[1]->Terminate(absl::Seconds(20)).has_value());
}

}  // namespace
}  // namespace hookstream
