// Guarantees 4 and 5 (DESIGN.md §3) against the real hookstreamd binary. Publishers and a
// subscriber run while the server is killed with SIGKILL at a random moment, round after round.
// After every restart on the same data dir the log must hold every acknowledged event where the
// ack said, be dense and duplicate-free, keep unacknowledged batches all-or-nothing, still
// de-duplicate acknowledged ids, and resume every token handed out before any of the kills.
//
// The schedule comes from one seed, printed at the start; HOOKSTREAM_CRASH_SEED=<seed> reruns it
// (thread timing still varies, so a rerun reproduces the schedule, not the exact interleaving).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

extern char** environ;

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::FromToken;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::Publish;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::DescribeWaitStatus;
using ::hookstream::testing::PollUntil;
using ::hookstream::testing::ReadFile;
using ::hookstream::testing::ServerProcess;
using ::hookstream::testing::TempDir;

constexpr int kRounds = 6;
constexpr int kPublishers = 3;
constexpr int kStreamsPerPublisher = 5;
constexpr int kMinKillDelayMs = 50;
constexpr int kMaxKillDelayMs = 400;
constexpr int kDedupChecksPerRound = 5;
constexpr absl::Duration kWaitTimeout = absl::Seconds(30);
constexpr absl::Duration kExitTimeout = absl::Seconds(30);
constexpr size_t kMaxProblemsShown = 20;

// A fresh channel per server start: nothing is reused from before a kill.
struct Client {
  explicit Client(int port) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                        grpc::InsecureChannelCredentials(), args);
    stub = v1::EventStream::NewStub(channel);
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::EventStream::Stub> stub;
};

// One Publish call of a publisher thread and its outcome.
struct Attempt {
  std::vector<v1::EventInput> events;
  grpc::Status status;
  v1::PublishResponse response;  // When status is OK: the acknowledgement.
  absl::Time finished;
};

void PublishUntilStopped(v1::EventStream::Stub* stub, int publisher, int round, uint32_t seed,
                         const std::atomic<bool>* stop, std::vector<Attempt>* out) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> batch_size(1, 20);
  std::uniform_int_distribution<int> data_size(64, 512);
  std::uniform_int_distribution<int> stream(0, kStreamsPerPublisher - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int n = 0;
  while (!stop->load(std::memory_order_acquire)) {
    Attempt a;
    const int count = batch_size(rng);
    for (int i = 0; i < count; ++i, ++n) {
      std::string data(data_size(rng), '\0');
      for (char& c : data) c = static_cast<char>(byte(rng));
      a.events.push_back(MakeEvent(absl::StrCat("crash/", publisher, "/", stream(rng)),
                                   "crash.test", data, absl::StrCat(round, "-", n),
                                   absl::StrCat("pub-", publisher)));
    }
    a.status = Publish(*stub, a.events, &a.response);
    a.finished = absl::Now();
    out->push_back(std::move(a));
  }
}

std::string Key(const std::string& source, const std::string& id) {
  return absl::StrCat(source, " ", id);
}

// Collects invariant violations so one broken log reports a readable summary, not thousands of
// lines.
class Problems {
 public:
  explicit Problems(std::string what) : what_(std::move(what)) {}
  void Add(std::string problem) {
    ++count_;
    if (shown_.size() < kMaxProblemsShown) shown_.push_back(std::move(problem));
  }
  ~Problems() {
    if (count_ > 0) {
      ADD_FAILURE() << what_ << ": " << count_ << " violations, the first ones:\n  "
                    << absl::StrJoin(shown_, "\n  ");
    }
  }

 private:
  std::string what_;
  size_t count_ = 0;
  std::vector<std::string> shown_;
};

// A resume token a subscriber was given, and the position of the event it came with.
struct HandedOutToken {
  std::string token;
  uint64_t position;
  int round;
};

// What clients have learned about the log. Everything pinned here must survive every kill.
class Model {
 public:
  struct Sent {
    v1::EventInput input;
    // Set once a publish acknowledged it.
    uint64_t acked_position = 0;
    uint64_t acked_seq = 0;
  };
  struct Pinned {
    std::string key;
    uint64_t seq;
  };

