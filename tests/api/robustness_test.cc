// Randomized robustness run (etcd's robustness suite in miniature): publishers that retry with
// stable ids, subscribers that disconnect at random points and resume from the token of the last
// event they processed, and server restarts in between. Afterwards the invariants of DESIGN.md
// §3 are checked on what every client saw: ordered, gap-free, unique, durable, resumable.
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/testutil/nats_server.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::FromToken;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TempDir;

constexpr int kPublishers = 3;
constexpr int kEventsPerPublisher = 1500;

struct Processed {
  uint64_t position;
  uint64_t seq;
  std::string stream;
  std::string id;
};

// Parameter: the backend (false: embedded; true: JetStream on a nats-server -js started here).
class RobustnessTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      if (!testing::HaveNatsServer()) GTEST_FAIL() << "nats-server is not installed (.ci/install-deps installs it)";
      nats_ = std::make_unique<testing::NatsFixture>(1);
      nats_->Start();
    }
  }
  void StartServer(int port) {
    ServerOptions o;
    o.log.data_dir = dir_.path() + "/data";
    if (GetParam()) {
      o.jetstream.emplace();
      o.jetstream->servers = nats_->urls();
    }
    o.grpc_listen = absl::StrCat("127.0.0.1:", port);
    o.hub.session.buffer_bytes = 64 << 10;  // Small: slow resumers exercise the disk path.
    o.hub.ring_bytes = 512 << 10;
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::MutexLock l(&mu_);
    server_ = *std::move(s);
  }
  void Restart() {
    std::unique_ptr<Server> old;
    {
      absl::MutexLock l(&mu_);
      old = std::move(server_);
    }
    const int port = old->grpc_port();
    old->Drain(absl::Seconds(2));
    old.reset();
    StartServer(port);
  }

  TempDir dir_;
  std::unique_ptr<testing::NatsFixture> nats_;
  absl::Mutex mu_;
  std::unique_ptr<Server> server_ ABSL_GUARDED_BY(mu_);
};

