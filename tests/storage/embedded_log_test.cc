// Tests of the embedded log (server/storage/embedded_log.h) through the Log interface, and of its
// helper event_codec.h (dedup_index.h: dedup_index_test.cc, embedded_dedup_test.cc).
#include "server/storage/embedded_log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "hookstream/internal/records.pb.h"
#include "hookstream/v1/event_stream.pb.h"
#include "rocksdb/db.h"
#include "server/common/clock.h"
#include "server/storage/event_codec.h"
#include "server/storage/log.h"
#include "tests/storage/append_and_wait.h"

namespace hookstream::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Long enough never to fire on a healthy machine; a hang becomes a failure, not a stuck test.
constexpr absl::Duration kWait = absl::Seconds(60);
constexpr absl::Duration kWindow = absl::Minutes(2);

v1::EventInput Ev(absl::string_view stream, absl::string_view id = "",
                  absl::string_view source = "src", absl::string_view type = "test.happened",
                  absl::string_view data = "payload") {
  v1::EventInput e;
  e.set_stream(std::string(stream));
  e.set_id(std::string(id));
  e.set_source(std::string(source));
  e.set_type(std::string(type));
  e.set_data(std::string(data));
  return e;
}

v1::EventInput EvExpecting(absl::string_view stream, uint64_t expected_seq) {
  v1::EventInput e = Ev(stream);
  e.set_expected_seq(expected_seq);
  return e;
}

// Collects the outcomes of appends that are not waited for one by one.
class Outcomes {
 public:
  AppendCallback Callback(int index) {
    return [this, index](absl::StatusOr<v1::PublishResponse> r) {
      absl::MutexLock l(&mu_);
      results_.emplace(index, std::move(r));
    };
  }
  // Waits until `n` callbacks ran.
  bool WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto ready = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return results_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), kWait);
  }
  absl::StatusOr<v1::PublishResponse> Get(int index) {
    absl::MutexLock l(&mu_);
    auto it = results_.find(index);
    if (it == results_.end()) return absl::NotFoundError("no outcome");
    return it->second;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return results_.size();
  }

 private:
  absl::Mutex mu_;
  std::map<int, absl::StatusOr<v1::PublishResponse>> results_ ABSL_GUARDED_BY(mu_);
};

std::vector<StoredEvent> ReadAll(const Log& log, Position after = Position(0)) {
  absl::StatusOr<ReadChunk> chunk =
      log.Read(after, ReadLimits{1 << 20, size_t{1} << 40, 1 << 20},
               [](absl::string_view, absl::string_view) { return true; });
  EXPECT_TRUE(chunk.ok()) << chunk.status();
  if (!chunk.ok()) return {};
  return std::move(chunk->events);
}

v1::Event Parse(const StoredEvent& e) {
  v1::Event out;
  EXPECT_TRUE(out.ParseFromString(e.bytes)) << "stored bytes do not parse at " << e.position;
  return out;
}

std::vector<uint64_t> Positions(const std::vector<StoredEvent>& events) {
  std::vector<uint64_t> out;
  for (const StoredEvent& e : events) out.push_back(e.position.value());
  return out;
}

// A fresh directory per test, removed afterwards.
std::string UniqueTempDir(absl::string_view tag) {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/hookstream_", tag, "_",
                                 info->test_suite_name(), "_", info->name(), "_", getpid(), "_",
                                 counter.fetch_add(1));
  std::filesystem::remove_all(dir);
  return dir;
}

class EmbeddedLogTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = UniqueTempDir("log"); }

  void TearDown() override {
    log_.reset();
    for (const std::string& d : extra_dirs_) std::filesystem::remove_all(d);
    std::filesystem::remove_all(dir_);
  }

  EmbeddedLogOptions Options() {
    EmbeddedLogOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    o.dedup_window = kWindow;
    return o;
  }

  // Opens (or reopens, after closing the current one) the log in dir_.
  void Open(EmbeddedLogOptions options) {
    log_.reset();
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  void Open() { Open(Options()); }

  absl::StatusOr<v1::PublishResponse> Append(std::vector<v1::EventInput> events) {
    return AppendAndWait(*log_, std::move(events));
  }

  // Appends and expects success.
  v1::PublishResponse MustAppend(std::vector<v1::EventInput> events) {
    absl::StatusOr<v1::PublishResponse> r = Append(std::move(events));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : v1::PublishResponse();
  }

  ManualClock clock_;
  std::string dir_;
  std::vector<std::string> extra_dirs_;
  std::unique_ptr<Log> log_;
};

// --- Positions and seqs ---

TEST_F(EmbeddedLogTest, EmptyLogHasHeadZeroAndNothingToRead) {
  Open();
  EXPECT_EQ(log_->head(), Position(0));
  LogStats stats = log_->Stats();
  EXPECT_EQ(stats.head, Position(0));
  EXPECT_EQ(stats.oldest, Position(1));
  EXPECT_EQ(stats.event_count, 0u);
  EXPECT_EQ(stats.stream_count, 0u);
  EXPECT_EQ(stats.log_id, log_->log_id());
  EXPECT_EQ(log_->log_id().size(), 16u);
  EXPECT_EQ(log_->token_key().size(), 32u);
  EXPECT_TRUE(ReadAll(*log_).empty());
}

TEST_F(EmbeddedLogTest, PositionsAreGlobalFromOneAndSeqsAreDensePerStream) {
  Open();
  v1::PublishResponse r1 = MustAppend({Ev("a"), Ev("b"), Ev("a")});
  v1::PublishResponse r2 = MustAppend({Ev("b")});
  v1::PublishResponse r3 = MustAppend({Ev("c"), Ev("a")});
  ASSERT_EQ(r1.results_size(), 3);
  ASSERT_EQ(r2.results_size(), 1);
  ASSERT_EQ(r3.results_size(), 2);

  const std::vector<std::pair<uint64_t, uint64_t>> want = {  // (position, seq)
      {1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 1}, {6, 3}};
  std::vector<std::pair<uint64_t, uint64_t>> got;
  for (const auto* r : {&r1, &r2, &r3}) {
    for (const v1::PublishResult& res : r->results()) {
      EXPECT_FALSE(res.duplicate());
      got.emplace_back(res.position(), res.seq());
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(log_->head(), Position(6));
  EXPECT_EQ(log_->Stats().event_count, 6u);
  EXPECT_EQ(log_->Stats().stream_count, 3u);
  EXPECT_EQ(log_->Stats().oldest, Position(1));

  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 6u);
  const char* streams[] = {"a", "b", "a", "b", "c", "a"};
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].position, Position(want[i].first));
    EXPECT_EQ(events[i].seq, Seq(want[i].second));
    EXPECT_EQ(events[i].stream, streams[i]);
    EXPECT_EQ(events[i].type, "test.happened");
    v1::Event e = Parse(events[i]);
    EXPECT_EQ(e.position(), want[i].first);
    EXPECT_EQ(e.seq(), want[i].second);
    EXPECT_EQ(e.stream(), streams[i]);
    EXPECT_EQ(e.data(), "payload");
    EXPECT_EQ(e.ingest_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
  }
}

TEST_F(EmbeddedLogTest, StoredEventKeepsEveryInputField) {
  Open();
  v1::EventInput in = Ev("live/cam1", "id-1", "zlm-1", "zlm.on_publish", std::string(300, 'd'));
  in.set_content_type("application/json");
  in.mutable_time()->set_seconds(1234);
  in.mutable_time()->set_nanos(5678);
  (*in.mutable_attributes())["k1"] = "v1";
  (*in.mutable_attributes())["k2"] = "";
  in.set_expected_seq(0);
  MustAppend({in});
  clock_.Advance(absl::Seconds(3));
  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 1u);
  v1::Event e = Parse(events[0]);
  EXPECT_EQ(e.id(), "id-1");
  EXPECT_EQ(e.stream(), "live/cam1");
  EXPECT_EQ(e.type(), "zlm.on_publish");
  EXPECT_EQ(e.source(), "zlm-1");
  EXPECT_EQ(e.content_type(), "application/json");
  EXPECT_EQ(e.data(), std::string(300, 'd'));
  EXPECT_EQ(e.time().seconds(), 1234);
  EXPECT_EQ(e.time().nanos(), 5678);
  EXPECT_EQ(e.attributes().size(), 2u);
  EXPECT_EQ(e.attributes().at("k1"), "v1");
  EXPECT_EQ(e.seq(), 1u);
  EXPECT_EQ(e.position(), 1u);
  EXPECT_EQ(e.ingest_time().seconds(), absl::ToUnixSeconds(clock_.Now() - absl::Seconds(3)));
  // expected_seq is an instruction, not part of the stored event.
  v1::EventInput reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(events[0].bytes));
  EXPECT_FALSE(reparsed.has_expected_seq());
}

