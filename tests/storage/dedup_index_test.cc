// Tests of the dedup index (server/storage/dedup_index.h) on its own: the window, expiry,
// undo, growth of its ring, and keys whose hashes collide (confirmed by SameKey, as the
// appender confirms them against the stored events).
#include "server/storage/dedup_index.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace hookstream::storage {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// The index plus what the log would hold: the (source, id) of each position, which SameKey
// reads back as the appender does.
class Harness {
 public:
  explicit Harness(absl::Duration window, DedupIndex::HashFn hash = nullptr)
      : index(window, std::move(hash)) {}

  void Insert(absl::string_view source, absl::string_view id, uint64_t position, uint64_t seq,
              absl::Time at) {
    stored[position] = {std::string(source), std::string(id)};
    index.Insert(index.Hash(source, id), {Position(position), Seq(seq), at});
  }
  std::optional<DedupIndex::Entry> Find(absl::string_view source, absl::string_view id,
                                        absl::Time now) {
    absl::StatusOr<std::optional<DedupIndex::Entry>> r =
        index.Find(index.Hash(source, id), now, [&](const DedupIndex::Entry& e) {
          ++confirmations;
          auto it = stored.find(e.position.value());
          return it != stored.end() && it->second.first == source && it->second.second == id;
        });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  }
  // Position found for (source, id), 0 when none.
  uint64_t PositionOf(absl::string_view source, absl::string_view id, absl::Time now) {
    std::optional<DedupIndex::Entry> e = Find(source, id, now);
    return e ? e->position.value() : 0;
  }

  DedupIndex index;
  std::map<uint64_t, std::pair<std::string, std::string>> stored;
  int confirmations = 0;
};

uint64_t Colliding(absl::string_view, absl::string_view) { return 42; }

TEST(DedupIndexTest, FindsWhatWasInsertedInsideTheWindow) {
  Harness h(absl::Minutes(1));
  EXPECT_TRUE(h.index.enabled());
  h.Insert("src", "id", 5, 2, kT0);
  std::optional<DedupIndex::Entry> e = h.Find("src", "id", kT0 + absl::Seconds(59));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->position, Position(5));
  EXPECT_EQ(e->seq, Seq(2));
  EXPECT_EQ(e->at, kT0);
  EXPECT_FALSE(h.Find("src", "other", kT0).has_value());
  EXPECT_FALSE(h.Find("other", "id", kT0).has_value());
  EXPECT_FALSE(h.Find("sr", "cid", kT0).has_value());
  EXPECT_FALSE(h.Find("srci", "d", kT0).has_value());
  EXPECT_NE(h.index.Hash("sr", "cid"), h.index.Hash("src", "id"))
      << "the default hash must not just concatenate source and id";
}

TEST(DedupIndexTest, EntryOlderThanTheWindowIsNotFoundEvenBeforeExpire) {
  Harness h(absl::Minutes(1));
  h.Insert("src", "id", 1, 1, kT0);
  EXPECT_FALSE(h.Find("src", "id", kT0 + absl::Minutes(1) + absl::Nanoseconds(1)).has_value());
  EXPECT_TRUE(h.Find("src", "id", kT0 + absl::Minutes(1)).has_value()) << "the window is closed";
  EXPECT_EQ(h.index.size(), 1u);
}

TEST(DedupIndexTest, ExpireForgetsOnlyEntriesOlderThanTheWindow) {
  Harness h(absl::Minutes(1));
  h.Insert("s", "a", 1, 1, kT0);
  h.Insert("s", "b", 2, 2, kT0 + absl::Seconds(30));
  h.Insert("s", "c", 3, 3, kT0 + absl::Seconds(90));
  h.index.Expire(kT0 + absl::Seconds(80));  // Cutoff T0+20s: only "a" is older.
  EXPECT_EQ(h.index.size(), 2u);
  EXPECT_FALSE(h.Find("s", "a", kT0 + absl::Seconds(80)).has_value());
  EXPECT_TRUE(h.Find("s", "b", kT0 + absl::Seconds(80)).has_value());
  EXPECT_TRUE(h.Find("s", "c", kT0 + absl::Seconds(80)).has_value());
  h.index.Expire(kT0 + absl::Seconds(100));  // Cutoff T0+40s: "b" goes too.
  EXPECT_EQ(h.index.size(), 1u);
  EXPECT_TRUE(h.Find("s", "c", kT0 + absl::Seconds(100)).has_value());
  h.index.Expire(kT0 + absl::Hours(1));
  EXPECT_EQ(h.index.size(), 0u);
  EXPECT_FALSE(h.Find("s", "c", kT0 + absl::Seconds(100)).has_value())
      << "an expired entry is gone even for a lookup at an earlier time";
}