  // Takes the attempts of one round. A failure that completed before the kill is a server
  // error, not an effect of the kill.
  void AddAttempts(std::vector<Attempt>& attempts, absl::Time kill_time) {
    Problems problems("publishes of the round");
    for (Attempt& a : attempts) {
      std::vector<std::string> keys;
      for (const v1::EventInput& e : a.events) {
        keys.push_back(Key(e.source(), e.id()));
        sent_[keys.back()].input = e;
      }
      if (!a.status.ok()) {
        if (a.finished < kill_time) {
          problems.Add(absl::StrCat("publish failed before the kill: ", a.status.error_code(),
                                    " ", a.status.error_message()));
        }
        unresolved_batches_.push_back(std::move(keys));
        continue;
      }
      if (a.response.results_size() != static_cast<int>(a.events.size())) {
        problems.Add(absl::StrCat("ack with ", a.response.results_size(), " results for ",
                                  a.events.size(), " events"));
        continue;
      }
      for (size_t i = 0; i < keys.size(); ++i) {
        const v1::PublishResult& r = a.response.results(static_cast<int>(i));
        if (r.duplicate() || r.id() != a.events[i].id() || r.position() == 0 || r.seq() == 0) {
          problems.Add(absl::StrCat("odd ack for ", keys[i], ": ", r.ShortDebugString()));
          continue;
        }
        Sent& s = sent_[keys[i]];
        s.acked_position = r.position();
        s.acked_seq = r.seq();
        acked_.push_back(keys[i]);
        Pin(r.position(), keys[i], r.seq(), "acknowledged", problems);
      }
    }
  }

  // Events a subscriber was delivered were committed: they, too, must survive.
  void AddDelivered(const std::vector<v1::DeliveredEvent>& events, const char* how) {
    Problems problems(how);
    for (const v1::DeliveredEvent& d : events) {
      Pin(d.event().position(), Key(d.event().source(), d.event().id()), d.event().seq(), how,
          problems);
    }
  }

  // Checks a complete read of the recovered log (position order) against everything known.
  void CheckLog(const std::vector<v1::DeliveredEvent>& log, uint64_t head) {
    Problems problems("the recovered log");
    std::map<uint64_t, const v1::Event*> by_position;
    std::map<std::string, uint64_t> key_position;
    std::map<std::string, uint64_t> stream_seq;
    for (const v1::DeliveredEvent& d : log) {
      const v1::Event& e = d.event();
      const std::string key = Key(e.source(), e.id());
      if (!by_position.emplace(e.position(), &e).second) {
        problems.Add(absl::StrCat("position ", e.position(), " delivered twice"));
      }
      if (auto [it, fresh] = key_position.emplace(key, e.position()); !fresh) {
        problems.Add(absl::StrCat(key, " stored twice: at ", it->second, " and ", e.position()));
      }
      uint64_t& seq = stream_seq[e.stream()];
      if (e.seq() != seq + 1) {
        problems.Add(absl::StrCat(e.stream(), ": seq ", e.seq(), " after ", seq, " (position ",
                                  e.position(), ")"));
      }
      seq = e.seq();
      auto s = sent_.find(key);
      if (s == sent_.end()) {
        problems.Add(absl::StrCat("position ", e.position(), " holds ", key,
                                  ", which nobody published"));
      } else if (s->second.input.stream() != e.stream() ||
                 s->second.input.data() != e.data() || s->second.input.type() != e.type()) {
        problems.Add(absl::StrCat(key, " at ", e.position(), " differs from what was sent"));
      }
      if (known_absent_.count(key) > 0) {
        problems.Add(absl::StrCat(key, " appeared at ", e.position(),
                                  " after an earlier restart did not have it"));
      }
    }
    for (uint64_t p = 1; p <= head; ++p) {
      if (by_position.count(p) == 0) problems.Add(absl::StrCat("position ", p, " is missing"));
    }
    if (!by_position.empty() && by_position.rbegin()->first > head) {
      problems.Add(absl::StrCat("position ", by_position.rbegin()->first, " beyond head ", head));
    }
    for (const auto& [position, pinned] : pinned_) {
      auto it = by_position.find(position);
      if (it == by_position.end()) {
        problems.Add(absl::StrCat(pinned.key, " (seq ", pinned.seq, ") lost from position ",
                                  position));
        continue;
      }
      const v1::Event& e = *it->second;
      if (Key(e.source(), e.id()) != pinned.key || e.seq() != pinned.seq) {
        problems.Add(absl::StrCat("position ", position, " was ", pinned.key, " seq ",
                                  pinned.seq, ", now ", Key(e.source(), e.id()), " seq ",
                                  e.seq()));
      }
    }
    // A batch whose publish failed at the kill is atomic: all of it or none of it.
    size_t stored_batches = 0;
    for (const std::vector<std::string>& batch : unresolved_batches_) {
      size_t present = 0;
      for (const std::string& key : batch) present += key_position.count(key);
      if (present != 0 && present != batch.size()) {
        problems.Add(absl::StrCat("unacknowledged batch of ", batch.size(), " starting with ",
                                  batch.front(), " is partly stored (", present, " events)"));
      }
      if (present == 0) known_absent_.insert(batch.begin(), batch.end());
      if (present == batch.size()) ++stored_batches;
    }
    std::cout << "[ RECOVERED] head " << head << ", " << pinned_.size() << " known events checked, "
              << stored_batches << " of " << unresolved_batches_.size()
              << " unacknowledged batches were stored" << std::endl;
    unresolved_batches_.clear();
  }

