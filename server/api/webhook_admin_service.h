// gRPC WebhookAdmin: the webhook shim's endpoints, dead letters and replay (DESIGN.md §7).
// Synchronous handlers: a replay waits for the shim's loop thread, briefly. Every call needs the
// `admin` right when access control is on (the EventStream service's token list).
#ifndef HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_
#define HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_

#include "hookstream/v1/webhook_admin.grpc.pb.h"
#include "server/api/event_stream_service.h"
#include "server/webhook/shim.h"

namespace hookstream::api {

class WebhookAdminService final : public v1::WebhookAdmin::Service {
 public:
  // `shim` and `auth` must outlive the service.
  WebhookAdminService(webhook::WebhookShim* shim, const EventStreamService* auth)
      : shim_(shim), auth_(auth) {}

  grpc::Status ListEndpoints(grpc::ServerContext* context, const v1::ListEndpointsRequest* request,
                             v1::ListEndpointsResponse* response) override;
  grpc::Status ListDeadLetters(grpc::ServerContext* context,
                               const v1::ListDeadLettersRequest* request,
                               v1::ListDeadLettersResponse* response) override;
  grpc::Status ReplayDeadLetters(grpc::ServerContext* context,
                                 const v1::ReplayDeadLettersRequest* request,
                                 v1::ReplayDeadLettersResponse* response) override;
  grpc::Status EnableEndpoint(grpc::ServerContext* context,
                              const v1::EnableEndpointRequest* request,
                              v1::EnableEndpointResponse* response) override;

 private:
  // OK, or the UNAUTHENTICATED / PERMISSION_DENIED status of a caller without `admin`.
  grpc::Status CheckAdmin(const grpc::ServerContext* context, absl::string_view rpc) const;

  webhook::WebhookShim* const shim_;
  const EventStreamService* const auth_;
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_
