#include "server/webhook/request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/webhook/signature.h"

namespace hookstream::webhook {
namespace {

std::string JsonString(absl::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  const absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

bool IsJsonType(absl::string_view content_type) {
  absl::string_view ct = content_type.substr(0, content_type.find(';'));
  ct = absl::StripAsciiWhitespace(ct);
  return absl::EqualsIgnoreCase(ct, "application/json") ||
         absl::EqualsIgnoreCase(ct, "text/json") || absl::EndsWithIgnoreCase(ct, "+json");
}

// A CloudEvents extension attribute name: lower-case letters and digits only, so "zlm.hook"
// becomes "zlmhook". Empty when nothing usable is left or the name is a context attribute.
std::string ExtensionName(absl::string_view attribute) {
  std::string out;
  for (char c : attribute) {
    if (absl::ascii_isalnum(c)) out.push_back(absl::ascii_tolower(c));
  }
  static const char* const kReserved[] = {"specversion",
                                          "id",
                                          "source",
                                          "type",
                                          "subject",
                                          "time",
                                          "datacontenttype",
                                          "dataschema",
                                          "data",
                                          "data_base64",
                                          "hookstreamseq",
                                          "hookstreamposition",
                                          "hookstreamstream"};
  for (const char* r : kReserved) {
    if (out == r) return "";
  }
  return out;
}

const google::protobuf::Timestamp& EventTime(const v1::Event& e) {
  return e.has_time() ? e.time() : e.ingest_time();
}

std::string Source(const v1::Event& e) { return e.source().empty() ? "hookstream" : e.source(); }

std::string StructuredBody(const v1::Event& e) {
  std::string out = absl::StrCat(
      "{\"specversion\":\"1.0\",\"id\":", JsonString(e.id()), ",\"source\":", JsonString(Source(e)),
      ",\"type\":", JsonString(e.type()), ",\"subject\":", JsonString(e.stream()),
      ",\"time\":", JsonString(Rfc3339(EventTime(e))), ",\"hookstreamseq\":", e.seq(),
      ",\"hookstreamposition\":", e.position());
  for (const auto& [name, value] : e.attributes()) {
    const std::string ext = ExtensionName(name);
    if (!ext.empty()) absl::StrAppend(&out, ",", JsonString(ext), ":", JsonString(value));
  }
  if (!e.content_type().empty()) {
    absl::StrAppend(&out, ",\"datacontenttype\":", JsonString(e.content_type()));
  }
  if (!e.data().empty()) {
    // JSON data goes in as it is (byte for byte); anything else as base64.
    if (IsJsonType(e.content_type()) && nlohmann::json::accept(e.data())) {
      absl::StrAppend(&out, ",\"data\":", e.data());
    } else {
      absl::StrAppend(&out, ",\"data_base64\":\"", absl::Base64Escape(e.data()), "\"");
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace

std::string WebhookId(absl::string_view log_id, uint64_t position) {
  return absl::StrCat("msg_", absl::BytesToHexString(log_id.substr(0, 8)), "_", position);
}

std::string ZlmHookName(const v1::Event& event) {
  auto it = event.attributes().find("zlm.hook");
  if (it != event.attributes().end() && !it->second.empty()) return it->second;
  absl::string_view type = event.type();
  absl::ConsumePrefix(&type, "zlm.");
  return std::string(type);
}

std::string HeaderEncode(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '%') {
      absl::StrAppend(&out, "%",
                      absl::AsciiStrToUpper(absl::BytesToHexString(
                          absl::string_view(reinterpret_cast<char*>(&c), 1))));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

HttpRequest BuildRequest(const EndpointConfig& endpoint, const v1::Event& event,
                         absl::string_view webhook_id, int64_t timestamp, uint32_t attempt) {
  HttpRequest req;
  req.url = endpoint.url;
  switch (endpoint.format) {
    case Format::kCloudEvents:
      req.body = StructuredBody(event);
      req.headers.push_back("Content-Type: application/cloudevents+json; charset=utf-8");
      break;
    case Format::kCloudEventsBinary: {
      req.body = event.data();
      req.headers.push_back(absl::StrCat("Content-Type: ", event.content_type().empty()
                                                               ? "application/octet-stream"
                                                               : event.content_type()));
      req.headers.push_back("ce-specversion: 1.0");
      req.headers.push_back(absl::StrCat("ce-id: ", HeaderEncode(event.id())));
      req.headers.push_back(absl::StrCat("ce-source: ", HeaderEncode(Source(event))));
      req.headers.push_back(absl::StrCat("ce-type: ", HeaderEncode(event.type())));
      req.headers.push_back(absl::StrCat("ce-subject: ", HeaderEncode(event.stream())));
      req.headers.push_back(absl::StrCat("ce-time: ", Rfc3339(EventTime(event))));
      req.headers.push_back(absl::StrCat("ce-hookstreamseq: ", event.seq()));
      req.headers.push_back(absl::StrCat("ce-hookstreamposition: ", event.position()));
      for (const auto& [name, value] : event.attributes()) {
        const std::string ext = ExtensionName(name);
        if (!ext.empty())
          req.headers.push_back(absl::StrCat("ce-", ext, ": ", HeaderEncode(value)));
      }
      break;
    }
    case Format::kZlm:
      req.url = absl::StrReplaceAll(endpoint.url, {{"{hook}", ZlmHookName(event)}});
      req.body = event.data();
      req.headers.push_back("Content-Type: application/json");
      break;
  }
  req.headers.push_back(absl::StrCat("webhook-id: ", webhook_id));
  req.headers.push_back(absl::StrCat("webhook-timestamp: ", timestamp));
  if (!endpoint.secret_keys.empty()) {
    req.headers.push_back(
        absl::StrCat("webhook-signature: ",
                     SignatureHeader(endpoint.secret_keys, webhook_id, timestamp, req.body)));
  }
  req.headers.push_back(absl::StrCat("hookstream-stream: ", HeaderEncode(event.stream())));
  req.headers.push_back(absl::StrCat("hookstream-seq: ", event.seq()));
  req.headers.push_back(absl::StrCat("hookstream-position: ", event.position()));
  req.headers.push_back(absl::StrCat("hookstream-type: ", HeaderEncode(event.type())));
  req.headers.push_back(absl::StrCat("hookstream-attempt: ", attempt));
  // No "Expect: 100-continue" round trip before larger bodies.
  req.headers.push_back("Expect:");
  return req;
}

}  // namespace hookstream::webhook
