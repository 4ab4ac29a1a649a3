// Tests of the JetStream backend (server/storage/jetstream/) against a real nats-server -js
// started by the test on 127.0.0.1: the Log contract (positions, dense seqs, dedup,
// expected_seq, reads, snapshots, metadata), several servers on one stream, identity, and
// deleted messages reported as expiry instead of skipped.
#include "server/storage/jetstream/jetstream_log.h"

#include <nats/nats.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/main/options.h"
#include "server/storage/jetstream/naming.h"
#include "tests/storage/jetstream/jetstream_test_util.h"
#include "tests/testutil/nats_server.h"
#include "tests/testutil/server_process.h"

namespace hookstream::storage {
namespace {

using ::testing::HasSubstr;
using testing::NatsFixture;

using jstest::AppendAndWait;
using jstest::Ev;
using jstest::kWait;
using jstest::Parse;
using jstest::ReadAll;
using jstest::Recorder;

class JetStreamLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveNatsServer())
      GTEST_FAIL() << "nats-server is not installed (.ci/install-deps installs it)";
    nats_.Start();
  }

  JetStreamLogOptions Options(absl::string_view stream = "HS") const {
    JetStreamLogOptions o;
    o.servers = nats_.urls();
    o.stream = std::string(stream);
    o.subject_prefix = absl::StrCat("hs_", stream);
    return o;
  }

  std::unique_ptr<Log> Open(const JetStreamLogOptions& o, CommitListener* listener) {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenJetStreamLog(o);
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return nullptr;
    if (listener != nullptr) (*log)->SetCommitListener(listener);
    return *std::move(log);
  }

  // Runs `f` on a raw JetStream context of the test's NATS (to change the stream behind the
  // log's back, as an operator could).
  void WithJetStream(const std::function<void(jsCtx*)>& f) {
    natsConnection* nc = nullptr;
    ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_.node(0).url().c_str()), NATS_OK);
    jsCtx* js = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
    f(js);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }

  NatsFixture nats_;
};

TEST(JetStreamNamingTest, EveryStreamNameRoundTripsThroughItsSubject) {
  const std::vector<std::string> names = {"a",
                                          "__defaultVhost__/live/cam1",
                                          "a.b/c.d",
                                          "sp ace/x",
                                          "per%cent/%41",
                                          "star*/x>y",
                                          "ünïcødé/流/🎥",
                                          "-_/09AZaz",
                                          "a/b/c/d/e/f",
                                          ">a/*b"};
  std::set<std::string> subjects;
  for (const std::string& n : names) {
    const std::string subject = jetstream::StreamToSubject("hs", n);
    for (char c : subject.substr(3)) {
      EXPECT_TRUE(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                  c == '%' || c == '.')
          << subject;
    }
    EXPECT_EQ(jetstream::SubjectToStream("hs", subject), n);
    subjects.insert(subject);
  }
  EXPECT_EQ(subjects.size(), names.size());
  // Subjects no stream maps to are refused: another prefix, lowercase or needless escapes.
  EXPECT_EQ(jetstream::SubjectToStream("hs", "other.a"), std::nullopt);
  EXPECT_EQ(jetstream::SubjectToStream("hs", "hs.a%2e"), std::nullopt);
  EXPECT_EQ(jetstream::SubjectToStream("hs", "hs.%41"), std::nullopt);
  EXPECT_EQ(jetstream::SubjectToStream("hs", "hs.a%2"), std::nullopt);
  EXPECT_EQ(jetstream::SubjectToStream("hs", "hs.a*"), std::nullopt);
  // Metadata keys keep their byte order and prefixes.
  EXPECT_EQ(jetstream::KvToMetaKey(jetstream::MetaKeyToKv(std::string("w/\0\xff", 4))),
            std::string("w/\0\xff", 4));
  EXPECT_LT(jetstream::MetaKeyToKv("a/b"), jetstream::MetaKeyToKv("a/c"));
  EXPECT_NE(jetstream::DedupMsgId("ab", "c"), jetstream::DedupMsgId("a", "bc"));
}

