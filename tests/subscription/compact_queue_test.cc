#include "server/subscription/compact_queue.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace hookstream::subscription {
namespace {

TEST(CompactQueueTest, AllocatesNothingUntilTheFirstPush) {
  CompactQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(CompactQueueTest, KeepsFifoOrderAcrossInterleavedPushesAndPops) {
  CompactQueue<int> q;
  int next_in = 0;
  int next_out = 0;
  // Never drains: exercises compaction of the popped prefix while elements remain.
  for (int round = 0; round < 1000; ++round) {
    for (int i = 0; i < 3; ++i) q.push_back(next_in++);
    for (int i = 0; i < 2; ++i) {
      ASSERT_FALSE(q.empty());
      EXPECT_EQ(q.front(), next_out++);
      q.pop_front();
    }
  }
  EXPECT_EQ(q.size(), static_cast<size_t>(next_in - next_out));
  while (!q.empty()) {
    EXPECT_EQ(q.front(), next_out++);
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

TEST(CompactQueueTest, StorageStaysProportionalToWhatIsQueued) {
  // A steady stream that never drains must not keep every element it ever held.
  CompactQueue<int> q;
  q.push_back(0);
  for (int i = 1; i < 100000; ++i) {
    q.push_back(i);
    EXPECT_EQ(q.front(), i - 1);
    q.pop_front();
  }
  EXPECT_EQ(q.size(), 1u);
  EXPECT_LE(q.capacity(), 8u);
}

TEST(CompactQueueTest, ReleasesLargeStorageWhenItDrains) {
  CompactQueue<int> q;
  for (int i = 0; i < 1000; ++i) q.push_back(i);
  EXPECT_GE(q.capacity(), 1000u);
  for (int i = 0; i < 1000; ++i) q.pop_front();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
  // Small working sets keep their storage: a live session refills right away.
  for (int i = 0; i < 10; ++i) q.push_back(i);
  const size_t kept = q.capacity();
  for (int i = 0; i < 10; ++i) q.pop_front();
  EXPECT_EQ(q.capacity(), kept);
  q.push_back(7);
  EXPECT_EQ(q.front(), 7);
}

TEST(CompactQueueTest, ReleaseIfEmptyFreesOnlyAnEmptyQueue) {
  CompactQueue<int> q;
  q.push_back(1);
  q.push_back(2);
  q.ReleaseIfEmpty();
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front(), 1);
  q.pop_front();
  q.pop_front();
  EXPECT_GT(q.capacity(), 0u);
  q.ReleaseIfEmpty();
  EXPECT_EQ(q.capacity(), 0u);
  q.push_back(3);
  EXPECT_EQ(q.front(), 3);
}

TEST(CompactQueueTest, PoppedElementsAreReleasedAtOnce) {
  CompactQueue<std::shared_ptr<int>> q;
  auto a = std::make_shared<int>(1);
  auto b = std::make_shared<int>(2);
  q.push_back(a);
  q.push_back(b);
  q.pop_front();
  EXPECT_EQ(a.use_count(), 1);  // Only ours: the queue dropped its copy.
  EXPECT_EQ(b.use_count(), 2);
  q.clear();
  EXPECT_EQ(b.use_count(), 1);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace hookstream::subscription
