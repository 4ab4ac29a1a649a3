// End-to-end tests of hookstream.v1.EventStream against a real server, in-process and over TCP.
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::FromToken;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::Publish;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

// Guarantees 1-3 on what one subscription received: positions strictly increase, each stream's
// seqs are consecutive, nothing twice.
void ExpectOrderedGapFree(const std::vector<v1::DeliveredEvent>& events) {
  uint64_t last_position = 0;
  std::map<std::string, uint64_t> last_seq;
  for (const auto& d : events) {
    const v1::Event& e = d.event();
    EXPECT_GT(e.position(), last_position) << "position order broken at " << e.position();
    last_position = e.position();
    auto it = last_seq.find(e.stream());
    if (it != last_seq.end()) {
      EXPECT_EQ(e.seq(), it->second + 1) << "seq gap or duplicate in " << e.stream();
    }
    last_seq[e.stream()] = e.seq();
    EXPECT_FALSE(d.resume_token().empty());
  }
}

uint64_t Head(v1::EventStream::Stub& stub) {
  grpc::ClientContext ctx;
  v1::LogInfo info;
  EXPECT_TRUE(stub.GetLog(&ctx, v1::GetLogRequest(), &info).ok());
  return info.head_position();
}

class EventStreamTest : public ::testing::TestWithParam<Transport> {
 protected:
  ServerOptions Options() {
    ServerOptions o;
    o.hub.session.checkpoint_interval = absl::Milliseconds(50);
    o.hub.tick_period = absl::Milliseconds(10);
    return o;
  }
  void SetUp() override { server_ = std::make_unique<TestServer>(GetParam(), Options()); }

  v1::EventStream::Stub& stub() { return server_->stub(); }

  std::unique_ptr<TestServer> server_;
};

TEST_P(EventStreamTest, PublishAssignsGlobalPositionsAndDensePerStreamSeqs) {
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(stub(), {MakeEvent("a/1"), MakeEvent("b/1"), MakeEvent("a/1")}, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).position(), 1u);
  EXPECT_EQ(resp.results(1).position(), 2u);
  EXPECT_EQ(resp.results(2).position(), 3u);
  EXPECT_EQ(resp.results(0).seq(), 1u);
  EXPECT_EQ(resp.results(1).seq(), 1u);
  EXPECT_EQ(resp.results(2).seq(), 2u);
  EXPECT_FALSE(resp.results(0).id().empty()) << "an empty id gets a server-assigned one";
  EXPECT_NE(resp.results(0).id(), resp.results(2).id());
}

TEST_P(EventStreamTest, SubscribeDeliversHistoryThenCaughtUpThenLive) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("s/", i % 3), "t", "x")}).ok());
  }
  SubscribeClient sub(stub(), FromBeginning());
  ASSERT_TRUE(sub.WaitForCaughtUp());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("s/live")}).ok());
  ASSERT_TRUE(sub.WaitForEvents(15));
  auto st = sub.Snapshot();
  ASSERT_EQ(st.events.size(), 15u);
  ExpectOrderedGapFree(st.events);
  ASSERT_EQ(st.messages.front().message_case(), v1::SubscribeResponse::kSubscribed);
  EXPECT_EQ(st.messages.front().subscribed().head_position(), 10u);
  // caught_up comes after the 10 historical events and before the live ones.
  size_t seen = 0;
  for (const auto& m : st.messages) {
    if (m.has_events()) seen += m.events().events_size();
    if (m.has_caught_up()) {
      EXPECT_EQ(seen, 10u);
      break;
    }
  }
  EXPECT_EQ(st.events.back().event().stream(), "s/live");
  EXPECT_EQ(st.events.back().event().seq(), 5u);
}

