// The server's own metrics beyond the API's counters: the log's group commits (latency,
// duplicates), what the log holds, subscribers and their lag, deliveries, gRPC connections and
// ZLMediaKit hooks by type, all on one metrics::Registry that /metrics renders. Webhook and
// other components add theirs to the same registry (Server::metrics()).
//
// Threads: the commit observer runs on the appender thread, the hook counter on HTTP threads,
// collectors on the scraping thread. Attach/Detach from the controlling thread.
#ifndef HOOKSTREAM_SERVER_MAIN_SERVER_METRICS_H_
#define HOOKSTREAM_SERVER_MAIN_SERVER_METRICS_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/api/event_stream_service.h"
#include "server/common/metrics.h"
#include "server/http/http_server.h"
#include "server/storage/embedded_log.h"
#include "server/subscription/hub.h"
#include "server/webhook/shim.h"

namespace hookstream {

class ServerMetrics {
 public:
  // `registry` must outlive this object.
  explicit ServerMetrics(metrics::Registry* registry);
  ~ServerMetrics();

  // For EmbeddedLogOptions::on_group_commit; valid while this object lives.
  std::function<void(const storage::GroupCommitInfo&)> CommitObserver();
  // True while the latest group commit failed (readiness).
  bool commit_failing() const { return commit_failing_.load(std::memory_order_relaxed); }

  // Adds collectors reading `log`, `hub` and `service`; they must stay alive until Detach().
  void Attach(storage::Log* log, subscription::Hub* hub, api::EventStreamService* service,
              webhook::WebhookShim* webhooks);
  // Removes the collectors; after it returns none is running. Idempotent.
  void Detach();

  // Counts every request to `inner` (a ZLMediaKit hook route) by hook name; names that are not
  // one of the 17 hooks count as "unknown", so clients cannot create label values.
  http::Handler CountHooks(http::Handler inner, std::string path_prefix);

 private:
  metrics::Registry* const registry_;
  metrics::Histogram& commit_seconds_;
  metrics::Counter& committed_events_;
  metrics::Counter& committed_bytes_;
  metrics::Counter& dedup_hits_;
  metrics::Counter& commits_ok_;
  metrics::Counter& commits_failed_;
  std::atomic<bool> commit_failing_{false};
  absl::flat_hash_map<std::string, metrics::Counter*> hooks_;  // Filled at construction.
  metrics::Counter* unknown_hook_;
  std::vector<int> collectors_;
};

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_SERVER_METRICS_H_
