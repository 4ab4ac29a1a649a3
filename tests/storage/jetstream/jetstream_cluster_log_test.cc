// Several hookstream servers writing the same streams of a clustered (R3) JetStream stream at
// the same instant, against a 3-node nats-server cluster the test starts on 127.0.0.1.
// nats-server 2.9 checks a publish's expected per-subject predecessor on a replicated stream
// only before proposing it to Raft; the backend anchors every publish to the whole stream
// (server/storage/jetstream/jetstream_heads.cc). This tries to break it.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/storage/jetstream/jetstream_log.h"
#include "tests/storage/jetstream/jetstream_test_util.h"
#include "tests/testutil/nats_server.h"

namespace hookstream::storage {
namespace {

using jstest::AppendAndWait;
using jstest::Ev;
using jstest::kWait;
using jstest::Parse;
using jstest::ReadAll;
using jstest::Recorder;
using testing::NatsFixture;

// Two servers, two writers each, rounds of several streams that both servers write at the
// same instant. Every seq must be
// dense and unique, every acknowledged event stored once at the position it was acked with.
TEST(JetStreamClusterLogTest, TwoServersRacingOnTheSameStreamsOfAnR3StreamKeepSeqsDense) {
  if (!testing::HaveNatsServer())
    GTEST_FAIL() << "nats-server is not installed (.ci/install-deps installs it)";
  NatsFixture nats(3);
  nats.Start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  JetStreamLogOptions o;
  o.servers = nats.urls();
  o.replicas = 3;
  o.connect_timeout = absl::Seconds(2);
  // The cluster elects its JetStream leader after start: open once it can.
  // The recorders outlive the logs: a log's tailer thread tells its recorder until the log
  // is destroyed (found by TSan: the other order destroyed them under a running tailer).
  Recorder recs[2];
  std::vector<std::unique_ptr<Log>> logs;
  for (int i = 0; i < 2; ++i) {
    absl::Status last;
    const absl::Time deadline = absl::Now() + kWait;
    while (logs.size() == static_cast<size_t>(i) && absl::Now() < deadline) {
      absl::StatusOr<std::unique_ptr<Log>> log = OpenJetStreamLog(o);
      if (log.ok()) {
        (*log)->SetCommitListener(&recs[i]);
        logs.push_back(*std::move(log));
      } else {
        last = log.status();
        absl::SleepFor(absl::Milliseconds(200));
      }
    }
    ASSERT_EQ(logs.size(), static_cast<size_t>(i + 1)) << last;
  }
  constexpr int kRounds = 60;
  absl::Mutex mu;
  std::map<std::string, std::pair<Position, uint64_t>> acked;  // id -> (position, seq)
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      Log& log = *logs[w % 2];
      for (int r = 0; r < kRounds; ++r) {
        std::vector<v1::EventInput> batch;
        for (int k = 0; k < 3; ++k)
          batch.push_back(Ev(absl::StrCat("shared", k), absl::StrCat(w, "-", r, "-", k)));
        batch.push_back(Ev(absl::StrCat("own", w), absl::StrCat(w, "-", r, "-own")));
        absl::StatusOr<v1::PublishResponse> resp = AppendAndWait(log, batch);
        ASSERT_TRUE(resp.ok()) << resp.status();
        absl::MutexLock l(&mu);
        for (const v1::PublishResult& res : resp->results()) {
          EXPECT_TRUE(
              acked.emplace(res.id(), std::make_pair(Position(res.position()), res.seq())).second);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  const size_t total = 4 * kRounds * 4;
  ASSERT_EQ(acked.size(), total);
  for (const Recorder& rec : recs) ASSERT_TRUE(rec.WaitForHead(Position(total)));
  std::vector<StoredEvent> all = ReadAll(*logs[0]);
  ASSERT_EQ(all.size(), total);
  std::map<std::string, uint64_t> seq;
  int bad = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].position, Position(i + 1));
    const uint64_t want = ++seq[all[i].stream];
    if (all[i].seq.value() != want && ++bad <= 5) {
      ADD_FAILURE() << all[i].stream << " at position " << i + 1 << ": seq " << all[i].seq.value()
                    << ", want " << want;
    }
    seq[all[i].stream] = all[i].seq.value();
    const v1::Event ev = Parse(all[i]);
    auto it = acked.find(ev.id());
    ASSERT_NE(it, acked.end()) << ev.id();
    EXPECT_EQ(it->second.first, all[i].position) << ev.id();
    EXPECT_EQ(it->second.second, all[i].seq.value()) << ev.id();
  }
  EXPECT_EQ(bad, 0) << "per-stream seqs are not dense and unique";

  // expected_seq and de-duplication across the two servers: each checks against the stream as
  // it is now, whichever server wrote last.
  const uint64_t s0 = seq["shared0"];
  auto with_expected = [](uint64_t expected, absl::string_view id) {
    v1::EventInput e = Ev("shared0", id);
    e.set_expected_seq(expected);
    return e;
  };
  absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*logs[1], {with_expected(s0, "x1")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), s0 + 1);
  r = AppendAndWait(*logs[0], {with_expected(s0 + 1, "x2")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), s0 + 2);
  r = AppendAndWait(*logs[1], {with_expected(s0 + 1, "x3")});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  r = AppendAndWait(*logs[1], {Ev("shared0", "x2")});  // Stored through the other server.
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->results(0).duplicate());
  EXPECT_EQ(r->results(0).seq(), s0 + 2);
  r = AppendAndWait(*logs[1], {Ev("shared0", "x4")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), s0 + 3) << "the duplicate took no seq";
  EXPECT_EQ(r->results(0).position(), total + 3);
}

}  // namespace
}  // namespace hookstream::storage