TEST_F(JetStreamLogTest, AppendsGetDensePositionsAndSeqsAndReadBackAsEvents) {
  Recorder rec;
  std::unique_ptr<Log> log = Open(Options(), &rec);
  ASSERT_NE(log, nullptr);
  absl::StatusOr<v1::PublishResponse> r =
      AppendAndWait(*log, {Ev("a/x", "1"), Ev("b", "2"), Ev("a/x", "3"), Ev("a/x")});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results_size(), 4);
  const uint64_t seqs[] = {1, 1, 2, 3};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r->results(i).position(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(r->results(i).seq(), seqs[i]);
    EXPECT_FALSE(r->results(i).duplicate());
  }
  EXPECT_FALSE(r->results(3).id().empty());  // Server-assigned.
  // The listener heard of them before the publisher was acknowledged.
  EXPECT_EQ(rec.events().size(), 4u);
  EXPECT_EQ(log->head(), Position(4));

  std::vector<StoredEvent> read = ReadAll(*log);
  ASSERT_EQ(read.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const v1::Event e = Parse(read[i]);
    EXPECT_EQ(e.position(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(e.seq(), seqs[i]);
    EXPECT_EQ(e.id(), r->results(i).id());
    EXPECT_GT(e.ingest_time().seconds(), 0);
    EXPECT_EQ(read[i].bytes, rec.events()[i].bytes);
  }
  EXPECT_EQ(Parse(read[1]).data(), "data of b 2");

  absl::StatusOr<v1::StreamInfo> info = log->GetStream("a/x");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->first_seq(), 1u);
  EXPECT_EQ(info->head_seq(), 3u);
  EXPECT_EQ(info->event_count(), 3u);
  EXPECT_EQ(info->head_position(), 4u);
  EXPECT_EQ(log->GetStream("nope").status().code(), absl::StatusCode::kNotFound);
  const LogStats stats = log->Stats();
  EXPECT_EQ(stats.event_count, 4u);
  EXPECT_EQ(stats.stream_count, 2u);
  EXPECT_EQ(stats.oldest, Position(1));
}

TEST_F(JetStreamLogTest, RepublishingAnIdInsideTheWindowReturnsTheOriginal) {
  Recorder rec;
  std::unique_ptr<Log> log = Open(Options(), &rec);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(AppendAndWait(*log, {Ev("s", "a"), Ev("s", "b")}).ok());
  absl::StatusOr<v1::PublishResponse> r =
      AppendAndWait(*log, {Ev("s", "b"), Ev("s", "c"), Ev("s", "c")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->results(0).duplicate());
  EXPECT_EQ(r->results(0).position(), 2u);
  EXPECT_EQ(r->results(0).seq(), 2u);
  EXPECT_FALSE(r->results(1).duplicate());
  EXPECT_EQ(r->results(1).seq(), 3u);
  EXPECT_TRUE(r->results(2).duplicate());  // Inside one batch too.
  EXPECT_EQ(r->results(2).position(), r->results(1).position());
  // The same id from another source is another event.
  r = AppendAndWait(*log, {Ev("s", "a", "t", "other-source")});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->results(0).duplicate());
  EXPECT_EQ(r->results(0).seq(), 4u);
  EXPECT_EQ(ReadAll(*log).size(), 4u);

  // Another server on the same stream sees the same window.
  std::unique_ptr<Log> other = Open(Options(), nullptr);
  ASSERT_NE(other, nullptr);
  r = AppendAndWait(*other, {Ev("s", "a")});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->results(0).duplicate());
  EXPECT_EQ(r->results(0).position(), 1u);
}

TEST_F(JetStreamLogTest, ExpectedSeqMismatchIsAbortedAndStoresNothing) {
  Recorder rec;
  std::unique_ptr<Log> log = Open(Options(), &rec);
  ASSERT_NE(log, nullptr);
  v1::EventInput first = Ev("s");
  first.set_expected_seq(0);  // The stream must not exist yet.
  ASSERT_TRUE(AppendAndWait(*log, {first}).ok());
  v1::EventInput stale = Ev("s");
  stale.set_expected_seq(0);
  absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*log, {Ev("other"), stale});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("events[1].expected_seq is 0"));
  EXPECT_EQ(log->head(), Position(1));  // Checked before anything of the batch was stored.
  v1::EventInput good = Ev("s");
  good.set_expected_seq(1);
  r = AppendAndWait(*log, {good});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), 2u);
  // A head another server moved is seen too.
  std::unique_ptr<Log> other = Open(Options(), nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(AppendAndWait(*other, {Ev("s")}).ok());
  v1::EventInput behind = Ev("s");
  behind.set_expected_seq(2);
  EXPECT_EQ(AppendAndWait(*log, {behind}).status().code(), absl::StatusCode::kAborted);
  behind.set_expected_seq(3);
  r = AppendAndWait(*log, {behind});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), 4u);
}

