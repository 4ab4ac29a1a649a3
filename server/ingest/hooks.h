// The 17 ZLMediaKit web hooks hookstream ingests (DESIGN.md §6), and what each one is: keyed by a
// media stream or by the media server, blocking (ZLMediaKit waits for an allow/deny) or not, and
// which fields its body must carry. Immutable tables: safe from any thread.
#ifndef HOOKSTREAM_SERVER_INGEST_HOOKS_H_
#define HOOKSTREAM_SERVER_INGEST_HOOKS_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace hookstream::ingest {

enum class HookId {
  kOnPublish,
  kOnPlay,
  kOnFlowReport,
  kOnRtspRealm,
  kOnRtspAuth,
  kOnStreamChanged,
  kOnStreamNotFound,
  kOnRecordMp4,
  kOnRecordTs,
  kOnShellLogin,
  kOnStreamNoneReader,
  kOnHttpAccess,
  kOnServerStarted,
  kOnServerExited,
  kOnServerKeepalive,
  kOnSendRtpStopped,
  kOnRtpServerTimeout,
};

struct HookSpec {
  HookId id;
  absl::string_view name;  // "on_publish"; the event type is "zlm." + name.
  // Keyed by vhost/app/<stream_field>; otherwise by the server (_server/<mediaServerId>).
  bool stream_hook;
  absl::string_view stream_field;  // "stream", or "stream_id" for on_rtp_server_timeout.
  // ZLMediaKit waits for an allow/deny answer (DESIGN.md §6's blocking hooks).
  bool blocking;
  // Retries are not told apart from repeats: identical keepalives of an idle server are normal.
  bool dedup;
};

// nullptr when `name` is not one of the 17 hooks.
const HookSpec* FindHook(absl::string_view name);
const std::vector<HookSpec>& AllHooks();

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_HOOKS_H_
