// Tests of the embedded log's stream records (server/storage/stream_table.h): kept in memory,
// written only by checkpoints, rebuilt on open from the events after the last checkpoint. The
// crash tests run a scenario in a child process (this test binary again, a fresh process) that
// kills itself with SIGKILL while holding the log open (no close, no final checkpoint), then
// check what the next open reports against what the child was acknowledged.
#include "server/storage/stream_table.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/storage/embedded_log.h"
#include "server/storage/log.h"
#include "tests/storage/append_and_wait.h"

namespace hookstream::storage {
namespace {


std::string TempDir() {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/hookstream_streams_", info->name(), "_",
                                 getpid(), "_", counter.fetch_add(1));
  std::filesystem::remove_all(dir);
  return dir;
}

// What the stream records must say, computed from acknowledged appends alone.
struct Expected {
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  uint64_t head_position = 0;
  uint64_t count = 0;
};

// Appends `events` events round-robin over `streams` streams in batches of `batch`, and returns
// what the records must say. Runs in the crashing child too, so it reports by return value.
absl::StatusOr<std::map<std::string, Expected>> Publish(Log& log, int events, int streams,
                                                        int batch, int first_index = 0) {
  std::map<std::string, Expected> expected;
  for (int done = 0; done < events;) {
    std::vector<v1::EventInput> in;
    for (int i = 0; i < batch && done + i < events; ++i) {
      v1::EventInput e;
      e.set_stream(absl::StrCat("s/", (first_index + done + i) % streams));
      e.set_type("t");
      e.set_data("payload");
      in.push_back(std::move(e));
    }
    const int n = static_cast<int>(in.size());
    absl::StatusOr<v1::PublishResponse> r = AppendAndWait(log, std::move(in));
    if (!r.ok()) return r.status();
    for (int i = 0; i < n; ++i) {
      Expected& x = expected[absl::StrCat("s/", (first_index + done + i) % streams)];
      if (x.first_seq == 0) x.first_seq = r->results(i).seq();
      x.head_seq = r->results(i).seq();
      x.head_position = r->results(i).position();
      ++x.count;
    }
    done += n;
  }
  return expected;
}

// The child side: a scenario runs only in a process started by RunAndKill, which names it and
// its data directory in the environment.
constexpr char kChildEnv[] = "HOOKSTREAM_STREAM_RECORDS_CHILD";

// Runs the test `child_test` of this binary in a new process with `arg` in its environment and
// returns whether it ended by SIGKILL (its own, once the scenario returned true).
bool RunAndKill(const std::string& child_test, const std::string& arg) {
  const std::string filter = "--gtest_filter=" + child_test;
  const std::string env = std::string(kChildEnv) + "=" + arg;
  char* argv[] = {const_cast<char*>("/proc/self/exe"), const_cast<char*>(filter.c_str()), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(const_cast<char*>(env.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Dies at once by SIGKILL: called by a scenario while its log is still open, so nothing of
// Close() (the final checkpoint) runs.
[[noreturn]] void DieNow() {
  kill(getpid(), SIGKILL);
  _exit(4);  // Not reached.
}

// In the child: runs `scenario` on the argument RunAndKill passed; a scenario that returns
// (instead of calling DieNow) failed, and the child exits with 3. In the ordinary test run,
// does nothing.
void ChildMain(const std::function<bool(const std::string& arg)>& scenario) {
  const char* arg = std::getenv(kChildEnv);
  if (arg == nullptr) GTEST_SKIP() << "runs only as the child of a crash test";
  scenario(arg);
  _exit(3);
}

void ExpectRecords(const Log& log, const std::map<std::string, Expected>& expected) {
  for (const auto& [name, x] : expected) {
    absl::StatusOr<v1::StreamInfo> info = log.GetStream(name);
    ASSERT_TRUE(info.ok()) << name << ": " << info.status();
    EXPECT_EQ(info->first_seq(), x.first_seq) << name;
    EXPECT_EQ(info->head_seq(), x.head_seq) << name;
    EXPECT_EQ(info->head_position(), x.head_position) << name;
    EXPECT_EQ(info->event_count(), x.count) << name;
  }
  bool more = true;
  absl::StatusOr<std::vector<v1::StreamInfo>> all =
      log.ListStreams("", 1 << 20, [](absl::string_view) { return true; }, &more);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), expected.size());
  EXPECT_FALSE(more);
}

// Merges `later` (appended after `earlier`) into `earlier`.
void Merge(std::map<std::string, Expected>& earlier, const std::map<std::string, Expected>& later) {
  for (const auto& [name, x] : later) {
    Expected& e = earlier[name];
    if (e.first_seq == 0) e.first_seq = x.first_seq;
    e.head_seq = x.head_seq;
    e.head_position = x.head_position;
    e.count += x.count;
  }
}

TEST(StreamTableTest, ListIsInNameOrderAfterStartAfterAndReportsThroughWithTheCopies) {
  StreamTable t;
  StreamChanges c;
  for (const char* name : {"b", "a", "d", "c"}) {
    StreamState s;
    s.Append(1, name[0], 0);
    c.emplace(name, s);
  }
  t.Apply(std::move(c), 100, /*checkpointed=*/false);
  bool more = false;
  uint64_t through = 0;
  auto page = t.List("a", 2, [](absl::string_view, const StreamState&) { return true; }, &more,
                     &through);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].first, "b");
  EXPECT_EQ(page[1].first, "c");
  EXPECT_TRUE(more);
  EXPECT_EQ(through, 100u);
  page = t.List("c", 2, [](absl::string_view, const StreamState&) { return true; }, &more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].first, "d");
  EXPECT_FALSE(more);
}