// --- Atomic batches and expected_seq ---

TEST_F(EmbeddedLogTest, BatchWithExpectedSeqConflictStoresNothingAndLeavesNoHole) {
  Open();
  MustAppend({Ev("s"), Ev("s")});  // s at seq 2, head 2.
  const uint64_t bytes_before = log_->Stats().bytes;

  absl::StatusOr<v1::PublishResponse> r =
      Append({EvExpecting("s", 2), Ev("t"), EvExpecting("s", 99), Ev("u")});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("events[2]"));

  EXPECT_EQ(log_->head(), Position(2));
  EXPECT_EQ(log_->Stats().event_count, 2u);
  EXPECT_EQ(log_->Stats().bytes, bytes_before);
  EXPECT_EQ(log_->Stats().stream_count, 1u);
  EXPECT_EQ(log_->GetStream("t").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->GetStream("u").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<v1::StreamInfo> s = log_->GetStream("s");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->head_seq(), 2u);
  EXPECT_EQ(s->head_position(), 2u);

  v1::PublishResponse next = MustAppend({Ev("s"), Ev("t")});
  ASSERT_EQ(next.results_size(), 2);
  EXPECT_EQ(next.results(0).position(), 3u);
  EXPECT_EQ(next.results(0).seq(), 3u);
  EXPECT_EQ(next.results(1).position(), 4u);
  EXPECT_EQ(next.results(1).seq(), 1u);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3, 4));
}

TEST_F(EmbeddedLogTest, ExpectedSeqZeroMeansTheStreamMustBeNew) {
  Open();
  v1::PublishResponse r = MustAppend({EvExpecting("fresh", 0)});
  ASSERT_EQ(r.results_size(), 1);
  EXPECT_EQ(r.results(0).seq(), 1u);

  absl::StatusOr<v1::PublishResponse> again = Append({EvExpecting("fresh", 0)});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(log_->head(), Position(1));
}

TEST_F(EmbeddedLogTest, ExpectedSeqIsCheckedAgainstEarlierEventsOfTheSameBatch) {
  Open();
  MustAppend({Ev("a")});
  // Each event sees the seqs its predecessors in the batch took, per stream.
  v1::PublishResponse ok = MustAppend(
      {EvExpecting("a", 1), EvExpecting("b", 0), EvExpecting("a", 2), EvExpecting("b", 1)});
  ASSERT_EQ(ok.results_size(), 4);
  EXPECT_EQ(ok.results(2).seq(), 3u);
  EXPECT_EQ(ok.results(3).seq(), 2u);

  // The second event expects the seq the stream had before the batch: a conflict.
  absl::StatusOr<v1::PublishResponse> stale = Append({EvExpecting("a", 3), EvExpecting("a", 3)});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("events[1]"));
  EXPECT_EQ(log_->head(), Position(5));
  absl::StatusOr<v1::StreamInfo> a = log_->GetStream("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->head_seq(), 3u);
}

TEST_F(EmbeddedLogTest, ExpectedSeqBehindOrAheadOfTheHeadIsAborted) {
  Open();
  MustAppend({Ev("a"), Ev("a"), Ev("a")});
  for (uint64_t expected : {uint64_t{0}, uint64_t{2}, uint64_t{4}, ~uint64_t{0}}) {
    absl::StatusOr<v1::PublishResponse> r = Append({EvExpecting("a", expected)});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << expected;
  }
  EXPECT_EQ(MustAppend({EvExpecting("a", 3)}).results(0).position(), 4u);
}

// --- De-duplication ---

TEST_F(EmbeddedLogTest, RepublishInsideWindowIsDuplicateWithOriginalPositionAndStoresNothing) {
  Open();
  MustAppend({Ev("a", "", "src")});
  v1::PublishResponse first = MustAppend({Ev("s", "evt-1", "zlm-1", "t", "original")});
  ASSERT_EQ(first.results(0).position(), 2u);
  MustAppend({Ev("s")});  // s at seq 2 now, head 3.
  clock_.Advance(kWindow - absl::Seconds(1));

  const LogStats before = log_->Stats();
  v1::PublishResponse dup = MustAppend({Ev("s", "evt-1", "zlm-1", "t", "retry with other data")});
  ASSERT_EQ(dup.results_size(), 1);
  EXPECT_TRUE(dup.results(0).duplicate());
  EXPECT_EQ(dup.results(0).position(), 2u);
  EXPECT_EQ(dup.results(0).seq(), 1u);
  EXPECT_EQ(dup.results(0).id(), "evt-1");

  const LogStats after = log_->Stats();
  EXPECT_EQ(after.head, before.head);
  EXPECT_EQ(after.event_count, before.event_count);
  EXPECT_EQ(after.bytes, before.bytes);
  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(Parse(events[1]).data(), "original");
  absl::StatusOr<v1::StreamInfo> s = log_->GetStream("s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->head_seq(), 2u);
  EXPECT_EQ(s->event_count(), 2u);
}

TEST_F(EmbeddedLogTest, SameIdFromAnotherSourceIsNotADuplicate) {
  Open();
  MustAppend({Ev("s", "evt-1", "zlm-1")});
  v1::PublishResponse other = MustAppend({Ev("s", "evt-1", "zlm-2")});
  EXPECT_FALSE(other.results(0).duplicate());
  EXPECT_EQ(other.results(0).position(), 2u);
  // Source and id are not simply concatenated: ("zlm-1", "x") differs from ("zlm-1x", "").
  MustAppend({Ev("s", "ab", "zlm")});
  v1::PublishResponse shifted = MustAppend({Ev("s", "b", "zlma")});
  EXPECT_FALSE(shifted.results(0).duplicate());
  EXPECT_EQ(log_->Stats().event_count, 4u);
}

TEST_F(EmbeddedLogTest, DuplicateInsideTheSameBatchGetsThePositionOfItsTwin) {
  Open();
  v1::PublishResponse r = MustAppend(
      {Ev("s", "x", "src"), Ev("s", "y", "src"), Ev("s", "x", "src"), Ev("s", "z", "src")});
  ASSERT_EQ(r.results_size(), 4);
  EXPECT_FALSE(r.results(0).duplicate());
  EXPECT_FALSE(r.results(1).duplicate());
  EXPECT_TRUE(r.results(2).duplicate());
  EXPECT_EQ(r.results(2).position(), r.results(0).position());
  EXPECT_EQ(r.results(2).seq(), r.results(0).seq());
  EXPECT_FALSE(r.results(3).duplicate());
  EXPECT_EQ(r.results(3).position(), 3u) << "a duplicate must not consume a position";
  EXPECT_EQ(r.results(3).seq(), 3u) << "a duplicate must not consume a seq";
  EXPECT_EQ(log_->Stats().event_count, 3u);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3));
}

TEST_F(EmbeddedLogTest, DuplicateSkipsTheExpectedSeqCheckOfTheRetriedEvent) {
  Open();
  // A retried conditional publish must get its original result, not a conflict.
  v1::EventInput e = Ev("s", "once", "src");
  e.set_expected_seq(0);
  MustAppend({e});
  v1::PublishResponse retry = MustAppend({e});
  EXPECT_TRUE(retry.results(0).duplicate());
  EXPECT_EQ(retry.results(0).position(), 1u);
}

TEST_F(EmbeddedLogTest, SameIdAfterTheWindowIsStoredAgain) {
  Open();
  MustAppend({Ev("s", "evt-1", "src")});
  clock_.Advance(kWindow + absl::Seconds(1));
  v1::PublishResponse again = MustAppend({Ev("s", "evt-1", "src")});
  EXPECT_FALSE(again.results(0).duplicate());
  EXPECT_EQ(again.results(0).position(), 2u);
  EXPECT_EQ(again.results(0).seq(), 2u);
  // The new copy is what later retries de-duplicate against.
  clock_.Advance(absl::Seconds(1));
  v1::PublishResponse retry = MustAppend({Ev("s", "evt-1", "src")});
  EXPECT_TRUE(retry.results(0).duplicate());
  EXPECT_EQ(retry.results(0).position(), 2u);
  // And it, too, expires, even though the first copy's expiry already passed.
  clock_.Advance(kWindow + absl::Seconds(1));
  EXPECT_FALSE(MustAppend({Ev("s", "evt-1", "src")}).results(0).duplicate());
  EXPECT_EQ(log_->Stats().event_count, 3u);
}

TEST_F(EmbeddedLogTest, ZeroWindowTurnsDeduplicationOff) {
  EmbeddedLogOptions o = Options();
  o.dedup_window = absl::ZeroDuration();
  Open(o);
  MustAppend({Ev("s", "evt-1", "src")});
  v1::PublishResponse r = MustAppend({Ev("s", "evt-1", "src")});
  EXPECT_FALSE(r.results(0).duplicate());
  EXPECT_EQ(log_->Stats().event_count, 2u);
}

