// Checks of publish input before anything reaches the log: names, sizes, timestamps. Every
// error is INVALID_ARGUMENT naming the field (events[i].stream, ...). Pure functions.
#ifndef HOOKSTREAM_SERVER_API_VALIDATION_H_
#define HOOKSTREAM_SERVER_API_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "hookstream/v1/event_stream.pb.h"

namespace hookstream::api {

struct PublishLimits {
  size_t max_event_bytes = 1 << 20;
  size_t max_events_per_request = 10000;
};

absl::Status ValidatePublishRequest(const v1::PublishRequest& request, const PublishLimits& limits);

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_VALIDATION_H_
