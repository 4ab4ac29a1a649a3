// Retry pacing shared by the Subscriber and the Publisher: exponential backoff with jitter.
#ifndef HOOKSTREAM_CLIENT_BACKOFF_H_
#define HOOKSTREAM_CLIENT_BACKOFF_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace hookstream::client {

// Delay n (from 0) is min(initial * multiplier^n, max), then scaled by a random factor in
// [1 - jitter, 1 + jitter] so that clients cut off together do not come back together.
struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(10);
  double multiplier = 2.0;
  double jitter = 0.2;  // In [0, 1].
};

// INVALID_ARGUMENT naming the field when `options` cannot work.
absl::Status ValidateBackoff(const BackoffOptions& options);

}  // namespace hookstream::client

#endif  // HOOKSTREAM_CLIENT_BACKOFF_H_