TEST_F(EmbeddedLogTest, EmptyIdGetsAServerAssignedIdAndIsNeverDeduplicated) {
  Open();
  v1::PublishResponse r = MustAppend({Ev("s", "", "src"), Ev("s", "", "src")});
  v1::PublishResponse r2 = MustAppend({Ev("s", "", "src")});
  ASSERT_EQ(r.results_size(), 2);
  std::vector<std::string> ids = {r.results(0).id(), r.results(1).id(), r2.results(0).id()};
  for (const std::string& id : ids) EXPECT_FALSE(id.empty());
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  EXPECT_NE(ids[0], ids[2]);
  EXPECT_FALSE(r.results(1).duplicate());
  EXPECT_FALSE(r2.results(0).duplicate());
  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(Parse(events[i]).id(), ids[i]);
}

TEST_F(EmbeddedLogTest, ServerAssignedIdsAreUniqueAcrossLogs) {
  Open();
  const std::string id1 = MustAppend({Ev("s")}).results(0).id();
  log_.reset();
  extra_dirs_.push_back(UniqueTempDir("other"));
  EmbeddedLogOptions o = Options();
  o.data_dir = extra_dirs_.back();
  Open(o);
  const std::string id2 = MustAppend({Ev("s")}).results(0).id();
  EXPECT_NE(id1, id2) << "both logs assigned the same id to their first event";
}

TEST_F(EmbeddedLogTest, DedupDecisionOnAServerAssignedIdDoesNotDependOnARestart) {
  Open();
  // Two events without ids; the producer learns the ids the server gave them.
  v1::PublishResponse r = MustAppend({Ev("s", "", "src"), Ev("s", "", "src")});
  const std::string id1 = r.results(0).id();
  const std::string id2 = r.results(1).id();
  // Publishing under the first assigned id while the log runs...
  const bool dup_before = MustAppend({Ev("s", id1, "src")}).results(0).duplicate();
  log_->Close();
  Open();
  // ...and under the second after a restart must be decided the same way.
  const bool dup_after = MustAppend({Ev("s", id2, "src")}).results(0).duplicate();
  EXPECT_EQ(dup_before, dup_after)
      << "(source, server-assigned id) is a duplicate " << (dup_after ? "only after" : "only before")
      << " a restart: the recovered dedup window holds entries the live one never had";
}

TEST_F(EmbeddedLogTest, DedupWindowSurvivesReopen) {
  Open();
  MustAppend({Ev("s", "evt-1", "src"), Ev("s", "evt-2", "src")});
  clock_.Advance(kWindow / 2);
  MustAppend({Ev("s", "evt-3", "src")});
  log_->Close();
  clock_.Advance(absl::Seconds(10));
  Open();

  v1::PublishResponse r = MustAppend({Ev("s", "evt-1", "src"), Ev("s", "evt-3", "src")});
  EXPECT_TRUE(r.results(0).duplicate());
  EXPECT_EQ(r.results(0).position(), 1u);
  EXPECT_TRUE(r.results(1).duplicate());
  EXPECT_EQ(r.results(1).position(), 3u);
  EXPECT_EQ(r.results(1).seq(), 3u);
  EXPECT_EQ(log_->Stats().event_count, 3u);

  // The recovered entries keep their original ingest times: evt-1 expires a window after it was
  // first stored, evt-3 later.
  clock_.Advance(kWindow / 2);
  v1::PublishResponse later = MustAppend({Ev("s", "evt-1", "src"), Ev("s", "evt-3", "src")});
  EXPECT_FALSE(later.results(0).duplicate());
  EXPECT_TRUE(later.results(1).duplicate());
}

TEST_F(EmbeddedLogTest, ReopenKeepsIdentityHeadAndStreamHeads) {
  Open();
  MustAppend({Ev("a"), Ev("b"), Ev("a")});
  const std::string log_id = log_->log_id();
  const std::string token_key = log_->token_key();
  const LogStats before = log_->Stats();
  absl::StatusOr<v1::StreamInfo> a_before = log_->GetStream("a");
  ASSERT_TRUE(a_before.ok());
  log_->Close();
  Open();

  EXPECT_EQ(log_->log_id(), log_id);
  EXPECT_EQ(log_->token_key(), token_key);
  const LogStats after = log_->Stats();
  EXPECT_EQ(after.head, Position(3));
  EXPECT_EQ(after.oldest, Position(1));
  EXPECT_EQ(after.event_count, before.event_count);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(after.stream_count, 2u);
  absl::StatusOr<v1::StreamInfo> a_after = log_->GetStream("a");
  ASSERT_TRUE(a_after.ok());
  EXPECT_EQ(a_after->SerializeAsString(), a_before->SerializeAsString());

  v1::PublishResponse r = MustAppend({Ev("a"), Ev("b"), Ev("c")});
  EXPECT_EQ(r.results(0).position(), 4u);
  EXPECT_EQ(r.results(0).seq(), 3u);
  EXPECT_EQ(r.results(1).seq(), 2u);
  EXPECT_EQ(r.results(2).seq(), 1u);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3, 4, 5, 6));
}

// --- Format version ---

// Opens the (closed) store in `dir` with plain RocksDB and runs `change` on it.
void ChangeStore(const std::string& dir, const std::function<void(rocksdb::DB*)>& change) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &db).ok());
  change(db);
  for (rocksdb::ColumnFamilyHandle* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

// Rewrites the identity record of the (closed) store in `dir` with `version`.
void SetFormatVersion(const std::string& dir, uint32_t version) {
  ChangeStore(dir, [version](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "identity", &value).ok());
    internal::LogIdentity identity;
    ASSERT_TRUE(identity.ParseFromString(value));
    identity.set_format_version(version);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(db->Put(wo, "identity", identity.SerializeAsString()).ok());
  });
}

uint32_t FormatVersion(const std::string& dir) {
  rocksdb::DB* db = nullptr;
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  EXPECT_TRUE(
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, families, &handles, &db).ok());
  std::string value;
  internal::LogIdentity identity;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "identity", &value).ok());
  EXPECT_TRUE(identity.ParseFromString(value));
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  delete db;
  return identity.format_version();
}

TEST_F(EmbeddedLogTest, VersionOneStoreIsUpgradedAndKeepsItsEvents) {
  Open();
  MustAppend({Ev("a"), Ev("b")});
  const std::string log_id = log_->log_id();
  log_.reset();
  SetFormatVersion(dir_, 1);

  Open();
  EXPECT_EQ(log_->log_id(), log_id);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2));
  log_.reset();
  EXPECT_EQ(FormatVersion(dir_), 3u);
}

// Format 2 wrote every stream record with every commit and a 40-byte state record without the
// checkpoint position: its records are taken as current, nothing is replayed or counted twice.
TEST_F(EmbeddedLogTest, VersionTwoStateRecordWithoutACheckpointPositionIsReadAsCurrent) {
  Open();
  MustAppend({Ev("a"), Ev("b"), Ev("a")});
  log_.reset();
  SetFormatVersion(dir_, 2);
  ChangeStore(dir_, [](rocksdb::DB* db) {
    std::string state;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "state", &state).ok());
    ASSERT_EQ(state.size(), 48u);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "state", state.substr(0, 40)).ok());
  });
  Open();
  absl::StatusOr<v1::StreamInfo> a = log_->GetStream("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->head_seq(), 2u);
  EXPECT_EQ(a->event_count(), 2u);
  absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*log_, {Ev("a")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), 3u);
  EXPECT_EQ(r->results(0).position(), 4u);
  log_.reset();
  EXPECT_EQ(FormatVersion(dir_), 3u);
}

TEST_F(EmbeddedLogTest, StoreOfANewerFormatIsRefusedAndLeftUnchanged) {
  Open();
  MustAppend({Ev("a")});
  log_.reset();
  SetFormatVersion(dir_, 4);

  absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(Options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log.status().message(), HasSubstr("format version 4"));
  EXPECT_EQ(FormatVersion(dir_), 4u);
}

// --- Metadata ---

