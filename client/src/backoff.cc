#include "backoff.h"

#include <algorithm>
#include <cmath>

namespace hookstream::client {

absl::Status ValidateBackoff(const BackoffOptions& o) {
  if (o.initial <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backoff.initial must be positive");
  }
  if (o.max < o.initial) return absl::InvalidArgumentError("backoff.max must be >= initial");
  if (!(o.multiplier >= 1.0)) return absl::InvalidArgumentError("backoff.multiplier must be >= 1");
  if (!(o.jitter >= 0.0 && o.jitter <= 1.0)) {
    return absl::InvalidArgumentError("backoff.jitter must be in [0, 1]");
  }
  return absl::OkStatus();
}

absl::Duration Backoff::Next() {
  // Computed in double seconds and capped before it can overflow.
  const double exponent = std::min(attempt_, 64);
  ++attempt_;
  double seconds =
      absl::ToDoubleSeconds(options_.initial) * std::pow(options_.multiplier, exponent);
  seconds = std::min(seconds, absl::ToDoubleSeconds(options_.max));
  if (options_.jitter > 0) {
    seconds *= absl::Uniform(random_, 1.0 - options_.jitter, 1.0 + options_.jitter);
  }
  return absl::Seconds(seconds);
}

}  // namespace hookstream::client