TEST_F(JetStreamLogTest, TwoServersPublishingToOneStreamKeepSeqsDenseAndSeeEachOther) {
  Recorder rec_a, rec_b;
  std::unique_ptr<Log> a = Open(Options(), &rec_a);
  std::unique_ptr<Log> b = Open(Options(), &rec_b);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kPerWriter = 150;
  std::vector<std::thread> writers;
  for (Log* log : {a.get(), b.get(), a.get(), b.get()}) {
    writers.emplace_back([log] {
      for (int i = 0; i < kPerWriter; i += 3) {
        ASSERT_TRUE(
            AppendAndWait(*log, {Ev("shared"), Ev("shared"), Ev(absl::StrCat("own", i))}).ok());
      }
    });
  }
  for (auto& t : writers) t.join();
  const Position head(4 * kPerWriter);
  ASSERT_TRUE(rec_a.WaitForHead(head));
  ASSERT_TRUE(rec_b.WaitForHead(head));
  std::vector<StoredEvent> all = ReadAll(*a);
  ASSERT_EQ(all.size(), static_cast<size_t>(4 * kPerWriter));
  std::map<std::string, uint64_t> seq;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].position, Position(i + 1));
    EXPECT_EQ(all[i].seq.value(), ++seq[all[i].stream]) << all[i].stream << " at " << i;
  }
  EXPECT_EQ(seq["shared"], static_cast<uint64_t>(4 * kPerWriter * 2 / 3));
  // Both servers' listeners heard every event, in position order, with the same bytes.
  for (const Recorder* rec : {&rec_a, &rec_b}) {
    std::vector<StoredEvent> heard = rec->events();
    ASSERT_EQ(heard.size(), all.size());
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(heard[i].bytes, all[i].bytes);
  }
}

TEST_F(JetStreamLogTest, IdentityIsSharedAndARecreatedStreamIsANewLog) {
  std::unique_ptr<Log> a = Open(Options(), nullptr);
  std::unique_ptr<Log> b = Open(Options(), nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->log_id(), b->log_id());
  EXPECT_EQ(a->token_key(), b->token_key());
  EXPECT_EQ(a->log_id().size(), 16u);
  EXPECT_EQ(a->token_key().size(), 32u);
  const std::string id = a->log_id();
  a.reset();
  b.reset();
  std::unique_ptr<Log> again = Open(Options(), nullptr);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->log_id(), id);
  again.reset();
  WithJetStream([](jsCtx* js) { EXPECT_EQ(js_DeleteStream(js, "HS", nullptr, nullptr), NATS_OK); });
  absl::SleepFor(absl::Milliseconds(10));  // Stream creation times have ns resolution.
  std::unique_ptr<Log> recreated = Open(Options(), nullptr);
  ASSERT_NE(recreated, nullptr);
  EXPECT_NE(recreated->log_id(), id);
}

TEST_F(JetStreamLogTest, DeletedMessagesRaiseTheHorizonInsteadOfBeingSkipped) {
  Recorder rec;
  std::unique_ptr<Log> log = Open(Options(), &rec);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(AppendAndWait(*log, {Ev("s")}).ok());
  EXPECT_EQ(log->trimmed_through(), Position(0));
  WithJetStream([](jsCtx* js) { EXPECT_EQ(js_DeleteMsg(js, "HS", 6, nullptr, nullptr), NATS_OK); });
  // A reader past the hole is not affected; one before it meets the hole and the horizon rises
  // past its cursor (the session then reports OUT_OF_RANGE or a gap).
  EXPECT_EQ(ReadAll(*log, Position(6)).size(), 4u);
  EXPECT_EQ(log->trimmed_through(), Position(0));
  ReadLimits limits;
  absl::StatusOr<ReadChunk> chunk = log->Read(Position(3), limits, [](auto, auto) { return true; });
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_GE(log->trimmed_through(), Position(6));
  // Deleting the oldest messages moves the horizon for everybody (stream info).
  WithJetStream([](jsCtx* js) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Sequence = 9;  // Purge below 9.
    EXPECT_EQ(js_PurgeStream(js, "HS", &o, nullptr), NATS_OK);
  });
  const LogStats stats = log->Stats();
  EXPECT_EQ(stats.trimmed_through, Position(8));
  EXPECT_EQ(stats.oldest, Position(9));
  EXPECT_LT(stats.trimmed_time, absl::Now());
}

TEST_F(JetStreamLogTest, PerStreamLimitExpiresOlderTokens) {
  JetStreamLogOptions o = Options();
  o.max_events_per_stream = 2;
  Recorder rec;
  std::unique_ptr<Log> log = Open(o, &rec);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(AppendAndWait(*log, {Ev("busy"), Ev("calm")}).ok());
  ReadLimits limits;
  ASSERT_TRUE(log->Read(Position(0), limits, [](auto, auto) { return true; }).ok());
  // busy#1 (1) and calm#1 (2) are gone: resuming below 2 would skip them.
  EXPECT_GE(log->trimmed_through(), Position(2));
  absl::StatusOr<v1::StreamInfo> info = log->GetStream("busy");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->first_seq(), 2u);
  EXPECT_EQ(info->event_count(), 2u);
}