TEST_P(RobustnessTest, RandomDisconnectsAndRestartsLoseDuplicateOrReorderNothing) {
  const uint32_t seed = std::random_device()();
  std::cout << "robustness seed: " << seed << "\n";
  StartServer(0);
  int port;
  {
    absl::MutexLock l(&mu_);
    port = server_->grpc_port();
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = v1::EventStream::NewStub(channel);

  // Publishers: batches of 1..20 with ids stable across retries; a failed publish is retried
  // until acknowledged (a restart in between must not store it twice).
  std::atomic<int> published{0};
  absl::Mutex ack_mu;
  std::map<std::string, std::pair<uint64_t, uint64_t>> acked;  // id -> (position, seq)
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      std::mt19937 rng(seed + p);
      int n = 0;
      while (n < kEventsPerPublisher) {
        const int size = std::min<int>(1 + rng() % 20, kEventsPerPublisher - n);
        v1::PublishRequest req;
        for (int k = 0; k < size; ++k) {
          *req.add_events() = MakeEvent(absl::StrCat("rb/", p, "/", (n + k) % 4), "t",
                                        std::string(32 + rng() % 200, 'x'),
                                        absl::StrCat("p", p, "-", n + k), "robust");
        }
        v1::PublishResponse resp;
        for (int attempt = 0;; ++attempt) {
          ASSERT_LT(attempt, 2000) << "publish never succeeded";
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
          ctx.set_wait_for_ready(true);
          grpc::Status s = stub->Publish(&ctx, req, &resp);
          if (s.ok()) break;
          ASSERT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                      s.error_code() == grpc::StatusCode::CANCELLED)
              << s.error_code() << " " << s.error_message();
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Retry backoff.
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

  // Subscribers: unfiltered and filtered; each takes a random number of events per
  // connection, "processes" them, then disconnects and resumes from the last processed token.
  const std::vector<std::vector<std::string>> filters = {{}, {}, {"rb/1/>"}, {"rb/*/2"}};
  std::vector<std::vector<Processed>> processed(filters.size());
  std::atomic<bool> publishing_done{false};
  std::atomic<uint64_t> final_head{0};
  std::vector<std::atomic<size_t>> expected(filters.size());
  for (auto& e : expected) e = SIZE_MAX;
  std::vector<std::thread> subscribers;
  for (size_t w = 0; w < filters.size(); ++w) {
    subscribers.emplace_back([&, w] {
      std::mt19937 rng(seed * 31 + w);
      std::string token;
      const absl::Time deadline = absl::Now() + absl::Seconds(120);
      while (processed[w].size() < expected[w].load() && absl::Now() < deadline) {
        v1::SubscribeRequest req = token.empty() ? FromBeginning(filters[w]) : FromToken(token, filters[w]);
        SubscribeClient sub(*stub, req);
        const size_t take = 1 + rng() % 400;
        sub.WaitUntil(
            [&](const SubscribeClient::State& s) {
              return s.events.size() >= take || s.finished.has_value() ||
                     (publishing_done && s.caught_up > 0 &&
                      processed[w].size() + s.events.size() >= expected[w].load());
            },
            absl::Seconds(2));
        SubscribeClient::State st = sub.Snapshot();
        if (st.finished && !st.finished->ok()) {
          // A subscription the drain ends gets UNAVAILABLE. A call that reaches the server
          // while gRPC itself is shutting down is cancelled by gRPC before any message: both
          // mean "resume elsewhere or later".
          const bool raced_shutdown = st.finished->error_code() == grpc::StatusCode::CANCELLED &&
                                      st.messages.empty();
          EXPECT_TRUE(st.finished->error_code() == grpc::StatusCode::UNAVAILABLE || raced_shutdown)
              << st.finished->error_code() << " " << st.finished->error_message() << " after "
              << st.messages.size() << " messages";
        }
        const size_t n = std::min(take, st.events.size());
        for (size_t i = 0; i < n; ++i) {
          const v1::Event& e = st.events[i].event();
          processed[w].push_back({e.position(), e.seq(), e.stream(), e.id()});
          token = st.events[i].resume_token();
        }
      }
    });
  }

  // Two restarts while everything runs.
  for (int target : {kPublishers * kEventsPerPublisher / 3, 2 * kPublishers * kEventsPerPublisher / 3}) {
    while (published.load() < target) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    Restart();
  }
  for (auto& t : publishers) t.join();

  // The final log, read once from the beginning: everything acknowledged, once, in order.
  std::vector<v1::Event> log;
  {
    SubscribeClient all(*stub, FromBeginning());
    ASSERT_TRUE(all.WaitForEvents(kPublishers * kEventsPerPublisher, absl::Seconds(60)));
    for (const auto& d : all.Snapshot().events) log.push_back(d.event());
  }
  ASSERT_EQ(log.size(), static_cast<size_t>(kPublishers * kEventsPerPublisher))
      << "every publish was retried until acknowledged, and dedup stored each id once";
  std::map<std::string, const v1::Event*> by_id;
  std::map<std::string, uint64_t> seqs;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(log[i].position(), i + 1) << "positions are dense";
    ASSERT_TRUE(by_id.emplace(log[i].id(), &log[i]).second) << "stored twice: " << log[i].id();
    ASSERT_EQ(log[i].seq(), ++seqs[log[i].stream()]) << "seq gap in " << log[i].stream();
  }
  {
    absl::MutexLock l(&ack_mu);
    ASSERT_EQ(acked.size(), log.size());
    for (const auto& [id, ps] : acked) {
      ASSERT_TRUE(by_id.count(id)) << "acknowledged but missing: " << id;
      EXPECT_EQ(by_id[id]->position(), ps.first) << id;
      EXPECT_EQ(by_id[id]->seq(), ps.second) << id;
    }
  }
  final_head = log.size();
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
    for (const auto& p : processed[w]) {
      EXPECT_EQ(by_id[p.id]->position(), p.position);
    }
  }
  absl::MutexLock l(&mu_);
  server_->Drain(absl::Seconds(2));
}

INSTANTIATE_TEST_SUITE_P(Backends, RobustnessTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "JetStream" : "Embedded"; });

}  // namespace
}  // namespace hookstream
