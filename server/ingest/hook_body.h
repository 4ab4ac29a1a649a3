// Turns one ZLMediaKit hook body into what the ingest stores and decides on: the stream key, the
// media server, hook_index, the redacted body, the content hash used to recognise retries, and
// the facts the stream-state machine needs. Pure functions: safe from any thread.
//
// Stream keys (DESIGN.md §6): "vhost/app/stream" for stream hooks ("stream_id" for
// on_rtp_server_timeout), "_server/<mediaServerId>" for server hooks. Tokens are escaped so that
// every key passes ValidateStreamName and maps back to one (vhost, app, stream): '%' -> "%25",
// '/' -> "%2F", control characters -> "%XX", and a token that is exactly "*" or ">" -> "%2A" /
// "%3E". Empty tokens are rejected (a missing field), as are keys past 256 bytes.
#ifndef HOOKSTREAM_SERVER_INGEST_HOOK_BODY_H_
#define HOOKSTREAM_SERVER_INGEST_HOOK_BODY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/ingest/hooks.h"

namespace hookstream::ingest {

struct ParsedHook {
  const HookSpec* spec = nullptr;
  std::string server_id;               // mediaServerId.
  std::optional<uint64_t> hook_index;  // Absent in bodies of old ZLMediaKit versions.
  std::string stream;                  // The event's stream key.
  // Stream hooks: the unescaped tokens.
  std::string vhost;
  std::string app;
  std::string stream_name;
  // Hex SHA-256 (first 32 chars) of the hook name and the redacted body without hook_index:
  // equal for a retry.
  std::string content_hash;
  // The body to store: the bytes as received, or re-serialized when something was redacted.
  std::string data;
  bool redacted = false;

  // Facts for the state machine.
  bool regist = false;             // on_stream_changed
  std::string schema;              // on_stream_changed and others that carry one
  double alive_interval_s = 0;     // on_server_started: its hook.alive_interval, 0 if absent
  std::string user_name;           // on_rtsp_auth, on_shell_login
  std::string origin_json = "{}";  // on_stream_changed regist: originType/Str/Url (redacted)
};

// INVALID_ARGUMENT with a message for the HTTP reply: not JSON, not an object, a missing or
// mistyped field, a key that cannot be a stream name.
absl::StatusOr<ParsedHook> ParseHookBody(const HookSpec& spec, absl::string_view body,
                                         const std::string* x_vhost_header);

// One stream-name token, escaped as described above.
std::string EscapeToken(absl::string_view token);
// "_server/<escaped mediaServerId>".
std::string ServerStream(absl::string_view server_id);

// Redaction of secrets inside a string value: passwords in URL userinfo, and auth-like query
// parameters (sign, token, secret, password, ...) of URLs and of query strings (`params`).
// Returns true when it changed `value`.
bool RedactString(absl::string_view key, std::string* value);
// True for keys whose value is a secret (api.secret, passwd, rtc.icePwd, header.Authorization...).
bool IsSecretKey(absl::string_view key);

inline constexpr absl::string_view kRedacted = "***";

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_HOOK_BODY_H_
