// What hookstream knows about one media server, and the transitions that derive the state
// events backends consume instead of a state machine of their own (DESIGN.md §6):
//   zlm.stream_online   the first schema of a stream registered (on_stream_changed regist=true)
//   zlm.stream_offline  the last schema unregistered; also synthetic ones for what a previous boot
//                       left online (reason server_restarted) or on_server_exited left
//   zlm.server_restarted a new boot (on_server_started, or hook_index going back)
//   zlm.server_lost     on_server_keepalive stopped for the keepalive timeout
// The durable part round-trips through a JSON snapshot (zlm.state events), so a restart of
// hookstream resumes from the log. Plain values and pure functions; the ingest serializes access.
#ifndef HOOKSTREAM_SERVER_INGEST_SERVER_STATE_H_
#define HOOKSTREAM_SERVER_INGEST_SERVER_STATE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/ingest/hook_body.h"

namespace hookstream::ingest {

struct DerivedEvent {
  std::string stream;
  std::string type;  // zlm.stream_online, ...
  std::string data;  // JSON
};

struct OnlineStream {
  std::string vhost;
  std::string app;
  std::string stream;
  std::set<std::string> schemas;  // Registered now.
  std::set<std::string> seen;     // Registered at some time since it went online.
  absl::Time since;
  std::string origin_json = "{}";
};

struct ServerState {
  std::string server_id;
  uint64_t boot = 0;  // 0: no boot seen yet. Counts boots as hookstream saw them.
  // The boot's on_server_started (to tell its retry from a new boot).
  bool boot_has_start = false;
  std::string boot_start_hash;
  uint64_t boot_start_index = 0;
  bool has_last_index = false;
  uint64_t last_index = 0;  // Highest hook_index processed in this boot.
  double alive_interval_s = 0;
  bool keepalive_armed = false;  // A keepalive came in this boot and the server did not exit.
  absl::Time last_keepalive = absl::InfinitePast();
  bool lost = false;
  std::map<std::string, OnlineStream> online;  // By stream key.
};

// How a new boot was noticed.
inline constexpr absl::string_view kBootByStarted = "on_server_started";
inline constexpr absl::string_view kBootByIndex = "hook_index_reset";

// Results of one transition.
struct Transition {
  std::vector<DerivedEvent> before;  // Appended before the hook's own event.
  std::vector<DerivedEvent> after;   // Appended after it.
  bool state_changed = false;        // The snapshot must be rewritten.
};

// A new boot `boot` begins: synthetic offline for every stream left online, then
// zlm.server_restarted (when an earlier boot was known). Resets the per-boot state.
Transition BeginBoot(ServerState& s, uint64_t boot, absl::string_view detected_by, absl::Time now);

// The state effects of one stored hook (not of a retry).
Transition ApplyHook(ServerState& s, const ParsedHook& h, absl::Time now);

// Keepalive timeout at `now`, when `timeout` passed since the last keepalive: zlm.server_lost.
bool KeepaliveExpired(const ServerState& s, absl::Time now, absl::Duration timeout);
Transition MarkLost(ServerState& s, absl::Time now, absl::Duration timeout);

// The keepalive timeout of this server: `configured` when non-zero, else 3 x its
// hook.alive_interval, else 30s.
absl::Duration KeepaliveTimeout(const ServerState& s, absl::Duration configured);

// zlm.state snapshots: stream "_zlm/state/<escaped id>", JSON data.
std::string SnapshotStream(absl::string_view server_id);
std::string EncodeSnapshot(const ServerState& s);
absl::StatusOr<ServerState> DecodeSnapshot(absl::string_view json);

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_SERVER_STATE_H_