  const std::vector<std::string>& acked() const { return acked_; }
  const Sent& sent(const std::string& key) const { return sent_.at(key); }

 private:
  void Pin(uint64_t position, const std::string& key, uint64_t seq, const char* how,
           Problems& problems) {
    auto [it, fresh] = pinned_.emplace(position, Pinned{key, seq});
    if (!fresh && (it->second.key != key || it->second.seq != seq)) {
      problems.Add(absl::StrCat(how, ": position ", position, " is ", key, " seq ", seq,
                                ", but was ", it->second.key, " seq ", it->second.seq));
    }
  }

  std::map<std::string, Sent> sent_;
  std::vector<std::string> acked_;
  std::map<uint64_t, Pinned> pinned_;
  std::vector<std::vector<std::string>> unresolved_batches_;
  std::set<std::string> known_absent_;
};

// Subscribes with `request` and returns what was delivered up to caught_up.
void ReadUntilCaughtUp(v1::EventStream::Stub& stub, const v1::SubscribeRequest& request,
                       std::vector<v1::DeliveredEvent>* events) {
  SubscribeClient sub(stub, request);
  const bool caught_up = sub.WaitForCaughtUp(kWaitTimeout);
  SubscribeClient::State state = sub.Snapshot();
  ASSERT_TRUE(caught_up) << "no caught_up within " << kWaitTimeout << "; call ended: "
                         << (state.finished ? absl::StrCat(state.finished->error_code(), " ",
                                                           state.finished->error_message())
                                            : "no");
  *events = std::move(state.events);
}

v1::LogInfo GetLog(v1::EventStream::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWaitTimeout));
  v1::LogInfo info;
  grpc::Status s = stub.GetLog(&ctx, v1::GetLogRequest(), &info);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  return info;
}

// The checks after a restart: the whole log, every token ever handed out, and de-duplication of
// acknowledged ids.
void VerifyRecoveredLog(v1::EventStream::Stub& stub, Model& model,
                        const std::vector<HandedOutToken>& tokens, std::mt19937& rng) {
  const v1::LogInfo info = GetLog(stub);
  const uint64_t head = info.head_position();
  EXPECT_EQ(info.oldest_position(), 1u) << "nothing is trimmed in this test";
  std::vector<v1::DeliveredEvent> log;
  ASSERT_NO_FATAL_FAILURE(ReadUntilCaughtUp(stub, FromBeginning(), &log));
  EXPECT_EQ(log.size(), head) << "events read from the beginning vs. the head";
  model.CheckLog(log, head);
  model.AddDelivered(log, "read after restart");

  for (const HandedOutToken& t : tokens) {
    SCOPED_TRACE(absl::StrCat("token of position ", t.position, " from round ", t.round));
    std::vector<v1::DeliveredEvent> resumed;
    ASSERT_NO_FATAL_FAILURE(ReadUntilCaughtUp(stub, FromToken(t.token), &resumed));
    Problems problems("resuming from a token");
    if (resumed.size() != head - t.position) {
      problems.Add(absl::StrCat("delivered ", resumed.size(), " events, expected ",
                                head - t.position, " (positions ", t.position + 1, "..", head,
                                ")"));
    }
    for (size_t i = 0; i < resumed.size(); ++i) {
      const uint64_t expected = t.position + 1 + i;
      const v1::Event& e = resumed[i].event();
      if (e.position() != expected) {
        problems.Add(absl::StrCat("event ", i, " has position ", e.position(), ", expected ",
                                  expected));
        break;  // The rest would all be off by the same amount.
      } else if (expected <= log.size() &&
                 Key(e.source(), e.id()) !=
                     Key(log[expected - 1].event().source(), log[expected - 1].event().id())) {
        problems.Add(absl::StrCat("position ", expected, " differs from the full read"));
      }
    }
  }

  // Re-publishing acknowledged ids inside the dedup window stores nothing: the window survived
  // the kill. The newest ack is the one most likely to have been lost from it.
  const std::vector<std::string>& acked = model.acked();
  if (acked.empty()) return;
  std::vector<std::string> keys = {acked.back()};
  std::uniform_int_distribution<size_t> pick(0, acked.size() - 1);
  for (int i = 1; i < kDedupChecksPerRound; ++i) keys.push_back(acked[pick(rng)]);
  std::vector<v1::EventInput> again;
  for (const std::string& k : keys) again.push_back(model.sent(k).input);
  v1::PublishResponse resp;
  grpc::Status s = Publish(stub, again, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(resp.results_size(), static_cast<int>(keys.size()));
  for (size_t i = 0; i < keys.size(); ++i) {
    const Model::Sent& sent = model.sent(keys[i]);
    const v1::PublishResult& r = resp.results(static_cast<int>(i));
    EXPECT_TRUE(r.duplicate()) << keys[i] << " was stored again: " << r.ShortDebugString();
    EXPECT_EQ(r.position(), sent.acked_position) << keys[i];
    EXPECT_EQ(r.seq(), sent.acked_seq) << keys[i];
    EXPECT_EQ(r.id(), sent.input.id());
  }
  EXPECT_EQ(GetLog(stub).head_position(), head) << "duplicates moved the head";
}

uint32_t Seed() {
  const char* env = std::getenv("HOOKSTREAM_CRASH_SEED");
  uint32_t seed = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &seed)) return seed;
  return std::random_device()();
}

