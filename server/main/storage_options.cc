#include "server/main/storage_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/config.h"

namespace hookstream {
namespace {

// JetStream names: letters, digits, '-' and '_' (no '.', wildcards or spaces).
bool IsPlainName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

absl::Status CheckTimeout(const google::protobuf::Duration& d, absl::string_view key,
                          absl::Duration* out) {
  *out = ConfigDuration(d);
  if (*out < absl::Milliseconds(100) || *out > absl::Minutes(10)) {
    return BadConfigValue(key, "between 100ms and 10m");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyStorageConfig(const v1::Config& config, ServerOptions* options) {
  const v1::StorageConfig& sc = config.storage();
  if (sc.backend() != v1::StorageConfig::jetstream) {
    if (sc.servers_size() > 0)
      return BadConfigValue("storage.servers", "only with backend: jetstream");
    if (!sc.stream().empty())
      return BadConfigValue("storage.stream", "only with backend: jetstream");
    if (!sc.subject_prefix().empty()) {
      return BadConfigValue("storage.subject_prefix", "only with backend: jetstream");
    }
    if (sc.replicas() != 0)
      return BadConfigValue("storage.replicas", "only with backend: jetstream");
    if (sc.has_lease_time()) {
      return BadConfigValue("storage.lease_time", "only with backend: jetstream");
    }
    return absl::OkStatus();
  }

  storage::JetStreamLogOptions js;
  if (sc.servers_size() > 0) js.servers.clear();
  for (int i = 0; i < sc.servers_size(); ++i) {
    const std::string& url = sc.servers(i);
    const std::string key = absl::StrCat("storage.servers[", i, "]");
    if (url.empty() || absl::StrContains(url, ' ') || absl::StrContains(url, ',')) {
      return BadConfigValue(key, "one NATS URL, e.g. nats://127.0.0.1:4222");
    }
    js.servers.push_back(url);
  }
  if (!sc.stream().empty()) {
    if (!IsPlainName(sc.stream())) {
      return BadConfigValue("storage.stream", "1-64 letters, digits, '-' or '_'");
    }
    js.stream = sc.stream();
  }
  if (!sc.subject_prefix().empty()) {
    for (absl::string_view token : absl::StrSplit(sc.subject_prefix(), '.')) {
      if (!IsPlainName(token)) {
        return BadConfigValue("storage.subject_prefix",
                              "'.'-separated tokens of letters, digits, '-' or '_'");
      }
    }
    js.subject_prefix = sc.subject_prefix();
  }
  if (sc.replicas() != 0) {
    if (sc.replicas() > 5) return BadConfigValue("storage.replicas", "1 to 5 (JetStream's limit)");
    js.replicas = static_cast<int>(sc.replicas());
  }
  if (sc.has_connect_timeout()) {
    if (absl::Status s =
            CheckTimeout(sc.connect_timeout(), "storage.connect_timeout", &js.connect_timeout);
        !s.ok()) {
      return s;
    }
  }
  if (sc.has_request_timeout()) {
    if (absl::Status s =
            CheckTimeout(sc.request_timeout(), "storage.request_timeout", &js.request_timeout);
        !s.ok()) {
      return s;
    }
  }
  if (sc.has_publish_retry_for()) {
    js.publish_retry_for = ConfigDuration(sc.publish_retry_for());
    if (js.publish_retry_for < absl::ZeroDuration()) {
      return BadConfigValue("storage.publish_retry_for", "must not be negative");
    }
  }
  if (sc.has_lease_time()) {
    js.lease_time = ConfigDuration(sc.lease_time());
    if (js.lease_time < absl::Seconds(1) || js.lease_time > absl::Minutes(10)) {
      return BadConfigValue("storage.lease_time", "1s to 10m");
    }
  }
  if (config.retention().keep_last_per_stream()) {
    return BadConfigValue("retention.keep_last_per_stream",
                          "not available with storage.backend: jetstream (JetStream cannot keep a "
                          "subject's last message past its limits)");
  }
  js.dedup_window = options->log.dedup_window;
  js.max_age = options->log.retention.max_age;
  js.max_bytes = options->log.retention.max_bytes;
  js.max_events_per_stream = options->log.retention.max_events_per_stream;
  options->jetstream = std::move(js);
  return absl::OkStatus();
}

}  // namespace hookstream
