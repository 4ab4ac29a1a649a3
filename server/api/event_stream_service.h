// hookstream.v1.EventStream over gRPC's callback API. Subscribe is served raw (ByteBuffer) so
// that events are written as the shared bytes encoded once per event (subscription/wire.h);
// clients see the ordinary SubscribeResponse messages.
//
// Every call is authenticated first (auth.h: UNAUTHENTICATED / PERMISSION_DENIED), then counted
// against the connection limits (connection_limits.h); publishes also against the token's rate.
//
// Thread-safe; handlers never block: publishes complete on the appender thread, subscriptions
// are driven by their sessions.
#ifndef HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_
#define HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_

#include <atomic>
#include <memory>

#include "absl/strings/string_view.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "server/api/auth.h"
#include "server/api/connection_limits.h"
#include "server/api/publish_stream_reactor.h"
#include "server/api/validation.h"
#include "server/common/metrics.h"
#include "server/storage/log.h"
#include "server/subscription/hub.h"

namespace hookstream::api {

struct EventStreamOptions {
  PublishLimits publish;
  // How far one PublishStream call reads ahead of its answers.
  PublishStreamLimits publish_stream;
  size_t list_streams_default_page = 100;
  size_t list_streams_max_page = 1000;
  // Bearer tokens, rights, scopes and the per-token publish rate (auth.h).
  AuthOptions auth;
  ConnectionLimits connections;
  // Where the service's counters go (not owned; must outlive the service); nullptr: a private
  // registry nobody reads.
  metrics::Registry* metrics = nullptr;
};

class EventStreamService final
    : public v1::EventStream::WithRawCallbackMethod_Subscribe<v1::EventStream::CallbackService> {
 public:
  // `log` and `hub` must outlive the service.
  EventStreamService(storage::Log* log, subscription::Hub* hub, EventStreamOptions options);
  ~EventStreamService() override;

  // Answers new publishes with UNAVAILABLE from now on (SIGTERM drain), so producers retry
  // elsewhere instead of racing the transport's shutdown.
  void StartDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  // gRPC connections with calls in flight (metrics).
  size_t connections() const { return connections_.connections(); }
  // The caller of `context` if its token has `right`; UNAUTHENTICATED / PERMISSION_DENIED
  // naming `rpc` otherwise. For the server's other services (WebhookAdmin needs kRightAdmin),
  // so that one token list governs every call.
  absl::StatusOr<Principal*> Authorize(const grpc::ServerContextBase& context, Right right,
                                       absl::string_view rpc) const;

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* PublishStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetStream(grpc::CallbackServerContext* context,
                                      const v1::GetStreamRequest* request,
                                      v1::StreamInfo* response) override;
  grpc::ServerUnaryReactor* ListStreams(grpc::CallbackServerContext* context,
                                        const v1::ListStreamsRequest* request,
                                        v1::ListStreamsResponse* response) override;
  grpc::ServerUnaryReactor* GetLog(grpc::CallbackServerContext* context,
                                   const v1::GetLogRequest* request,
                                   v1::LogInfo* response) override;

 private:
  struct Metrics;
  enum Method { kPublish, kPublishStream, kSubscribe, kGetStream, kListStreams, kGetLog };
  struct Admitted {
    Principal* principal;
    std::unique_ptr<ConnectionTracker::Lease> lease;
  };

  // Authenticates the caller, checks `right` and takes a connection slot; counts the call.
  absl::StatusOr<Admitted> Admit(grpc::CallbackServerContext* context, Method method, Right right);
  // Everything a publish request must pass before the log: drain, validation, scopes, rate.
  absl::Status CheckPublish(const v1::PublishRequest& request, Principal& principal) const;
  // Counts `status` (when an error) against `method`.
  void CountOutcome(Method method, const absl::Status& status) const;
  grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, Method method,
                                        const absl::Status& status);

  storage::Log* const log_;
  subscription::Hub* const hub_;
  const EventStreamOptions options_;
  const Authenticator auth_;
  ConnectionTracker connections_;
  std::unique_ptr<metrics::Registry> own_metrics_;
  metrics::Registry* const metrics_;
  std::unique_ptr<Metrics> m_;
  std::atomic<bool> draining_{false};
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_
