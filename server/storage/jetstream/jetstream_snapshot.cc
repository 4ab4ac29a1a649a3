// JetStreamLog: START_LAST_PER_STREAM snapshots and from_time starts, from direct gets.
//
// A snapshot must be the latest event of each stream as of one head H, so that "snapshot, then
// everything after H" has no gap and no overlap. JetStream 2.9 cannot read "last message of a
// subject at or before H", so: read each stream's last message, take H as the highest position
// seen, then walk each stream forward (next message of its subject) while the next one is at or
// below H: what a stream received during the scan is then included up to H, and the rest comes
// live after H. Streams that appeared during the scan are picked up by listing the subjects again.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {
namespace {

// Positions of the snapshot's events; each read by direct get when its chunk is asked for.
class JetStreamSnapshotReader final : public SnapshotReader {
 public:
  JetStreamSnapshotReader(const JetStreamLog* log, Position head, std::vector<uint64_t> positions)
      : log_(log), head_(head), positions_(std::move(positions)) {}

  Position head() const override { return head_; }

  absl::StatusOr<std::vector<StoredEvent>> Next(const ReadLimits& limits) override {
    std::vector<StoredEvent> out;
    size_t bytes = 0;
    while (next_ < positions_.size() && out.size() < limits.max_events &&
           bytes < limits.max_bytes) {
      absl::StatusOr<RawMessage> raw = log_->DirectGet(positions_[next_++], nullptr, nullptr);
      if (absl::IsNotFound(raw.status())) continue;  // Deleted by retention since.
      if (!raw.ok()) return raw.status();
      absl::StatusOr<StoredEvent> ev = log_->ToStored(*std::move(raw));
      if (!ev.ok()) return ev.status();
      bytes += ev->bytes.size();
      out.push_back(*std::move(ev));
    }
    return out;
  }

 private:
  const JetStreamLog* const log_;
  const Position head_;
  const std::vector<uint64_t> positions_;  // Sorted.
  size_t next_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotReader>> JetStreamLog::OpenLastPerStream(
    absl::FunctionRef<bool(absl::string_view stream)> stream_filter) const {
  // subject -> position of its latest event at or below the snapshot head (0: none yet).
  absl::flat_hash_map<std::string, uint64_t> last;
  uint64_t snapshot_head = head().value();
  auto list_subjects = [&]() -> absl::Status {
    bool more = true;
    std::string after;
    while (more) {
      absl::StatusOr<std::vector<v1::StreamInfo>> page = ListStreams(
          after, 1000, [&](absl::string_view s) { return stream_filter(s); }, &more);
      if (!page.ok()) return page.status();
      for (const v1::StreamInfo& info : *page) {
        const std::string subject = StreamToSubject(subject_prefix(), info.stream());
        if (!last.contains(subject)) {
          last.emplace(subject, info.head_position());
          snapshot_head = std::max(snapshot_head, info.head_position());
        }
        after = info.stream();
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s = list_subjects(); !s.ok()) return s;
  // New streams since the first listing: their events up to the head are found by the walk.
  absl::flat_hash_map<std::string, uint64_t> before = last;
  if (absl::Status s = list_subjects(); !s.ok()) return s;
  for (auto& [subject, pos] : last) {
    if (!before.contains(subject)) pos = 0;
  }
  std::vector<uint64_t> positions;
  for (auto& [subject, pos] : last) {
    while (true) {
      absl::StatusOr<RawMessage> next = DirectGet(pos + 1, &subject, nullptr);
      if (absl::IsNotFound(next.status())) break;
      if (!next.ok()) return next.status();
      if (next->sequence > snapshot_head) break;
      pos = next->sequence;
    }
    if (pos != 0) positions.push_back(pos);
  }
  std::sort(positions.begin(), positions.end());
  // Live delivery on this server continues from its own head: it must have reached the
  // snapshot's, or the session would wait for positions this server has not seen yet.
  AwaitHead(Position(snapshot_head), options_.request_timeout);
  return std::make_unique<JetStreamSnapshotReader>(this, Position(snapshot_head),
                                                   std::move(positions));
}

absl::StatusOr<Position> JetStreamLog::FindByTime(absl::Time t) const {
  // JetStream stores messages in time order (one leader stamps them): binary search over
  // positions, each probe the first retained message at or after the probe position.
  uint64_t lo = trimmed_through().value() + 1;
  uint64_t hi = head().value() + 1;  // Answer in [lo, hi].
  const int64_t want = absl::ToUnixNanos(t);
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    absl::StatusOr<RawMessage> probe = DirectGet(mid, &all_subjects(), nullptr);
    if (absl::IsNotFound(probe.status()) || (probe.ok() && probe->sequence >= hi)) {
      hi = mid;
      continue;
    }
    if (!probe.ok()) return probe.status();
    if (probe->time_nanos >= want) {
      hi = mid;  // The answer is below mid, or mid itself (nothing in [mid, probe) is retained).
    } else {
      lo = probe->sequence + 1;
    }
  }
  return Position(lo);
}

}  // namespace hookstream::storage::jetstream
