#include "server/ingest/zlm_options.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "nlohmann/json.hpp"
#include "server/common/names.h"

namespace hookstream::ingest {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status BadValue(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config key \"zlm.", key, "\": ", why));
}

Decision ToDecision(v1::ZlmPolicy::Decision d, Decision fallback) {
  switch (d) {
    case v1::ZlmPolicy::allow:
      return Decision::kAllow;
    case v1::ZlmPolicy::deny:
      return Decision::kDeny;
    default:
      return fallback;
  }
}

// The set fields of ZlmPublishOptions as a JSON object, by field name.
std::string PublishOptionsJson(const v1::ZlmPublishOptions& o) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const google::protobuf::Descriptor* d = o.GetDescriptor();
  const google::protobuf::Reflection* r = o.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (!r->HasField(o, f)) continue;
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
        out[f->name()] = r->GetBool(o, f);
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_INT32:
        out[f->name()] = r->GetInt32(o, f);
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
        out[f->name()] = r->GetUInt32(o, f);
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        out[f->name()] = r->GetString(o, f);
        break;
      default:
        break;
    }
  }
  return out.dump();
}

}  // namespace

absl::StatusOr<ZlmOptions> ZlmOptionsFromConfig(const v1::ZlmConfig& c) {
  ZlmOptions o;
  for (const auto& [server, token] : c.tokens()) {
    if (server.empty()) return BadValue("tokens", "a media server id must not be empty");
    if (token.empty()) {
      return BadValue(absl::StrCat("tokens.", server), "the token must not be empty");
    }
    o.tokens[server] = token;
  }
  if (c.has_reorder_window()) {
    o.reorder_window = FromProto(c.reorder_window());
    if (o.reorder_window > absl::Seconds(5)) return BadValue("reorder_window", "at most 5s");
  }
  if (c.has_dedup_window()) {
    o.dedup_window = FromProto(c.dedup_window());
    if (o.dedup_window > absl::Hours(1)) return BadValue("dedup_window", "at most 1h");
  }
  if (c.has_keepalive_timeout()) {
    o.keepalive_timeout = FromProto(c.keepalive_timeout());
    if (o.keepalive_timeout != absl::ZeroDuration() && o.keepalive_timeout < absl::Seconds(1)) {
      return BadValue("keepalive_timeout", "at least 1s (or 0s for 3 x hook.alive_interval)");
    }
  }
  if (c.has_storage_timeout()) {
    o.storage_timeout = FromProto(c.storage_timeout());
    if (o.storage_timeout < absl::Milliseconds(10) || o.storage_timeout > absl::Seconds(60)) {
      return BadValue("storage_timeout", "between 10ms and 60s");
    }
  }
  if (c.has_snapshot_interval()) {
    o.snapshot_interval = FromProto(c.snapshot_interval());
    if (o.snapshot_interval < absl::Seconds(1)) {
      return BadValue("snapshot_interval", "at least 1s");
    }
  }
  o.on_publish_json = PublishOptionsJson(c.on_publish());
  const v1::ZlmPolicy& p = c.policy();
  o.policy.on_publish = ToDecision(p.on_publish(), o.policy.on_publish);
  o.policy.on_play = ToDecision(p.on_play(), o.policy.on_play);
  o.policy.on_rtsp_realm = ToDecision(p.on_rtsp_realm(), o.policy.on_rtsp_realm);
  o.policy.on_rtsp_auth = ToDecision(p.on_rtsp_auth(), o.policy.on_rtsp_auth);
  o.policy.on_http_access = ToDecision(p.on_http_access(), o.policy.on_http_access);
  o.policy.on_shell_login = ToDecision(p.on_shell_login(), o.policy.on_shell_login);
  if (p.on_storage_failure() == v1::ZlmPolicy::fail_closed) o.policy.fail_open = false;
  o.rtsp_realm = c.rtsp_realm();
  for (const auto& [user, password] : c.rtsp_passwords()) o.rtsp_passwords[user] = password;
  o.none_reader_close = c.none_reader_close();
  o.not_found_close = c.not_found_close();
  if (c.has_http_access_second()) {
    if (c.http_access_second() > 86400 * 365) {
      return BadValue("http_access_second", "at most 31536000 (a year)");
    }
    o.http_access_second = static_cast<int>(c.http_access_second());
  }
  if (c.max_servers() != 0) o.max_servers = c.max_servers();
  return o;
}

}  // namespace hookstream::ingest