TEST(DedupIndexTest, ReinsertAfterExpiryIsKeptWhenTheOldEntryExpires) {
  Harness h(absl::Minutes(1));
  h.Insert("s", "k", 1, 1, kT0);
  // Stored again after its window, before anything called Expire.
  const absl::Time t1 = kT0 + absl::Seconds(61);
  ASSERT_FALSE(h.Find("s", "k", t1).has_value());
  h.Insert("s", "k", 9, 4, t1);
  // Expiring the first append must not drop the second.
  h.index.Expire(t1 + absl::Seconds(1));
  EXPECT_EQ(h.PositionOf("s", "k", t1 + absl::Seconds(1)), 9u);
  EXPECT_EQ(h.index.size(), 1u);

  // Expired and re-inserted after a completed Expire, too.
  h.index.Expire(t1 + absl::Minutes(2));
  EXPECT_EQ(h.index.size(), 0u);
  const absl::Time t2 = t1 + absl::Minutes(3);
  h.Insert("s", "k", 20, 5, t2);
  EXPECT_EQ(h.PositionOf("s", "k", t2), 20u);
}

TEST(DedupIndexTest, CollidingKeysAreEachFoundByThemselvesOnly) {
  Harness h(absl::Minutes(1), &Colliding);
  h.Insert("s", "a", 1, 1, kT0);
  h.Insert("s", "b", 2, 2, kT0);
  h.Insert("t", "a", 3, 1, kT0 + absl::Seconds(1));
  const absl::Time now = kT0 + absl::Seconds(2);
  EXPECT_EQ(h.PositionOf("s", "a", now), 1u);
  EXPECT_EQ(h.PositionOf("s", "b", now), 2u);
  EXPECT_EQ(h.PositionOf("t", "a", now), 3u);
  h.confirmations = 0;
  EXPECT_EQ(h.PositionOf("s", "c", now), 0u) << "a colliding key is not a duplicate";
  EXPECT_EQ(h.confirmations, 3) << "every live entry of the hash is checked, and no more";

  // The oldest expires first; the others stay findable.
  h.index.Expire(kT0 + absl::Seconds(60) + absl::Nanoseconds(1));
  const absl::Time later = kT0 + absl::Seconds(61);
  EXPECT_EQ(h.PositionOf("s", "a", later), 0u);
  EXPECT_EQ(h.PositionOf("s", "b", later), 0u);
  EXPECT_EQ(h.PositionOf("t", "a", later), 3u);
  EXPECT_EQ(h.index.size(), 1u);
}

TEST(DedupIndexTest, TruncateUndoesTheNewestEntriesAndKeepsOlderCollidingOnes) {
  Harness h(absl::Minutes(1), &Colliding);
  h.Insert("s", "a", 1, 1, kT0);
  const uint64_t mark = h.index.end();
  h.Insert("s", "b", 2, 2, kT0);
  h.Insert("s", "a", 3, 3, kT0);  // A newer entry of an existing key (as after its window).
  h.index.Truncate(mark);
  EXPECT_EQ(h.index.size(), 1u);
  EXPECT_EQ(h.PositionOf("s", "a", kT0), 1u);
  EXPECT_EQ(h.PositionOf("s", "b", kT0), 0u);
  // The positions are reused after an undo.
  h.Insert("s", "c", 2, 2, kT0);
  h.stored.erase(3);
  EXPECT_EQ(h.PositionOf("s", "c", kT0), 2u);
  EXPECT_EQ(h.PositionOf("s", "a", kT0), 1u);

  // Undoing everything empties the map as well.
  Harness d(absl::Minutes(1));
  d.Insert("s", "x", 1, 1, kT0);
  d.index.Truncate(0);
  EXPECT_EQ(d.index.size(), 0u);
  EXPECT_EQ(d.PositionOf("s", "x", kT0), 0u);
  EXPECT_EQ(d.confirmations, 0) << "nothing should be left to confirm";
}

