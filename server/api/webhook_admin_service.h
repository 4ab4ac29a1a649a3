// gRPC WebhookAdmin: the webhook shim's endpoints, dead letters and replay (DESIGN.md §7).
// Synchronous handlers: a replay waits for the shim's loop thread, briefly.
#ifndef HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_
#define HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_

#include "hookstream/v1/webhook_admin.grpc.pb.h"
#include "server/webhook/shim.h"

namespace hookstream::api {

class WebhookAdminService final : public v1::WebhookAdmin::Service {
 public:
  // `shim` must outlive the service.
  explicit WebhookAdminService(webhook::WebhookShim* shim) : shim_(shim) {}

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
  webhook::WebhookShim* const shim_;
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_WEBHOOK_ADMIN_SERVICE_H_
