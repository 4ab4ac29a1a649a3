#include "server/main/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/common/logging.h"
#include "server/main/tls.h"

namespace hookstream {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  std::unique_ptr<Server> server(new Server());
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      GrpcServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  server->metrics_ = std::make_unique<metrics::Registry>();
  server->server_metrics_ = std::make_unique<ServerMetrics>(server->metrics_.get());
  // Commit latency is measured by the embedded store's group commit; the JetStream backend
  // has no group commit of its own.
  options.log.on_group_commit = server->server_metrics_->CommitObserver();
  options.api.metrics = server->metrics_.get();
  absl::StatusOr<std::unique_ptr<storage::Log>> log =
      options.jetstream ? storage::OpenJetStreamLog(*options.jetstream)
                        : storage::OpenEmbeddedLog(options.log);
  if (!log.ok()) return log.status();
  server->log_ = *std::move(log);
  server->hub_ = std::make_unique<subscription::Hub>(server->log_.get(), options.hub);
  server->event_stream_ = std::make_unique<api::EventStreamService>(
      server->log_.get(), server->hub_.get(), options.api);
  absl::StatusOr<std::unique_ptr<webhook::WebhookShim>> webhooks = webhook::WebhookShim::Start(
      server->log_.get(), server->hub_.get(), std::move(options.webhooks));
  if (!webhooks.ok()) return webhooks.status();
  server->webhooks_ = *std::move(webhooks);
  server->webhook_admin_ = std::make_unique<api::WebhookAdminService>(server->webhooks_.get(),
                                                                      server->event_stream_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!options.grpc_listen.empty()) {
    builder.AddListeningPort(options.grpc_listen, *credentials, &server->port_);
  }
  if (options.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  }
  if (options.max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_IDLE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.max_connection_idle)));
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(server->event_stream_.get());
  builder.RegisterService(server->webhook_admin_.get());
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || (!options.grpc_listen.empty() && server->port_ == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve gRPC on ", options.grpc_listen, " (address in use?)"));
  }
  server->grpc_->GetHealthCheckService()->SetServingStatus(true);
  server->server_metrics_->Attach(server->log_.get(), server->hub_.get(),
                                  server->event_stream_.get(), server->webhooks_.get());

  if (!options.http_listen.empty()) {
    options.zlm.max_event_bytes = options.api.publish.max_event_bytes;
    absl::StatusOr<std::unique_ptr<ingest::ZlmIngest>> zlm =
        ingest::ZlmIngest::Start(server->log_.get(), options.zlm);
    if (!zlm.ok()) return zlm.status();
    server->zlm_ = *std::move(zlm);
    options.http.listen = options.http_listen;
    ingest::ZlmIngest* ingest = server->zlm_.get();
    if (options.tls.enabled()) {
      absl::StatusOr<std::string> cert = ReadPemFile(options.tls.cert_file, "tls.cert_file");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadPemFile(options.tls.key_file, "tls.key_file");
      if (!key.ok()) return key.status();
      options.http.tls_cert_pem = *std::move(cert);
      options.http.tls_key_pem = *std::move(key);
    }
    Server* self = server.get();
    options.http.not_ready = [self] { return self->NotReadyReason(); };
    std::vector<http::HttpServer::Route> routes;
    routes.push_back({ingest::kHookPathPrefix,
                      server->server_metrics_->CountHooks(
                          [ingest](http::Request req, http::Responder r) {
                            ingest->HandleHook(std::move(req), std::move(r));
                          },
                          ingest::kHookPathPrefix)});
    metrics::Registry* registry = server->metrics_.get();
    routes.push_back({"/metrics", [registry](http::Request, http::Responder r) {
                        http::Response resp;
                        resp.content_type = metrics::kContentType;
                        resp.body = registry->Render();
                        r.Send(std::move(resp));
                      }});
    absl::StatusOr<std::unique_ptr<http::HttpServer>> http =
        http::HttpServer::Start(options.http, std::move(routes));
    if (!http.ok() && options.http_optional) {
      HS_EVENT(WARNING, "http.off")
          .Field("error", http.status().message())
          .Field("hint", "set --http_listen to choose another address");
      server->zlm_->Stop();
      server->zlm_.reset();
    } else if (!http.ok()) {
      return http.status();
    } else {
      server->http_ = *std::move(http);
      HS_EVENT(INFO, "http.listening")
          .Field("address", options.http_listen)
          .Field("port", server->http_->port())
          .Field("tls", options.tls.enabled())
          .Field("routes", "/index/hook/<hook> /healthz /readyz /metrics");
    }
  }
  return server;
}

Server::~Server() {
  Drain(absl::Seconds(1));
  // The collectors read the log and hub, which go before the registry.
  if (server_metrics_ != nullptr) server_metrics_->Detach();
}

std::string Server::NotReadyReason() const {
  if (drained_.load()) return "draining";
  if (server_metrics_->commit_failing()) {
    return "storage: the last commit to the log failed; publishes are refused until one succeeds";
  }
  return "";
}

std::shared_ptr<grpc::Channel> Server::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc_->InProcessChannel(args);
}

void Server::Drain(absl::Duration grace) {
  if (grpc_ == nullptr || drained_.exchange(true)) return;
  if (http_ != nullptr) {
    // Hooks first: stop accepting, store and answer what is in flight (it needs the log), then
    // close the listener.
    http_->BeginDrain();
    zlm_->Stop();
    http_->Drain(absl::Now() + grace);
  }
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  const absl::Time deadline = absl::Now() + grace;
  event_stream_->StartDrain();
  hub_->Shutdown();
  // Let every subscription deliver its UNAVAILABLE before the transport goes: a call still
  // open at grpc::Server::Shutdown would reach its client as CANCELLED instead.
  hub_->WaitUntilNoSessions(deadline - absl::Now());
  grpc_->Shutdown(absl::ToChronoTime(deadline));
  grpc_->Wait();
  // Requests in flight are abandoned (sent again after a restart); what finished is written.
  webhooks_->Stop();
  log_->Close();
}

}  // namespace hookstream
