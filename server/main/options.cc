#include "server/main/options.h"

#include "server/common/config.h"
#include "absl/strings/str_cat.h"
#include "server/main/security_options.h"
#include "server/main/storage_options.h"

namespace hookstream {
namespace {

}  // namespace

absl::StatusOr<ServerOptions> ServerOptionsFromConfig(const v1::Config& config) {
  ServerOptions o;
  o.log.data_dir = config.data_dir().empty() ? "./data" : config.data_dir();
  if (!config.grpc_listen().empty()) o.grpc_listen = config.grpc_listen();
  o.http_listen = config.http_listen();
  const v1::HttpConfig& http = config.http();
  if (http.max_body_bytes() != 0) o.http.max_body_bytes = http.max_body_bytes();
  if (http.has_idle_timeout()) {
    o.http.idle_timeout = ConfigDuration(http.idle_timeout());
    if (o.http.idle_timeout < absl::Seconds(1)) return BadConfigValue("http.idle_timeout", "at least 1s");
  }
  if (http.max_connections() != 0) o.http.max_connections = http.max_connections();
  if (http.threads() != 0) {
    if (http.threads() > 64) return BadConfigValue("http.threads", "at most 64");
    o.http.threads = static_cast<int>(http.threads());
  }
  absl::StatusOr<ingest::ZlmOptions> zlm = ingest::ZlmOptionsFromConfig(config.zlm());
  if (!zlm.ok()) return zlm.status();
  o.zlm = *std::move(zlm);

  absl::StatusOr<std::vector<webhook::EndpointConfig>> endpoints =
      webhook::EndpointsFromConfig(config.webhooks());
  if (!endpoints.ok()) return endpoints.status();
  o.webhooks.endpoints = *std::move(endpoints);

  const v1::LimitsConfig& limits = config.limits();
  if (limits.max_event_bytes() != 0) {
    o.api.publish.max_event_bytes = limits.max_event_bytes();
  }
  if (limits.max_request_bytes() != 0) {
    if (limits.max_request_bytes() > (1u << 30)) {
      return BadConfigValue("limits.max_request_bytes", "at most 1073741824 (1 GiB)");
    }
    o.max_message_bytes = limits.max_request_bytes();
  }
  if (o.api.publish.max_event_bytes > o.max_message_bytes) {
    return BadConfigValue("limits.max_event_bytes",
                    absl::StrCat("must not exceed limits.max_request_bytes (", o.max_message_bytes,
                                 ")"));
  }
  if (limits.max_subscribers() != 0) o.hub.max_subscribers = limits.max_subscribers();
  if (absl::Status s = ApplySecurityConfig(config, &o); !s.ok()) return s;
  if (limits.subscriber_buffer_bytes() != 0) {
    o.hub.session.buffer_bytes = limits.subscriber_buffer_bytes();
  }

  if (config.dedup().has_window()) o.log.dedup_window = ConfigDuration(config.dedup().window());

  const v1::RetentionConfig& ret = config.retention();
  if (ret.has_max_age()) o.log.retention.max_age = ConfigDuration(ret.max_age());
  o.log.retention.max_bytes = ret.max_bytes();
  o.log.retention.keep_last_per_stream = ret.keep_last_per_stream();
  o.log.retention.max_events_per_stream = ret.max_events_per_stream();
  if (ret.has_check_interval()) {
    o.log.retention.check_interval = ConfigDuration(ret.check_interval());
    if (o.log.retention.check_interval < absl::Milliseconds(10)) {
      return BadConfigValue("retention.check_interval", "at least 10ms");
    }
  }

  const v1::SubscribeConfig& sub = config.subscribe();
  if (sub.has_default_heartbeat_interval()) {
    o.hub.session.heartbeat_interval = ConfigDuration(sub.default_heartbeat_interval());
  }
  if (sub.has_checkpoint_interval()) {
    o.hub.session.checkpoint_interval = ConfigDuration(sub.checkpoint_interval());
    if (o.hub.session.checkpoint_interval < absl::Milliseconds(10)) {
      return BadConfigValue("subscribe.checkpoint_interval", "at least 10ms");
    }
  }
  if (sub.live_ring_bytes() != 0) o.hub.ring_bytes = sub.live_ring_bytes();
  if (sub.reader_threads() != 0) {
    if (sub.reader_threads() > 64) return BadConfigValue("subscribe.reader_threads", "at most 64");
    o.hub.reader_threads = static_cast<int>(sub.reader_threads());
  }
  if (absl::Status s = ApplyStorageConfig(config, &o); !s.ok()) return s;
  return o;
}

}  // namespace hookstream
