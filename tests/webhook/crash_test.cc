// The shim's no-loss guarantee against the real hookstreamd: a flaky receiver (500s, timeouts,
// 429 + Retry-After on first attempts) and kill -9 of the server twice while it delivers.
// Every event must arrive, per-stream order must hold, and an event may arrive twice only if
// its request was in flight at a kill (at most max_in_flight per kill).
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/test_server.h"
#include "tests/webhook/checks.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {
namespace {

constexpr int kStreams = 50;
constexpr int kPerStreamPerRound = 8;
constexpr int kKills = 2;
constexpr int kMaxInFlight = 8;

Answer Flaky(const Received& r) {
  if (r.Header("hookstream-attempt") != "1") return {};
  const size_t h = std::hash<std::string>()(r.Header("webhook-id")) % 10;
  if (h < 2) return {500};
  if (h < 3) return {504, {}, absl::Milliseconds(2500)};
  if (h < 4) return {429, {{"Retry-After", "1"}}};
  return {};
}

TEST(WebhookCrashTest, KillNineLosesNothingAndResendsOnlyWhatWasInFlight) {
  Receiver rx(Flaky);
  TempDir dir;
  const std::string config = dir.path() + "/hookstream.yaml";
  {
    std::ofstream out(config);
    out << "webhooks:\n  endpoints:\n    - name: crash\n      url: " << rx.Url("/hook")
        << "\n      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]\n      max_in_flight: "
        << kMaxInFlight
        << "\n      timeout: 2s\n      retry_schedule: [0s, 50ms, 50ms, 50ms, 50ms, 50ms]\n";
  }
  const std::string data_dir = dir.path() + "/data";
  const absl::Time start = absl::Now();
  // When each kill happened and the next process was spawned. A request the killed process had
  // already written can still reach the receiver after the kill (the kernel delivers what was
  // in the socket buffer), later still on a loaded machine, so arrival times only bound it: a
  // duplicate must have its first 2xx no later than shortly after the spawn that followed a
  // kill, and its second after that kill.
  std::vector<absl::Time> kills, spawns;
  constexpr absl::Duration kArrivalLag = absl::Seconds(1);
  int published = 0;
  for (int round = 0; round <= kKills; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ServerProcess server(HOOKSTREAMD_PATH, data_dir,
                         absl::StrCat(dir.path(), "/hookstreamd-", round, ".log"),
                         {"--http_listen=off", "--config=" + config});
    if (round > 0) spawns.push_back(absl::Now());
    ASSERT_NO_FATAL_FAILURE(server.Start());
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port()),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::EventStream::NewStub(channel);
    for (int i = 0; i < kPerStreamPerRound; ++i) {
      std::vector<v1::EventInput> batch;
      for (int s = 0; s < kStreams; ++s) {
        batch.push_back(
            MakeEvent(absl::StrCat("cam/", s), "t", absl::StrCat("{\"r\":", round, "}")));
      }
      ASSERT_TRUE(Publish(*stub, batch).ok());
      published += kStreams;
    }
    if (round == kKills) {
      ASSERT_TRUE(rx.WaitFor(
          [&](auto& r) { return DeliveredCounts(r).size() >= static_cast<size_t>(published); },
          absl::Seconds(120)))
          << DeliveredCounts(rx.Requests()).size() << " of " << published << "; log:\n"
          << server.Log();
      ASSERT_TRUE(server.Terminate(absl::Seconds(20)).has_value());
      break;
    }
    // Kill while this round's events are being delivered.
    const size_t target = published - kStreams * kPerStreamPerRound / 2;
    ASSERT_TRUE(rx.WaitFor([&](auto& r) { return DeliveredCounts(r).size() >= target; },
                           absl::Seconds(120)));
    ASSERT_NO_FATAL_FAILURE(server.Kill9());
    kills.push_back(absl::Now());
  }
  const absl::Duration took = absl::Now() - start;

  const std::vector<Received> got = rx.Requests();
  const std::map<std::string, int> delivered = DeliveredCounts(got);
  EXPECT_EQ(delivered.size(), static_cast<size_t>(published));
  EXPECT_EQ(PerStreamOrderViolation(got), "");
  // A duplicate is an event answered 2xx for one process and sent again by the next.
  int duplicates = 0;
  std::map<std::string, std::vector<absl::Time>> ok_times;
  std::map<std::string, std::string> attempts_of;
  for (const Received& r : got) {
    if (r.ok()) ok_times[r.Header("webhook-id")].push_back(r.at);
    if (r.ok())
      absl::StrAppend(&attempts_of[r.Header("webhook-id")], " attempt ",
                      r.Header("hookstream-attempt"), " at ", absl::FormatTime(r.at));
  }
  for (const auto& [id, times] : ok_times) {
    duplicates += static_cast<int>(times.size()) - 1;
    for (size_t i = 1; i < times.size(); ++i) {
      bool across_restart = false;
      for (size_t k = 0; k < kills.size(); ++k) {
        across_restart |= times[i - 1] < spawns[k] + kArrivalLag && kills[k] < times[i];
      }
      EXPECT_TRUE(across_restart) << id
                                  << " delivered twice by one server process:" << attempts_of[id];
    }
  }
  EXPECT_LE(duplicates, kKills * kMaxInFlight);
  std::printf(
      "webhook crash run: %d events on %d streams, %zu attempts, %d duplicates after %d kill -9, "
      "%.1f s\n",
      published, kStreams, got.size(), duplicates, kKills, absl::ToDoubleSeconds(took));
  RecordProperty("events", published);
  RecordProperty("attempts", static_cast<int>(got.size()));
  RecordProperty("duplicates", duplicates);
}

}  // namespace
}  // namespace hookstream::testing