TEST_P(EventStreamTest, ResumeFromTokenContinuesExactlyAfterIt) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("r/1")}).ok());
  std::string token;
  {
    SubscribeClient sub(stub(), FromBeginning());
    ASSERT_TRUE(sub.WaitForEvents(20));
    token = sub.Snapshot().events[6].resume_token();  // After position 7.
  }
  SubscribeClient resumed(stub(), FromToken(token));
  ASSERT_TRUE(resumed.WaitForCaughtUp());
  auto st = resumed.Snapshot();
  ASSERT_EQ(st.events.size(), 13u);
  EXPECT_EQ(st.events.front().event().position(), 8u);
  EXPECT_EQ(st.events.front().event().seq(), 8u);
  ExpectOrderedGapFree(st.events);
}

TEST_P(EventStreamTest, TokensFromBeforeARestartResumeAfterIt) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("x/y")}).ok());
  std::string token;
  {
    SubscribeClient sub(stub(), FromBeginning());
    ASSERT_TRUE(sub.WaitForEvents(5));
    token = sub.Snapshot().events[2].resume_token();
  }
  server_->Restart();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("x/y")}).ok());
  SubscribeClient resumed(stub(), FromToken(token));
  ASSERT_TRUE(resumed.WaitForEvents(5));
  auto st = resumed.Snapshot();
  ASSERT_EQ(st.events.size(), 5u);
  EXPECT_EQ(st.events.front().event().seq(), 4u);
  EXPECT_EQ(st.events.back().event().seq(), 8u) << "seqs continue across the restart";
  ExpectOrderedGapFree(st.events);
}

TEST_P(EventStreamTest, RepublishingTheSameIdAndSourceIsADuplicate) {
  v1::PublishResponse first, again;
  ASSERT_TRUE(Publish(stub(), {MakeEvent("d/1", "t", "a", "evt-1", "srv-1")}, &first).ok());
  ASSERT_TRUE(Publish(stub(), {MakeEvent("d/1", "t", "a", "evt-1", "srv-1")}, &again).ok());
  EXPECT_TRUE(again.results(0).duplicate());
  EXPECT_EQ(again.results(0).position(), first.results(0).position());
  EXPECT_EQ(again.results(0).seq(), first.results(0).seq());
  EXPECT_EQ(Head(stub()), 1u) << "a duplicate stores nothing";
  v1::PublishResponse other_source;
  ASSERT_TRUE(Publish(stub(), {MakeEvent("d/1", "t", "a", "evt-1", "srv-2")}, &other_source).ok());
  EXPECT_FALSE(other_source.results(0).duplicate());
}

TEST_P(EventStreamTest, ExpectedSeqMismatchIsAbortedAndStoresNothing) {
  ASSERT_TRUE(Publish(stub(), {MakeEvent("o/1"), MakeEvent("o/1")}).ok());
  v1::EventInput ok = MakeEvent("o/2");
  v1::EventInput stale = MakeEvent("o/1");
  stale.set_expected_seq(1);  // The stream is at 2.
  grpc::Status s = Publish(stub(), {ok, stale});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(s.error_message(), HasSubstr("expected_seq"));
  EXPECT_EQ(Head(stub()), 2u) << "the batch is atomic";
  v1::EventInput right = MakeEvent("o/1");
  right.set_expected_seq(2);
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(stub(), {right}, &resp).ok());
  EXPECT_EQ(resp.results(0).seq(), 3u);
  v1::EventInput fresh = MakeEvent("o/new");
  fresh.set_expected_seq(0);
  EXPECT_TRUE(Publish(stub(), {fresh}).ok()) << "expected_seq 0: the stream must not exist";
}