TEST(StreamTableTest, CheckpointCoversStreamsChangedSinceTheLastOneAndThePendingChanges) {
  StreamTable t;
  StreamState s;
  s.Append(1, 1, 0);
  t.Apply({{"x", s}, {"y", s}}, 2, /*checkpointed=*/false);
  EXPECT_EQ(t.dirty_count(), 2u);
  StreamState y2 = s;
  y2.Append(2, 3, 0);
  auto records = t.CheckpointRecords({{"y", y2}, {"z", s}});
  std::map<std::string, uint64_t> heads;
  for (const auto& [name, state] : records) heads[name] = state.head_seq;
  EXPECT_EQ(heads, (std::map<std::string, uint64_t>{{"x", 1}, {"y", 2}, {"z", 1}}))
      << "y with its pending state, not the applied one";
  t.Apply({{"y", y2}, {"z", s}}, 4, /*checkpointed=*/true);
  EXPECT_EQ(t.dirty_count(), 0u);
  StreamState got;
  ASSERT_TRUE(t.Get("y", &got));
  EXPECT_EQ(got.head_seq, 2u);
  EXPECT_EQ(t.through(), 4u);
}

TEST(StreamTableTest, RecordRoundTripKeepsEveryFieldIncludingPreEpochTimes) {
  for (int64_t nanos : {int64_t{0}, int64_t{1'700'000'000'123'456'789}, int64_t{-1'500'000'001}}) {
    StreamState s;
    s.first_seq = 3;
    s.head_seq = 9;
    s.head_position = 77;
    s.event_count = 7;
    s.last_event_nanos = nanos;
    const StreamState back = StreamState::FromRecord(s.ToRecord());
    EXPECT_EQ(back.first_seq, 3u);
    EXPECT_EQ(back.head_seq, 9u);
    EXPECT_EQ(back.head_position, 77u);
    EXPECT_EQ(back.event_count, 7u);
    EXPECT_EQ(back.last_event_nanos, nanos);
  }
}

// A crash between checkpoints: the records were last written when the log was created, or at
// the checkpoint after 64 Ki events; everything after is rebuilt from the events.
class StreamRecordsCrashTest : public ::testing::TestWithParam<int> {};

// The child of the crash test: "<events> <dir>".
TEST(StreamRecordsChild, PublishReportAndDie) {
  ChildMain([](const std::string& arg) {
    const size_t space = arg.find(' ');
    const int events = std::atoi(arg.substr(0, space).c_str());
    EmbeddedLogOptions options;
    options.data_dir = arg.substr(space + 1);
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(options);
    if (!log.ok()) return false;
    absl::StatusOr<std::map<std::string, Expected>> x = Publish(**log, events, 97, 500);
    if (!x.ok()) return false;
    // What it was acknowledged, through a file: the parent cannot see this process's memory.
    FILE* f = fopen((options.data_dir + ".report").c_str(), "w");
    if (f == nullptr) return false;
    for (const auto& [name, e] : *x) {
      fprintf(f, "%s %lu %lu %lu %lu\n", name.c_str(), static_cast<unsigned long>(e.first_seq),
              static_cast<unsigned long>(e.head_seq), static_cast<unsigned long>(e.head_position),
              static_cast<unsigned long>(e.count));
    }
    if (fclose(f) != 0) return false;
    DieNow();
  });
}

TEST_P(StreamRecordsCrashTest, RecordsAfterAKillMatchEveryAcknowledgedEventAndSeqsContinue) {
  const int events = GetParam();
  const std::string dir = TempDir();
  EmbeddedLogOptions options;
  options.data_dir = dir;
  const std::string report = dir + ".report";
  ASSERT_TRUE(RunAndKill("StreamRecordsChild.PublishReportAndDie", absl::StrCat(events, " ", dir)));
  std::map<std::string, Expected> expected;
  FILE* f = fopen(report.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char name[64];
  unsigned long a, b, c, d;
  while (fscanf(f, "%63s %lu %lu %lu %lu", name, &a, &b, &c, &d) == 5) {
    expected[name] = Expected{a, b, c, d};
  }
  fclose(f);
  ASSERT_EQ(expected.size(), 97u);

  {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(options);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->head().value(), static_cast<uint64_t>(events));
    ExpectRecords(**log, expected);
    // Seqs continue densely after the replayed heads, and positions after the head.
    absl::StatusOr<std::map<std::string, Expected>> more = Publish(**log, 300, 97, 100, events);
    ASSERT_TRUE(more.ok()) << more.status();
    for (const auto& [n, x] : *more) {
      EXPECT_EQ(x.first_seq, expected[n].head_seq + 1) << n;
    }
    Merge(expected, *more);
    ExpectRecords(**log, expected);
    // The last event of each stream, from the in-memory heads.
    absl::StatusOr<std::unique_ptr<SnapshotReader>> snap =
        (*log)->OpenLastPerStream([](absl::string_view) { return true; });
    ASSERT_TRUE(snap.ok()) << snap.status();
    EXPECT_EQ((*snap)->head().value(), static_cast<uint64_t>(events + 300));
    absl::StatusOr<std::vector<StoredEvent>> last = (*snap)->Next(ReadLimits{1 << 20, 1 << 30, 1 << 20});
    ASSERT_TRUE(last.ok()) << last.status();
    ASSERT_EQ(last->size(), 97u);
    for (const StoredEvent& e : *last) {
      EXPECT_EQ(e.position.value(), expected[e.stream].head_position) << e.stream;
      EXPECT_EQ(e.seq.value(), expected[e.stream].head_seq) << e.stream;
    }
  }
  // A clean close checkpoints; the next open has nothing to replay and reports the same.
  {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(options);
    ASSERT_TRUE(log.ok()) << log.status();
    ExpectRecords(**log, expected);
  }
  std::filesystem::remove_all(dir);
  std::filesystem::remove(report);
}

// Fewer events than a checkpoint interval (records never written before the kill), and more
// (one checkpoint mid-way, the rest replayed).
INSTANTIATE_TEST_SUITE_P(Events, StreamRecordsCrashTest, ::testing::Values(1000, 70000));

EmbeddedLogOptions RetentionOptions(const std::string& dir) {
  EmbeddedLogOptions options;
  options.data_dir = dir;
  options.dedup_window = absl::ZeroDuration();
  options.retention.max_events_per_stream = 5;
  options.retention.check_interval = absl::Hours(1);  // Trims only when the test asks.
  return options;
}

// The child of the retention test: the data dir.
TEST(StreamRecordsChild, TrimBetweenCheckpointsAndDie) {
  ChildMain([](const std::string& dir) {
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(RetentionOptions(dir));
    if (!log.ok()) return false;
    // 12 per stream, trimmed to 5 (a trim writes a checkpoint), then 3 more not checkpointed.
    if (!Publish(**log, 12 * 10, 10, 7).ok()) return false;
    absl::StatusOr<uint64_t> removed = (*log)->Trim();
    if (!removed.ok() || *removed != 70) return false;
    if (!Publish(**log, 3 * 10, 10, 7).ok()) return false;
    DieNow();
  });
}

TEST(StreamRecordsTest, PerStreamRetentionBetweenCheckpointsKeepsCountsExactAcrossAKill) {
  const std::string dir = TempDir();
  const EmbeddedLogOptions options = RetentionOptions(dir);
  ASSERT_TRUE(RunAndKill("StreamRecordsChild.TrimBetweenCheckpointsAndDie", dir));
  absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(options);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int s = 0; s < 10; ++s) {
    absl::StatusOr<v1::StreamInfo> info = (*log)->GetStream(absl::StrCat("s/", s));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->head_seq(), 15u);
    EXPECT_EQ(info->first_seq(), 8u);
    EXPECT_EQ(info->event_count(), 8u) << "5 kept by the trim + 3 replayed, none counted twice";
  }
  absl::StatusOr<uint64_t> removed = (*log)->Trim();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 30u);
  absl::StatusOr<v1::StreamInfo> info = (*log)->GetStream("s/3");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->first_seq(), 11u);
  EXPECT_EQ(info->event_count(), 5u);
  log->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hookstream::storage
