// The Publisher against the real server: batching, per-event results, and retries that never
// store an event twice (lost acknowledgements, server restarts mid-publish).
#include <atomic>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/support/client_interceptor.h"
#include "gtest/gtest.h"
#include "hookstream/client.h"
#include "tests/client/restartable_server.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::client::Publisher;
using ::hookstream::client::PublisherOptions;
using ::hookstream::client::PublishResult;
using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::RestartableServer;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

using Future = std::future<absl::StatusOr<PublishResult>>;

PublisherOptions Fast() {
  PublisherOptions o;
  o.backoff.initial = absl::Milliseconds(10);
  o.backoff.max = absl::Milliseconds(100);
  return o;
}

std::unique_ptr<Publisher> CreateOrDie(std::shared_ptr<grpc::Channel> channel,
                                       PublisherOptions options) {
  absl::StatusOr<std::unique_ptr<Publisher>> p = Publisher::Create(channel, std::move(options));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

absl::StatusOr<PublishResult> Get(Future& f) {
  if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return absl::DeadlineExceededError("test: no result within 30 s");
  }
  return f.get();
}

// Every event in the log, read once from the beginning.
std::vector<v1::Event> ReadLog(v1::EventStream::Stub& stub, size_t expected) {
  SubscribeClient all(stub, FromBeginning());
  EXPECT_TRUE(all.WaitForEvents(expected, absl::Seconds(30)));
  EXPECT_TRUE(all.WaitForCaughtUp());
  std::vector<v1::Event> log;
  for (const auto& d : all.Snapshot().events) log.push_back(d.event());
  return log;
}

class PublisherTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override { server_ = std::make_unique<TestServer>(GetParam()); }
  v1::EventStream::Stub& stub() { return server_->stub(); }

  std::unique_ptr<TestServer> server_;
};

TEST_P(PublisherTest, BatchesEventsAndReportsEachResultInPublishOrder) {
  PublisherOptions options = Fast();
  options.linger = absl::Milliseconds(50);
  options.max_batch_events = 100;
  auto publisher = CreateOrDie(server_->channel(), options);
  std::vector<Future> futures;
  for (int i = 0; i < 250; ++i) {
    futures.push_back(publisher->Publish(MakeEvent(absl::StrCat("b/", i % 3), "t", "x", "", "")));
  }
  std::map<std::string, uint64_t> seqs;
  std::set<std::string> ids;
  for (int i = 0; i < 250; ++i) {
    absl::StatusOr<PublishResult> r = Get(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->position, static_cast<uint64_t>(i + 1)) << "stored in publish order";
    EXPECT_EQ(r->seq, ++seqs[absl::StrCat("b/", i % 3)]);
    EXPECT_FALSE(r->duplicate);
    EXPECT_EQ(r->attempts, 1);
    EXPECT_THAT(r->id, MatchesRegex("[0-9a-f]{32}")) << "a client-side id, stable across retries";
    ids.insert(r->id);
  }
  EXPECT_EQ(ids.size(), 250u);
  EXPECT_LE(publisher->stats().requests, 25u) << "batched";
  EXPECT_EQ(publisher->stats().acknowledged, 250u);
  const std::vector<v1::Event> log = ReadLog(stub(), 250);
  ASSERT_EQ(log.size(), 250u);
  for (const v1::Event& e : log) {
    EXPECT_EQ(e.source(), "hookstream-cpp");
    EXPECT_TRUE(ids.count(e.id())) << e.id();
  }
}

TEST_P(PublisherTest, KeepsTheApplicationsIdsAndSourcesAndDefaultsTheSource) {
  PublisherOptions options = Fast();
  options.default_source = "custom-source";
  auto publisher = CreateOrDie(server_->channel(), options);
  Future mine = publisher->Publish(MakeEvent("k/1", "t", "", "mine-1", "app"));
  Future defaulted = publisher->Publish(MakeEvent("k/1", "t", "", "mine-2", ""));
  absl::StatusOr<PublishResult> first = Get(mine);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, "mine-1");
  ASSERT_TRUE(Get(defaulted).ok());
  Future again = publisher->Publish(MakeEvent("k/1", "t", "", "mine-1", "app"));
  absl::StatusOr<PublishResult> dup = Get(again);
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->position, first->position);
  const std::vector<v1::Event> log = ReadLog(stub(), 2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].source(), "app");
  EXPECT_EQ(log[1].source(), "custom-source");
  EXPECT_EQ(log[1].id(), "mine-2");
}