TEST_F(EmbeddedLogTest, MetaWritesSurviveReopenAndScanInKeyOrderWithinThePrefix) {
  Open();
  ASSERT_TRUE(log_->WriteMeta({{"wh/a/cursor", "1"}, {"wh/b/cursor", "2"}, {"wh/b/dl/1", "x"},
                               {"wi/other", "y"}, {"wh/", "root"}})
                  .ok());
  ASSERT_TRUE(log_->WriteMeta({{"wh/a/cursor", "10"}, {"wh/b/dl/1", std::nullopt}}).ok());
  log_->Close();
  Open();

  absl::StatusOr<std::optional<std::string>> a = log_->GetMeta("wh/a/cursor");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, std::optional<std::string>("10"));
  absl::StatusOr<std::optional<std::string>> gone = log_->GetMeta("wh/b/dl/1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());

  using Entry = std::pair<std::string, std::string>;
  absl::StatusOr<std::vector<Entry>> all = log_->ScanMeta("wh/", "", 100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, ElementsAre(Entry("wh/", "root"), Entry("wh/a/cursor", "10"),
                                Entry("wh/b/cursor", "2")));
  absl::StatusOr<std::vector<Entry>> page = log_->ScanMeta("wh/", "wh/", 1);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(*page, ElementsAre(Entry("wh/a/cursor", "10")));
  absl::StatusOr<std::vector<Entry>> rest = log_->ScanMeta("wh/", "wh/a/cursor", 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(*rest, ElementsAre(Entry("wh/b/cursor", "2")));
  // Metadata is not part of the event log.
  EXPECT_EQ(log_->Stats().head, Position(0));
}

TEST_F(EmbeddedLogTest, NewDirectoryGetsANewLogIdAndKey) {
  Open();
  const std::string log_id = log_->log_id();
  const std::string token_key = log_->token_key();
  log_.reset();
  extra_dirs_.push_back(UniqueTempDir("other"));
  EmbeddedLogOptions o = Options();
  o.data_dir = extra_dirs_.back();
  Open(o);
  EXPECT_NE(log_->log_id(), log_id);
  EXPECT_NE(log_->token_key(), token_key);
  EXPECT_EQ(log_->log_id().size(), 16u);
}

TEST_F(EmbeddedLogTest, IngestTimesNeverGoBackwardsWhenTheClockDoes) {
  // A clock that starts late, then is set back by an hour (an NTP step).
  ManualClock late(absl::FromUnixSeconds(1'700'003'600));
  EmbeddedLogOptions o = Options();
  o.clock = &late;
  Open(o);
  MustAppend({Ev("s", "a", "src")});
  log_->Close();
  o.clock = &clock_;  // One hour earlier.
  Open(o);
  MustAppend({Ev("s")});
  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_GE(Parse(events[1]).ingest_time().seconds(), Parse(events[0]).ingest_time().seconds());
}

// --- Read ---

TEST_F(EmbeddedLogTest, ReadPushesTheFilterDownAndScansToTheHead) {
  Open();
  MustAppend({Ev("a", "", "s", "x"), Ev("b", "", "s", "x"), Ev("a", "", "s", "y"),
              Ev("b", "", "s", "y"), Ev("c", "", "s", "x")});
  std::vector<std::pair<std::string, std::string>> seen;
  absl::StatusOr<ReadChunk> chunk =
      log_->Read(Position(0), ReadLimits(), [&](absl::string_view stream, absl::string_view type) {
        seen.emplace_back(std::string(stream), std::string(type));
        return stream == "a" || type == "y";
      });
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_THAT(Positions(chunk->events), ElementsAre(1, 3, 4));
  EXPECT_EQ(chunk->events[2].stream, "b");
  EXPECT_EQ(chunk->events[2].type, "y");
  EXPECT_EQ(chunk->events[2].seq, Seq(2));
  // The last two did not match, yet everything up to the head was examined.
  EXPECT_EQ(chunk->scanned_through, Position(5));
  EXPECT_EQ(seen.size(), 5u);
}

TEST_F(EmbeddedLogTest, ReadThatMatchesNothingStillReportsTheHeadAsScanned) {
  Open();
  MustAppend({Ev("a"), Ev("a"), Ev("a")});
  absl::StatusOr<ReadChunk> chunk = log_->Read(
      Position(1), ReadLimits(), [](absl::string_view, absl::string_view) { return false; });
  ASSERT_TRUE(chunk.ok());
  EXPECT_TRUE(chunk->events.empty());
  EXPECT_EQ(chunk->scanned_through, Position(3));
}

TEST_F(EmbeddedLogTest, ReadAtOrAfterTheHeadReturnsNothing) {
  Open();
  MustAppend({Ev("a"), Ev("a")});
  for (uint64_t after : {uint64_t{2}, uint64_t{3}, uint64_t{1000}}) {
    absl::StatusOr<ReadChunk> chunk = log_->Read(
        Position(after), ReadLimits(), [](absl::string_view, absl::string_view) { return true; });
    ASSERT_TRUE(chunk.ok());
    EXPECT_TRUE(chunk->events.empty()) << after;
    EXPECT_GE(chunk->scanned_through, Position(2)) << after;
  }
}

TEST_F(EmbeddedLogTest, ReadStopsAtMaxEventsAndResumesWithoutGapsOrRepeats) {
  Open();
  for (int i = 0; i < 7; ++i) MustAppend({Ev(i % 2 ? "odd" : "even")});
  ReadLimits limits;
  limits.max_events = 2;
  std::vector<uint64_t> all;
  Position cursor(0);
  int reads = 0;
  while (cursor < log_->head()) {
    absl::StatusOr<ReadChunk> chunk = log_->Read(
        cursor, limits, [](absl::string_view, absl::string_view) { return true; });
    ASSERT_TRUE(chunk.ok());
    ASSERT_LE(chunk->events.size(), 2u);
    ASSERT_GT(chunk->scanned_through, cursor) << "a read must make progress";
    if (!chunk->events.empty()) {
      EXPECT_EQ(chunk->scanned_through, chunk->events.back().position);
    }
    for (const StoredEvent& e : chunk->events) all.push_back(e.position.value());
    cursor = chunk->scanned_through;
    ASSERT_LT(++reads, 20);
  }
  EXPECT_THAT(all, ElementsAre(1, 2, 3, 4, 5, 6, 7));
  EXPECT_EQ(reads, 4);
}

TEST_F(EmbeddedLogTest, ReadStopsOnceMaxBytesIsReachedButAlwaysReturnsOneEvent) {
  Open();
  for (int i = 0; i < 6; ++i) MustAppend({Ev("s", "", "src", "t", std::string(100, 'x'))});
  const size_t event_bytes = ReadAll(*log_)[0].bytes.size();

  ReadLimits tiny;
  tiny.max_bytes = 1;
  absl::StatusOr<ReadChunk> one = log_->Read(
      Position(0), tiny, [](absl::string_view, absl::string_view) { return true; });
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(Positions(one->events), ElementsAre(1))
      << "an oversized event must not stall readers";
  EXPECT_EQ(one->scanned_through, Position(1));

  ReadLimits three;
  three.max_bytes = 3 * event_bytes;
  absl::StatusOr<ReadChunk> chunk = log_->Read(
      Position(1), three, [](absl::string_view, absl::string_view) { return true; });
  ASSERT_TRUE(chunk.ok());
  EXPECT_THAT(Positions(chunk->events), ElementsAre(2, 3, 4));
  EXPECT_EQ(chunk->scanned_through, Position(4));
}

TEST_F(EmbeddedLogTest, ReadStopsAtMaxScannedEvenWhenNothingMatches) {
  Open();
  for (int i = 0; i < 7; ++i) MustAppend({Ev("s")});
  ReadLimits limits;
  limits.max_scanned = 3;
  int calls = 0;
  auto none = [&](absl::string_view, absl::string_view) {
    ++calls;
    return false;
  };
  absl::StatusOr<ReadChunk> c1 = log_->Read(Position(0), limits, none);
  ASSERT_TRUE(c1.ok());
  EXPECT_TRUE(c1->events.empty());
  EXPECT_EQ(c1->scanned_through, Position(3));
  EXPECT_EQ(calls, 3);
  absl::StatusOr<ReadChunk> c2 = log_->Read(c1->scanned_through, limits, none);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->scanned_through, Position(6));
  absl::StatusOr<ReadChunk> c3 = log_->Read(c2->scanned_through, limits, none);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->scanned_through, Position(7));
}

TEST_F(EmbeddedLogTest, ReadFaultHookFailsTheRead) {
  std::atomic<bool> fail{false};
  EmbeddedLogOptions o = Options();
  o.faults.before_read = [&fail]() -> absl::Status {
    if (fail.load()) return absl::DataLossError("injected read failure");
    return absl::OkStatus();
  };
  Open(o);
  MustAppend({Ev("s")});
  fail = true;
  absl::StatusOr<ReadChunk> chunk = log_->Read(
      Position(0), ReadLimits(), [](absl::string_view, absl::string_view) { return true; });
  EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(chunk.status().message()), HasSubstr("injected read failure"));
  fail = false;
  EXPECT_EQ(ReadAll(*log_).size(), 1u);
}

