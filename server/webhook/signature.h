// Standard Webhooks signatures (https://www.standardwebhooks.com): secrets "whsec_<base64>",
// signature "v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">". Pure functions.
#ifndef HOOKSTREAM_SERVER_WEBHOOK_SIGNATURE_H_
#define HOOKSTREAM_SERVER_WEBHOOK_SIGNATURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hookstream::webhook {

// The HMAC key of a "whsec_<base64>" secret; INVALID_ARGUMENT saying what is wrong.
absl::StatusOr<std::string> DecodeSecret(absl::string_view secret);

// "v1,<base64 signature>" for one key.
std::string Sign(absl::string_view key, absl::string_view msg_id, int64_t timestamp,
                 absl::string_view body);

// The webhook-signature header value: one "v1,..." per key, separated by spaces (rotation).
std::string SignatureHeader(const std::vector<std::string>& keys, absl::string_view msg_id,
                            int64_t timestamp, absl::string_view body);

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_SIGNATURE_H_