TEST_P(PublisherTest, ARejectedEventFailsAloneAndTheRestOfItsBatchIsStored) {
  PublisherOptions options = Fast();
  options.linger = absl::Hours(1);  // One batch, sent by Flush().
  auto publisher = CreateOrDie(server_->channel(), options);
  Future good1 = publisher->Publish(MakeEvent("g/1"));
  Future bad = publisher->Publish(MakeEvent("bad//name"));
  Future good2 = publisher->Publish(MakeEvent("g/2"));
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());
  absl::StatusOr<PublishResult> r1 = Get(good1), rb = Get(bad), r2 = Get(good2);
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(rb.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rb.status().message(), HasSubstr("stream"));
  EXPECT_EQ(r1->position, 1u);
  EXPECT_EQ(r2->position, 2u);
  EXPECT_EQ(ReadLog(stub(), 2).size(), 2u);
}

TEST_P(PublisherTest, ExpectedSeqIsPassedThroughAndAConflictFailsOnlyItsEvent) {
  PublisherOptions options = Fast();
  options.linger = absl::Hours(1);
  auto publisher = CreateOrDie(server_->channel(), options);
  Future first = publisher->Publish(MakeEvent("s/1"));
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());
  ASSERT_TRUE(Get(first).ok());
  v1::EventInput stale = MakeEvent("s/1");
  stale.set_expected_seq(7);
  v1::EventInput right = MakeEvent("s/1");
  right.set_expected_seq(1);
  Future other1 = publisher->Publish(MakeEvent("o/1"));
  Future conflict = publisher->Publish(stale);
  Future other2 = publisher->Publish(MakeEvent("o/1"));
  Future ok = publisher->Publish(right);
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());
  EXPECT_TRUE(Get(other1).ok());
  EXPECT_EQ(Get(conflict).status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Get(other2).ok());
  absl::StatusOr<PublishResult> r = Get(ok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seq, 2u);
}

TEST_P(PublisherTest, CallbacksRunInPublishOrderAndMayPublishMore) {
  auto publisher = CreateOrDie(server_->channel(), Fast());
  absl::Mutex mu;
  std::vector<uint64_t> positions;
  std::promise<void> chained;
  for (int i = 0; i < 20; ++i) {
    publisher->Publish(MakeEvent("c/1"), [&, i](absl::StatusOr<PublishResult> r) {
      ASSERT_TRUE(r.ok()) << r.status();
      {
        absl::MutexLock l(&mu);
        positions.push_back(r->position);
      }
      if (i == 19) {
        publisher->Publish(MakeEvent("c/2"), [&](absl::StatusOr<PublishResult> r2) {
          EXPECT_TRUE(r2.ok());
          chained.set_value();
        });
      }
    });
  }
  ASSERT_EQ(chained.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  absl::MutexLock l(&mu);
  ASSERT_EQ(positions.size(), 20u);
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
}

INSTANTIATE_TEST_SUITE_P(Transports, PublisherTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp),
                         [](const auto& info) { return TransportName(info.param); });

// Lets a Publish call reach the server and replaces its OK with UNAVAILABLE, the first
// `count` times: the acknowledgement is lost after the events were stored.
class LoseAcknowledgements : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit LoseAcknowledgements(int count) : remaining_(count) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    if (std::string(info->method()) != "/hookstream.v1.EventStream/Publish") return nullptr;
    return new Interceptor(&remaining_);
  }

 private:
  class Interceptor : public grpc::experimental::Interceptor {
   public:
    explicit Interceptor(std::atomic<int>* remaining) : remaining_(remaining) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      if (methods->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
        grpc::Status* status = methods->GetRecvStatus();
        if (status->ok() && remaining_->fetch_sub(1) > 0) {
          *status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "test: acknowledgement lost");
        }
      }
      methods->Proceed();
    }

   private:
    std::atomic<int>* remaining_;
  };
  std::atomic<int> remaining_;
};