// --- Stream metadata ---

TEST_F(EmbeddedLogTest, GetStreamOfUnknownStreamIsNotFound) {
  Open();
  EXPECT_EQ(log_->GetStream("nope").status().code(), absl::StatusCode::kNotFound);
  MustAppend({Ev("yes")});
  EXPECT_EQ(log_->GetStream("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->GetStream("ye").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EmbeddedLogTest, GetStreamReportsSeqRangeCountAndHeadPosition) {
  Open();
  MustAppend({Ev("s"), Ev("other")});
  clock_.Advance(absl::Seconds(5));
  MustAppend({Ev("other"), Ev("s"), Ev("s")});
  absl::StatusOr<v1::StreamInfo> s = log_->GetStream("s");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stream(), "s");
  EXPECT_EQ(s->first_seq(), 1u);
  EXPECT_EQ(s->head_seq(), 3u);
  EXPECT_EQ(s->event_count(), 3u);
  EXPECT_EQ(s->head_position(), 5u);
  EXPECT_EQ(s->last_event_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
}

TEST_F(EmbeddedLogTest, ListStreamsPagesInNameOrderWithStartAfterAndMore) {
  Open();
  MustAppend({Ev("e"), Ev("c"), Ev("a"), Ev("d"), Ev("b")});
  auto all = [](absl::string_view) { return true; };
  auto names = [](const std::vector<v1::StreamInfo>& infos) {
    std::vector<std::string> out;
    for (const v1::StreamInfo& i : infos) out.push_back(i.stream());
    return out;
  };
  bool more = false;
  absl::StatusOr<std::vector<v1::StreamInfo>> page = log_->ListStreams("", 2, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(names(*page), ElementsAre("a", "b"));
  EXPECT_TRUE(more);
  EXPECT_EQ((*page)[0].head_seq(), 1u);
  EXPECT_EQ((*page)[0].head_position(), 3u);

  page = log_->ListStreams("b", 2, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(names(*page), ElementsAre("c", "d"));
  EXPECT_TRUE(more);

  page = log_->ListStreams("d", 2, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(names(*page), ElementsAre("e"));
  EXPECT_FALSE(more);

  // Exactly the rest fits: no further page.
  page = log_->ListStreams("c", 2, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(names(*page), ElementsAre("d", "e"));
  EXPECT_FALSE(more);

  // start_after need not be a stream.
  page = log_->ListStreams("bb", 10, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(names(*page), ElementsAre("c", "d", "e"));
  EXPECT_FALSE(more);

  page = log_->ListStreams("e", 10, all, &more);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->empty());
  EXPECT_FALSE(more);
}

TEST_F(EmbeddedLogTest, ListStreamsSkipsStreamsTheKeepPredicateRejects) {
  Open();
  MustAppend({Ev("live/a"), Ev("vod/b"), Ev("live/c"), Ev("vod/d"), Ev("live/e"), Ev("vod/f")});
  auto live = [](absl::string_view s) { return absl::StartsWith(s, "live/"); };
  bool more = false;
  absl::StatusOr<std::vector<v1::StreamInfo>> page = log_->ListStreams("", 2, live, &more);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].stream(), "live/a");
  EXPECT_EQ((*page)[1].stream(), "live/c");
  EXPECT_TRUE(more);
  page = log_->ListStreams("live/c", 2, live, &more);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].stream(), "live/e");
  EXPECT_FALSE(more) << "only rejected streams follow";
}

// --- Commit listener ---

// Records what it was told, and checks the ordering contract against the acks.
class RecordingListener : public CommitListener {
 public:
  void OnCommit(std::vector<StoredEvent>& events, Position head) override {
    absl::MutexLock l(&mu_);
    EXPECT_FALSE(events.empty());
    for (const StoredEvent& e : events) {
      committed_.push_back(e.position.value());
      EXPECT_FALSE(acked_.count(e.position.value()))
          << "position " << e.position << " was acknowledged before its commit was announced";
      v1::Event parsed;
      EXPECT_TRUE(parsed.ParseFromString(e.bytes));
      EXPECT_EQ(parsed.position(), e.position.value());
      EXPECT_EQ(parsed.seq(), e.seq.value());
      EXPECT_EQ(parsed.stream(), e.stream);
    }
    EXPECT_EQ(head, events.back().position);
    ++groups_;
  }
  void Acked(const v1::PublishResponse& r) {
    absl::MutexLock l(&mu_);
    for (const v1::PublishResult& res : r.results()) {
      if (res.duplicate()) continue;
      EXPECT_TRUE(std::find(committed_.begin(), committed_.end(), res.position()) !=
                  committed_.end())
          << "ack of position " << res.position() << " before the listener heard of it";
      acked_.insert(res.position());
    }
  }
  std::vector<uint64_t> committed() {
    absl::MutexLock l(&mu_);
    return committed_;
  }
  int groups() {
    absl::MutexLock l(&mu_);
    return groups_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> committed_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> acked_ ABSL_GUARDED_BY(mu_);
  int groups_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(EmbeddedLogTest, CommitListenerHearsEveryEventOnceInPositionOrderBeforeTheAck) {
  Open();
  RecordingListener listener;
  log_->SetCommitListener(&listener);
  constexpr int kAppends = 200;
  absl::Mutex mu;
  int done = 0;
  for (int i = 0; i < kAppends; ++i) {
    std::vector<v1::EventInput> batch = {Ev(absl::StrCat("s", i % 5))};
    if (i % 3 == 0) batch.push_back(Ev("x", absl::StrCat("id", i / 6), "src"));  // some dups
    if (i % 7 == 0) batch.push_back(EvExpecting("never", 42));  // aborted batches
    log_->Append(std::move(batch), [&, i](absl::StatusOr<v1::PublishResponse> r) {
      if (i % 7 == 0) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
      } else {
        EXPECT_TRUE(r.ok()) << r.status();
        if (r.ok()) listener.Acked(*r);
      }
      absl::MutexLock l(&mu);
      ++done;
    });
  }
  {
    absl::MutexLock l(&mu);
    auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == kAppends; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_done), kWait));
  }
  const uint64_t head = log_->head().value();
  std::vector<uint64_t> want(head);
  for (uint64_t p = 1; p <= head; ++p) want[p - 1] = p;
  EXPECT_EQ(listener.committed(), want);
  EXPECT_EQ(head, log_->Stats().event_count);
}

TEST_F(EmbeddedLogTest, CommitListenerIsNotToldOfDuplicatesOrRejectedBatches) {
  Open();
  RecordingListener listener;
  log_->SetCommitListener(&listener);
  MustAppend({Ev("s", "a", "src")});
  MustAppend({Ev("s", "a", "src")});
  EXPECT_FALSE(Append({EvExpecting("s", 0)}).ok());
  EXPECT_THAT(listener.committed(), ElementsAre(1));
  EXPECT_EQ(listener.groups(), 1);
}

// --- Concurrent readers ---

// Remembers the highest position announced to subscribers.
class HighWaterListener : public CommitListener {
 public:
  void OnCommit(std::vector<StoredEvent>& events, Position head) override {
    // The listener may take the events; the log must not need them afterwards.
    std::vector<StoredEvent> taken = std::move(events);
    announced_.store(head.value());
  }
  uint64_t announced() const { return announced_.load(); }

 private:
  std::atomic<uint64_t> announced_{0};
};

TEST_F(EmbeddedLogTest, ReadersRacingTheAppenderSeeNoHolesAndNothingUnannounced) {
  Open();
  HighWaterListener listener;
  log_->SetCommitListener(&listener);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  absl::Notification reader_started;
  std::thread reader([&] {
    Position cursor(0);
    ReadLimits limits;
    limits.max_events = 7;  // Many small reads that resume where the last one stopped.
    reader_started.Notify();
    // Reads race the appends, then finish at the final head (so the test does not depend on
    // the reader being scheduled before a fast appender is done).
    while (!stop.load() || cursor < log_->head()) {
      absl::StatusOr<ReadChunk> chunk = log_->Read(
          cursor, limits, [](absl::string_view, absl::string_view) { return true; });
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      const uint64_t announced = listener.announced();
      uint64_t expect = cursor.value() + 1;
      for (const StoredEvent& e : chunk->events) {
        ASSERT_EQ(e.position.value(), expect) << "hole or repeat after " << cursor;
        ++expect;
      }
      ASSERT_LE(chunk->scanned_through.value(), announced)
          << "a reader saw a position the listener had not been told about";
      ASSERT_GE(chunk->scanned_through, cursor);
      cursor = chunk->scanned_through;
      reads.fetch_add(1);
    }
  });
  ASSERT_TRUE(reader_started.WaitForNotificationWithTimeout(kWait));
  Outcomes outcomes;
  constexpr int kAppends = 400;
  for (int i = 0; i < kAppends; ++i) {
    log_->Append({Ev(absl::StrCat("s", i % 3)), Ev("t")}, outcomes.Callback(i));
  }
  ASSERT_TRUE(outcomes.WaitFor(kAppends));
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(log_->head(), Position(2 * kAppends));
  EXPECT_EQ(ReadAll(*log_).size(), 2u * kAppends);
}

