// The per-stream index is kept only while per-stream retention is configured
// (server/storage/stream_index.h): turning the limit on later must still trim exactly the
// oldest events of each stream, including those stored while it was off.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "server/storage/embedded_log.h"
#include "tests/storage/append_and_wait.h"

namespace hookstream::storage {
namespace {

class StreamIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/hookstream_index_", info->name(), "_", getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Open(uint64_t max_events_per_stream) {
    log_.reset();
    EmbeddedLogOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    o.retention.max_events_per_stream = max_events_per_stream;
    o.retention.check_interval = absl::Hours(1);  // Only explicit Trim() calls.
    absl::StatusOr<std::unique_ptr<Log>> log = OpenEmbeddedLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  // Appends `per_stream` events to each of streams a and b, interleaved, one batch each.
  void AppendRound(int per_stream) {
    for (int i = 0; i < per_stream; ++i) {
      std::vector<v1::EventInput> batch(2);
      batch[0].set_stream("a");
      batch[1].set_stream("b");
      absl::StatusOr<v1::PublishResponse> r = AppendAndWait(*log_, std::move(batch));
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }

  // The seqs of `stream` still stored, in order.
  std::vector<uint64_t> Seqs(absl::string_view stream) {
    absl::StatusOr<ReadChunk> chunk = log_->Read(
        Position(0), ReadLimits{1 << 20, size_t{1} << 30, 1 << 20},
        [stream](absl::string_view s, absl::string_view) { return s == stream; });
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    std::vector<uint64_t> out;
    if (chunk.ok()) {
      for (const StoredEvent& e : chunk->events) out.push_back(e.seq.value());
    }
    return out;
  }

  ManualClock clock_;
  std::string dir_;
  std::unique_ptr<Log> log_;
};

TEST_F(StreamIndexTest, TurningPerStreamRetentionOnLaterTrimsEventsStoredWhileItWasOff) {
  Open(/*max_events_per_stream=*/0);
  AppendRound(5);
  Open(/*max_events_per_stream=*/2);
  absl::StatusOr<uint64_t> removed = log_->Trim();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 6u);
  EXPECT_EQ(Seqs("a"), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(Seqs("b"), (std::vector<uint64_t>{4, 5}));
}

TEST_F(StreamIndexTest, IndexedAndUnindexedStretchesAreBothTrimmedAfterToggling) {
  Open(/*max_events_per_stream=*/100);  // Indexed: seqs 1-3.
  AppendRound(3);
  Open(/*max_events_per_stream=*/0);    // Not indexed: seqs 4-6.
  AppendRound(3);
  Open(/*max_events_per_stream=*/100);  // Indexed again after the rebuild: seqs 7-8.
  AppendRound(2);
  Open(/*max_events_per_stream=*/1);    // Nothing to rebuild; the index is whole.
  absl::StatusOr<uint64_t> removed = log_->Trim();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 14u);
  EXPECT_EQ(Seqs("a"), (std::vector<uint64_t>{8}));
  EXPECT_EQ(Seqs("b"), (std::vector<uint64_t>{8}));
  // Later appends are indexed as they come.
  AppendRound(2);
  removed = log_->Trim();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 4u);
  EXPECT_EQ(Seqs("a"), (std::vector<uint64_t>{10}));
}

}  // namespace
}  // namespace hookstream::storage
