#include "server/ingest/hook_body.h"

#include <openssl/evp.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/common/names.h"

namespace hookstream::ingest {
namespace {

using Json = nlohmann::ordered_json;

constexpr absl::string_view kDefaultVhost = "__defaultVhost__";

// Substrings of lower-cased keys (JSON keys and query parameter names) that hold secrets.
constexpr absl::string_view kSecretParts[] = {
    "secret",     "passw",       "pwd",    "token",   "passphrase",    "credential",
    "privatekey", "private_key", "apikey", "api_key", "authorization", "cookie"};
// Whole lower-cased query parameter names that carry auth.
constexpr absl::string_view kSecretParams[] = {"sign", "sig", "signature", "key", "auth", "pass"};

bool IsSecretParam(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view p : kSecretParams) {
    if (lower == p) return true;
  }
  return IsSecretKey(lower);
}

// Redacts auth-like parameters of "a=1&token=x"; true when it changed something.
bool RedactQuery(std::string* query) {
  bool changed = false;
  std::vector<std::string> parts = absl::StrSplit(*query, '&');
  for (std::string& part : parts) {
    const size_t eq = part.find('=');
    if (eq == std::string::npos || eq + 1 == part.size()) continue;
    if (IsSecretParam(part.substr(0, eq))) {
      part = absl::StrCat(part.substr(0, eq + 1), kRedacted);
      changed = true;
    }
  }
  if (changed) *query = absl::StrJoin(parts, "&");
  return changed;
}

// scheme://user:password@host/path?query#fragment
bool RedactUrl(std::string* url) {
  bool changed = false;
  const size_t scheme = url->find("://");
  if (scheme != std::string::npos) {
    const size_t auth_start = scheme + 3;
    const size_t auth_end = url->find_first_of("/?#", auth_start);
    const size_t at = url->rfind('@', auth_end == std::string::npos ? url->size() : auth_end);
    if (at != std::string::npos && at > auth_start) {
      const size_t colon = url->find(':', auth_start);
      if (colon != std::string::npos && colon < at &&
          url->compare(colon + 1, at - colon - 1, kRedacted.data()) != 0) {
        url->replace(colon + 1, at - colon - 1, kRedacted.data(), kRedacted.size());
        changed = true;
      }
    }
  }
  const size_t q = url->find('?');
  if (q != std::string::npos) {
    size_t end = url->find('#', q);
    if (end == std::string::npos) end = url->size();
    std::string query = url->substr(q + 1, end - q - 1);
    if (RedactQuery(&query)) {
      *url = absl::StrCat(url->substr(0, q + 1), query, url->substr(end));
      changed = true;
    }
  }
  return changed;
}

// The top-level fields a hook's stream key is made of. They are names, not secrets, and are
// never redacted: a redacted copy would name another stream or server than the event's key.
bool IsIdentityKey(absl::string_view key) {
  return key == "mediaServerId" || key == "vhost" || key == "app" || key == "stream" ||
         key == "stream_id";
}

bool RedactTree(Json& node, bool top_level = false) {
  bool changed = false;
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      Json& v = it.value();
      if (top_level && IsIdentityKey(it.key())) continue;
      if (IsSecretKey(it.key()) && (v.is_string() || v.is_number())) {
        if (!(v.is_string() && (v.get_ref<const std::string&>().empty() ||
                                v.get_ref<const std::string&>() == kRedacted))) {
          v = std::string(kRedacted);
          changed = true;
        }
        continue;
      }
      if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (RedactString(it.key(), &s)) {
          v = s;
          changed = true;
        }
      } else if (v.is_structured()) {
        changed |= RedactTree(v);
      }
    }
  } else if (node.is_array()) {
    for (Json& v : node) {
      if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (RedactString("", &s)) {
          v = s;
          changed = true;
        }
      } else if (v.is_structured()) {
        changed |= RedactTree(v);
      }
    }
  }
  return changed;
}

std::string Sha256Hex32(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), std::min(len, 16u)));
}

absl::Status Missing(const HookSpec& spec, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(spec.name, ": field \"", field, "\" ", what));
}

// A required non-empty string field.
absl::StatusOr<std::string> StringField(const HookSpec& spec, const Json& body,
                                        absl::string_view field) {
  auto it = body.find(std::string(field));
  if (it == body.end()) return Missing(spec, field, "is missing");
  if (!it->is_string()) return Missing(spec, field, "must be a string");
  std::string v = it->get<std::string>();
  if (v.empty()) return Missing(spec, field, "must not be empty");
  return v;
}

}  // namespace

bool IsSecretKey(absl::string_view key) {
  const std::string lower = absl::AsciiStrToLower(key);
  for (absl::string_view part : kSecretParts) {
    if (absl::StrContains(lower, part)) return true;
  }
  return false;
}

