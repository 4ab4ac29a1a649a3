// ReorderBuffer on explicit times: holding, releasing in order, giving up gaps, late arrivals
// and boots.
#include "server/ingest/reorder_buffer.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::ingest {
namespace {

using ::testing::ElementsAre;
using Buffer = ReorderBuffer<int>;

constexpr absl::Duration kWindow = absl::Milliseconds(20);
const absl::Time t0 = absl::FromUnixSeconds(1000);

std::vector<int> Release(Buffer& b, absl::Time now) {
  std::vector<int> out;
  b.Release(now, &out);
  return out;
}

void Add(Buffer& b, uint64_t i, absl::Time now) {
  ASSERT_EQ(b.Classify(i, now), Buffer::Verdict::kHold) << i;
  b.Add(i, static_cast<int>(i), now);
}

TEST(ReorderBufferTest, UnanchoredHoldsOneWindowThenStartsAtTheSmallest) {
  Buffer b(kWindow, absl::Seconds(2));
  Add(b, 7, t0);
  Add(b, 8, t0 + absl::Milliseconds(1));
  Add(b, 6, t0 + absl::Milliseconds(2));
  EXPECT_THAT(Release(b, t0 + absl::Milliseconds(5)), ElementsAre());
  EXPECT_EQ(b.NextDeadline(), t0 + kWindow);
  EXPECT_THAT(Release(b, t0 + kWindow), ElementsAre(6, 7, 8));
  Add(b, 9, t0 + absl::Milliseconds(30));
  EXPECT_THAT(Release(b, t0 + absl::Milliseconds(30)), ElementsAre(9)) << "in order: at once";
}

TEST(ReorderBufferTest, OutOfOrderArrivalsWaitForTheMissingIndex) {
  Buffer b(kWindow, absl::Seconds(2));
  b.AnchorAfter(4);
  Add(b, 6, t0);
  EXPECT_THAT(Release(b, t0), ElementsAre());
  Add(b, 5, t0 + absl::Milliseconds(3));
  EXPECT_THAT(Release(b, t0 + absl::Milliseconds(3)), ElementsAre(5, 6));
  EXPECT_TRUE(b.empty());
}

TEST(ReorderBufferTest, AGapIsGivenUpWhenTheOldestHeldItemWaitedTheWindow) {
  Buffer b(kWindow, absl::Seconds(2));
  b.AnchorAfter(0);
  Add(b, 3, t0);
  Add(b, 5, t0 + absl::Milliseconds(10));
  EXPECT_THAT(Release(b, t0 + absl::Milliseconds(19)), ElementsAre());
  // 3 waited 20ms: index 1-2 are given up; 5 arrived later, but 4 is missing: 5 goes only when
  // it waited its own window.
  EXPECT_THAT(Release(b, t0 + kWindow), ElementsAre(3));
  EXPECT_EQ(b.NextDeadline(), t0 + absl::Milliseconds(30));
  EXPECT_THAT(Release(b, t0 + absl::Milliseconds(30)), ElementsAre(5));
  // A skipped index that turns up shortly after is late, not a new boot.
  EXPECT_EQ(b.Classify(4, t0 + absl::Milliseconds(40)), Buffer::Verdict::kLate);
  EXPECT_EQ(b.Classify(2, t0 + absl::Milliseconds(40)), Buffer::Verdict::kLate);
  EXPECT_EQ(b.Classify(2, t0 + absl::Seconds(5)), Buffer::Verdict::kNewBoot)
      << "long after the skip it is a restarted counter";
}

TEST(ReorderBufferTest, IndexGoingBackOrRepeatingIsANewBoot) {
  Buffer b(kWindow, absl::Seconds(2));
  b.AnchorAfter(41);
  EXPECT_EQ(b.Classify(0, t0), Buffer::Verdict::kNewBoot);
  EXPECT_EQ(b.Classify(41, t0), Buffer::Verdict::kNewBoot) << "already released";
  Add(b, 43, t0);
  EXPECT_EQ(b.Classify(43, t0), Buffer::Verdict::kNewBoot) << "held twice";
  std::vector<int> all;
  b.ReleaseAll(&all);
  EXPECT_THAT(all, ElementsAre(43));
  b.Reset();
  EXPECT_FALSE(b.anchored());
  Add(b, 1, t0);
  Add(b, 0, t0);
  EXPECT_THAT(Release(b, t0 + kWindow), ElementsAre(0, 1));
}

TEST(ReorderBufferTest, ZeroWindowReleasesAtOnceButStillKnowsLateFromBoot) {
  Buffer b(absl::ZeroDuration(), absl::Seconds(2));
  Add(b, 7, t0);
  EXPECT_THAT(Release(b, t0), ElementsAre(7));
  Add(b, 9, t0);
  EXPECT_THAT(Release(b, t0), ElementsAre(9));
  EXPECT_EQ(b.Classify(8, t0), Buffer::Verdict::kLate);
  EXPECT_EQ(b.Classify(3, t0), Buffer::Verdict::kNewBoot);
}

}  // namespace
}  // namespace hookstream::ingest
