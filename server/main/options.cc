#include "server/main/options.h"

#include "absl/strings/str_cat.h"
#include "server/main/security_options.h"
#include "server/main/storage_options.h"

namespace hookstream {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status BadValue(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\": ", why));
}

}  // namespace

absl::StatusOr<ServerOptions> ServerOptionsFromConfig(const v1::Config& config) {
  ServerOptions o;
  o.log.data_dir = config.data_dir().empty() ? "./data" : config.data_dir();
  if (!config.grpc_listen().empty()) o.grpc_listen = config.grpc_listen();
  o.http_listen = config.http_listen();
  const v1::HttpConfig& http = config.http();
  if (http.max_body_bytes() != 0) o.http.max_body_bytes = http.max_body_bytes();
  if (http.has_idle_timeout()) {
    o.http.idle_timeout = FromProto(http.idle_timeout());
    if (o.http.idle_timeout < absl::Seconds(1)) return BadValue("http.idle_timeout", "at least 1s");
  }
  if (http.max_connections() != 0) o.http.max_connections = http.max_connections();
  if (http.threads() != 0) {
    if (http.threads() > 64) return BadValue("http.threads", "at most 64");
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
      return BadValue("limits.max_request_bytes", "at most 1073741824 (1 GiB)");
    }
    o.max_message_bytes = limits.max_request_bytes();
  }
  if (o.api.publish.max_event_bytes > o.max_message_bytes) {
    return BadValue("limits.max_event_bytes",
                    absl::StrCat("must not exceed limits.max_request_bytes (", o.max_message_bytes,
                                 ")"));
  }
  if (limits.max_subscribers() != 0) o.hub.max_subscribers = limits.max_subscribers();
  if (absl::Status s = ApplySecurityConfig(config, &o); !s.ok()) return s;
  if (limits.subscriber_buffer_bytes() != 0) {
    o.hub.session.buffer_bytes = limits.subscriber_buffer_bytes();
  }

  if (config.dedup().has_window()) o.log.dedup_window = FromProto(config.dedup().window());

  const v1::RetentionConfig& ret = config.retention();
  if (ret.has_max_age()) o.log.retention.max_age = FromProto(ret.max_age());
  o.log.retention.max_bytes = ret.max_bytes();
  o.log.retention.keep_last_per_stream = ret.keep_last_per_stream();
  o.log.retention.max_events_per_stream = ret.max_events_per_stream();
  if (ret.has_check_interval()) {
    o.log.retention.check_interval = FromProto(ret.check_interval());
    if (o.log.retention.check_interval < absl::Milliseconds(10)) {
      return BadValue("retention.check_interval", "at least 10ms");
    }
  }

  const v1::SubscribeConfig& sub = config.subscribe();
  if (sub.has_default_heartbeat_interval()) {
    o.hub.session.heartbeat_interval = FromProto(sub.default_heartbeat_interval());
  }
  if (sub.has_checkpoint_interval()) {
    o.hub.session.checkpoint_interval = FromProto(sub.checkpoint_interval());
    if (o.hub.session.checkpoint_interval < absl::Milliseconds(10)) {
      return BadValue("subscribe.checkpoint_interval", "at least 10ms");
    }
  }
  if (sub.live_ring_bytes() != 0) o.hub.ring_bytes = sub.live_ring_bytes();
  if (sub.reader_threads() != 0) {
    if (sub.reader_threads() > 64) return BadValue("subscribe.reader_threads", "at most 64");
    o.hub.reader_threads = static_cast<int>(sub.reader_threads());
  }
  if (absl::Status s = ApplyStorageConfig(config, &o); !s.ok()) return s;
  return o;
}

}  // namespace hookstream
