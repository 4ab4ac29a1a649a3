// Several hookstream servers writing the same streams of a clustered (R3) JetStream stream at
// the same instant, against a 3-node nats-server cluster the test starts on 127.0.0.1.
// nats-server 2.9 checks a publish's expected per-subject predecessor on a replicated stream
// only before proposing it to Raft; the backend anchors every publish to the whole stream and
// learns the heads of streams written before it started with probes JetStream checks when it
// applies them (server/storage/jetstream/jetstream_heads.cc). This tries to break it, and
// checks the nats-server behaviour the mechanism relies on.
#include <nats/nats.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/storage/jetstream/jetstream_log.h"
#include "server/storage/jetstream/nats_util.h"
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

// Every test runs on a 3-node cluster of its own.
class JetStreamClusterLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveNatsServer())
      GTEST_FAIL() << "nats-server is not installed (.ci/install-deps installs it)";
    nats_.Start();
  }
  // A log on an R3 stream of the cluster.
  JetStreamLogOptions R3Options() const {
    JetStreamLogOptions o;
    o.servers = nats_.urls();
    o.replicas = 3;
    o.connect_timeout = absl::Seconds(2);
    return o;
  }

  NatsFixture nats_{3};
};

// A cluster elects its JetStream leader some time after it starts: opens once it can.
std::unique_ptr<Log> OpenWhenReady(const JetStreamLogOptions& o, Recorder* rec) {
  absl::Status last;
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenJetStreamLog(o);
    if (log.ok()) {
      (*log)->SetCommitListener(rec);
      return *std::move(log);
    }
    last = log.status();
    absl::SleepFor(absl::Milliseconds(200));
  }
  ADD_FAILURE() << "the JetStream log never opened: " << last;
  return nullptr;
}

// Reads the whole log through `log` and checks it against what was acknowledged: positions
// dense, each stream's seqs 1, 2, 3..., every event where and with the seq it was
// acknowledged with. Returns each stream's last seq.
std::map<std::string, uint64_t> CheckLog(
    const Log& log, size_t total,
    const std::map<std::string, std::pair<Position, uint64_t>>& acked) {
  std::vector<StoredEvent> all = ReadAll(log);
  EXPECT_EQ(all.size(), total);
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
    if (it == acked.end()) {
      ADD_FAILURE() << "stored but never acknowledged: " << ev.id();
      continue;
    }
    EXPECT_EQ(it->second.first, all[i].position) << ev.id();
    EXPECT_EQ(it->second.second, all[i].seq.value()) << ev.id();
  }
  EXPECT_EQ(bad, 0) << "per-stream seqs are not dense and unique";
  return seq;
}