TEST(CrashTest, KillNineAtRandomMomentsLosesNoAcknowledgedEventAndKeepsTokensValid) {
  const uint32_t seed = Seed();
  std::cout << "[   SEED   ] HOOKSTREAM_CRASH_SEED=" << seed << std::endl;
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE(absl::StrCat("rerun with HOOKSTREAM_CRASH_SEED=", seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kill_delay_ms(kMinKillDelayMs, kMaxKillDelayMs);

  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  Model model;
  std::vector<HandedOutToken> tokens;

  // Round r: start on the data dir, verify what the kill of round r-1 left, then publish and
  // subscribe until a kill -9 at a random moment. The last start only verifies, then drains.
  for (int round = 0;; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ServerProcess server(HOOKSTREAMD_PATH, data_dir,
                         absl::StrCat(dir.path(), "/hookstreamd-", round, ".log"),
                         {"--http_listen=off"});
    ASSERT_NO_FATAL_FAILURE(server.Start());
    Client client(server.port());
    ASSERT_TRUE(client.channel->WaitForConnected(absl::ToChronoTime(absl::Now() + kWaitTimeout)));
    ASSERT_NO_FATAL_FAILURE(VerifyRecoveredLog(*client.stub, model, tokens, rng));

    if (round == kRounds) {
      // The drain path: an open subscription ends and the process exits 0.
      SubscribeClient open(*client.stub, FromBeginning());
      ASSERT_TRUE(open.WaitForCaughtUp(kWaitTimeout));
      const std::optional<int> status = server.Terminate(kExitTimeout);
      ASSERT_TRUE(status.has_value()) << "no exit within " << kExitTimeout << " of SIGTERM";
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << "hookstreamd " << DescribeWaitStatus(*status) << " after SIGTERM; its log:\n"
          << server.Log();
      const grpc::Status end = open.WaitForFinish(kWaitTimeout);
      EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE) << end.error_message();
      break;
    }

    std::atomic<bool> stop{false};
    std::vector<std::vector<Attempt>> attempts(kPublishers);
    std::vector<std::thread> publishers;
    auto join_publishers = absl::MakeCleanup([&] {
      stop.store(true, std::memory_order_release);
      for (std::thread& t : publishers) t.join();
    });
    SubscribeClient live(*client.stub, FromBeginning());
    for (int p = 0; p < kPublishers; ++p) {
      publishers.emplace_back(PublishUntilStopped, client.stub.get(), p, round,
                              static_cast<uint32_t>(rng()), &stop, &attempts[p]);
    }
    const absl::Duration delay = absl::Milliseconds(kill_delay_ms(rng));
    // Something to take a token from, then the kill at a random moment: the delay is the
    // schedule under test, not a wait for a condition.
    const bool delivered = live.WaitForEvents(1, kWaitTimeout);
    absl::SleepFor(delay);
    const SubscribeClient::State seen = live.Snapshot();
    const absl::Time kill_time = absl::Now();
    ASSERT_NO_FATAL_FAILURE(server.Kill9());
    std::move(join_publishers).Invoke();

    ASSERT_TRUE(delivered) << "the subscriber got no event within " << kWaitTimeout;
    size_t acked = 0, failed = 0;
    for (std::vector<Attempt>& a : attempts) {
      for (const Attempt& one : a) (one.status.ok() ? acked : failed) += one.events.size();
      model.AddAttempts(a, kill_time);
    }
    model.AddDelivered(seen.events, "delivered before the kill");
    std::uniform_int_distribution<size_t> pick(0, seen.events.size() - 1);
    for (const v1::DeliveredEvent* d : {&seen.events[pick(rng)], &seen.events.back()}) {
      tokens.push_back(HandedOutToken{d->resume_token(), d->event().position(), round});
    }
    std::cout << "[   ROUND  ] " << round << ": killed after " << delay << "; " << acked
              << " events acknowledged, " << failed << " unacknowledged, subscriber at position "
              << seen.events.back().event().position() << std::endl;
  }
}

}  // namespace
}  // namespace hookstream
