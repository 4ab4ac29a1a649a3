// Rebuilds the ingest's per-server state from the log when hookstream starts, so a restart
// keeps which streams are online, which boot each media server is in and what it retried.
//
// Why snapshots plus a short tail: every batch that changes a server's durable state (a boot, a
// stream going online/offline, lost) carries a zlm.state snapshot of it on stream
// "_zlm/state/<id>", atomically with the change, and the snapshot is refreshed at least every
// zlm.snapshot_interval while the server sends hooks. The latest snapshot per server (found via
// the stream's head position) is therefore the exact online set; only the highest hook_index
// since it, and the content hashes of the dedup window, come from re-reading the tail of the log
// (max(dedup_window, snapshot_interval) + 5s of it), which bounds the start-up cost whatever the
// log's size. Streams online for days survive retention as long as the server keeps sending
// hooks (its snapshot is refreshed), or with retention.keep_last_per_stream.
//
// Runs once, on the starting thread, before any hook is accepted.
#ifndef HOOKSTREAM_SERVER_INGEST_RESTORE_H_
#define HOOKSTREAM_SERVER_INGEST_RESTORE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/ingest/server_state.h"
#include "server/ingest/zlm_options.h"
#include "server/storage/log.h"

namespace hookstream::ingest {

struct RestoredServer {
  ServerState state;
  absl::Time snapshot_time = absl::InfinitePast();
};

struct RestoredDedup {
  std::string server_id;
  std::string key;  // "<boot>:<content hash>"
  absl::Time first_seen;
};

struct Restored {
  std::map<std::string, RestoredServer> servers;  // By mediaServerId.
  std::vector<RestoredDedup> dedup;               // In log order.
};

absl::Status RestoreFromLog(const storage::Log& log, const ZlmOptions& options, absl::Time now,
                            Restored* out);

// Attribute keys of stored hook events.
inline constexpr char kAttrHook[] = "zlm.hook";
inline constexpr char kAttrHookIndex[] = "zlm.hook_index";
inline constexpr char kAttrServer[] = "zlm.media_server_id";
inline constexpr char kAttrBoot[] = "zlm.boot";
inline constexpr char kAttrLate[] = "zlm.late";
inline constexpr char kAttrDerivedFrom[] = "zlm.derived_from";

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_RESTORE_H_
