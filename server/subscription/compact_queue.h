// A FIFO for a session's pending messages that costs no memory while empty.
//
// std::deque allocates a 512-byte chunk and its map as soon as it is constructed, and most
// subscribers are idle most of the time: with ten thousand of them that is ~6 MB holding
// nothing. This queue is a vector read from a moving head: nothing is allocated until the first
// push, the dead prefix is dropped once it is at least half of the storage (amortized O(1) per
// element), and storage beyond a small working set is released whenever the queue drains.
// Popped elements are reset at once so that what they hold (shared events) is freed promptly.
// Not thread-safe: the session's lock guards it.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_COMPACT_QUEUE_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_COMPACT_QUEUE_H_

#include <cstddef>
#include <utility>
#include <vector>

namespace hookstream::subscription {

template <typename T>
class CompactQueue {
 public:
  // Capacity kept across drains (a live session refills right away); more is released.
  static constexpr size_t kKeptCapacity = 64;

  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  size_t capacity() const { return items_.capacity(); }

  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }

  void push_back(T item) {
    if (head_ > 0 && head_ >= items_.size() / 2) Compact();
    items_.push_back(std::move(item));
  }

  void pop_front() {
    items_[head_] = T();
    if (++head_ == items_.size()) clear();
  }

  // Frees the storage of an empty queue (for a session that went idle).
  void ReleaseIfEmpty() {
    if (empty()) {
      head_ = 0;
      std::vector<T>().swap(items_);
    }
  }

  void clear() {
    head_ = 0;
    if (items_.capacity() > kKeptCapacity) {
      std::vector<T>().swap(items_);
    } else {
      items_.clear();
    }
  }

 private:
  // Moves the live elements to the front of the storage.
  void Compact() {
    items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }

  std::vector<T> items_;
  size_t head_ = 0;  // items_[0, head_) were popped.
};

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_COMPACT_QUEUE_H_
