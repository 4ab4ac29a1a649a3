#include "server/webhook/endpoint_config.h"

#include <set>

#include "server/common/config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "curl/curl.h"
#include "server/webhook/signature.h"

namespace hookstream::webhook {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// An absolute http(s) URL with a host, as libcurl parses it (so what passes here is what will
// be requested).
absl::Status CheckUrl(const std::string& url, absl::string_view key) {
  if (url.empty()) return BadConfigValue(key, "required (an http:// or https:// URL)");
  CURLU* h = curl_url();
  if (h == nullptr) return absl::ResourceExhaustedError("curl_url");
  const CURLUcode rc = curl_url_set(h, CURLUPART_URL, url.c_str(), 0);
  std::string scheme, host;
  if (rc == CURLUE_OK) {
    char* part = nullptr;
    if (curl_url_get(h, CURLUPART_SCHEME, &part, 0) == CURLUE_OK) scheme = part;
    curl_free(part);
    part = nullptr;
    if (curl_url_get(h, CURLUPART_HOST, &part, 0) == CURLUE_OK) host = part;
    curl_free(part);
  }
  curl_url_cleanup(h);
  if (rc != CURLUE_OK) {
    return BadConfigValue(key, absl::StrCat("bad URL \"", url, "\": ", curl_url_strerror(rc)));
  }
  scheme = absl::AsciiStrToLower(scheme);
  if (scheme != "http" && scheme != "https") {
    return BadConfigValue(key, absl::StrCat("bad URL \"", url, "\": the scheme must be http or https"));
  }
  if (host.empty()) return BadConfigValue(key, absl::StrCat("bad URL \"", url, "\": no host"));
  return absl::OkStatus();
}

}  // namespace

std::vector<absl::Duration> DefaultRetrySchedule() {
  return {absl::ZeroDuration(), absl::Seconds(5), absl::Minutes(5), absl::Minutes(30),
          absl::Hours(2),       absl::Hours(5),   absl::Hours(10),  absl::Hours(10)};
}

const char* FormatName(Format f) {
  switch (f) {
    case Format::kCloudEvents:
      return "cloudevents";
    case Format::kCloudEventsBinary:
      return "cloudevents_binary";
    case Format::kZlm:
      return "zlm";
  }
  return "?";
}

const char* OrderingName(Ordering o) {
  switch (o) {
    case Ordering::kPerStream:
      return "per_stream";
    case Ordering::kFifo:
      return "fifo";
    case Ordering::kUnordered:
      return "unordered";
  }
  return "?";
}

absl::StatusOr<std::vector<EndpointConfig>> EndpointsFromConfig(const v1::WebhooksConfig& config) {
  using P = v1::WebhookEndpointConfig;
  std::vector<EndpointConfig> out;
  std::set<std::string> names;
  for (int i = 0; i < config.endpoints_size(); ++i) {
    const P& in = config.endpoints(i);
    const std::string key = absl::StrCat("webhooks.endpoints[", i, "]");
    auto k = [&](absl::string_view field) { return absl::StrCat(key, ".", field); };
    EndpointConfig e;
    e.name = in.name();
    if (!ValidName(e.name)) {
      return BadConfigValue(k("name"),
                 absl::StrCat("expected 1 to 128 letters, digits, '_', '-' or '.', got \"",
                              absl::CHexEscape(e.name), "\""));
    }
    if (!names.insert(e.name).second) {
      return BadConfigValue(k("name"), absl::StrCat("endpoint \"", e.name, "\" is defined twice"));
    }
    switch (in.format()) {
      case P::format_unset:
      case P::cloudevents:
        e.format = Format::kCloudEvents;
        break;
      case P::cloudevents_binary:
        e.format = Format::kCloudEventsBinary;
        break;
      case P::zlm:
        e.format = Format::kZlm;
        break;
      default:
        return BadConfigValue(k("format"), "unknown format");
    }
    e.url = in.url();
    const bool has_hook = absl::StrContains(e.url, "{hook}");
    if (has_hook && e.format != Format::kZlm) {
      return BadConfigValue(k("url"), "\"{hook}\" is only replaced for format zlm");
    }
    if (absl::Status s = CheckUrl(absl::StrReplaceAll(e.url, {{"{hook}", "on_publish"}}), k("url"));
        !s.ok()) {
      return s;
    }
    e.streams.assign(in.streams().begin(), in.streams().end());
    e.types.assign(in.types().begin(), in.types().end());
    absl::StatusOr<subscription::Filter> filter = subscription::Filter::Create(e.streams, e.types);
    if (!filter.ok()) {
      // The filter names the field as streams[i] / types[i].
      return absl::InvalidArgumentError(
          absl::StrCat("config key \"", key, "\": ", filter.status().message()));
    }
    e.filter = *std::move(filter);
    for (int j = 0; j < in.secrets_size(); ++j) {
      absl::StatusOr<std::string> secret = DecodeSecret(in.secrets(j));
      if (!secret.ok()) return BadConfigValue(k(absl::StrCat("secrets[", j, "]")), secret.status().message());
      e.secret_keys.push_back(*std::move(secret));
    }
    switch (in.ordering()) {
      case P::ordering_unset:
      case P::per_stream:
        e.ordering = Ordering::kPerStream;
        break;
      case P::fifo:
        e.ordering = Ordering::kFifo;
        break;
      case P::unordered:
        e.ordering = Ordering::kUnordered;
        break;
      default:
        return BadConfigValue(k("ordering"), "unknown ordering");
    }
    if (in.max_in_flight() > 10000) return BadConfigValue(k("max_in_flight"), "at most 10000");
    if (in.max_in_flight() != 0) e.max_in_flight = in.max_in_flight();
    if (e.ordering == Ordering::kFifo) {
      if (in.max_in_flight() > 1) {
        return BadConfigValue(k("max_in_flight"),
                   "ordering fifo sends one request at a time (leave it unset)");
      }
      e.max_in_flight = 1;
    }
    if (in.has_timeout()) {
      e.timeout = ConfigDuration(in.timeout());
      if (e.timeout < absl::Milliseconds(10) || e.timeout > absl::Minutes(10)) {
        return BadConfigValue(k("timeout"), "between 10ms and 10m");
      }
    }
    if (in.retry_schedule_size() > 0) {
      e.retry_schedule.clear();
      if (in.retry_schedule_size() > 100) return BadConfigValue(k("retry_schedule"), "at most 100 steps");
      for (int j = 0; j < in.retry_schedule_size(); ++j) {
        const absl::Duration d = ConfigDuration(in.retry_schedule(j));
        if (d < absl::ZeroDuration() || d > absl::Hours(24 * 7)) {
          return BadConfigValue(k(absl::StrCat("retry_schedule[", j, "]")), "between 0s and 168h");
        }
        e.retry_schedule.push_back(d);
      }
    }
    switch (in.on_exhausted()) {
      case P::on_exhausted_unset:
      case P::dead_letter:
        e.on_exhausted = OnExhausted::kDeadLetter;
        break;
      case P::hold:
        e.on_exhausted = OnExhausted::kHold;
        break;
      default:
        return BadConfigValue(k("on_exhausted"), "unknown policy");
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace hookstream::webhook
