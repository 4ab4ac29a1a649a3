#include "server/main/server_metrics.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "server/ingest/hooks.h"

namespace hookstream {

ServerMetrics::ServerMetrics(metrics::Registry* registry)
    : registry_(registry),
      commit_seconds_(registry->GetHistogram(
          "hookstream_commit_seconds", "Time of one group commit's synced write (fsync) to the log",
          metrics::LatencyBuckets())),
      committed_events_(registry->GetCounter("hookstream_log_committed_events_total",
                                             "Events written to the log (all sources)")),
      committed_bytes_(registry->GetCounter("hookstream_log_committed_bytes_total",
                                            "Bytes of events written to the log")),
      dedup_hits_(registry->GetCounter(
          "hookstream_dedup_hits_total",
          "Published events answered from the dedup window instead of being stored again")),
      commits_ok_(registry->GetCounter("hookstream_group_commits_total", "Group commits, by result",
                                       {{"result", "ok"}})),
      commits_failed_(registry->GetCounter("hookstream_group_commits_total",
                                           "Group commits, by result", {{"result", "failed"}})) {
  for (const ingest::HookSpec& h : ingest::AllHooks()) {
    hooks_.emplace(std::string(h.name),
                   &registry->GetCounter("hookstream_ingest_hooks_total",
                                         "ZLMediaKit hook requests received, by hook",
                                         {{"hook", std::string(h.name)}}));
  }
  unknown_hook_ =
      &registry->GetCounter("hookstream_ingest_hooks_total",
                            "ZLMediaKit hook requests received, by hook", {{"hook", "unknown"}});
}

ServerMetrics::~ServerMetrics() { Detach(); }

std::function<void(const storage::GroupCommitInfo&)> ServerMetrics::CommitObserver() {
  return [this](const storage::GroupCommitInfo& info) {
    if (info.ok) dedup_hits_.Increment(info.duplicates);  // Else no duplicate was answered.
    if (info.events == 0 && info.ok) return;  // Nothing was written (all duplicates or refused).
    (info.ok ? commits_ok_ : commits_failed_).Increment();
    commit_failing_.store(!info.ok, std::memory_order_relaxed);
    if (!info.ok) return;
    commit_seconds_.ObserveDuration(info.sync_time);
    committed_events_.Increment(info.events);
    committed_bytes_.Increment(info.bytes);
  };
}

void ServerMetrics::Attach(storage::Log* log, subscription::Hub* hub,
                           api::EventStreamService* service, webhook::WebhookShim* webhooks) {
  collectors_.push_back(registry_->AddCollector([log](metrics::Sink& out) {
    const storage::LogStats s = log->Stats();
    out.Gauge("hookstream_log_events", "Events retained in the log", {},
              static_cast<double>(s.event_count));
    out.Gauge("hookstream_log_bytes", "Bytes of events retained in the log", {},
              static_cast<double>(s.bytes));
    out.Gauge("hookstream_log_streams", "Streams in the log", {},
              static_cast<double>(s.stream_count));
    out.Gauge("hookstream_log_head_position", "Position of the last committed event", {},
              static_cast<double>(s.head.value()));
    out.Gauge("hookstream_log_oldest_position", "First retained position", {},
              static_cast<double>(s.oldest.value()));
  }));
  collectors_.push_back(registry_->AddCollector([hub](metrics::Sink& out) {
    const subscription::Hub::SubscriberStats s = hub->CollectSubscriberStats();
    out.Gauge("hookstream_subscribers", "Open subscriptions, by state", {{"state", "live"}},
              static_cast<double>(s.live));
    out.Gauge("hookstream_subscribers", "Open subscriptions, by state", {{"state", "catching_up"}},
              static_cast<double>(s.lags.size() - s.live));
    // Lag: log positions between the head and what a subscription has been handed.
    metrics::HistogramSnapshot h;
    h.bounds = {0, 1, 10, 100, 1000, 10000, 100000, 1000000};
    h.counts.assign(h.bounds.size() + 1, 0);
    uint64_t max_lag = 0;
    for (uint64_t lag : s.lags) {
      const double v = static_cast<double>(lag);
      h.counts[std::lower_bound(h.bounds.begin(), h.bounds.end(), v) - h.bounds.begin()]++;
      h.sum += v;
      max_lag = std::max(max_lag, lag);
    }
    out.Histogram("hookstream_subscriber_lag_positions",
                  "Subscriptions by how many log positions they are behind the head", {}, h);
    out.Gauge("hookstream_subscriber_lag_max_positions",
              "Largest lag of any subscription, in log positions", {},
              static_cast<double>(max_lag));
    out.Counter("hookstream_delivered_events_total", "Events handed to subscribers", {},
                static_cast<double>(hub->delivered_events()));
    out.Counter("hookstream_delivered_bytes_total", "Bytes of events handed to subscribers", {},
                static_cast<double>(hub->delivered_bytes()));
  }));
  collectors_.push_back(registry_->AddCollector([service](metrics::Sink& out) {
    out.Gauge("hookstream_grpc_connections", "gRPC connections with calls in flight", {},
              static_cast<double>(service->connections()));
  }));
  // The shim keeps its own per-endpoint counters (also served by WebhookAdmin.ListEndpoints).
  collectors_.push_back(registry_->AddCollector([webhooks](metrics::Sink& out) {
    for (const webhook::EndpointSnapshot& e : webhooks->Snapshot()) {
      const metrics::Labels labels = {{"endpoint", e.name}};
      out.Counter("hookstream_webhook_attempts_total", "Webhook requests sent, by endpoint", labels,
                  static_cast<double>(e.attempts));
      out.Counter("hookstream_webhook_failures_total",
                  "Webhook requests without a 2xx answer, by endpoint", labels,
                  static_cast<double>(e.failures));
      out.Counter("hookstream_webhook_delivered_total", "Events delivered with a 2xx, by endpoint",
                  labels, static_cast<double>(e.delivered));
      out.Counter("hookstream_webhook_dead_lettered_total",
                  "Events moved to the dead-letter list, by endpoint", labels,
                  static_cast<double>(e.dead_lettered));
      out.Gauge("hookstream_webhook_backlog_events",
                "Events not yet delivered (an upper bound for filtered endpoints), by endpoint",
                labels, static_cast<double>(e.backlog));
      out.Gauge("hookstream_webhook_in_flight", "Webhook requests in flight, by endpoint", labels,
                static_cast<double>(e.in_flight));
      out.Gauge("hookstream_webhook_dead_letters", "Dead letters waiting, by endpoint", labels,
                static_cast<double>(e.dead_letters));
      out.Gauge("hookstream_webhook_endpoint_up",
                "1 while the endpoint delivers, 0 while it holds, is disabled or another server "
                "delivers it",
                labels, e.state == webhook::EndpointSnapshot::State::kActive ? 1.0 : 0.0);
    }
  }));
}

void ServerMetrics::Detach() {
  for (int id : collectors_) registry_->RemoveCollector(id);
  collectors_.clear();
}

http::Handler ServerMetrics::CountHooks(http::Handler inner, std::string path_prefix) {
  return [this, inner = std::move(inner), prefix = std::move(path_prefix)](http::Request req,
                                                                           http::Responder r) {
    absl::string_view name = req.path;
    if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
    auto it = hooks_.find(name);
    (it != hooks_.end() ? it->second : unknown_hook_)->Increment();
    inner(std::move(req), std::move(r));
  };
}

}  // namespace hookstream
