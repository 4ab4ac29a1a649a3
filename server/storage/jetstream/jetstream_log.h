// The JetStream backend of the log: hookstream servers become stateless front ends over a NATS
// JetStream stream (usually clustered, R3), so several servers share one log (DESIGN.md §10).
//
// Mapping (README.md "JetStream backend" has the operator's view):
//   position   = JetStream stream sequence (dense: rejected and de-duplicated publishes take none)
//   stream     = subject "<subject_prefix>.<escaped tokens>" (naming.h)
//   seq        = header Hs-Seq, assigned by the publishing server and made dense across servers
//                by Nats-Expected-Last-Subject-Sequence and, on a replicated stream, an anchor
//                to the whole stream (Nats-Expected-Last-Sequence; jetstream_heads.cc),
//                retried on conflict
//   dedup      = Nats-Msg-Id = SHA-256(source, id), inside the stream's duplicate window
//   ingest time= the time JetStream stored the message
//   log id     = hash of the stream's creation time and the token key, so a recreated stream
//                (or metadata bucket) is a new log and old tokens fail FAILED_PRECONDITION
//   token key  = 32 random bytes created once in the KV bucket "<stream>_meta"
//   metadata   = WriteMeta/GetMeta/ScanMeta entries in the same KV bucket
// Live delivery: every server tails the stream with an ordered consumer and feeds its
// CommitListener, so subscribers on one server see what publishers on another appended.
//
// Guarantees that differ from the embedded log (also in README.md):
// - Durable = stored by a quorum of the stream's replicas (JetStream acknowledges then); each
//   nats-server fsyncs on its own schedule (sync_interval), so R1 is not crash-durable.
// - A batch is NOT atomic: JetStream 2.9 has no atomic multi-message publish. When an event
//   fails (a racing expected_seq, JetStream unreachable for publish_retry_for) the batch fails
//   and some of its events may be stored (a prefix for batches with expected_seq). Producer
//   ids make the retry exact: what was stored de-duplicates. No acknowledged event is lost or
//   doubled.
// - Per-stream seqs cost one JetStream round trip per event of the same stream (each publish
//   names the previous one); different streams are pipelined (jetstream_pipeline.cc).
// - nats-server 2.9 checks the per-subject predecessor of a replicated (R3) stream only before
//   proposing to Raft, so on a replicated stream every publish is also anchored to the stream's
//   last position (checked when applied): all servers' publishes serialise on that one
//   position, and the loser of a race waits for its tailer before retrying. A stream whose
//   head this server has not seen (written before it started) is learned with a probe that
//   JetStream checks when it applies it and always refuses (jetstream_heads.cc). The tailer
//   logs an ERROR if it ever sees a seq out of line.
// - WriteMeta writes its keys one by one (KV has no transactions): atomic per key only.
// - keep_last_per_stream is not available (JetStream cannot keep a subject's last message past
//   max_age/max_bytes); retention is JetStream's own (max_age, max_bytes, max_events_per_stream
//   as MaxMsgsPerSubject). Any deleted message a reader meets raises the expiry horizon, so it
//   is reported (OUT_OF_RANGE or gap), never skipped.
//
// Thread-safety: as Log. Threads: one appender, one tailer, NATS client threads.
#ifndef HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_H_
#define HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/storage/log.h"

namespace hookstream::storage {

struct JetStreamLogOptions {
  // NATS URLs, e.g. "nats://10.0.0.1:4222"; the client fails over between them.
  std::vector<std::string> servers = {"nats://127.0.0.1:4222"};
  // JetStream stream holding the events (created when missing); its KV buckets are
  // "<stream>_meta" and "<stream>_leases".
  std::string stream = "HOOKSTREAM";
  std::string subject_prefix = "hookstream";
  // Replicas of the stream and the KV bucket (1, 3 or 5; 3 for a cluster).
  int replicas = 1;
  // JetStream's duplicate window; zero turns de-duplication off.
  absl::Duration dedup_window = absl::Minutes(2);
  // Retention, enforced by JetStream; zero: no limit.
  absl::Duration max_age = absl::ZeroDuration();
  uint64_t max_bytes = 0;
  uint64_t max_events_per_stream = 0;
  // Time to connect at start (an unreachable NATS fails the start), and per JetStream request.
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(5);
  // How long one event's publish is retried while JetStream does not answer (leader election,
  // a node down) before its batch fails with UNAVAILABLE.
  absl::Duration publish_retry_for = absl::Seconds(30);
  // Leases (webhook endpoints: one server delivers each) live in the KV bucket
  // "<stream>_leases", whose entries JetStream deletes this long after their last renewal.
  // The bucket's creator sets it; a server that finds the bucket uses the bucket's.
  absl::Duration lease_time = absl::Seconds(10);
  // Most events one group takes.
  size_t max_group_events = 4096;
  // Shown in NATS monitoring.
  std::string connection_name = "hookstreamd";
  FaultHooks faults;
  // Tests only: behave as if JetStream lagged where nats-server 2.9 may lag on a replicated
  // stream, to show that per-stream seqs stay dense anyway (jetstream_heads.cc).
  struct LagFaults {
    // A replica that is behind answers a direct get of a stream's last event with an older one
    // (here: the stream's first event).
    bool stale_head_reads = false;
    // A stream leader that has not applied every committed entry checks a publish's expected
    // per-subject position (> 0: only before proposing it) against old state and may pass a
    // stale one; here the header is not sent at all, so nothing refuses a stale head.
    bool leader_behind = false;
    // A replica that has not applied the latest messages answers a direct get of them "not
    // found"; here every direct get is answered so.
    bool replica_missing_reads = false;
  } lag_faults;
};

absl::StatusOr<std::unique_ptr<Log>> OpenJetStreamLog(const JetStreamLogOptions& options);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_JETSTREAM_JETSTREAM_LOG_H_