// Two servers, two writers each, rounds of several streams that both servers write at the
// same instant. Every seq must be dense and unique, every acknowledged event stored once at
// the position it was acked with.
TEST_F(JetStreamClusterLogTest, TwoServersRacingOnTheSameStreamsOfAnR3StreamKeepSeqsDense) {
  JetStreamLogOptions o = R3Options();
  // The recorders outlive the logs: a log's tailer thread tells its recorder until the log
  // is destroyed (found by TSan: the other order destroyed them under a running tailer).
  Recorder recs[2];
  std::vector<std::unique_ptr<Log>> logs;
  for (int i = 0; i < 2; ++i) {
    logs.push_back(OpenWhenReady(o, &recs[i]));
    ASSERT_NE(logs.back(), nullptr);
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
  std::map<std::string, uint64_t> seq = CheckLog(*logs[0], total, acked);
  ASSERT_FALSE(::testing::Test::HasFailure());

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

// A server that starts after streams were written (a restarted hookstreamd) does not know
// their heads. Where nats-server 2.9 can lag, a replica that is behind answers an older head
// and a just elected leader does not refuse it: both simulated (lag_faults), on two such
// servers writing the old streams at the same time. Their seqs must continue densely.
TEST_F(JetStreamClusterLogTest, ServersStartedAfterTheStreamsWereWrittenContinueTheirSeqs) {
  JetStreamLogOptions o = R3Options();
  constexpr int kStreams = 8;
  constexpr int kEarly = 5;
  constexpr int kRounds = 15;
  Recorder recs[4];  // Outlive the logs (their tailers).
  absl::Mutex mu;
  std::map<std::string, std::pair<Position, uint64_t>> acked;  // id -> (position, seq)
  auto record = [&](const v1::PublishResponse& resp) {
    absl::MutexLock l(&mu);
    for (const v1::PublishResult& res : resp.results()) {
      EXPECT_TRUE(
          acked.emplace(res.id(), std::make_pair(Position(res.position()), res.seq())).second);
    }
  };
  {
    std::unique_ptr<Log> early = OpenWhenReady(o, &recs[0]);
    ASSERT_NE(early, nullptr);
    for (int r = 0; r < kEarly; ++r) {
      std::vector<v1::EventInput> batch;
      for (int k = 0; k < kStreams; ++k)
        batch.push_back(Ev(absl::StrCat("old", k), absl::StrCat("early-", r, "-", k)));
      absl::StatusOr<v1::PublishResponse> resp = AppendAndWait(*early, batch);
      ASSERT_TRUE(resp.ok()) << resp.status();
      record(*resp);
    }
  }  // That server stops.

  JetStreamLogOptions lagging = o;
  lagging.lag_faults.stale_head_reads = true;
  lagging.lag_faults.leader_behind = true;
  std::vector<std::unique_ptr<Log>> logs;
  for (int i = 1; i <= 2; ++i) {
    logs.push_back(OpenWhenReady(lagging, &recs[i]));
    ASSERT_NE(logs.back(), nullptr);
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) {
        std::vector<v1::EventInput> batch;
        for (int k = 0; k < kStreams; ++k) {
          batch.push_back(
              Ev(absl::StrCat("old", (k + w + r) % kStreams), absl::StrCat(w, "-", r, "-", k)));
        }
        absl::StatusOr<v1::PublishResponse> resp = AppendAndWait(*logs[w % 2], batch);
        ASSERT_TRUE(resp.ok()) << resp.status();
        record(*resp);
      }
    });
  }
  for (auto& t : writers) t.join();
  const size_t total = kStreams * (kEarly + 4 * kRounds);
  ASSERT_EQ(acked.size(), total);
  ASSERT_TRUE(recs[1].WaitForHead(Position(total)));
  std::map<std::string, uint64_t> seq = CheckLog(*logs[0], total, acked);
  ASSERT_FALSE(::testing::Test::HasFailure());

  // expected_seq through a third server started now: checked against the heads it learns.
  std::unique_ptr<Log> third = OpenWhenReady(lagging, &recs[3]);
  ASSERT_NE(third, nullptr);
  v1::EventInput e = Ev("old0", "x1");
  e.set_expected_seq(seq["old0"]);
  absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*third, {e});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), seq["old0"] + 1);
  e = Ev("old1", "x2");
  e.set_expected_seq(seq["old1"] - 1);
  r = AppendAndWait(*third, {e});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  r = AppendAndWait(*third, {Ev("old1", "x3")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).seq(), seq["old1"] + 1);
  EXPECT_EQ(r->results(0).position(), total + 2) << "the probes stored nothing";
}

