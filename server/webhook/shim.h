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
// Several servers on one log (JetStream backend): each endpoint is delivered by one server at a
// time, the holder of its lease (Log::HoldLease, "webhook/<name>/lease"), renewed every third
// of the log's lease_time. The others keep it on standby and take it over when the lease is
// free: released by a server that stops, or not renewed (its holder died or lost NATS) for
// lease_time. Taking it reads the cursor and dead letters anew, so the new holder resends at
// most what the old one had in flight. A holder that has not renewed for two thirds of
// lease_time stops sending and writing before anyone else can take the lease. On a log only
// one server opens (embedded store) every endpoint is this server's from the start.
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
  // releases this server's leases, and stops the loop. Idempotent.
  void Stop();

  std::vector<EndpointSnapshot> Snapshot() const;

  // NOT_FOUND for an unknown endpoint, INVALID_ARGUMENT for a bad page token or id,
  // UNAVAILABLE once stopped, FAILED_PRECONDITION (replay, enable) for an endpoint another
  // server delivers (the message names it).
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
  // Takes, renews or gives up the endpoints' leases when due (shared logs only); `strict` (at
  // start): a storage error is returned instead of retried at the next turn.
  absl::Status KeepLeases(absl::Time now, bool strict);
  // Makes endpoint `i` this server's: reads its cursor and dead letters.
  absl::Status Take(size_t i, absl::Time now);
  // Stops delivering endpoint `i` (another server took it, or its lease is uncertain).
  void GiveUp(size_t i, absl::string_view reason);
  // Runs `fn` on the loop thread and waits; UNAVAILABLE when the loop has stopped.
  absl::Status RunOnLoop(std::function<void()> fn);
  // Index of the endpoint named `name`; NOT_FOUND naming it.
  absl::StatusOr<size_t> Find(const std::string& name) const;
  // On the loop thread: endpoint `i` when this server delivers it; FAILED_PRECONDITION naming
  // the server that does.
  absl::StatusOr<Endpoint*> Held(size_t i) const;

  storage::Log* const log_;
  subscription::Hub* const hub_;
  const WebhookOptions options_;
  // Names this server in leases: host, pid and a random part.
  const std::string holder_;
  const absl::Duration lease_time_;  // Infinite: the log is this server's alone.
  std::unique_ptr<CurlMulti> curl_;

  // Loop thread only (and Start before the loop). endpoints_[i] is options_.endpoints[i] while
  // this server delivers it, null otherwise.
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  struct LeaseState {
    std::string holder;                         // Last known holder (this server or another).
    absl::Time renewed = absl::InfinitePast();  // Start of this server's last renewal.
  };
  std::vector<LeaseState> leases_;
  absl::Time next_lease_at_ = absl::InfinitePast();
  // Endpoints given up with requests still in flight: their answers land here until the last.
  std::vector<std::unique_ptr<Endpoint>> retired_;
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