// --- Group commit, faults and Close ---

// A before_append hook that holds the first group until released, so that the test can queue
// appends that the appender then takes as one group. Later calls return `status_after`.
class GroupGate {
 public:
  std::function<absl::Status()> Hook() {
    return [this]() -> absl::Status {
      if (!first_done_.exchange(true)) {
        entered_.Notify();
        release_.WaitForNotification();
        return absl::OkStatus();
      }
      absl::MutexLock l(&mu_);
      ++later_calls_;
      return status_after_;
    };
  }
  bool WaitEntered() { return entered_.WaitForNotificationWithTimeout(kWait); }
  void Release() { release_.Notify(); }
  void SetStatusAfter(absl::Status s) {
    absl::MutexLock l(&mu_);
    status_after_ = std::move(s);
  }
  int later_calls() {
    absl::MutexLock l(&mu_);
    return later_calls_;
  }

 private:
  std::atomic<bool> first_done_{false};
  absl::Notification entered_;
  absl::Notification release_;
  absl::Mutex mu_;
  absl::Status status_after_ ABSL_GUARDED_BY(mu_);
  int later_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// Requests without expected_seq stage straight into the group; a request with one stages in
// its own overlay first. Mixed in one group, a rejected request must leave no trace (no seq, no
// position, no dedup entry) between accepted ones on either path.
TEST_F(EmbeddedLogTest, RejectedRequestInsideAGroupLeavesNoTraceBetweenAcceptedOnes) {
  GroupGate gate;
  EmbeddedLogOptions o = Options();
  o.faults.before_append = gate.Hook();
  Open(o);
  Outcomes outcomes;
  log_->Append({Ev("warm")}, outcomes.Callback(0));
  ASSERT_TRUE(gate.WaitEntered());
  log_->Append({Ev("s", "a", "src")}, outcomes.Callback(1));                  // s1
  log_->Append({Ev("t", "b", "src"), EvExpecting("s", 7)}, outcomes.Callback(2));  // rejected
  log_->Append({Ev("t", "b", "src"), Ev("s"), Ev("s", "a", "src")}, outcomes.Callback(3));
  log_->Append({EvExpecting("s", 2), Ev("t")}, outcomes.Callback(4));         // s3, t2
  gate.Release();
  ASSERT_TRUE(outcomes.WaitFor(5));
  EXPECT_EQ(gate.later_calls(), 1) << "appends 1-4 were meant to be one group";

  ASSERT_TRUE(outcomes.Get(1).ok());
  EXPECT_EQ(outcomes.Get(1)->results(0).position(), 2u);
  EXPECT_EQ(outcomes.Get(2).status().code(), absl::StatusCode::kAborted);
  absl::StatusOr<v1::PublishResponse> third = outcomes.Get(3);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->results(0).duplicate()) << "the rejected request's id was remembered";
  EXPECT_EQ(third->results(0).position(), 3u);
  EXPECT_EQ(third->results(0).seq(), 1u);
  EXPECT_EQ(third->results(1).position(), 4u);
  EXPECT_EQ(third->results(1).seq(), 2u);
  EXPECT_TRUE(third->results(2).duplicate());
  EXPECT_EQ(third->results(2).position(), 2u);
  absl::StatusOr<v1::PublishResponse> fourth = outcomes.Get(4);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_EQ(fourth->results(0).seq(), 3u);
  EXPECT_EQ(fourth->results(1).seq(), 2u);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(log_->GetStream("s")->head_seq(), 3u);
  EXPECT_EQ(log_->GetStream("t")->head_seq(), 2u);
}

TEST_F(EmbeddedLogTest, FailedGroupWriteFailsEveryAppendOfTheGroupAndStoresNothing) {
  GroupGate gate;
  gate.SetStatusAfter(absl::UnavailableError("injected: disk full"));
  EmbeddedLogOptions o = Options();
  o.faults.before_append = gate.Hook();
  Open(o);
  RecordingListener listener;
  log_->SetCommitListener(&listener);

  Outcomes outcomes;
  log_->Append({Ev("s", "first", "src")}, outcomes.Callback(0));
  ASSERT_TRUE(gate.WaitEntered());
  // Queued while the first group is being written: they form the next group.
  log_->Append({Ev("s", "dup-me", "src"), Ev("t")}, outcomes.Callback(1));
  log_->Append({Ev("u", "dup-me", "src")}, outcomes.Callback(2));    // duplicate of 1's event
  log_->Append({Ev("s", "first", "src")}, outcomes.Callback(3));     // duplicate of a stored one
  gate.Release();
  ASSERT_TRUE(outcomes.WaitFor(4));

  ASSERT_TRUE(outcomes.Get(0).ok());
  EXPECT_EQ(outcomes.Get(0)->results(0).position(), 1u);
  for (int i : {1, 2, 3}) {
    EXPECT_EQ(outcomes.Get(i).status().code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_THAT(std::string(outcomes.Get(i).status().message()), HasSubstr("disk full"));
  }
  EXPECT_EQ(gate.later_calls(), 1) << "the three appends were meant to be one group";
  EXPECT_EQ(log_->head(), Position(1));
  EXPECT_EQ(log_->Stats().event_count, 1u);
  EXPECT_EQ(log_->GetStream("t").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<v1::StreamInfo> s = log_->GetStream("s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->head_seq(), 1u);
  EXPECT_THAT(listener.committed(), ElementsAre(1));

  // Storage recovers: the next append takes the next position, and the event that failed is
  // not remembered as stored (its retry is not a duplicate).
  gate.SetStatusAfter(absl::OkStatus());
  v1::PublishResponse retry = MustAppend({Ev("u", "dup-me", "src"), Ev("s")});
  EXPECT_FALSE(retry.results(0).duplicate());
  EXPECT_EQ(retry.results(0).position(), 2u);
  EXPECT_EQ(retry.results(0).seq(), 1u);
  EXPECT_EQ(retry.results(1).seq(), 2u);
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3));
  EXPECT_THAT(listener.committed(), ElementsAre(1, 2, 3));
}

TEST_F(EmbeddedLogTest, GroupTakesAtMostMaxGroupEventsButAlwaysOneAppend) {
  GroupGate gate;
  EmbeddedLogOptions o = Options();
  o.faults.before_append = gate.Hook();
  o.max_group_events = 2;
  Open(o);
  Outcomes outcomes;
  log_->Append({Ev("s")}, outcomes.Callback(0));
  ASSERT_TRUE(gate.WaitEntered());
  log_->Append({Ev("s")}, outcomes.Callback(1));
  log_->Append({Ev("s")}, outcomes.Callback(2));                    // group 2: appends 1 and 2
  log_->Append({Ev("s"), Ev("s"), Ev("s")}, outcomes.Callback(3));  // group 3: too big, alone
  log_->Append({Ev("s")}, outcomes.Callback(4));                    // group 4
  gate.Release();
  ASSERT_TRUE(outcomes.WaitFor(5));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(outcomes.Get(i).ok()) << i;
  EXPECT_EQ(gate.later_calls(), 3);
  EXPECT_EQ(log_->head(), Position(7));
}

TEST_F(EmbeddedLogTest, AppendFaultAloneFailsWithUnavailableAndLeavesTheHead) {
  std::atomic<bool> fail{true};
  EmbeddedLogOptions o = Options();
  o.faults.before_append = [&fail]() -> absl::Status {
    if (fail.load()) return absl::InternalError("injected sync failure");
    return absl::OkStatus();
  };
  Open(o);
  absl::StatusOr<v1::PublishResponse> r = Append({Ev("s"), Ev("s")});
  // Whatever the storage error, publishers are told to retry.
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_->head(), Position(0));
  EXPECT_EQ(log_->Stats().event_count, 0u);
  EXPECT_EQ(log_->Stats().stream_count, 0u);
  fail = false;
  v1::PublishResponse ok = MustAppend({Ev("s")});
  EXPECT_EQ(ok.results(0).position(), 1u);
  EXPECT_EQ(ok.results(0).seq(), 1u);
}

