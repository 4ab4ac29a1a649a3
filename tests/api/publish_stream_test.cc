// PublishStream's read-ahead bound and answer order, against the real service and a real log
// whose appends a test can hold (tests/testutil/holding_log.h): with every append held, the
// server must stop reading at PublishStreamLimits (requests, or bytes when requests are large);
// released, every event is stored once and acknowledged in request order. Also: a burst of
// answers that arrives at once all reaches a client that waits for them before writing more.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/api/event_stream_service.h"
#include "server/storage/embedded_log.h"
#include "server/subscription/hub.h"
#include "tests/testutil/holding_log.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::HoldingLog;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::TempDir;
using ::hookstream::testing::Transport;

constexpr absl::Duration kWait = absl::Seconds(60);

// One PublishStream call driven from two threads: a writer that sends every request and then
// half-closes (blocking on flow control when the server stops reading), and a reader that
// collects the answers.
class Call {
 public:
  Call(v1::EventStream::Stub& stub, std::vector<v1::PublishRequest> requests, bool half_close)
      : requests_(std::move(requests)),
        half_close_(half_close),
        stream_(stub.PublishStream(&ctx_)) {
    writer_ = std::thread([this] {
      for (const v1::PublishRequest& r : requests_) {
        if (!stream_->Write(r)) return;
      }
      if (half_close_) stream_->WritesDone();
    });
    reader_ = std::thread([this] {
      v1::PublishResponse resp;
      while (stream_->Read(&resp)) {
        absl::MutexLock l(&mu_);
        responses_.push_back(resp);
      }
    });
  }
  // Fails the call if a test ends early, so that the threads end.
  ~Call() {
    ctx_.TryCancel();
    Join();
  }

  bool WaitForResponses(size_t n, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto reached = [this, n]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return responses_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  std::vector<v1::PublishResponse> responses() {
    absl::MutexLock l(&mu_);
    return responses_;
  }
  // Half-closes (when the writer did not) and returns the call's status.
  grpc::Status Finish() {
    if (writer_.joinable()) writer_.join();
    if (!half_close_) stream_->WritesDone();
    if (reader_.joinable()) reader_.join();
    return stream_->Finish();
  }

 private:
  void Join() {
    if (writer_.joinable()) writer_.join();
    if (reader_.joinable()) reader_.join();
  }

  const std::vector<v1::PublishRequest> requests_;
  const bool half_close_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PublishRequest, v1::PublishResponse>> stream_;
  absl::Mutex mu_;
  std::vector<v1::PublishResponse> responses_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
  std::thread reader_;
};

// Requests of one event each, ids "e0", "e1", ... with `data_bytes` of data.
std::vector<v1::PublishRequest> Requests(size_t n, size_t data_bytes) {
  std::vector<v1::PublishRequest> out(n);
  for (size_t i = 0; i < n; ++i) {
    *out[i].add_events() = MakeEvent(absl::StrCat("ahead/", i % 7), "t",
                                     std::string(data_bytes, 'x'), absl::StrCat("e", i), "bound");
  }
  return out;
}

class PublishStreamTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    storage::EmbeddedLogOptions lo;
    lo.data_dir = dir_.path() + "/data";
    absl::StatusOr<std::unique_ptr<storage::Log>> inner = storage::OpenEmbeddedLog(lo);
    ASSERT_TRUE(inner.ok()) << inner.status();
    log_ = std::make_unique<HoldingLog>(*std::move(inner));
    hub_ = std::make_unique<subscription::Hub>(log_.get(), subscription::HubOptions());
    service_ = std::make_unique<api::EventStreamService>(log_.get(), hub_.get(), options_);
    grpc::ServerBuilder builder;
    int port = 0;
    if (GetParam() == Transport::kTcp) {
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    }
    builder.SetMaxReceiveMessageSize(64 << 20);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = GetParam() == Transport::kTcp
                   ? grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                         grpc::InsecureChannelCredentials())
                   : server_->InProcessChannel(grpc::ChannelArguments());
    stub_ = v1::EventStream::NewStub(channel_);
  }

  void TearDown() override {
    if (log_ != nullptr) log_->Release();  // A failed test may have left appends held.
    if (server_ != nullptr) {
      hub_->Shutdown();
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      server_->Wait();
    }
    if (log_ != nullptr) log_->Close();
  }

  // Every stored event's id, in position order.
  std::vector<std::string> StoredIds() {
    std::vector<std::string> ids;
    Position after;
    while (after < log_->head()) {
      absl::StatusOr<storage::ReadChunk> chunk = log_->Read(
          after, storage::ReadLimits(), [](absl::string_view, absl::string_view) { return true; });
      if (!chunk.ok()) {
        ADD_FAILURE() << chunk.status();
        break;
      }
      for (const storage::StoredEvent& e : chunk->events) {
        v1::Event event;
        EXPECT_TRUE(event.ParseFromString(e.bytes));
        ids.push_back(event.id());
      }
      after = chunk->scanned_through;
    }
    return ids;
  }

  // The server has read exactly `expected` requests (each handed to the log at once) and reads
  // nothing more while they stay unanswered. A negative can only be watched for a while: the
  // window is long next to the microseconds a request already sent takes to be read, and a
  // slow machine can only hide a violation, never report a false one.
  void ExpectReadStopsAt(size_t expected) {
    ASSERT_TRUE(log_->WaitForAppends(expected, kWait))
        << "the server read only " << log_->appends() << " of " << expected << " requests";
    EXPECT_FALSE(log_->WaitForAppends(expected + 1, absl::Milliseconds(500)))
        << "the server read past its bound: " << log_->appends() << " requests, " << expected
        << " expected";
    EXPECT_EQ(log_->appends(), expected);
    EXPECT_EQ(log_->events(), expected);
  }

  // With every append held the server stops at `bound`; each answer lets exactly one more
  // request in (the bound counts unanswered requests, not requests ever read).
  void ExpectReadAheadBound(size_t bound) {
    ASSERT_NO_FATAL_FAILURE(ExpectReadStopsAt(bound));
    ASSERT_TRUE(log_->ReleaseOldest());
    ASSERT_NO_FATAL_FAILURE(ExpectReadStopsAt(bound + 1));
  }

  // After Release: every request was answered, in request order, and every event is stored
  // exactly once, in request order.
  void ExpectAllStoredOnceAndAckedInOrder(Call& call, size_t n) {
    ASSERT_TRUE(call.WaitForResponses(n, kWait))
        << call.responses().size() << " of " << n << " answers arrived; the server read "
        << log_->appends() << " requests";
    grpc::Status status = call.Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    const std::vector<v1::PublishResponse> responses = call.responses();
    ASSERT_EQ(responses.size(), n);
    uint64_t last = 0;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(responses[i].results_size(), 1);
      const v1::PublishResult& r = responses[i].results(0);
      EXPECT_EQ(r.id(), absl::StrCat("e", i)) << "answer " << i << " is not request " << i << "'s";
      EXPECT_FALSE(r.duplicate());
      EXPECT_GT(r.position(), last);
      last = r.position();
    }
    const std::vector<std::string> ids = StoredIds();
    ASSERT_EQ(ids.size(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(ids[i], absl::StrCat("e", i));
  }

  TempDir dir_;
  api::EventStreamOptions options_;
  std::unique_ptr<HoldingLog> log_;
  std::unique_ptr<subscription::Hub> hub_;
  std::unique_ptr<api::EventStreamService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventStream::Stub> stub_;
};

