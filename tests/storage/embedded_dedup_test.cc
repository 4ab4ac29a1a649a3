// De-duplication in the embedded log when (source, id) hashes collide: the dedup index keys by
// a 64-bit hash, and the log confirms every hit against the stored event (embedded_dedup.cc).
// A hash that sends every key to the same value must change nothing of DESIGN.md §3.3: no false
// duplicates, every retry inside the window a duplicate with its original position, also
// across a reopen, an undone request and retention deleting the original.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "server/storage/embedded_log.h"
#include "tests/storage/append_and_wait.h"

namespace hookstream::storage {
namespace {

constexpr absl::Duration kWindow = absl::Minutes(2);

v1::EventInput Ev(absl::string_view stream, absl::string_view id, absl::string_view source = "src",
                  size_t data_bytes = 16) {
  v1::EventInput e;
  e.set_stream(std::string(stream));
  e.set_id(std::string(id));
  e.set_source(std::string(source));
  e.set_type("test.happened");
  e.set_data(std::string(data_bytes, 'x'));
  return e;
}

class CollidingDedupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/hookstream_dedup_", info->name(), "_", getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  EmbeddedLogOptions Options() {
    EmbeddedLogOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    o.dedup_window = kWindow;
    o.dedup_hash = [](absl::string_view, absl::string_view) -> uint64_t { return 42; };
    o.retention.check_interval = absl::Hours(1);  // Only explicit Trim() calls.
    return o;
  }
  void Open(const EmbeddedLogOptions& o) {
    log_.reset();
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  v1::PublishResponse MustAppend(std::vector<v1::EventInput> events) {
    absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*log_, std::move(events));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : v1::PublishResponse();
  }
  // "dup@P" for a duplicate of position P, "new@P" for an event stored at P.
  static std::vector<std::string> Outcome(const v1::PublishResponse& r) {
    std::vector<std::string> out;
    for (const v1::PublishResult& res : r.results()) {
      out.push_back(absl::StrCat(res.duplicate() ? "dup@" : "new@", res.position()));
    }
    return out;
  }
  using V = std::vector<std::string>;

  ManualClock clock_;
  std::string dir_;
  std::unique_ptr<Log> log_;
};

TEST_F(CollidingDedupTest, CollidingKeysAreNeverFalseDuplicatesAndEveryRetryIsOne) {
  Open(Options());
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "a"), Ev("s", "b"), Ev("s", "a"), Ev("t", "a", "other")})),
            (V{"new@1", "new@2", "dup@1", "new@3"}));
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "c")})), (V{"new@4"}));
  clock_.Advance(kWindow - absl::Seconds(1));
  v1::PublishResponse retry =
      MustAppend({Ev("s", "b"), Ev("s", "c"), Ev("t", "a", "other"), Ev("s", "a"), Ev("s", "d")});
  EXPECT_EQ(Outcome(retry), (V{"dup@2", "dup@4", "dup@3", "dup@1", "new@5"}));
  EXPECT_EQ(retry.results(0).seq(), 2u) << "a duplicate answers with the original seq";
  EXPECT_EQ(log_->Stats().event_count, 5u);

  // Past the window the first four are stored again; "d" is still inside its own.
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "a"), Ev("s", "d"), Ev("s", "a")})),
            (V{"new@6", "dup@5", "dup@6"}));
}

TEST_F(CollidingDedupTest, CollidingKeysAreRecoveredOnReopen) {
  Open(Options());
  MustAppend({Ev("s", "a"), Ev("s", "b"), Ev("s", "c")});
  log_->Close();
  clock_.Advance(absl::Seconds(10));
  Open(Options());
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "c"), Ev("s", "x"), Ev("s", "a"), Ev("s", "b")})),
            (V{"dup@3", "new@4", "dup@1", "dup@2"}));
}

TEST_F(CollidingDedupTest, ARejectedRequestOrAFailedWriteLeavesNoEntryBehind) {
  std::atomic<bool> fail_writes{false};
  EmbeddedLogOptions o = Options();
  o.faults.before_append = [&fail_writes]() {
    return fail_writes ? absl::UnavailableError("injected") : absl::OkStatus();
  };
  Open(o);
  MustAppend({Ev("s", "a")});
  // Rejected part-way: "b" was entered into the index (on the chain of "a") and must be undone
  // without taking "a" with it.
  v1::EventInput conflict = Ev("s", "c");
  conflict.set_expected_seq(7);
  absl::StatusOr<v1::PublishResponse> rejected =
      AppendAndWait(*log_, {Ev("s", "b"), Ev("s", "a"), conflict});
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kAborted);

  fail_writes = true;  // The appender reads it only while our append is pending.
  absl::StatusOr<v1::PublishResponse> failed = AppendAndWait(*log_, {Ev("s", "e"), Ev("s", "a")});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  fail_writes = false;

  EXPECT_EQ(Outcome(MustAppend({Ev("s", "b"), Ev("s", "a"), Ev("s", "e"), Ev("s", "c")})),
            (V{"new@2", "dup@1", "new@3", "new@4"}));
}

TEST_F(CollidingDedupTest, RetryOfAnEventRetentionDeletedInsideTheWindowIsStillADuplicate) {
  EmbeddedLogOptions o = Options();
  o.retention.max_bytes = 2500;
  Open(o);
  MustAppend({Ev("s", "a", "src", 1000)});
  MustAppend({Ev("s", "b", "src", 1000)});
  MustAppend({Ev("s", "c", "src", 1000)});
  absl::StatusOr<uint64_t> removed = log_->Trim();
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_GE(*removed, 1u);
  ASSERT_GE(log_->trimmed_through(), Position(1)) << "the test needs event 1 deleted";

  // "a" can no longer be read back; its key was kept for the rest of its window.
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "a"), Ev("s", "z"), Ev("s", "c")})),
            (V{"dup@1", "new@4", "dup@3"}));
  // And is forgotten when the window ends, like any other.
  clock_.Advance(kWindow + absl::Seconds(1));
  EXPECT_EQ(Outcome(MustAppend({Ev("s", "a")})), (V{"new@5"}));
}

}  // namespace
}  // namespace hookstream::storage