TEST_F(EmbeddedLogTest, RequestsOfOneGroupSucceedOrFailIndependently) {
  GroupGate gate;
  EmbeddedLogOptions o = Options();
  o.faults.before_append = gate.Hook();
  Open(o);
  Outcomes outcomes;
  log_->Append({Ev("s")}, outcomes.Callback(0));
  ASSERT_TRUE(gate.WaitEntered());
  log_->Append({Ev("s"), Ev("a", "k", "src")}, outcomes.Callback(1));   // positions 2, 3
  log_->Append({Ev("t"), EvExpecting("s", 1)}, outcomes.Callback(2));  // s is at 2 by then
  log_->Append({EvExpecting("s", 2), Ev("a", "k", "src")}, outcomes.Callback(3));
  log_->Append({Ev("t")}, outcomes.Callback(4));
  gate.Release();
  ASSERT_TRUE(outcomes.WaitFor(5));
  EXPECT_EQ(gate.later_calls(), 1);

  ASSERT_TRUE(outcomes.Get(1).ok());
  EXPECT_EQ(outcomes.Get(2).status().code(), absl::StatusCode::kAborted);
  absl::StatusOr<v1::PublishResponse> r3 = outcomes.Get(3);
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_EQ(r3->results(0).position(), 4u);
  EXPECT_EQ(r3->results(0).seq(), 3u);
  EXPECT_TRUE(r3->results(1).duplicate());
  EXPECT_EQ(r3->results(1).position(), 3u);
  absl::StatusOr<v1::PublishResponse> r4 = outcomes.Get(4);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->results(0).position(), 5u);
  EXPECT_EQ(r4->results(0).seq(), 1u) << "the aborted request's event on t must not count";
  EXPECT_THAT(Positions(ReadAll(*log_)), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(EmbeddedLogTest, AppendAfterCloseFailsWithUnavailable) {
  Open();
  MustAppend({Ev("s")});
  log_->Close();
  log_->Close();  // Idempotent.
  bool called = false;
  absl::Status status;
  log_->Append({Ev("s")}, [&](absl::StatusOr<v1::PublishResponse> r) {
    called = true;
    status = r.status();
  });
  EXPECT_TRUE(called) << "a closed log answers inline";
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_->head(), Position(1));
}

TEST_F(EmbeddedLogTest, CloseCommitsAndAcknowledgesWhatIsPending) {
  GroupGate gate;
  EmbeddedLogOptions o = Options();
  o.faults.before_append = gate.Hook();
  Open(o);
  Outcomes outcomes;
  log_->Append({Ev("s")}, outcomes.Callback(0));
  ASSERT_TRUE(gate.WaitEntered());
  log_->Append({Ev("s")}, outcomes.Callback(1));
  log_->Append({Ev("t")}, outcomes.Callback(2));
  std::thread closer([this] { log_->Close(); });
  // Appends keep being queued until Close() flips the log to closing; then they fail inline.
  int n = 3;
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    const size_t before = outcomes.size();
    log_->Append({Ev("late")}, outcomes.Callback(n));
    ++n;
    if (outcomes.size() > before) break;  // Answered inline: the log is closing.
    std::this_thread::yield();
  }
  absl::StatusOr<v1::PublishResponse> last = outcomes.Get(n - 1);
  EXPECT_EQ(last.status().code(), absl::StatusCode::kUnavailable);
  gate.Release();
  closer.join();
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(n)) << "every append was answered by Close()";
  uint64_t stored = 0;
  for (int i = 0; i < n - 1; ++i) {
    absl::StatusOr<v1::PublishResponse> r = outcomes.Get(i);
    EXPECT_TRUE(r.ok()) << "append " << i << " was queued before Close: " << r.status();
    if (r.ok()) ++stored;
  }
  EXPECT_EQ(log_->head(), Position(stored));
  Open(Options());
  EXPECT_EQ(log_->head(), Position(stored)) << "pending appends acknowledged by Close are durable";
}

TEST_F(EmbeddedLogTest, ConcurrentAppendersGetEveryPositionOnceAndDenseSeqs) {
  Open();
  RecordingListener listener;
  log_->SetCommitListener(&listener);
  constexpr int kThreads = 4;
  constexpr int kAppendsPerThread = 500;
  constexpr int kStreams = 7;
  struct Result {
    int thread;
    int index;
    std::vector<std::string> streams;
    absl::StatusOr<v1::PublishResponse> response;
  };
  absl::Mutex mu;
  std::vector<Result> results;
  size_t total_events = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kAppendsPerThread; ++i) {
        const int n = 1 + rng() % 3;
        std::vector<v1::EventInput> batch;
        std::vector<std::string> streams;
        for (int k = 0; k < n; ++k) {
          std::string stream = absl::StrCat("s", rng() % kStreams);
          batch.push_back(Ev(stream, absl::StrCat("t", t, "-", i, "-", k), "load"));
          streams.push_back(std::move(stream));
        }
        {
          absl::MutexLock l(&mu);
          total_events += n;
        }
        log_->Append(std::move(batch), [&, t, i, streams](absl::StatusOr<v1::PublishResponse> r) {
          listener.Acked(r.ok() ? *r : v1::PublishResponse());
          absl::MutexLock l(&mu);
          results.push_back(Result{t, i, streams, std::move(r)});
        });
      }
    });
  }
  for (std::thread& th : threads) th.join();
  {
    absl::MutexLock l(&mu);
    auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return results.size() == kThreads * kAppendsPerThread;
    };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_done), kWait));
  }

  absl::MutexLock l(&mu);
  std::map<uint64_t, std::pair<std::string, uint64_t>> by_position;  // -> (stream, seq)
  std::map<std::pair<int, int>, uint64_t> first_position;             // (thread, index) ->
  for (const Result& r : results) {
    ASSERT_TRUE(r.response.ok()) << r.response.status();
    ASSERT_EQ(r.response->results_size(), static_cast<int>(r.streams.size()));
    for (int k = 0; k < r.response->results_size(); ++k) {
      const v1::PublishResult& res = r.response->results(k);
      EXPECT_FALSE(res.duplicate());
      const bool fresh =
          by_position.emplace(res.position(), std::make_pair(r.streams[k], res.seq())).second;
      EXPECT_TRUE(fresh) << "position " << res.position() << " handed out twice";
    }
    first_position[{r.thread, r.index}] = r.response->results(0).position();
  }
  ASSERT_EQ(by_position.size(), total_events);
  EXPECT_EQ(by_position.begin()->first, 1u);
  EXPECT_EQ(by_position.rbegin()->first, total_events) << "positions have a hole";
  EXPECT_EQ(log_->head(), Position(total_events));

  // Seqs are dense per stream and follow position order.
  std::map<std::string, uint64_t> last_seq;
  for (const auto& [position, stream_seq] : by_position) {
    EXPECT_EQ(stream_seq.second, last_seq[stream_seq.first] + 1)
        << "stream " << stream_seq.first << " at position " << position;
    last_seq[stream_seq.first] = stream_seq.second;
  }
  for (const auto& [stream, seq] : last_seq) {
    absl::StatusOr<v1::StreamInfo> info = log_->GetStream(stream);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->head_seq(), seq);
    EXPECT_EQ(info->event_count(), seq);
  }
  // One thread's appends are stored in the order it made them.
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 1; i < kAppendsPerThread; ++i) {
      const uint64_t before = first_position[{t, i - 1}];
      const uint64_t after = first_position[{t, i}];
      EXPECT_LT(before, after) << "thread " << t << " append " << i;
    }
  }
  // What readers and the listener see agrees with what publishers were told.
  std::vector<StoredEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), total_events);
  for (const StoredEvent& e : events) {
    EXPECT_EQ(e.stream, by_position[e.position.value()].first);
    EXPECT_EQ(e.seq.value(), by_position[e.position.value()].second);
  }
  std::vector<uint64_t> committed = listener.committed();
  ASSERT_EQ(committed.size(), total_events);
  for (size_t i = 0; i < committed.size(); ++i) ASSERT_EQ(committed[i], i + 1);
}

// --- event_codec ---