TEST_P(PublishStreamTest, ReadsAheadAtMostMaxInFlightRequestsThenAcksAllInOrder) {
  const api::PublishStreamLimits limits = options_.publish_stream;
  ASSERT_EQ(limits.max_in_flight, 1024u) << "the shipped bound is the one tested";
  const size_t n = limits.max_in_flight + 300;
  std::vector<v1::PublishRequest> requests = Requests(n, 16);
  // Small requests: the count bound trips long before the byte bound.
  ASSERT_LT(limits.max_in_flight * requests[0].ByteSizeLong(), limits.max_in_flight_bytes);
  log_->Hold();
  Call call(*stub_, requests, /*half_close=*/true);
  ExpectReadAheadBound(limits.max_in_flight);
  log_->Release();
  ExpectAllStoredOnceAndAckedInOrder(call, n);
}

TEST_P(PublishStreamTest, LargeRequestsStopReadingAtTheByteBoundFirst) {
  const api::PublishStreamLimits limits = options_.publish_stream;
  ASSERT_EQ(limits.max_in_flight_bytes, size_t{4} << 20) << "the shipped bound is the one tested";
  std::vector<v1::PublishRequest> requests = Requests(1, 200 << 10);
  const size_t request_bytes = requests[0].ByteSizeLong();  // What the server counts, too.
  // Reading continues while fewer than max_in_flight_bytes are unanswered: the request that
  // reaches the bound is read, the next one is not.
  const size_t expected = (limits.max_in_flight_bytes + request_bytes - 1) / request_bytes;
  ASSERT_EQ(expected, 21u);  // 4 MiB / (200 KiB + framing): 20 stay below, the 21st crosses.
  ASSERT_LT(expected, limits.max_in_flight) << "the byte bound must be the one that trips";
  const size_t n = expected + 15;
  requests = Requests(n, 200 << 10);
  log_->Hold();
  Call call(*stub_, requests, /*half_close=*/true);
  ExpectReadAheadBound(expected);
  log_->Release();
  ExpectAllStoredOnceAndAckedInOrder(call, n);
}

// Answers that become ready together (one group commit acknowledging many requests) must all
// be sent: a client that waits for every answer before it writes again or half-closes would
// otherwise wait forever for the last one (an answer buffered and never flushed).
TEST_P(PublishStreamTest, EveryAnswerOfABurstReachesAClientThatWaitsForThem) {
  for (size_t n : {1u, 2u, 64u, 500u}) {
    SCOPED_TRACE(absl::StrCat(n, " requests"));
    const size_t before = log_->appends();
    const Position head = log_->head();
    std::vector<v1::PublishRequest> requests = Requests(n, 16);
    for (size_t i = 0; i < n; ++i) {
      requests[i].mutable_events(0)->set_id(absl::StrCat("burst", n, "-", i));
    }
    log_->Hold();
    Call call(*stub_, requests, /*half_close=*/false);
    ASSERT_TRUE(log_->WaitForAppends(before + n, kWait));
    log_->Release();  // All n answers become ready in a burst.
    ASSERT_TRUE(call.WaitForResponses(n, kWait))
        << "only " << call.responses().size() << " of " << n << " answers reached the client";
    EXPECT_EQ(call.responses().back().results(0).id(), absl::StrCat("burst", n, "-", n - 1));
    EXPECT_EQ(log_->head().value(), head.value() + n);
    grpc::Status status = call.Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, PublishStreamTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp),
                         [](const auto& info) { return testing::TransportName(info.param); });

}  // namespace
}  // namespace hookstream