bool RedactString(absl::string_view key, std::string* value) {
  if (key == "params") return RedactQuery(value);
  if (absl::StrContains(*value, "://")) return RedactUrl(value);
  if (absl::StartsWith(*value, "/") && absl::StrContains(*value, "?")) return RedactUrl(value);
  return false;
}

std::string EscapeToken(absl::string_view token) {
  if (token == "*") return "%2A";
  if (token == ">") return "%3E";
  std::string out;
  out.reserve(token.size());
  for (unsigned char c : token) {
    if (c == '%' || c == '/' || c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "%%%02X", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string ServerStream(absl::string_view server_id) {
  return absl::StrCat("_server/", EscapeToken(server_id));
}

absl::StatusOr<ParsedHook> ParseHookBody(const HookSpec& spec, absl::string_view body,
                                         const std::string* x_vhost_header) {
  Json json;
  try {
    json = Json::parse(body.begin(), body.end());
  } catch (const Json::parse_error& e) {
    // Not e.what(): nlohmann quotes the bytes it last read ("last read: '...'"), which can be a
    // secret from the body, and this message goes into the reply and the log.
    return absl::InvalidArgumentError(
        absl::StrCat(spec.name, ": body is not JSON (syntax error at byte ", e.byte, ")"));
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(spec.name, ": body is not JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(spec.name, ": body must be a JSON object"));
  }
  ParsedHook h;
  h.spec = &spec;
  absl::StatusOr<std::string> server = StringField(spec, json, "mediaServerId");
  if (!server.ok()) return server.status();
  h.server_id = *std::move(server);
  if (absl::Status s = ValidateName(h.server_id, "mediaServerId", false); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(spec.name, ": ", s.message()));
  }
  if (auto it = json.find("hook_index"); it != json.end()) {
    if (!it->is_number_unsigned()) {
      return Missing(spec, "hook_index", "must be a non-negative integer");
    }
    h.hook_index = it->get<uint64_t>();
  }

  if (spec.stream_hook) {
    absl::StatusOr<std::string> app = StringField(spec, json, "app");
    if (!app.ok()) return app.status();
    absl::StatusOr<std::string> stream = StringField(spec, json, spec.stream_field);
    if (!stream.ok()) return stream.status();
    h.app = *std::move(app);
    h.stream_name = *std::move(stream);
    if (auto it = json.find("vhost"); it != json.end()) {
      absl::StatusOr<std::string> vhost = StringField(spec, json, "vhost");
      if (!vhost.ok()) return vhost.status();
      h.vhost = *std::move(vhost);
    } else if (x_vhost_header != nullptr && !x_vhost_header->empty()) {
      h.vhost = *x_vhost_header;
    } else {
      h.vhost = std::string(kDefaultVhost);
    }
    h.stream = absl::StrCat(EscapeToken(h.vhost), "/", EscapeToken(h.app), "/",
                            EscapeToken(h.stream_name));
  } else {
    h.stream = ServerStream(h.server_id);
  }
  if (absl::Status s = ValidateStreamName(h.stream, "stream"); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(spec.name, ": ", s.message()));
  }

  if (auto it = json.find("schema"); it != json.end() && it->is_string()) {
    h.schema = it->get<std::string>();
  }
  if (spec.id == HookId::kOnStreamChanged) {
    auto it = json.find("regist");
    if (it == json.end()) return Missing(spec, "regist", "is missing");
    if (!it->is_boolean()) return Missing(spec, "regist", "must be true or false");
    h.regist = it->get<bool>();
    absl::StatusOr<std::string> schema = StringField(spec, json, "schema");
    if (!schema.ok()) return schema.status();
  }
  if (spec.id == HookId::kOnRtspAuth || spec.id == HookId::kOnShellLogin) {
    if (auto it = json.find("user_name"); it != json.end() && it->is_string()) {
      h.user_name = it->get<std::string>();
    }
  }
  if (spec.id == HookId::kOnServerStarted) {
    if (auto it = json.find("hook.alive_interval"); it != json.end()) {
      double v = 0;
      if (it->is_number()) {
        v = it->get<double>();
      } else if (it->is_string()) {
        if (!absl::SimpleAtod(it->get<std::string>(), &v)) v = 0;
      }
      if (v > 0 && v < 86400) h.alive_interval_s = v;
    }
  }

  h.redacted = RedactTree(json, /*top_level=*/true);
  if (spec.id == HookId::kOnStreamChanged && h.regist) {
    Json origin = Json::object();
    for (const char* key : {"originType", "originTypeStr", "originUrl"}) {
      if (auto it = json.find(key); it != json.end()) origin[key] = *it;
    }
    h.origin_json = origin.dump();
  }
  h.data = h.redacted ? json.dump(1, '\t') : std::string(body);
  json.erase("hook_index");
  // Different hooks may carry identical bodies (on_rtsp_realm, on_play, on_stream_not_found of
  // one player): the hook is part of what is compared.
  h.content_hash = Sha256Hex32(absl::StrCat(spec.name, "\n", json.dump()));
  return h;
}

}  // namespace hookstream::ingest