TEST_F(JetStreamLogTest, SnapshotListAndTimeSearch) {
  Recorder rec;
  std::unique_ptr<Log> log = Open(Options(), &rec);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(AppendAndWait(*log, {Ev("c"), Ev("a"), Ev("b"), Ev("a"), Ev("x/y")}).ok());
  const absl::Time middle = absl::Now();
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(AppendAndWait(*log, {Ev("c")}).ok());

  absl::StatusOr<std::unique_ptr<SnapshotReader>> snap =
      log->OpenLastPerStream([](absl::string_view s) { return s != "b"; });
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ((*snap)->head(), Position(6));
  std::vector<uint64_t> positions;
  ReadLimits limits;
  limits.max_events = 2;
  for (auto chunk = (*snap)->Next(limits); chunk.ok() && !chunk->empty();
       chunk = (*snap)->Next(limits)) {
    for (const StoredEvent& e : *chunk) positions.push_back(e.position.value());
  }
  EXPECT_THAT(positions, ::testing::ElementsAre(4, 5, 6));  // a, x/y, c

  bool more = false;
  absl::StatusOr<std::vector<v1::StreamInfo>> page = log->ListStreams(
      "", 2, [](absl::string_view) { return true; }, &more);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].stream(), "a");
  EXPECT_EQ((*page)[0].head_seq(), 2u);
  EXPECT_EQ((*page)[1].stream(), "b");
  EXPECT_TRUE(more);
  page = log->ListStreams(
      "b", 10, [](absl::string_view) { return true; }, &more);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[1].stream(), "x/y");
  EXPECT_FALSE(more);

  absl::StatusOr<Position> p = log->FindByTime(middle);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, Position(6));
  EXPECT_EQ(*log->FindByTime(absl::Now() + absl::Hours(1)), Position(7));
  EXPECT_EQ(*log->FindByTime(absl::UnixEpoch()), Position(1));
}

TEST_F(JetStreamLogTest, MetadataIsSharedByEveryServerOfTheLog) {
  std::unique_ptr<Log> a = Open(Options(), nullptr);
  std::unique_ptr<Log> b = Open(Options(), nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->WriteMeta({{"webhook/e1/cursor", "10"},
                            {"webhook/e2/cursor", std::string("\0\1", 2)},
                            {"webhook/e3/cursor", "30"},
                            {"other/x", "y"}})
                  .ok());
  absl::StatusOr<std::optional<std::string>> v = b->GetMeta("webhook/e2/cursor");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(**v, std::string("\0\1", 2));
  EXPECT_EQ(*b->GetMeta("absent"), std::nullopt);
  auto scan = b->ScanMeta("webhook/", "webhook/e1/cursor", 10);
  ASSERT_TRUE(scan.ok()) << scan.status();
  ASSERT_EQ(scan->size(), 2u);
  EXPECT_EQ((*scan)[0].first, "webhook/e2/cursor");
  EXPECT_EQ((*scan)[1].second, "30");
  ASSERT_TRUE(b->WriteMeta({{"webhook/e3/cursor", std::nullopt}}).ok());
  scan = a->ScanMeta("webhook/", "", 1);
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->size(), 1u);
  EXPECT_EQ((*scan)[0].first, "webhook/e1/cursor");
  EXPECT_EQ(*a->GetMeta("webhook/e3/cursor"), std::nullopt);
}

