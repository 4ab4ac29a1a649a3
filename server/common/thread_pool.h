// A fixed set of threads running queued tasks in FIFO order: the reader pool of catching-up
// subscribers. Schedule() is thread-safe; the destructor runs what is queued, then joins.
#ifndef HOOKSTREAM_SERVER_COMMON_THREAD_POOL_H_
#define HOOKSTREAM_SERVER_COMMON_THREAD_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace hookstream {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(absl::AnyInvocable<void() &&> task);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_COMMON_THREAD_POOL_H_
