// Webhook endpoints as the shim runs them: the config file's webhooks.endpoints validated and
// turned into typed options with defaults. Pure functions, no threads.
#ifndef HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_CONFIG_H_
#define HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hookstream/v1/config.pb.h"
#include "server/subscription/filter.h"

namespace hookstream::webhook {

enum class Format { kCloudEvents, kCloudEventsBinary, kZlm };
enum class Ordering { kPerStream, kFifo, kUnordered };
enum class OnExhausted { kDeadLetter, kHold };

// Svix's schedule: immediately, 5s, 5m, 30m, 2h, 5h, 10h, 10h.
std::vector<absl::Duration> DefaultRetrySchedule();

struct EndpointConfig {
  std::string name;
  std::string url;  // May hold "{hook}" (format zlm).
  std::vector<std::string> streams;
  std::vector<std::string> types;
  subscription::Filter filter;
  Format format = Format::kCloudEvents;
  // Decoded HMAC keys of the whsec_ secrets, in configured order.
  std::vector<std::string> secret_keys;
  Ordering ordering = Ordering::kPerStream;
  size_t max_in_flight = 16;
  absl::Duration timeout = absl::Seconds(15);
  std::vector<absl::Duration> retry_schedule = DefaultRetrySchedule();
  OnExhausted on_exhausted = OnExhausted::kDeadLetter;
};

// Validates every endpoint; errors name the key: config key "webhooks.endpoints[2].secrets[0]".
absl::StatusOr<std::vector<EndpointConfig>> EndpointsFromConfig(const v1::WebhooksConfig& config);

// "zlm", "cloudevents", ... for logs and the admin API.
const char* FormatName(Format f);
const char* OrderingName(Ordering o);

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_CONFIG_H_