// One server at a time holds a lease (a webhook endpoint's deliveries): taken when free,
// renewed by its holder, free again lease_time after its last renewal (JetStream's clock),
// or at once when its holder releases it.
TEST_F(JetStreamLogTest, ALeaseHasOneHolderUntilReleasedOrNotRenewed) {
  JetStreamLogOptions o = Options();
  o.lease_time = absl::Seconds(1);
  std::unique_ptr<Log> a = Open(o, nullptr);
  JetStreamLogOptions other = o;
  other.lease_time = absl::Seconds(30);  // The bucket's, set by its creator, applies.
  std::unique_ptr<Log> b = Open(other, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->lease_time(), absl::Seconds(1));
  EXPECT_EQ(b->lease_time(), absl::Seconds(1));

  const std::string lease = "webhook/e1/lease";
  EXPECT_EQ(*a->HoldLease(lease, "server-a"), "server-a");
  EXPECT_EQ(*b->HoldLease(lease, "server-b"), "server-a");
  EXPECT_EQ(*a->HoldLease(lease, "server-a"), "server-a") << "renewed";
  EXPECT_EQ(*b->HoldLease("webhook/e2/lease", "server-b"), "server-b") << "leases are separate";
  // Released by a server that does not hold it: nothing changes.
  ASSERT_TRUE(b->ReleaseLease(lease, "server-b").ok());
  EXPECT_EQ(*b->HoldLease(lease, "server-b"), "server-a");

  // Not renewed: free after lease_time.
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        absl::StatusOr<std::string> h = b->HoldLease(lease, "server-b");
        return h.ok() && *h == "server-b";
      },
      absl::Seconds(20)));
  EXPECT_EQ(*a->HoldLease(lease, "server-a"), "server-b");
  // Released: free at once.
  ASSERT_TRUE(b->ReleaseLease(lease, "server-b").ok());
  EXPECT_EQ(*a->HoldLease(lease, "server-a"), "server-a");
  EXPECT_EQ(a->HoldLease(lease, "").status().code(), absl::StatusCode::kInvalidArgument);
}

// A leases bucket that keeps entries for ever (made by hand) would hand every endpoint to its
// first holder for good: the start fails and says what to do.
TEST_F(JetStreamLogTest, ALeasesBucketWithoutMaxAgeFailsTheStart) {
  WithJetStream([](jsCtx* js) {
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = "HS_leases";
    kc.History = 1;
    kvStore* kv = nullptr;
    ASSERT_EQ(js_CreateKeyValue(&kv, js, &kc), NATS_OK);
    kvStore_Destroy(kv);
  });
  absl::StatusOr<std::unique_ptr<Log>> log = OpenJetStreamLog(Options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr("HS_leases"));
}

TEST(JetStreamLogStartTest, UnreachableNatsFailsTheStartClearly) {
  JetStreamLogOptions o;
  o.servers = {absl::StrCat("nats://127.0.0.1:", testing::FreePort())};
  o.connect_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<Log>> log = OpenJetStreamLog(o);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(log.status().message(), HasSubstr("cannot connect to NATS at nats://127.0.0.1:"));
}

TEST(JetStreamConfigTest, StorageKeysAreCheckedAndNamed) {
  v1::Config c;
  c.mutable_storage()->set_backend(v1::StorageConfig::jetstream);
  c.mutable_storage()->add_servers("nats://10.0.0.1:4222");
  c.mutable_storage()->set_replicas(3);
  c.mutable_storage()->mutable_lease_time()->set_seconds(4);
  c.mutable_retention()->set_max_events_per_stream(5);
  absl::StatusOr<ServerOptions> o = ServerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_TRUE(o->jetstream.has_value());
  EXPECT_EQ(o->jetstream->replicas, 3);
  EXPECT_EQ(o->jetstream->lease_time, absl::Seconds(4));
  EXPECT_EQ(o->jetstream->servers, std::vector<std::string>{"nats://10.0.0.1:4222"});
  EXPECT_EQ(o->jetstream->max_events_per_stream, 5u);

  auto error_of = [](const v1::Config& bad) {
    absl::StatusOr<ServerOptions> r = ServerOptionsFromConfig(bad);
    return std::string(r.status().message());
  };
  v1::Config bad = c;
  bad.mutable_storage()->set_replicas(7);
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.replicas\""));
  bad = c;
  bad.mutable_storage()->mutable_lease_time()->set_nanos(500'000'000);
  bad.mutable_storage()->mutable_lease_time()->set_seconds(0);
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.lease_time\""));
  bad = c;
  bad.mutable_storage()->set_stream("has.dot");
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.stream\""));
  bad = c;
  bad.mutable_storage()->set_subject_prefix("a.*");
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.subject_prefix\""));
  bad = c;
  bad.mutable_retention()->set_keep_last_per_stream(true);
  EXPECT_THAT(error_of(bad), HasSubstr("\"retention.keep_last_per_stream\""));
  bad = v1::Config();
  bad.mutable_storage()->add_servers("nats://x:1");
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.servers\": only with backend: jetstream"));
  bad = v1::Config();
  bad.mutable_storage()->mutable_lease_time()->set_seconds(5);
  EXPECT_THAT(error_of(bad), HasSubstr("\"storage.lease_time\": only with backend: jetstream"));
  EXPECT_FALSE(ServerOptionsFromConfig(v1::Config())->jetstream.has_value());
}

}  // namespace
}  // namespace hookstream::storage
