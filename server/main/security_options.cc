#include "server/main/security_options.h"

#include <cmath>
#include <string>

#include "server/common/config.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace hookstream {
namespace {

constexpr size_t kMinTokenBytes = 16;

absl::StatusOr<api::TokenSpec> TokenFromConfig(const v1::AuthToken& t, int i) {
  const std::string key = absl::StrCat("auth.tokens[", i, "]");
  api::TokenSpec spec;
  spec.name = t.name().empty() ? absl::StrCat("token", i) : t.name();
  if (t.token().size() < kMinTokenBytes) {
    return BadConfigValue(absl::StrCat(key, ".token"),
                    absl::StrCat("at least ", kMinTokenBytes, " bytes (use a random secret)"));
  }
  spec.secret = t.token();
  if (t.rights().empty()) {
    return BadConfigValue(absl::StrCat(key, ".rights"), "list at least one of publish, subscribe, admin");
  }
  for (int r = 0; r < t.rights_size(); ++r) {
    std::optional<api::Right> right = api::ParseRight(t.rights(r));
    if (!right) {
      return BadConfigValue(absl::StrCat(key, ".rights[", r, "]"),
                      absl::StrCat("\"", t.rights(r), "\" is not one of publish, subscribe, admin"));
    }
    spec.rights |= *right;
  }
  for (int s = 0; s < t.streams_size(); ++s) {
    absl::StatusOr<StreamPattern> p =
        StreamPattern::Parse(t.streams(s), absl::StrCat("config key \"", key, ".streams[", s, "]\""));
    if (!p.ok()) return p.status();
    spec.scopes.push_back(*std::move(p));
  }
  if (!t.expires_at().empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, t.expires_at(), &spec.expires_at, &err)) {
      return BadConfigValue(absl::StrCat(key, ".expires_at"),
                      absl::StrCat("\"", t.expires_at(),
                                   "\" is not an RFC 3339 time such as 2027-01-31T00:00:00Z"));
    }
  }
  return spec;
}

}  // namespace

absl::Status ApplySecurityConfig(const v1::Config& config, ServerOptions* o) {
  absl::flat_hash_set<std::string> secrets;
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.auth().tokens_size(); ++i) {
    absl::StatusOr<api::TokenSpec> spec = TokenFromConfig(config.auth().tokens(i), i);
    if (!spec.ok()) return spec.status();
    if (!secrets.insert(spec->secret).second) {
      return BadConfigValue(absl::StrCat("auth.tokens[", i, "].token"), "the same token is listed twice");
    }
    if (!names.insert(spec->name).second) {
      return BadConfigValue(absl::StrCat("auth.tokens[", i, "].name"),
                      absl::StrCat("\"", spec->name, "\" is used by another token"));
    }
    o->api.auth.tokens.push_back(*std::move(spec));
  }

  const v1::TlsConfig& tls = config.tls();
  if (tls.cert_file().empty() != tls.key_file().empty()) {
    return BadConfigValue(tls.cert_file().empty() ? "tls.cert_file" : "tls.key_file",
                    "tls.cert_file and tls.key_file must be set together");
  }
  if (!tls.client_ca_file().empty() && tls.cert_file().empty()) {
    return BadConfigValue("tls.client_ca_file", "needs tls.cert_file and tls.key_file");
  }
  o->tls.cert_file = tls.cert_file();
  o->tls.key_file = tls.key_file();
  o->tls.client_ca_file = tls.client_ca_file();

  const v1::LimitsConfig& limits = config.limits();
  o->api.connections.max_connections = limits.max_connections();
  o->api.connections.max_subscribers_per_connection = limits.max_subscribers_per_connection();
  if (limits.max_concurrent_streams() > (1u << 30)) {
    return BadConfigValue("limits.max_concurrent_streams", "at most 1073741824");
  }
  o->max_concurrent_streams = static_cast<int>(limits.max_concurrent_streams());
  if (limits.publish_events_per_second() < 0 || !std::isfinite(limits.publish_events_per_second())) {
    return BadConfigValue("limits.publish_events_per_second", "must be 0 (no limit) or positive");
  }
  o->api.auth.publish_events_per_second = limits.publish_events_per_second();
  if (limits.publish_burst_events() != 0 && limits.publish_events_per_second() == 0) {
    return BadConfigValue("limits.publish_burst_events", "needs limits.publish_events_per_second");
  }
  o->api.auth.publish_burst_events = limits.publish_burst_events();
  if (limits.has_max_connection_idle()) {
    const absl::Duration idle = absl::Seconds(limits.max_connection_idle().seconds()) +
                                absl::Nanoseconds(limits.max_connection_idle().nanos());
    if (idle != absl::ZeroDuration() && idle < absl::Seconds(1)) {
      return BadConfigValue("limits.max_connection_idle", "0s (never) or at least 1s");
    }
    if (idle > absl::Hours(24 * 24)) return BadConfigValue("limits.max_connection_idle", "at most 576h");
    o->max_connection_idle = idle;
  }
  return absl::OkStatus();
}

}  // namespace hookstream