v1::Event SampleEvent() {
  v1::Event e;
  e.set_id("evt-42");
  e.set_stream("__defaultVhost__/live/cam1");
  e.set_type("zlm.on_stream_changed");
  e.set_source("zlm-1");
  e.mutable_time()->set_seconds(1'700'000'000);
  e.set_content_type("application/json");
  e.set_data(std::string(500, 'j'));
  (*e.mutable_attributes())["regist"] = "true";
  e.set_seq(300);
  e.set_position(1'000'000'007);
  e.mutable_ingest_time()->set_seconds(1'700'000'001);
  return e;
}

bool Within(absl::string_view inner, absl::string_view outer) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

TEST(EventCodecTest, BigEndianKeysRoundTripAndSortLikeTheNumbers) {
  const uint64_t values[] = {0, 1, 255, 256, 65535, 1ull << 32, (1ull << 63) + 5, ~0ull};
  std::string prev;
  for (uint64_t v : values) {
    std::string enc = EncodeBigEndian64(v);
    EXPECT_EQ(enc.size(), 8u);
    uint64_t back = 0;
    ASSERT_TRUE(DecodeBigEndian64(enc, &back));
    EXPECT_EQ(back, v);
    if (!prev.empty()) {
      EXPECT_LT(prev, enc) << v;
    }
    prev = enc;
  }
  uint64_t v = 0;
  EXPECT_FALSE(DecodeBigEndian64("", &v));
  EXPECT_FALSE(DecodeBigEndian64("1234567", &v));
  EXPECT_FALSE(DecodeBigEndian64("123456789", &v));
}

TEST(EventCodecTest, ScanRoutingFieldsReadsStreamTypeAndSeqOfARealEvent) {
  const std::string bytes = SampleEvent().SerializeAsString();
  RoutingFields rf;
  ASSERT_TRUE(ScanRoutingFields(bytes, &rf));
  EXPECT_EQ(rf.stream, "__defaultVhost__/live/cam1");
  EXPECT_EQ(rf.type, "zlm.on_stream_changed");
  EXPECT_EQ(rf.seq, 300u);
  EXPECT_TRUE(Within(rf.stream, bytes));
  EXPECT_TRUE(Within(rf.type, bytes));
}

TEST(EventCodecTest, ScanRoutingFieldsAcceptsAnEmptyTypeAndLargeSeq) {
  v1::Event e = SampleEvent();
  e.clear_type();
  e.set_seq(~uint64_t{0});
  const std::string bytes = e.SerializeAsString();
  RoutingFields rf;
  ASSERT_TRUE(ScanRoutingFields(bytes, &rf));
  EXPECT_EQ(rf.type, "");
  EXPECT_EQ(rf.seq, ~uint64_t{0});
}

TEST(EventCodecTest, ScanRoutingFieldsRejectsEventsWithoutStreamOrSeq) {
  RoutingFields rf;
  EXPECT_FALSE(ScanRoutingFields("", &rf));
  v1::Event no_stream = SampleEvent();
  no_stream.clear_stream();
  EXPECT_FALSE(ScanRoutingFields(no_stream.SerializeAsString(), &rf));
  v1::Event no_seq = SampleEvent();
  no_seq.clear_seq();
  EXPECT_FALSE(ScanRoutingFields(no_seq.SerializeAsString(), &rf));
}

TEST(EventCodecTest, ScanRoutingFieldsRejectsEventsCutInsideAField) {
  const std::string bytes = SampleEvent().SerializeAsString();
  const size_t data_at = bytes.find(std::string(500, 'j'));
  ASSERT_NE(data_at, std::string::npos);
  RoutingFields rf;
  // Cut inside the data, and one byte short of the end (inside ingest_time).
  EXPECT_FALSE(ScanRoutingFields(absl::string_view(bytes).substr(0, data_at + 100), &rf));
  EXPECT_FALSE(ScanRoutingFields(absl::string_view(bytes).substr(0, bytes.size() - 1), &rf));
  // A length that runs past the end.
  std::string bad = bytes;
  bad.push_back(static_cast<char>(0x12));  // field 2, length-delimited
  bad.push_back(static_cast<char>(0x7f));  // 127 bytes that are not there
  bad.append("abc");
  EXPECT_FALSE(ScanRoutingFields(bad, &rf));
  // A length varint that never ends.
  std::string endless = bytes;
  endless.push_back(static_cast<char>(0x12));
  endless.append(12, static_cast<char>(0xff));
  EXPECT_FALSE(ScanRoutingFields(endless, &rf));
}

// Checks one input against the real parser: ScanRoutingFields never crashes, never points outside
// the input, and agrees with the parser on everything the parser accepts.
void CheckScanAgreesWithParser(const std::string& bytes) {
  RoutingFields rf;
  const bool scanned = ScanRoutingFields(bytes, &rf);
  if (scanned) {
    ASSERT_TRUE(Within(rf.stream, bytes));
    ASSERT_TRUE(Within(rf.type, bytes));
    ASSERT_FALSE(rf.stream.empty());
    ASSERT_NE(rf.seq, 0u);
  }
  v1::Event parsed;
  if (parsed.ParseFromString(bytes) && !parsed.stream().empty() && parsed.seq() != 0) {
    ASSERT_TRUE(scanned) << "the parser accepts it: " << absl::CEscape(bytes);
    ASSERT_EQ(rf.stream, parsed.stream());
    ASSERT_EQ(rf.type, parsed.type());
    ASSERT_EQ(rf.seq, parsed.seq());
  }
}

TEST(EventCodecTest, ScanRoutingFieldsSurvivesEveryTruncation) {
  google::protobuf::LogSilencer quiet;  // The parser logs every invalid UTF-8 string.
  const std::string bytes = SampleEvent().SerializeAsString();
  for (size_t n = 0; n <= bytes.size(); ++n) {
    SCOPED_TRACE(n);
    CheckScanAgreesWithParser(bytes.substr(0, n));
  }
}

TEST(EventCodecTest, ScanRoutingFieldsSurvivesGarbageAndMutations) {
  google::protobuf::LogSilencer quiet;
  std::mt19937 rng(20240611);
  const std::string sample = SampleEvent().SerializeAsString();
  for (int i = 0; i < 500; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    SCOPED_TRACE(absl::StrCat("garbage ", i));
    CheckScanAgreesWithParser(bytes);
  }
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = sample.substr(0, rng() % (sample.size() + 1));
    const int flips = 1 + rng() % 4;
    for (int f = 0; f < flips && !bytes.empty(); ++f) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    SCOPED_TRACE(absl::StrCat("mutation ", i));
    CheckScanAgreesWithParser(bytes);
  }
}

TEST(EventCodecTest, AppendAssignedFieldsTurnsAnInputIntoTheStoredEvent) {
  v1::EventInput in;
  in.set_id("evt-1");
  in.set_stream("live/cam1");
  in.set_type("zlm.on_publish");
  in.set_source("zlm-1");
  in.mutable_time()->set_seconds(42);
  in.mutable_time()->set_nanos(7);
  in.set_content_type("application/json");
  in.set_data(std::string(1000, '\x01'));
  (*in.mutable_attributes())["a"] = "b";
  std::string bytes = in.SerializeAsString();
  const absl::Time ingest = absl::FromUnixNanos(int64_t{1'700'000'000'123'456'789});
  AppendAssignedFields(17, 123456789012ull, ingest, &bytes);

  v1::Event e;
  ASSERT_TRUE(e.ParseFromString(bytes));
  EXPECT_EQ(e.id(), "evt-1");
  EXPECT_EQ(e.stream(), "live/cam1");
  EXPECT_EQ(e.type(), "zlm.on_publish");
  EXPECT_EQ(e.source(), "zlm-1");
  EXPECT_EQ(e.time().seconds(), 42);
  EXPECT_EQ(e.time().nanos(), 7);
  EXPECT_EQ(e.content_type(), "application/json");
  EXPECT_EQ(e.data(), std::string(1000, '\x01'));
  EXPECT_EQ(e.attributes().at("a"), "b");
  EXPECT_EQ(e.seq(), 17u);
  EXPECT_EQ(e.position(), 123456789012ull);
  EXPECT_TRUE(e.has_ingest_time());
  EXPECT_EQ(e.ingest_time().seconds(), 1'700'000'000);
  EXPECT_EQ(e.ingest_time().nanos(), 123'456'789);
  // Byte-for-byte what the generated code writes, and scannable.
  EXPECT_EQ(bytes, e.SerializeAsString());
  RoutingFields rf;
  ASSERT_TRUE(ScanRoutingFields(bytes, &rf));
  EXPECT_EQ(rf.seq, 17u);
}

TEST(EventCodecTest, AppendAssignedFieldsEncodesEpochAndPreEpochIngestTimes) {
  const std::tuple<absl::Time, int64_t, int32_t> cases[] = {
      {absl::UnixEpoch(), 0, 0},
      {absl::FromUnixNanos(-1), -1, 999'999'999},
      {absl::FromUnixSeconds(-5), -5, 0},
  };
  for (const auto& [t, seconds, nanos] : cases) {
    std::string bytes;
    AppendAssignedFields(1, 1, t, &bytes);
    v1::Event e;
    ASSERT_TRUE(e.ParseFromString(bytes));
    EXPECT_TRUE(e.has_ingest_time());
    EXPECT_EQ(e.ingest_time().seconds(), seconds);
    EXPECT_EQ(e.ingest_time().nanos(), nanos);
    EXPECT_EQ(bytes, e.SerializeAsString()) << "not byte-for-byte the generated encoding";
  }
}

}  // namespace
}  // namespace hookstream::storage
