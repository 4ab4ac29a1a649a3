// The legacy webhook shim (DESIGN.md §7): configured endpoints, each a durable subscriber of
// the log, receive plain HTTP webhooks — per-stream ordered (or fifo / unordered), signed
// (Standard Webhooks), retried on a schedule, dead-lettered or held when retries run out.
//
// Mechanism: one loop thread reads each endpoint's events with Log::Read (position order, the
// endpoint's filter pushed down, bounded chunks) and sends them with libcurl's multi interface.
// The log, not a hub session, is the source because an endpoint is a cursor that moves
// forward only when events are finished, at the pace of its receiver: a session would push
// events at it and fall behind, then re-read the disk anyway. The hub only wakes the loop when
// a commit lands (SetCommitObserver -> curl_multi_wakeup), so live delivery needs no polling.
//
// Durability: each loop turn first takes the results of finished requests, then writes every
// endpoint's cursor and dead letters in one synced WriteMeta, and only then starts new
// requests. So an event whose successor (per_stream) was sent is durably done, and a restart or
// kill -9 resends at most the requests that were in flight.
//
// Threads: Start/Stop from the controlling thread; Snapshot and the admin calls from any
// thread (admin calls run on the loop thread and wait for it). Lifetime: the log and hub must
// outlive the shim; Stop before the log closes.
#ifndef HOOKSTREAM_SERVER_WEBHOOK_SHIM_H_
#define HOOKSTREAM_SERVER_WEBHOOK_SHIM_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "hookstream/v1/webhook_admin.pb.h"
#include "server/storage/log.h"
#include "server/subscription/hub.h"
#include "server/webhook/curl_multi.h"
#include "server/webhook/endpoint.h"
#include "server/webhook/endpoint_config.h"

namespace hookstream::webhook {

struct WebhookOptions {
  std::vector<EndpointConfig> endpoints;
  EndpointTuning tuning;
  // Largest chunk of one log read, in bytes.
  size_t read_bytes = 4 << 20;
};

class WebhookShim {
 public:
  // Restores every endpoint's cursor and starts the loop. Nothing runs without endpoints.
  static absl::StatusOr<std::unique_ptr<WebhookShim>> Start(storage::Log* log,
                                                            subscription::Hub* hub,
                                                            WebhookOptions options);
  ~WebhookShim();

  // Abandons requests in flight (they are sent again after a restart), writes what is done,
  // and stops the loop. Idempotent.
  void Stop();

  std::vector<EndpointSnapshot> Snapshot() const;

  // NOT_FOUND for an unknown endpoint, INVALID_ARGUMENT for a bad page token or id,
  // UNAVAILABLE once stopped.
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& request) const;
  absl::StatusOr<v1::ReplayDeadLettersResponse> ReplayDeadLetters(
      const v1::ReplayDeadLettersRequest& request);
  absl::Status EnableEndpoint(const std::string& name);

 private:
  WebhookShim(storage::Log* log, subscription::Hub* hub, WebhookOptions options);
  void Loop();
  // One loop turn's parts (loop thread).
  void ReadEvents(absl::Time now);
  void StartRequests(absl::Time now);
  bool FlushWrites(absl::Time now);
  void PublishSnapshot();
  // Runs `fn` on the loop thread and waits; UNAVAILABLE when the loop has stopped.
  absl::Status RunOnLoop(std::function<void()> fn);
  Endpoint* Find(const std::string& name) const;

  storage::Log* const log_;
  subscription::Hub* const hub_;
  const WebhookOptions options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::unique_ptr<CurlMulti> curl_;

  // Loop thread only.
  std::vector<storage::MetaWrite> unwritten_;  // A failed WriteMeta, retried before sending.
  absl::Time retry_write_at_ = absl::InfinitePast();
  absl::Time read_retry_at_ = absl::InfinitePast();

  // Latest head the hub reported (its observer runs just before the log publishes that head).
  std::atomic<uint64_t> notified_head_{0};

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool loop_done_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> commands_ ABSL_GUARDED_BY(mu_);
  std::vector<EndpointSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_SHIM_H_