TEST(PublisherRetryTest, LostAcknowledgementsAreRetriedAndDeduplicated) {
  TestServer server(Transport::kTcp);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> lose;
  lose.push_back(std::make_unique<LoseAcknowledgements>(2));
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      absl::StrCat("127.0.0.1:", server.server().grpc_port()), grpc::InsecureChannelCredentials(),
      grpc::ChannelArguments(), std::move(lose));
  PublisherOptions options = Fast();
  options.linger = absl::Hours(1);
  auto publisher = CreateOrDie(channel, options);
  std::vector<Future> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(publisher->Publish(MakeEvent("l/1")));
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<PublishResult> r = Get(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->attempts, 3);
    EXPECT_TRUE(r->duplicate) << "stored by the first attempt";
    EXPECT_EQ(r->position, static_cast<uint64_t>(i + 1)) << "the original position";
    EXPECT_EQ(r->seq, static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(publisher->stats().retries, 2u);
  EXPECT_EQ(ReadLog(server.stub(), 10).size(), 10u) << "stored once";
}

TEST(PublisherRetryTest, ServerRestartsMidPublishStoreEveryEventExactlyOnce) {
  constexpr int kEvents = 1500;
  RestartableServer server;
  PublisherOptions options = Fast();
  options.linger = absl::Milliseconds(1);
  options.max_batch_events = 50;
  options.retry_budget = absl::Seconds(30);
  auto publisher = CreateOrDie(server.Channel(), options);
  absl::Mutex mu;
  int acknowledged = 0;
  std::vector<absl::StatusOr<PublishResult>> results(kEvents, absl::UnknownError("pending"));
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i) {
      publisher->Publish(MakeEvent(absl::StrCat("m/", i % 7), "t", "payload", "", ""),
                         [&, i](absl::StatusOr<PublishResult> r) {
                           absl::MutexLock l(&mu);
                           results[i] = std::move(r);
                           ++acknowledged;
                         });
    }
  });
  auto acknowledged_at_least = [&](int n) {
    absl::MutexLock l(&mu);
    std::pair<int*, int> arg(&acknowledged, n);
    return mu.AwaitWithTimeout(
        absl::Condition(
            +[](std::pair<int*, int>* a) { return *a->first >= a->second; }, &arg),
        absl::Seconds(30));
  };
  ASSERT_TRUE(acknowledged_at_least(400));
  server.Restart();
  ASSERT_TRUE(acknowledged_at_least(900));
  server.Restart();
  producer.join();
  ASSERT_TRUE(publisher->Flush(absl::Seconds(30)).ok());

  std::map<std::string, uint64_t> position_of;
  {
    absl::MutexLock l(&mu);
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.status();
      position_of[r->id] = r->position;
    }
  }
  EXPECT_GE(publisher->stats().retries, 1u) << "the restarts were felt";
  auto stub = v1::EventStream::NewStub(server.Channel());
  const std::vector<v1::Event> log = ReadLog(*stub, kEvents);
  ASSERT_EQ(log.size(), static_cast<size_t>(kEvents)) << "every event stored exactly once";
  std::set<std::string> seen;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(log[i].position(), i + 1);
    ASSERT_TRUE(seen.insert(log[i].id()).second) << "stored twice: " << log[i].id();
    ASSERT_EQ(position_of.at(log[i].id()), log[i].position());
  }
}

TEST(PublisherRetryTest, GivesUpAfterTheRetryBudgetNamingTheCause) {
  PublisherOptions options = Fast();
  options.retry_budget = absl::Milliseconds(300);
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto publisher = CreateOrDie(channel, options);
  Future f = publisher->Publish(MakeEvent("u/1"));
  absl::StatusOr<PublishResult> r = Get(f);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("gave up after"));
  EXPECT_EQ(publisher->stats().failed, 1u);
}

TEST(PublisherRetryTest, CloseCancelsWhatCannotBeDeliveredAndRefusesNewEvents) {
  PublisherOptions options = Fast();
  options.retry_budget = absl::Seconds(60);
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto publisher = CreateOrDie(channel, options);
  Future f = publisher->Publish(MakeEvent("u/1"));
  absl::Status closed = publisher->Close(absl::Milliseconds(100));
  EXPECT_EQ(closed.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(closed.message(), HasSubstr("1 events"));
  EXPECT_EQ(Get(f).status().code(), absl::StatusCode::kCancelled);
  Future late = publisher->Publish(MakeEvent("u/1"));
  EXPECT_EQ(Get(late).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PublisherRetryTest, BadOptionsAreRejected) {
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  PublisherOptions zero_batch;
  zero_batch.max_batch_events = 0;
  EXPECT_EQ(Publisher::Create(channel, zero_batch).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publisher::Create(nullptr, PublisherOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hookstream
