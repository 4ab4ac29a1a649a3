#include "server/api/validation.h"

#include "absl/strings/str_cat.h"
#include "server/common/names.h"

namespace hookstream::api {
namespace {

// google.protobuf.Timestamp's valid range: 0001-01-01 to 9999-12-31.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

absl::Status ValidateEvent(const v1::EventInput& e, const std::string& f,
                           const PublishLimits& limits) {
  if (absl::Status s = ValidateStreamName(e.stream(), absl::StrCat(f, ".stream")); !s.ok()) return s;
  if (absl::Status s = ValidateName(e.type(), absl::StrCat(f, ".type"), false); !s.ok()) return s;
  if (absl::Status s = ValidateName(e.id(), absl::StrCat(f, ".id"), true); !s.ok()) return s;
  if (absl::Status s = ValidateName(e.source(), absl::StrCat(f, ".source"), true); !s.ok()) return s;
  if (absl::Status s = ValidateName(e.content_type(), absl::StrCat(f, ".content_type"), true);
      !s.ok()) {
    return s;
  }
  for (const auto& [key, value] : e.attributes()) {
    if (absl::Status s = ValidateName(key, absl::StrCat(f, ".attributes key"), false); !s.ok()) {
      return s;
    }
  }
  if (e.has_time()) {
    const auto& t = e.time();
    if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
        t.nanos() > 999'999'999) {
      return absl::InvalidArgumentError(absl::StrCat(f, ".time: not a valid timestamp"));
    }
  }
  const size_t bytes = e.ByteSizeLong();
  if (bytes > limits.max_event_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(f, ": event is ", bytes,
                                                   " bytes, the limit is ",
                                                   limits.max_event_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePublishRequest(const v1::PublishRequest& request,
                                    const PublishLimits& limits) {
  if (request.events_size() == 0) {
    return absl::InvalidArgumentError("events: a publish needs at least one event");
  }
  if (static_cast<size_t>(request.events_size()) > limits.max_events_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("events: ", request.events_size(),
                                                   " events in one request, at most ",
                                                   limits.max_events_per_request));
  }
  for (int i = 0; i < request.events_size(); ++i) {
    if (absl::Status s = ValidateEvent(request.events(i), absl::StrCat("events[", i, "]"), limits);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace hookstream::api
