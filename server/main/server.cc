#include "server/main/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/common/logging.h"

namespace hookstream {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  std::unique_ptr<Server> server(new Server());
  absl::StatusOr<std::unique_ptr<storage::Log>> log = storage::OpenEmbeddedLog(options.log);
  if (!log.ok()) return log.status();
  server->log_ = *std::move(log);
  server->hub_ = std::make_unique<subscription::Hub>(server->log_.get(), options.hub);
  server->event_stream_ = std::make_unique<api::EventStreamService>(
      server->log_.get(), server->hub_.get(), options.api);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!options.grpc_listen.empty()) {
    builder.AddListeningPort(options.grpc_listen, grpc::InsecureServerCredentials(),
                             &server->port_);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(server->event_stream_.get());
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || (!options.grpc_listen.empty() && server->port_ == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve gRPC on ", options.grpc_listen, " (address in use?)"));
  }
  server->grpc_->GetHealthCheckService()->SetServingStatus(true);

  if (!options.http_listen.empty()) {
    options.zlm.max_event_bytes = options.api.publish.max_event_bytes;
    absl::StatusOr<std::unique_ptr<ingest::ZlmIngest>> zlm =
        ingest::ZlmIngest::Start(server->log_.get(), options.zlm);
    if (!zlm.ok()) return zlm.status();
    server->zlm_ = *std::move(zlm);
    options.http.listen = options.http_listen;
    ingest::ZlmIngest* ingest = server->zlm_.get();
    std::vector<http::HttpServer::Route> routes;
    routes.push_back({ingest::kHookPathPrefix, [ingest](http::Request req, http::Responder r) {
                        ingest->HandleHook(std::move(req), std::move(r));
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
          .Field("routes", "/index/hook/<hook> /healthz");
    }
  }
  return server;
}

Server::~Server() { Drain(absl::Seconds(1)); }

std::shared_ptr<grpc::Channel> Server::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc_->InProcessChannel(args);
}

void Server::Drain(absl::Duration grace) {
  if (drained_ || grpc_ == nullptr) return;
  drained_ = true;
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
  log_->Close();
}

}  // namespace hookstream
