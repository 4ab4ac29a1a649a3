#include "server/api/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/duration.pb.h"

namespace hookstream::api {
namespace {

std::array<unsigned char, 32> Digest(absl::string_view s) {
  std::array<unsigned char, 32> d;
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// google.rpc.RetryInfo {google.protobuf.Duration retry_delay = 1;}, serialized by hand: the
// message is one length-delimited field 1 holding the Duration. Clients that read
// grpc-status-details-bin find it under its usual type URL.
std::string RetryInfoBytes(absl::Duration delay) {
  google::protobuf::Duration d;
  const int64_t ns = absl::ToInt64Nanoseconds(delay);
  d.set_seconds(ns / 1'000'000'000);
  d.set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  const std::string inner = d.SerializeAsString();  // A few bytes: the length fits one byte.
  std::string out;
  out.push_back('\x0a');
  out.push_back(static_cast<char>(inner.size()));
  out.append(inner);
  return out;
}

std::string ScopeList(const std::vector<StreamPattern>& scopes) {
  std::vector<std::string> names;
  for (const StreamPattern& p : scopes) names.push_back(p.text());
  return absl::StrJoin(names, ", ");
}

absl::string_view RightName(Right r) {
  switch (r) {
    case kRightPublish:
      return "publish";
    case kRightSubscribe:
      return "subscribe";
    case kRightAdmin:
      return "admin";
  }
  return "?";
}

}  // namespace

std::optional<Right> ParseRight(absl::string_view name) {
  if (name == "publish") return kRightPublish;
  if (name == "subscribe") return kRightSubscribe;
  if (name == "admin") return kRightAdmin;
  return std::nullopt;
}

RateLimiter::RateLimiter(double rate, uint64_t burst, Clock* clock)
    : rate_(rate),
      burst_(burst != 0 ? static_cast<double>(burst) : std::max(1.0, rate)),
      clock_(clock),
      available_(burst_),
      last_(clock->Now()) {}

absl::Status RateLimiter::Take(uint64_t n, absl::string_view what) {
  if (rate_ <= 0) return absl::OkStatus();
  if (static_cast<double>(n) > burst_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": a request of ", n, " events is larger than limits.publish_burst_events (",
        static_cast<uint64_t>(burst_), "): send smaller batches"));
  }
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  if (now > last_) {
    available_ = std::min(burst_, available_ + absl::ToDoubleSeconds(now - last_) * rate_);
    last_ = now;
  }
  if (available_ >= static_cast<double>(n)) {
    available_ -= static_cast<double>(n);
    return absl::OkStatus();
  }
  const absl::Duration wait =
      absl::Ceil(absl::Seconds((static_cast<double>(n) - available_) / rate_),
                 absl::Milliseconds(1));
  absl::Status s = absl::ResourceExhaustedError(
      absl::StrCat(what, ": publish rate limit of ", rate_,
                   " events/s (limits.publish_events_per_second) reached; retry in ",
                   absl::FormatDuration(wait)));
  s.SetPayload("type.googleapis.com/google.rpc.RetryInfo", absl::Cord(RetryInfoBytes(wait)));
  return s;
}

Principal::Principal(std::string name, uint32_t rights, std::vector<StreamPattern> scopes,
                     absl::Time expires_at, const AuthOptions& options)
    : name_(std::move(name)),
      rights_(rights),
      scopes_(std::move(scopes)),
      expires_at_(expires_at),
      publish_rate_(options.publish_events_per_second, options.publish_burst_events,
                    options.clock) {}

bool Principal::MayAccess(absl::string_view stream) const {
  if (scopes_.empty()) return true;
  for (const StreamPattern& p : scopes_) {
    if (p.Matches(stream)) return true;
  }
  return false;
}

absl::Status Principal::Require(Right right, absl::string_view rpc) const {
  if (Has(right)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(rpc, " needs the \"", RightName(right),
                                                  "\" right, which token \"", name_,
                                                  "\" does not have"));
}

absl::Status Principal::RequireStream(absl::string_view stream, absl::string_view field) const {
  if (MayAccess(stream)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": stream \"", stream,
                                                  "\" is outside the streams token \"", name_,
                                                  "\" may use (", ScopeList(scopes_), ")"));
}

Authenticator::Authenticator(AuthOptions options) : options_(std::move(options)) {
  for (const TokenSpec& t : options_.tokens) {
    Entry e;
    e.digest = Digest(t.secret);
    e.principal = std::make_unique<Principal>(t.name, t.rights, t.scopes, t.expires_at, options_);
    tokens_.push_back(std::move(e));
  }
  anonymous_ = std::make_unique<Principal>(
      "anonymous", kRightPublish | kRightSubscribe | kRightAdmin, std::vector<StreamPattern>{},
      absl::InfiniteFuture(), options_);
}

absl::StatusOr<Principal*> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (tokens_.empty()) return anonymous_.get();
  if (!authorization) {
    return absl::UnauthenticatedError(
        "missing \"authorization: Bearer <token>\" metadata (this server requires a token)");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (authorization->size() <= kBearer.size() ||
      !absl::StartsWithIgnoreCase(*authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be \"Bearer <token>\"");
  }
  const std::array<unsigned char, 32> presented = Digest(authorization->substr(kBearer.size()));
  // Compare with every token, without stopping at a match.
  Principal* found = nullptr;
  for (const Entry& e : tokens_) {
    const bool equal = CRYPTO_memcmp(presented.data(), e.digest.data(), presented.size()) == 0;
    if (equal) found = e.principal.get();
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown token");
  if (options_.clock->Now() >= found->expires_at()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token \"", found->name(), "\" expired at ", absl::FormatTime(found->expires_at())));
  }
  return found;
}

}  // namespace hookstream::api