TEST(DedupIndexTest, ASameKeyErrorIsReturned) {
  DedupIndex index(absl::Minutes(1));
  index.Insert(7, {Position(1), Seq(1), kT0});
  absl::StatusOr<std::optional<DedupIndex::Entry>> r =
      index.Find(7, kT0, [](const DedupIndex::Entry&) -> absl::StatusOr<bool> {
        return absl::UnavailableError("disk");
      });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST(DedupIndexTest, RingGrowsAndWrapsAroundKeepingEveryLiveEntry) {
  Harness h(absl::Seconds(10));
  // Entries one ms apart: 10,000 live at a time, so the ring wraps many times and grows.
  uint64_t position = 0;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 5000; ++i) {
      ++position;
      h.Insert("src", absl::StrCat("e", position), position, position,
               kT0 + absl::Milliseconds(position));
    }
    const absl::Time now = kT0 + absl::Milliseconds(position);
    h.index.Expire(now);
    EXPECT_EQ(h.index.size(), std::min<uint64_t>(position, 10001)) << "round " << round;
    for (int64_t p = position; p > 0 && p + 10000 >= static_cast<int64_t>(position); p -= 97) {
      ASSERT_EQ(h.PositionOf("src", absl::StrCat("e", p), now), static_cast<uint64_t>(p));
    }
    if (position > 10001) {
      EXPECT_EQ(h.PositionOf("src", absl::StrCat("e", position - 10001), now), 0u);
    }
  }
  // Everything expires; the index starts over small and still works.
  h.index.Expire(kT0 + absl::Hours(1));
  EXPECT_EQ(h.index.size(), 0u);
  h.Insert("src", "again", position + 1, 1, kT0 + absl::Hours(1));
  EXPECT_EQ(h.PositionOf("src", "again", kT0 + absl::Hours(1)), position + 1);
}

TEST(DedupIndexTest, KeptKeysAndForEachUpToFollowTheEntries) {
  Harness h(absl::Minutes(1));
  for (uint64_t p = 1; p <= 5; ++p) h.Insert("s", absl::StrCat(p), p * 10, 1, kT0);
  std::vector<uint64_t> seen;
  h.index.ForEachUpTo(Position(15), Position(40),
                      [&](const DedupIndex::Entry& e) { seen.push_back(e.position.value()); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{20, 30, 40}));
  h.index.Keep(Position(20), "s", "2");
  ASSERT_NE(h.index.Kept(Position(20)), nullptr);
  EXPECT_EQ(h.index.Kept(Position(20))->second, "2");
  EXPECT_EQ(h.index.Kept(Position(30)), nullptr);
  h.index.Truncate(h.index.end() - 1);  // Drops position 50 only.
  EXPECT_NE(h.index.Kept(Position(20)), nullptr);
  h.index.Expire(kT0 + absl::Hours(1));
  EXPECT_EQ(h.index.Kept(Position(20)), nullptr) << "a kept key lives only as long as its entry";
}

TEST(DedupIndexTest, AZeroWindowRemembersNothing) {
  Harness off(absl::ZeroDuration());
  EXPECT_FALSE(off.index.enabled());
  off.Insert("s", "k", 1, 1, kT0);
  EXPECT_EQ(off.index.size(), 0u);
  EXPECT_FALSE(off.Find("s", "k", kT0).has_value());
}

}  // namespace
}  // namespace hookstream::storage
