// Options of the ZLMediaKit ingest (DESIGN.md §6, config key `zlm`), with their defaults, and
// their translation from the config file. Plain values: copy freely.
#ifndef HOOKSTREAM_SERVER_INGEST_ZLM_OPTIONS_H_
#define HOOKSTREAM_SERVER_INGEST_ZLM_OPTIONS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hookstream/v1/config.pb.h"
#include "server/common/clock.h"

namespace hookstream::ingest {

enum class Decision { kAllow, kDeny };

struct ZlmPolicy {
  Decision on_publish = Decision::kAllow;
  Decision on_play = Decision::kAllow;
  Decision on_rtsp_realm = Decision::kAllow;
  Decision on_rtsp_auth = Decision::kAllow;
  Decision on_http_access = Decision::kAllow;
  // hookstream cannot check shell credentials, and the shell is full control of the server.
  Decision on_shell_login = Decision::kDeny;
  // When the log fails or is slower than storage_timeout: true answers blocking hooks as
  // allowed (media keeps flowing, the event may be lost), false as denied.
  bool fail_open = true;
};

struct ZlmOptions {
  // mediaServerId -> token (?token= in the hook URL); "*" for servers not listed. Empty: no auth.
  std::map<std::string, std::string> tokens;
  absl::Duration reorder_window = absl::Milliseconds(20);
  absl::Duration dedup_window = absl::Seconds(10);
  // Zero: 3 x the server's hook.alive_interval, or 30s when unknown.
  absl::Duration keepalive_timeout = absl::ZeroDuration();
  absl::Duration storage_timeout = absl::Seconds(2);
  absl::Duration snapshot_interval = absl::Seconds(30);
  // A hook_index below the next expected one is a late arrival (not a new boot) only when its
  // index was skipped by a reorder timeout at most this long ago.
  absl::Duration late_tolerance = absl::Seconds(2);
  // The JSON object merged into every allowed on_publish reply ({} = ZLMediaKit's own config).
  std::string on_publish_json = "{}";
  ZlmPolicy policy;
  std::string rtsp_realm;
  std::map<std::string, std::string> rtsp_passwords;
  bool none_reader_close = false;
  bool not_found_close = false;
  int http_access_second = 600;
  size_t max_servers = 4096;
  // Largest stored event (limits.max_event_bytes).
  size_t max_event_bytes = 1 << 20;
  // Time of reorder windows, dedup, keepalives, storage timeouts; not owned.
  Clock* clock = Clock::Real();
  // How often the timer thread looks at the clock when no deadline is nearer (a ManualClock
  // moves without telling it).
  absl::Duration timer_tick = absl::Milliseconds(10);
};

// Defaults for what `config` leaves out; an InvalidArgumentError naming the key (zlm.…) for a
// bad value.
absl::StatusOr<ZlmOptions> ZlmOptionsFromConfig(const v1::ZlmConfig& config);

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_ZLM_OPTIONS_H_
