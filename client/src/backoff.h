// The retry delay sequence of BackoffOptions. Not thread-safe: one per retry loop.
#ifndef HOOKSTREAM_CLIENT_SRC_BACKOFF_H_
#define HOOKSTREAM_CLIENT_SRC_BACKOFF_H_

#include "absl/random/random.h"
#include "absl/time/time.h"
#include "hookstream/backoff.h"

namespace hookstream::client {

class Backoff {
 public:
  explicit Backoff(const BackoffOptions& options) : options_(options) {}

  // The delay before the next attempt; each call moves one step up.
  absl::Duration Next();
  // After a success: the next delay is `initial` again.
  void Reset() { attempt_ = 0; }
  // Failed attempts since the last Reset().
  int attempt() const { return attempt_; }

 private:
  BackoffOptions options_;
  int attempt_ = 0;
  absl::BitGen random_;
};

}  // namespace hookstream::client

#endif  // HOOKSTREAM_CLIENT_SRC_BACKOFF_H_