// Any replica answers a direct get, and one that has not applied the latest messages yet
// answers "not found" for messages that exist (seen in CI under load: the original of a
// duplicate acknowledged a moment before through another server), and an older message for a
// stream's last one. A server whose direct gets are answered so (lag_faults) must still read
// what exists, through the stream leader, and still tell what does not exist.
TEST_F(JetStreamClusterLogTest, ReadsAReplicaHasNotAppliedYetAreAnsweredByTheLeader) {
  JetStreamLogOptions o = R3Options();
  Recorder recs[3];  // Outlive the logs (their tailers).
  std::unique_ptr<Log> writer = OpenWhenReady(o, &recs[0]);
  ASSERT_NE(writer, nullptr);
  JetStreamLogOptions missing = o;
  missing.lag_faults.replica_missing_reads = true;
  std::unique_ptr<Log> reader = OpenWhenReady(missing, &recs[1]);
  ASSERT_NE(reader, nullptr);
  JetStreamLogOptions behind = o;
  behind.lag_faults.stale_head_reads = true;
  std::unique_ptr<Log> stale = OpenWhenReady(behind, &recs[2]);
  ASSERT_NE(stale, nullptr);

  // Streams a, b, c with 4 events each, interleaved: positions 1..12.
  const absl::Time before = absl::Now();
  for (int r = 0; r < 4; ++r) {
    absl::StatusOr<v1::PublishResponse> resp =
        AppendAndWait(*writer, {Ev("a", absl::StrCat("a", r)), Ev("b", absl::StrCat("b", r)),
                                Ev("c", absl::StrCat("c", r))});
    ASSERT_TRUE(resp.ok()) << resp.status();
  }
  ASSERT_TRUE(recs[1].WaitForHead(Position(12)));

  // A duplicate names its original: read back for its seq.
  absl::StatusOr<v1::PublishResponse> dup = AppendAndWait(*reader, {Ev("b", "b2")});
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_TRUE(dup->results(0).duplicate());
  EXPECT_EQ(dup->results(0).position(), 8u);
  EXPECT_EQ(dup->results(0).seq(), 3u);

  for (Log* log : {reader.get(), stale.get()}) {
    absl::StatusOr<v1::StreamInfo> info = log->GetStream("c");
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->first_seq(), 1u);
    EXPECT_EQ(info->head_seq(), 4u);
    EXPECT_EQ(log->GetStream("none").status().code(), absl::StatusCode::kNotFound);
    bool more = true;
    absl::StatusOr<std::vector<v1::StreamInfo>> list = log->ListStreams(
        "", 10, [](absl::string_view) { return true; }, &more);
    ASSERT_TRUE(list.ok()) << list.status();
    EXPECT_FALSE(more);
    std::vector<std::pair<std::string, uint64_t>> heads;
    for (const v1::StreamInfo& i : *list) heads.emplace_back(i.stream(), i.head_seq());
    EXPECT_EQ(heads, (std::vector<std::pair<std::string, uint64_t>>{{"a", 4}, {"b", 4}, {"c", 4}}));
  }

  absl::StatusOr<std::unique_ptr<SnapshotReader>> snap =
      reader->OpenLastPerStream([](absl::string_view) { return true; });
  ASSERT_TRUE(snap.ok()) << snap.status();
  std::vector<uint64_t> positions;
  absl::StatusOr<std::vector<StoredEvent>> chunk = (*snap)->Next(ReadLimits{});
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  for (const StoredEvent& e : *chunk) positions.push_back(e.position.value());
  EXPECT_EQ(positions, (std::vector<uint64_t>{10, 11, 12}));

  absl::StatusOr<Position> first = reader->FindByTime(before);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, Position(1));
  absl::StatusOr<Position> none = reader->FindByTime(absl::Now() + absl::Hours(1));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, Position(13));

  // The next event of b continues its seqs: the reader learned b's head.
  absl::StatusOr<v1::PublishResponse> next = AppendAndWait(*reader, {Ev("b", "b4")});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->results(0).seq(), 5u);
  EXPECT_EQ(next->results(0).position(), 13u);
}

// Metadata (webhook cursors) is a KV bucket, which nats.c reads by direct get from any replica:
// one that is behind answers an older value or none, and a shim that moved to another server
// would deliver again, or skip to the head. On a replicated log the bucket is read through its
// stream leader: what one server wrote, the other reads at once.
TEST_F(JetStreamClusterLogTest, MetadataWrittenThroughOneServerIsReadThroughAnotherAtOnce) {
  JetStreamLogOptions o = R3Options();
  Recorder recs[2];  // Outlive the logs (their tailers).
  std::unique_ptr<Log> a = OpenWhenReady(o, &recs[0]);
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Log> b = OpenWhenReady(o, &recs[1]);
  ASSERT_NE(b, nullptr);

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, absl::StrJoin(nats_.urls(), ",").c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsStreamInfo* info = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&info, js, "KV_HOOKSTREAM_meta", nullptr, nullptr), NATS_OK);
  EXPECT_EQ(info->Config->Replicas, 3);
  EXPECT_FALSE(info->Config->AllowDirect) << "replicas would answer metadata reads";
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  for (int i = 0; i < 100; ++i) {
    Log& writer = i % 2 == 0 ? *a : *b;
    Log& reader = i % 2 == 0 ? *b : *a;
    const std::string key = absl::StrCat("webhook/e", i % 3, "/cursor");
    ASSERT_TRUE(writer.WriteMeta({{key, absl::StrCat(i)}}).ok());
    absl::StatusOr<std::optional<std::string>> v = reader.GetMeta(key);
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_TRUE(v->has_value()) << "written " << i;
    EXPECT_EQ(**v, absl::StrCat(i));
  }
  ASSERT_TRUE(a->WriteMeta({{"webhook/e0/cursor", std::nullopt}}).ok());
  EXPECT_EQ(*b->GetMeta("webhook/e0/cursor"), std::nullopt);
}