TEST_P(EventStreamTest, BadPublishInputIsRejectedNamingTheFieldAndStoresNothing) {
  struct Case {
    std::string name;
    v1::EventInput event;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({"empty stream", MakeEvent(""), "events[0].stream"});
  cases.push_back({"empty token", MakeEvent("a//b"), "events[0].stream"});
  cases.push_back({"leading slash", MakeEvent("/a"), "events[0].stream"});
  cases.push_back({"wildcard", MakeEvent("a/*"), "events[0].stream"});
  cases.push_back({"too long", MakeEvent(std::string(257, 'x')), "events[0].stream"});
  cases.push_back({"control char", MakeEvent("a\tb"), "events[0].stream"});
  cases.push_back({"empty type", MakeEvent("a", ""), "events[0].type"});
  cases.push_back({"long id", MakeEvent("a", "t", "", std::string(300, 'i')), "events[0].id"});
  cases.push_back({"oversized", MakeEvent("a", "t", std::string(2 << 20, 'd')), "events[0]"});
  v1::EventInput bad_time = MakeEvent("a");
  bad_time.mutable_time()->set_nanos(-1);
  cases.push_back({"bad time", bad_time, "events[0].time"});
  for (const Case& c : cases) {
    grpc::Status s = Publish(stub(), {c.event});
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(s.error_message(), HasSubstr(c.field)) << c.name;
  }
  EXPECT_EQ(Publish(stub(), {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Head(stub()), 0u);
  EXPECT_TRUE(Publish(stub(), {MakeEvent("still/serving")}).ok());
}

TEST_P(EventStreamTest, BadSubscribeRequestsGetTheDesignedCodes) {
  ASSERT_TRUE(Publish(stub(), {MakeEvent("a/b")}).ok());
  std::string token;
  {
    SubscribeClient sub(stub(), FromBeginning());
    ASSERT_TRUE(sub.WaitForEvents(1));
    token = sub.Snapshot().events[0].resume_token();
  }
  auto code_of = [&](const v1::SubscribeRequest& req) {
    SubscribeClient sub(stub(), req);
    return sub.WaitForFinish().error_code();
  };
  v1::SubscribeRequest bad_pattern = FromBeginning({"a/>/b"});
  EXPECT_EQ(code_of(bad_pattern), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SubscribeRequest bad_type = FromBeginning();
  bad_type.add_types("a*b");
  EXPECT_EQ(code_of(bad_type), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code_of(FromToken("not-a-token")), grpc::StatusCode::INVALID_ARGUMENT);
  std::string forged = token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(code_of(FromToken(forged)), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(code_of(FromToken(token.substr(0, token.size() - 4))),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string ahead = server_->server().hub()->tokens().Encode(Position(100));
  EXPECT_EQ(code_of(FromToken(ahead)), grpc::StatusCode::FAILED_PRECONDITION);

  TestServer other(GetParam());
  ASSERT_TRUE(Publish(other.stub(), {MakeEvent("a/b")}).ok());
  SubscribeClient foreign(other.stub(), FromToken(token));
  grpc::Status s = foreign.WaitForFinish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("another log"));
  v1::SubscribeRequest big_batch = FromBeginning();
  big_batch.set_max_batch_events(1'000'000);
  EXPECT_EQ(code_of(big_batch), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(EventStreamTest, PatternsAndTypesSelectExactlyTheMatchingEvents) {
  v1::SubscribeRequest req;
  req.add_streams("vhost/live/*");
  req.add_streams("other/>");
  req.add_types("zlm.*");
  req.add_types("exact");
  SubscribeClient sub(stub(), req);
  ASSERT_TRUE(sub.WaitForCaughtUp());
  ASSERT_TRUE(Publish(stub(), {MakeEvent("vhost/live/cam1", "zlm.on_publish"),  // yes
                               MakeEvent("vhost/live/cam1/x", "zlm.on_publish"),  // no: 4 tokens
                               MakeEvent("vhost/live", "zlm.on_publish"),     // no: 2 tokens
                               MakeEvent("other/a/b", "exact"),               // yes
                               MakeEvent("other", "exact"),                   // no: '>' needs one
                               MakeEvent("vhost/live/cam2", "exactly"),       // no: type
                               MakeEvent("vhost/live/cam2", "zlm.")})         // yes
                  .ok());
  ASSERT_TRUE(sub.WaitForEvents(3));
  ASSERT_TRUE(Publish(stub(), {MakeEvent("other/z", "exact")}).ok());
  ASSERT_TRUE(sub.WaitForEvents(4));
  auto st = sub.Snapshot();
  ASSERT_EQ(st.events.size(), 4u);
  EXPECT_EQ(st.events[0].event().position(), 1u);
  EXPECT_EQ(st.events[1].event().position(), 4u);
  EXPECT_EQ(st.events[2].event().position(), 7u);
  EXPECT_EQ(st.events[3].event().position(), 8u);
}

TEST_P(EventStreamTest, FilteredSubscriberGetsCheckpointsAndResumesPastTheSkippedEvents) {
  v1::SubscribeRequest req;
  req.add_streams("wanted/one");
  auto sub = std::make_unique<SubscribeClient>(stub(), req);
  ASSERT_TRUE(sub->WaitForCaughtUp());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Publish(stub(), {MakeEvent("noise/x")}).ok());
  ASSERT_TRUE(sub->WaitUntil([](const SubscribeClient::State& s) {
    return !s.messages.empty() && s.messages.back().has_checkpoint() &&
           s.messages.back().checkpoint().position() == 50;
  }));
  const std::string token = sub->Snapshot().last_token;
  EXPECT_TRUE(sub->Snapshot().events.empty());
  sub.reset();
  ASSERT_TRUE(Publish(stub(), {MakeEvent("noise/x"), MakeEvent("wanted/one")}).ok());
  SubscribeClient resumed(stub(), FromToken(token, {"wanted/one"}));
  ASSERT_TRUE(resumed.WaitForEvents(1));
  ASSERT_TRUE(resumed.WaitForCaughtUp());
  auto st = resumed.Snapshot();
  ASSERT_EQ(st.events.size(), 1u);
  EXPECT_EQ(st.events[0].event().position(), 52u);
}

TEST_P(EventStreamTest, CatchUpOverHistoryThatMatchesNothingEndsWithATokenPastIt) {
  ServerOptions o = Options();
  o.hub.ring_bytes = 1;  // Force the catch-up to read the history from disk.
  TestServer disk(GetParam(), o);
  for (int i = 0; i < 5; ++i) {
    std::vector<v1::EventInput> batch(200, MakeEvent("noise/y"));
    ASSERT_TRUE(Publish(disk.stub(), batch).ok());
  }
  SubscribeClient sub(disk.stub(), FromBeginning({"nothing/here"}));
  ASSERT_TRUE(sub.WaitForCaughtUp());
  auto st = sub.Snapshot();
  EXPECT_TRUE(st.events.empty());
  ASSERT_TRUE(st.messages.back().has_caught_up());
  // Resuming from it delivers nothing old, and the next matching event.
  SubscribeClient resumed(disk.stub(), FromToken(st.last_token, {"nothing/here"}));
  ASSERT_TRUE(resumed.WaitForCaughtUp());
  ASSERT_TRUE(Publish(disk.stub(), {MakeEvent("nothing/here")}).ok());
  ASSERT_TRUE(resumed.WaitForEvents(1));
  EXPECT_EQ(resumed.Snapshot().events[0].event().position(), 1001u);
}

TEST_P(EventStreamTest, IdleSubscriptionGetsHeartbeats) {
  v1::SubscribeRequest req = FromBeginning();
  req.mutable_heartbeat_interval()->set_nanos(100'000'000);
  SubscribeClient sub(stub(), req);
  ASSERT_TRUE(sub.WaitUntil([](const SubscribeClient::State& s) { return s.heartbeats >= 2; }));
  v1::SubscribeRequest too_fast = FromBeginning();
  too_fast.mutable_heartbeat_interval()->set_nanos(1'000'000);
  SubscribeClient rejected(stub(), too_fast);
  EXPECT_EQ(rejected.WaitForFinish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(EventStreamTest, SeamBetweenHistoryAndLiveHasNoGapOrDuplicateUnderConcurrentPublishing) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> published{0};
  std::thread publisher([&] {
    int i = 0;
    while (!stop.load()) {
      std::vector<v1::EventInput> batch;
      for (int k = 0; k < 1 + i % 7; ++k) batch.push_back(MakeEvent(absl::StrCat("seam/", k % 4)));
      ASSERT_TRUE(Publish(stub(), batch).ok());
      published += batch.size();
      ++i;
    }
  });
  std::vector<std::unique_ptr<SubscribeClient>> subs;
  for (int i = 0; i < 8; ++i) {
    // Start subscribers at different points of the publishing run.
    const uint64_t target = published.load() + 200;
    while (published.load() < target) std::this_thread::yield();
    subs.push_back(std::make_unique<SubscribeClient>(stub(), FromBeginning()));
  }
  while (published.load() < 5000) std::this_thread::yield();
  stop = true;
  publisher.join();
  const uint64_t head = Head(stub());
  ASSERT_EQ(head, published.load());
  for (auto& sub : subs) {
    ASSERT_TRUE(sub->WaitForEvents(head));
    auto st = sub->Snapshot();
    ASSERT_EQ(st.events.size(), head);
    for (size_t i = 0; i < st.events.size(); ++i) {
      ASSERT_EQ(st.events[i].event().position(), i + 1) << "gap or duplicate at the seam";
    }
    ExpectOrderedGapFree(st.events);
  }
}

TEST_P(EventStreamTest, SlowSubscriberFallsBackToDiskWithoutBlockingPublishers) {
  ServerOptions o = Options();
  o.hub.session.buffer_bytes = 32 << 10;
  o.hub.ring_bytes = 256 << 10;
  TestServer small(GetParam(), o);
  SubscribeClient slow(small.stub(), FromBeginning());
  ASSERT_TRUE(slow.WaitForCaughtUp());
  slow.Pause();
  const std::string payload(256, 'p');
  for (int i = 0; i < 200; ++i) {
    std::vector<v1::EventInput> batch;
    for (int k = 0; k < 100; ++k) batch.push_back(MakeEvent(absl::StrCat("slow/", k % 10), "t", payload));
    ASSERT_TRUE(Publish(small.stub(), batch).ok()) << "publishers never wait for a subscriber";
  }
  slow.Resume();
  ASSERT_TRUE(slow.WaitForEvents(20000, absl::Seconds(60)));
  auto st = slow.Snapshot();
  EXPECT_EQ(st.events.size(), 20000u);
  EXPECT_GE(st.fell_behind, 1);
  EXPECT_GE(st.caught_up, 2) << "caught_up again after falling behind";
  ExpectOrderedGapFree(st.events);
  for (size_t i = 0; i < st.events.size(); ++i) {
    ASSERT_EQ(st.events[i].event().position(), i + 1);
  }
}

TEST_P(EventStreamTest, DrainEndsSubscriptionsWithUnavailable) {
  SubscribeClient sub(stub(), FromBeginning());
  ASSERT_TRUE(sub.WaitForCaughtUp());
  server_->server().Drain(absl::Seconds(2));
  EXPECT_EQ(sub.WaitForFinish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_P(EventStreamTest, SubscriberLimitIsResourceExhausted) {
  ServerOptions o = Options();
  o.hub.max_subscribers = 2;
  TestServer limited(GetParam(), o);
  SubscribeClient a(limited.stub(), FromBeginning());
  SubscribeClient b(limited.stub(), FromBeginning());
  ASSERT_TRUE(a.WaitForCaughtUp());
  ASSERT_TRUE(b.WaitForCaughtUp());
  SubscribeClient c(limited.stub(), FromBeginning());
  EXPECT_EQ(c.WaitForFinish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_P(EventStreamTest, GetStreamListStreamsAndGetLogDescribeTheLog) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("list/", i < 10 ? "0" : "", i))}).ok());
  }
  ASSERT_TRUE(Publish(stub(), {MakeEvent("list/03"), MakeEvent("zzz/other")}).ok());
  {
    grpc::ClientContext ctx;
    v1::GetStreamRequest req;
    req.set_stream("list/03");
    v1::StreamInfo info;
    ASSERT_TRUE(stub().GetStream(&ctx, req, &info).ok());
    EXPECT_EQ(info.first_seq(), 1u);
    EXPECT_EQ(info.head_seq(), 2u);
    EXPECT_EQ(info.event_count(), 2u);
    EXPECT_EQ(info.head_position(), 26u);
    EXPECT_GT(info.last_event_time().seconds(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::GetStreamRequest req;
    req.set_stream("no/such");
    v1::StreamInfo info;
    EXPECT_EQ(stub().GetStream(&ctx, req, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  std::vector<std::string> names;
  std::string page_token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListStreamsRequest req;
    req.set_pattern("list/*");
    req.set_page_size(10);
    req.set_page_token(page_token);
    v1::ListStreamsResponse resp;
    ASSERT_TRUE(stub().ListStreams(&ctx, req, &resp).ok());
    for (const auto& s : resp.streams()) names.push_back(s.stream());
    page_token = resp.next_page_token();
    ++pages;
  } while (!page_token.empty() && pages < 10);
  EXPECT_EQ(names.size(), 25u);
  EXPECT_EQ(pages, 3);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  {
    grpc::ClientContext ctx;
    v1::ListStreamsRequest req;
    req.set_page_token("garbage!");
    v1::ListStreamsResponse resp;
    EXPECT_EQ(stub().ListStreams(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext ctx;
  v1::LogInfo info;
  ASSERT_TRUE(stub().GetLog(&ctx, v1::GetLogRequest(), &info).ok());
  EXPECT_EQ(info.head_position(), 27u);
  EXPECT_EQ(info.oldest_position(), 1u);
  EXPECT_EQ(info.event_count(), 27u);
  EXPECT_EQ(info.stream_count(), 26u);
  EXPECT_EQ(info.log_id().size(), 32u);
  EXPECT_GT(info.bytes(), 0u);
}

TEST_P(EventStreamTest, PublishStreamAnswersInOrderAndStopsAtTheFirstBadRequest) {
  grpc::ClientContext ctx;
  auto stream = stub().PublishStream(&ctx);
  // Read concurrently: the server answers while the client is still writing (flow control
  // would otherwise stall both sides).
  int n = 0;
  std::thread reader([&] {
    v1::PublishResponse resp;
    uint64_t last = 0;
    while (stream->Read(&resp)) {
      ASSERT_EQ(resp.results_size(), 2);
      EXPECT_EQ(resp.results(0).position(), last + 1);
      EXPECT_EQ(resp.results(1).seq(), static_cast<uint64_t>(n + 1));
      last = resp.results(1).position();
      ++n;
    }
  });
  for (int i = 0; i < 100; ++i) {
    v1::PublishRequest req;
    *req.add_events() = MakeEvent(absl::StrCat("ps/", i % 5));
    *req.add_events() = MakeEvent("ps/all");
    ASSERT_TRUE(stream->Write(req));
  }
  v1::PublishRequest bad;
  *bad.add_events() = MakeEvent("bad//name");
  stream->Write(bad);
  stream->WritesDone();
  reader.join();
  EXPECT_EQ(n, 100);
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("events[0].stream"));
  EXPECT_EQ(Head(stub()), 200u);
}

TEST_P(EventStreamTest, HealthServiceReportsServing) {
  grpc::GenericStub generic(server_->channel());
  grpc::ClientContext ctx;
  grpc::Slice empty_message("", 0);  // An empty HealthCheckRequest: the whole server.
  grpc::ByteBuffer request(&empty_message, 1);
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      status = s;
                      done.Notify();
                    });
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";
}

TEST_P(EventStreamTest, LastPerStreamSendsEachStreamsLatestEventThenSnapshotEndThenLive) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("cam/", i % 4), i % 2 ? "a" : "b",
                                           absl::StrCat(i))})
                    .ok());
  }
  ASSERT_TRUE(Publish(stub(), {MakeEvent("other/x")}).ok());
  v1::SubscribeRequest req;
  req.set_from(v1::SubscribeRequest::START_LAST_PER_STREAM);
  req.add_streams("cam/*");
  SubscribeClient sub(stub(), req);
  ASSERT_TRUE(sub.WaitForCaughtUp());
  ASSERT_TRUE(Publish(stub(), {MakeEvent("cam/1", "a", "live")}).ok());
  ASSERT_TRUE(sub.WaitForEvents(5));
  auto st = sub.Snapshot();
  // The snapshot: positions 27-30 (the last event of cam/2, cam/3, cam/0, cam/1), in position
  // order, then snapshot_end, then (nothing in between) caught_up and the live event.
  ASSERT_EQ(st.events.size(), 5u);
  EXPECT_EQ(st.events[0].event().position(), 27u);
  EXPECT_EQ(st.events[1].event().position(), 28u);
  EXPECT_EQ(st.events[2].event().position(), 29u);
  EXPECT_EQ(st.events[3].event().position(), 30u);
  EXPECT_EQ(st.events[4].event().position(), 32u);
  EXPECT_EQ(st.events[3].event().seq(), 8u);
  int snapshot_end_at = -1;
  for (size_t i = 0; i < st.messages.size(); ++i) {
    if (st.messages[i].has_snapshot_end()) snapshot_end_at = static_cast<int>(i);
  }
  ASSERT_GE(snapshot_end_at, 0);
  size_t events_before = 0;
  for (int i = 0; i < snapshot_end_at; ++i) {
    if (st.messages[i].has_events()) events_before += st.messages[i].events().events_size();
  }
  EXPECT_EQ(events_before, 4u);
  // Its token continues after position 31 (the snapshot's head).
  SubscribeClient resumed(stub(), FromToken(st.messages[snapshot_end_at].snapshot_end().resume_token(), {"cam/*"}));
  ASSERT_TRUE(resumed.WaitForEvents(1));
  EXPECT_EQ(resumed.Snapshot().events[0].event().position(), 32u);
}

TEST_P(EventStreamTest, LastPerStreamSnapshotToLiveSeamHoldsUnderConcurrentPublishing) {
  std::atomic<bool> stop{false};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int i = 0; !stop.load(); ++i) {
      ASSERT_TRUE(Publish(stub(), {MakeEvent(absl::StrCat("seam/", i % 20))}).ok());
      ++published;
    }
  });
  while (published.load() < 300) std::this_thread::yield();
  v1::SubscribeRequest req;
  req.set_from(v1::SubscribeRequest::START_LAST_PER_STREAM);
  SubscribeClient sub(stub(), req);
  ASSERT_TRUE(sub.WaitForCaughtUp());
  while (published.load() < 800) std::this_thread::yield();
  stop = true;
  publisher.join();
  const uint64_t head = Head(stub());
  ASSERT_TRUE(sub.WaitUntil([&](const SubscribeClient::State& s) {
    return !s.events.empty() && s.events.back().event().position() == head;
  }));
  // Per stream: the snapshot's event, then every later event of the stream, seqs consecutive:
  // nothing lost or doubled where the snapshot hands over to live delivery.
  auto st = sub.Snapshot();
  std::map<std::string, uint64_t> last_seq;
  uint64_t last_position = 0;
  for (const auto& d : st.events) {
    EXPECT_GT(d.event().position(), last_position);
    last_position = d.event().position();
    auto it = last_seq.find(d.event().stream());
    if (it != last_seq.end()) {
      EXPECT_EQ(d.event().seq(), it->second + 1) << d.event().stream();
    }
    last_seq[d.event().stream()] = d.event().seq();
  }
  for (const auto& [stream, seq] : last_seq) {
    grpc::ClientContext ctx;
    v1::GetStreamRequest get;
    get.set_stream(stream);
    v1::StreamInfo info;
    ASSERT_TRUE(stub().GetStream(&ctx, get, &info).ok());
    EXPECT_EQ(seq, info.head_seq()) << stream;
  }
  EXPECT_EQ(last_seq.size(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Transports, EventStreamTest,
                         ::testing::Values(Transport::kInProcess, Transport::kTcp,
                                           Transport::kTcpOnJetStream),
                         [](const auto& info) { return TransportName(info.param); });

}  // namespace
}  // namespace hookstream
