// Access control for the gRPC API: bearer tokens from the config file (DESIGN.md §9), each with
// rights (publish, subscribe, admin), stream-pattern scopes, an optional expiry and a publish
// rate budget.
//
// Callers send `authorization: Bearer <token>` metadata. With no tokens configured every caller
// is the anonymous principal, which has every right on every stream (the loopback default).
// Errors: UNAUTHENTICATED for a missing, unknown or expired token; PERMISSION_DENIED for a right
// or stream the token lacks; RESOURCE_EXHAUSTED (with a google.rpc.RetryInfo) past the rate.
//
// Secrets are kept only as SHA-256 digests and compared with CRYPTO_memcmp against every
// configured token, so neither the time taken nor an early exit tells which bytes matched.
//
// Thread-safety: immutable after construction except the rate buckets, which lock. Principals
// live as long as their Authenticator.
#ifndef HOOKSTREAM_SERVER_API_AUTH_H_
#define HOOKSTREAM_SERVER_API_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/common/names.h"

namespace hookstream::api {

enum Right : uint32_t {
  kRightPublish = 1,
  kRightSubscribe = 2,
  kRightAdmin = 4,
};

// Parses "publish" | "subscribe" | "admin".
std::optional<Right> ParseRight(absl::string_view name);

// A token bucket: `rate` units per second, at most `burst` saved up. Rate 0: unlimited.
class RateLimiter {
 public:
  RateLimiter(double rate, uint64_t burst, Clock* clock);
  // Takes `n` units, or fails with RESOURCE_EXHAUSTED saying when to retry (a RetryInfo
  // payload) and taking nothing. `what` names the budget in the message.
  absl::Status Take(uint64_t n, absl::string_view what);

 private:
  const double rate_;
  const double burst_;
  Clock* const clock_;
  absl::Mutex mu_;
  double available_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

struct TokenSpec {
  std::string name;  // Shown in logs and metrics; never the secret.
  std::string secret;
  uint32_t rights = 0;                // Right bits.
  std::vector<StreamPattern> scopes;  // Empty: every stream.
  absl::Time expires_at = absl::InfiniteFuture();
};

struct AuthOptions {
  std::vector<TokenSpec> tokens;  // Empty: authentication off.
  // Publish budget of each token (events per second; 0: none) and its bucket size.
  double publish_events_per_second = 0;
  uint64_t publish_burst_events = 0;  // 0: max(1, rate).
  Clock* clock = Clock::Real();
};

class Principal {
 public:
  Principal(std::string name, uint32_t rights, std::vector<StreamPattern> scopes,
            absl::Time expires_at, const AuthOptions& options);

  const std::string& name() const { return name_; }
  bool Has(Right right) const { return (rights_ & right) != 0; }
  // Empty: every stream.
  const std::vector<StreamPattern>& scopes() const { return scopes_; }
  bool MayAccess(absl::string_view stream) const;
  absl::Time expires_at() const { return expires_at_; }
  RateLimiter& publish_rate() { return publish_rate_; }

  // PERMISSION_DENIED naming `rpc` and the missing right.
  absl::Status Require(Right right, absl::string_view rpc) const;
  // PERMISSION_DENIED naming `field` when `stream` is outside the scopes.
  absl::Status RequireStream(absl::string_view stream, absl::string_view field) const;

 private:
  const std::string name_;
  const uint32_t rights_;
  const std::vector<StreamPattern> scopes_;
  const absl::Time expires_at_;
  RateLimiter publish_rate_;
};

class Authenticator {
 public:
  explicit Authenticator(AuthOptions options);

  bool enabled() const { return !tokens_.empty(); }

  // The principal for an `authorization` header value (nullopt: none sent).
  absl::StatusOr<Principal*> Authenticate(std::optional<absl::string_view> authorization) const;

 private:
  struct Entry {
    std::array<unsigned char, 32> digest;
    std::unique_ptr<Principal> principal;
  };
  const AuthOptions options_;
  std::vector<Entry> tokens_;
  std::unique_ptr<Principal> anonymous_;
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_AUTH_H_