// Leases on a replicated bucket: servers racing for the same free lease, at the same instant,
// get exactly one holder, also after a release. (nats-server 2.9 checks an expected per-subject
// sequence above 0 only before proposing the write, so a takeover must never be an update.)
TEST_F(JetStreamClusterLogTest, ServersRacingForAFreeLeaseGetExactlyOneHolder) {
  JetStreamLogOptions o = R3Options();
  constexpr int kServers = 3;
  constexpr int kLeases = 20;
  Recorder recs[kServers];  // Outlive the logs (their tailers).
  std::vector<std::unique_ptr<Log>> logs;
  for (int i = 0; i < kServers; ++i) {
    logs.push_back(OpenWhenReady(o, &recs[i]));
    ASSERT_NE(logs.back(), nullptr);
  }
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::vector<std::vector<std::string>> got(kServers, std::vector<std::string>(kLeases));
    std::vector<std::thread> threads;
    absl::Notification go;
    for (int i = 0; i < kServers; ++i) {
      threads.emplace_back([&, i] {
        go.WaitForNotification();
        for (int k = 0; k < kLeases; ++k) {
          absl::StatusOr<std::string> h =
              logs[i]->HoldLease(absl::StrCat("webhook/e", k, "/lease"), absl::StrCat("s", i));
          got[i][k] = h.ok() ? *h : absl::StrCat("error: ", h.status().ToString());
        }
      });
    }
    go.Notify();
    for (auto& t : threads) t.join();
    for (int k = 0; k < kLeases; ++k) {
      int winners = 0;
      for (int i = 0; i < kServers; ++i) winners += got[i][k] == absl::StrCat("s", i);
      EXPECT_EQ(winners, 1) << "lease " << k << ": " << got[0][k] << " / " << got[1][k] << " / "
                            << got[2][k];
      // Whoever asks now is told the same holder.
      absl::StatusOr<std::string> now = logs[0]->HoldLease(absl::StrCat("webhook/e", k, "/lease"),
                                                           "someone else");
      ASSERT_TRUE(now.ok()) << now.status();
      for (int i = 0; i < kServers; ++i) {
        if (got[i][k] == absl::StrCat("s", i)) {
          EXPECT_EQ(*now, got[i][k]);
        }
      }
      // Released by its holder: free for the next round's race.
      for (int i = 0; i < kServers; ++i) {
        ASSERT_TRUE(logs[i]->ReleaseLease(absl::StrCat("webhook/e", k, "/lease"),
                                          absl::StrCat("s", i))
                        .ok());
      }
    }
  }
}

// The nats-server behaviour the head probes rely on (jetstream_heads.cc), checked on the one
// the project runs on (Debian 12's 2.9.10), on an R3 stream: an expected per-subject sequence
// of 0 is checked when the message is applied, in log order (two publishes racing on an empty
// subject: exactly one is stored; values > 0 are not, which is why the probes use 0); its
// refusal names the subject's last position; a probe on an empty subject is refused by its
// expected last Msg-Id. Nothing of a probe is stored.
struct RawAck {
  bool ok = false;
  uint64_t position = 0;
  int code = 0;
  std::optional<uint64_t> named;
};
struct RawAcks {
  absl::Mutex mu;
  std::map<std::string, RawAck> by_key;  // "<subject> <data>"
};

void OnRawAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* acks = static_cast<RawAcks*>(closure);
  RawAck a;
  if (pae == nullptr && pa != nullptr) {
    a.ok = true;
    a.position = pa->Sequence;
  } else if (pae != nullptr) {
    a.code = static_cast<int>(pae->ErrCode);
    a.named = jetstream::WrongLastSequenceOf(pae->ErrText);
  }
  const char* data = natsMsg_GetData(msg);
  const std::string key =
      absl::StrCat(natsMsg_GetSubject(msg), " ",
                   absl::string_view(data == nullptr ? "" : data,
                                     static_cast<size_t>(natsMsg_GetDataLength(msg))));
  natsMsg_Destroy(msg);  // Ours again once the handler runs.
  absl::MutexLock l(&acks->mu);
  acks->by_key[key] = a;
}

TEST_F(JetStreamClusterLogTest, NatsServerChecksWhatTheHeadProbesRelyOnWhenItApplies) {
  JetStreamLogOptions o = R3Options();
  o.stream = "PROBE";
  o.subject_prefix = "probe";
  Recorder rec;
  std::unique_ptr<Log> log = OpenWhenReady(o, &rec);  // Creates the R3 stream.
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(AppendAndWait(*log, {Ev("warm", "w")}).ok());  // It has a leader.
  log.reset();  // Its tailer would complain about the raw messages below.

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, absl::StrJoin(nats_.urls(), ",").c_str()), NATS_OK);
  RawAcks acks;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.AckHandler = &OnRawAck;
  jo.PublishAsync.AckHandlerClosure = &acks;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, &jo), NATS_OK);
  auto publish = [&](const std::string& subject, const std::string& data, bool probe) {
    natsMsg* m = nullptr;
    ASSERT_EQ(
        natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())),
        NATS_OK);
    natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", "0");
    if (probe) natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", "hs-probe");
    ASSERT_EQ(js_PublishMsgAsync(js, &m, nullptr), NATS_OK);
  };
  auto complete = [&] {
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = 30000;
    ASSERT_EQ(js_PublishAsyncComplete(js, &wait), NATS_OK);
  };
  constexpr int kPairs = 40;
  for (int k = 0; k < kPairs; ++k) {
    publish(absl::StrCat("probe.race", k), "a", false);
    publish(absl::StrCat("probe.race", k), "b", false);
  }
  complete();
  for (int k = 0; k < kPairs; ++k) {
    publish(absl::StrCat("probe.race", k), "probe", true);
    publish(absl::StrCat("probe.empty", k), "probe", true);
  }
  complete();
  {
    absl::MutexLock l(&acks.mu);
    for (int k = 0; k < kPairs; ++k) {
      const std::string subject = absl::StrCat("probe.race", k);
      const RawAck& a = acks.by_key[subject + " a"];
      const RawAck& b = acks.by_key[subject + " b"];
      ASSERT_NE(a.ok, b.ok) << subject << ": exactly one of two racing publishes is stored";
      const RawAck& stored = a.ok ? a : b;
      const RawAck& refused = a.ok ? b : a;
      EXPECT_EQ(refused.code, JSStreamWrongLastSequenceErr) << subject;
      EXPECT_EQ(refused.named, stored.position) << subject << ": the refusal names it";
      const RawAck& probe = acks.by_key[subject + " probe"];
      EXPECT_FALSE(probe.ok) << subject;
      EXPECT_EQ(probe.code, JSStreamWrongLastSequenceErr) << subject;
      EXPECT_EQ(probe.named, stored.position) << subject;
      const RawAck& empty = acks.by_key[absl::StrCat("probe.empty", k, " probe")];
      EXPECT_FALSE(empty.ok) << k;
      EXPECT_EQ(empty.code, JSStreamWrongLastMsgIDErr) << k;
    }
  }
  jsStreamInfo* info = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&info, js, "PROBE", nullptr, nullptr), NATS_OK);
  EXPECT_EQ(info->State.Msgs, static_cast<uint64_t>(1 + kPairs)) << "probes are never stored";
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

}  // namespace
}  // namespace hookstream::storage
