// Strong types for the numbers hookstream moves around, so that a Position is not a Seq is not a
// count (Redpanda's named_type). Header-only, no threads, trivially copyable.
#ifndef HOOKSTREAM_SERVER_COMMON_TYPES_H_
#define HOOKSTREAM_SERVER_COMMON_TYPES_H_

#include <cstdint>
#include <functional>
#include <ostream>

namespace hookstream {

template <typename Tag>
class NamedU64 {
 public:
  constexpr NamedU64() = default;
  constexpr explicit NamedU64(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }

  constexpr NamedU64 next() const { return NamedU64(v_ + 1); }
  constexpr NamedU64 prev() const { return NamedU64(v_ - 1); }

  friend constexpr bool operator==(NamedU64 a, NamedU64 b) { return a.v_ == b.v_; }
  friend constexpr bool operator!=(NamedU64 a, NamedU64 b) { return a.v_ != b.v_; }
  friend constexpr bool operator<(NamedU64 a, NamedU64 b) { return a.v_ < b.v_; }
  friend constexpr bool operator<=(NamedU64 a, NamedU64 b) { return a.v_ <= b.v_; }
  friend constexpr bool operator>(NamedU64 a, NamedU64 b) { return a.v_ > b.v_; }
  friend constexpr bool operator>=(NamedU64 a, NamedU64 b) { return a.v_ >= b.v_; }
  friend std::ostream& operator<<(std::ostream& os, NamedU64 v) { return os << v.v_; }
  template <typename H>
  friend H AbslHashValue(H h, NamedU64 v) {
    return H::combine(std::move(h), v.v_);
  }

 private:
  uint64_t v_ = 0;
};

// Place in the log, strictly increasing across all streams; the first event is at 1, and 0 means
// "before everything".
using Position = NamedU64<struct PositionTag>;
// Per-stream sequence number: 1, 2, 3, ... dense; 0 means "the stream has no events".
using Seq = NamedU64<struct SeqTag>;

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_COMMON_TYPES_H_
