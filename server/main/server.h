// Wiring of one hookstream server: the log, the subscription hub, the gRPC services (with
// health checking and reflection) and the drain sequence. hookstreamd and the integration tests
// both start servers through this class; nothing here decides behaviour of its own.
//
// Thread-safety: Start/Drain/destructor from one controlling thread; the rest is gRPC's.
#ifndef HOOKSTREAM_SERVER_MAIN_SERVER_H_
#define HOOKSTREAM_SERVER_MAIN_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/api/event_stream_service.h"
#include "server/api/webhook_admin_service.h"
#include "server/http/http_server.h"
#include "server/common/metrics.h"
#include "server/ingest/zlm_ingest.h"
#include "server/main/server_metrics.h"
#include "server/storage/embedded_log.h"
#include "server/storage/jetstream/jetstream_log.h"
#include "server/subscription/hub.h"
#include "server/webhook/shim.h"

namespace hookstream {

// PEM files (config key `tls`). cert_file and key_file turn TLS on for gRPC and HTTP;
// client_ca_file makes gRPC require client certificates signed by it (mTLS).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ServerOptions {
  // host:port for gRPC; port 0 picks a free one (see grpc_port()); empty: in-process only.
  std::string grpc_listen = "127.0.0.1:7070";
  // Largest gRPC message accepted or sent.
  size_t max_message_bytes = 64 << 20;
  TlsFiles tls;
  // Concurrent calls (HTTP/2 streams) per gRPC connection; 0: gRPC's default.
  int max_concurrent_streams = 0;
  // A gRPC connection without calls for this long is closed; zero: never.
  absl::Duration max_connection_idle = absl::ZeroDuration();
  storage::EmbeddedLogOptions log;
  // Set: the log is the JetStream backend (log.data_dir unused).
  std::optional<storage::JetStreamLogOptions> jetstream;
  subscription::HubOptions hub;
  api::EventStreamOptions api;
  // host:port for HTTP (ZLMediaKit hooks, /healthz); port 0 picks a free one (see http_port());
  // empty: no HTTP listener.
  std::string http_listen;
  // When set, an http_listen that cannot be bound is logged and HTTP stays off instead of failing
  // the start (hookstreamd's implicit default address only).
  bool http_optional = false;
  http::HttpServerOptions http;
  ingest::ZlmOptions zlm;
  // Legacy webhook endpoints (none: the shim idles).
  webhook::WebhookOptions webhooks;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  // Drains if Drain() was not called.
  ~Server();

  // The bound gRPC port (0 when not listening on TCP).
  int grpc_port() const { return port_; }
  // The bound HTTP port (0 when there is no HTTP listener).
  int http_port() const { return http_ == nullptr ? 0 : http_->port(); }
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // SIGTERM: stop the HTTP listener (in-flight hooks are stored and answered first, /healthz
  // answers 503 meanwhile), report NOT_SERVING, end subscriptions with UNAVAILABLE, stop
  // accepting calls, let in-flight publishes finish (up to `grace`, then cancel what remains),
  // close the log. Idempotent.
  void Drain(absl::Duration grace = absl::Seconds(10));

  storage::Log* log() const { return log_.get(); }
  subscription::Hub* hub() const { return hub_.get(); }
  ingest::ZlmIngest* zlm_ingest() const { return zlm_.get(); }
  webhook::WebhookShim* webhooks() const { return webhooks_.get(); }
  // The registry /metrics renders; components add their metrics to it.
  metrics::Registry* metrics() const { return metrics_.get(); }
  // Why the server is not ready (/readyz), or "" when it is.
  std::string NotReadyReason() const;

 private:
  Server() = default;

  // First: outlive everything that reports to them.
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<ServerMetrics> server_metrics_;
  std::unique_ptr<storage::Log> log_;
  std::unique_ptr<subscription::Hub> hub_;
  // Stopped in Drain before the log closes; destroyed before the hub and log it reads.
  std::unique_ptr<webhook::WebhookShim> webhooks_;
  std::unique_ptr<api::WebhookAdminService> webhook_admin_;
  std::unique_ptr<api::EventStreamService> event_stream_;
  std::unique_ptr<grpc::Server> grpc_;
  // Declared after log_: destroyed first, after Drain closed the log (whose Close acks the
  // ingest's last appends).
  std::unique_ptr<ingest::ZlmIngest> zlm_;
  std::unique_ptr<http::HttpServer> http_;
  int port_ = 0;
  std::atomic<bool> drained_{false};
};

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_SERVER_H_
