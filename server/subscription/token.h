// Resume tokens: opaque to clients, versioned, bound to one log, tamper-evident.
//
//   base64url( version(1) | log_id(16) | position(8, big-endian) | mac(12) )
//
// mac = HMAC-SHA256(token_key, version | log_id | position), truncated to 12 bytes. The token
// key is the log's secret, so a token cannot be forged, and a token of another log is told
// apart from a damaged one. Every delivered event carries a token, so Encode is on the hot
// path (commit fan-out and catch-up): the HMAC's keyed inner and outer hash states are
// computed once here, and each token costs two SHA-256 compressions, not a full HMAC setup.
// Thread-safe: immutable after construction.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_TOKEN_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_TOKEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/common/types.h"

namespace hookstream::subscription {

class TokenCodec {
 public:
  // `log_id`: 16 raw bytes; `key`: the log's secret.
  TokenCodec(std::string log_id, std::string key);

  std::string Encode(Position position) const;

  // The position a token stands for. INVALID_ARGUMENT: not a token, damaged or forged.
  // FAILED_PRECONDITION: a token of another log (the message names both log ids).
  absl::StatusOr<Position> Decode(absl::string_view token) const;

  const std::string& log_id() const { return log_id_; }
  // The log id as clients see it (32 hex digits).
  const std::string& log_id_text() const { return log_id_text_; }

 private:
  // The first 12 bytes of HMAC-SHA256(key, body) into `out`.
  void Mac(absl::string_view body, unsigned char* out) const;

  std::string log_id_;
  std::string log_id_text_;
  // SHA-256 states after absorbing (key ^ ipad) and (key ^ opad): HMAC's keyed prefixes.
  struct MacState;
  std::shared_ptr<const MacState> mac_;
};

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_TOKEN_H_
