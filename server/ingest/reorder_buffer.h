// Restores hook_index order for one media server (DESIGN.md §6). ZLMediaKit numbers every hook
// it sends with one process-wide counter and sends a burst on parallel connections, so hooks
// arrive a few milliseconds out of order. Arrivals are held until the next expected index comes,
// or until the oldest held one has waited `window`; then the gap is given up (the index may
// never come: a hook sent elsewhere, a failed connection) and what is held goes in order.
//
// Indices below the next expected one are either late (their slot was skipped by a timeout a
// moment ago) or the sign of a new boot of the media server (its counter restarted at 0);
// Classify tells which. A fresh buffer is unanchored: it holds its first arrivals for one window
// and starts at the smallest, since the burst's first index may be behind them.
//
// Not thread-safe (the ingest holds its lock). Times come from the caller's clock.
#ifndef HOOKSTREAM_SERVER_INGEST_REORDER_BUFFER_H_
#define HOOKSTREAM_SERVER_INGEST_REORDER_BUFFER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace hookstream::ingest {

template <typename T>
class ReorderBuffer {
 public:
  enum class Verdict {
    kHold,     // Add it.
    kLate,     // Its slot was given up a moment ago: release it now, out of order.
    kNewBoot,  // Index went back (or repeats): the media server restarted.
  };

  ReorderBuffer(absl::Duration window, absl::Duration late_tolerance)
      : window_(window), late_tolerance_(late_tolerance) {}

  // Forget the position: the next arrivals anchor it again. Held items must be taken first.
  void Reset() {
    anchored_ = false;
    skipped_.clear();
  }
  // The next expected index is `last + 1` (state restored from the log).
  void AnchorAfter(uint64_t last) {
    anchored_ = true;
    next_ = last + 1;
    skipped_.clear();
  }

  Verdict Classify(uint64_t index, absl::Time now) {
    if (held_.count(index) != 0) return Verdict::kNewBoot;
    if (!anchored_ || index >= next_) return Verdict::kHold;
    while (!skipped_.empty() && skipped_.front().at + late_tolerance_ < now) skipped_.pop_front();
    for (const Skip& s : skipped_) {
      if (index >= s.from && index < s.to) return Verdict::kLate;
    }
    return Verdict::kNewBoot;
  }

  // Precondition: Classify(index) returned kHold.
  void Add(uint64_t index, T item, absl::Time now) {
    held_.emplace(index, Held{std::move(item), now});
  }

  // Appends to `out`, in index order, every item that may go at `now`.
  void Release(absl::Time now, std::vector<T>* out) {
    if (held_.empty()) return;
    if (!anchored_) {
      if (OldestArrival() + window_ > now) return;
      anchored_ = true;
      next_ = held_.begin()->first;
    }
    while (!held_.empty()) {
      auto first = held_.begin();
      if (first->first == next_) {
        out->push_back(std::move(first->second.item));
        held_.erase(first);
        ++next_;
        continue;
      }
      if (OldestArrival() + window_ > now) break;
      // Give up the gap [next_, first): the oldest held item has waited long enough.
      skipped_.push_back(Skip{next_, first->first, now});
      next_ = first->first;
    }
  }

  // Everything held, in index order (drain, or a new boot ends this one).
  void ReleaseAll(std::vector<T>* out) {
    for (auto& [index, h] : held_) out->push_back(std::move(h.item));
    if (!held_.empty()) {
      anchored_ = true;
      next_ = held_.rbegin()->first + 1;
    }
    held_.clear();
  }

  // When Release should next be called; nullopt when nothing is held.
  std::optional<absl::Time> NextDeadline() const {
    if (held_.empty()) return std::nullopt;
    return OldestArrival() + window_;
  }

  bool empty() const { return held_.empty(); }
  size_t size() const { return held_.size(); }
  bool anchored() const { return anchored_; }
  uint64_t next_index() const { return next_; }

 private:
  struct Held {
    T item;
    absl::Time arrived;
  };
  struct Skip {
    uint64_t from;  // [from, to)
    uint64_t to;
    absl::Time at;
  };

  absl::Time OldestArrival() const {
    absl::Time oldest = absl::InfiniteFuture();
    for (const auto& [index, h] : held_) oldest = std::min(oldest, h.arrived);
    return oldest;
  }

  const absl::Duration window_;
  const absl::Duration late_tolerance_;
  bool anchored_ = false;
  uint64_t next_ = 0;
  std::map<uint64_t, Held> held_;
  std::deque<Skip> skipped_;
};

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_REORDER_BUFFER_H_
