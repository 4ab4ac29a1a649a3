#include "server/api/webhook_admin_service.h"

#include "server/api/status.h"

namespace hookstream::api {
namespace {

v1::WebhookEndpointStatus::State ToProto(webhook::EndpointSnapshot::State s) {
  switch (s) {
    case webhook::EndpointSnapshot::State::kActive:
      return v1::WebhookEndpointStatus::ACTIVE;
    case webhook::EndpointSnapshot::State::kHolding:
      return v1::WebhookEndpointStatus::HOLDING;
    case webhook::EndpointSnapshot::State::kDisabled:
      return v1::WebhookEndpointStatus::DISABLED;
    case webhook::EndpointSnapshot::State::kStandby:
      return v1::WebhookEndpointStatus::STANDBY;
  }
  return v1::WebhookEndpointStatus::STATE_UNSPECIFIED;
}

}  // namespace

grpc::Status WebhookAdminService::CheckAdmin(const grpc::ServerContext* context,
                                             absl::string_view rpc) const {
  absl::StatusOr<Principal*> principal = auth_->Authorize(*context, kRightAdmin, rpc);
  return principal.ok() ? grpc::Status::OK : ToGrpcStatus(principal.status());
}

grpc::Status WebhookAdminService::ListEndpoints(grpc::ServerContext* context,
                                                const v1::ListEndpointsRequest*,
                                                v1::ListEndpointsResponse* response) {
  if (grpc::Status s = CheckAdmin(context, "ListEndpoints"); !s.ok()) return s;
  for (const webhook::EndpointSnapshot& s : shim_->Snapshot()) {
    v1::WebhookEndpointStatus* e = response->add_endpoints();
    e->set_name(s.name);
    e->set_url(s.url);
    e->set_state(ToProto(s.state));
    e->set_disabled_reason(s.disabled_reason);
    e->set_holder(s.holder);
    e->set_cursor(s.cursor.value());
    e->set_backlog(s.backlog);
    e->set_in_flight(s.in_flight);
    e->set_last_error(s.last_error);
    if (s.last_error_time != absl::InfinitePast()) {
      const int64_t micros = absl::ToUnixMicros(s.last_error_time);
      e->mutable_last_error_time()->set_seconds(micros / 1000000);
      e->mutable_last_error_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
    }
    e->set_attempts(s.attempts);
    e->set_failures(s.failures);
    e->set_delivered(s.delivered);
    e->set_dead_lettered(s.dead_lettered);
    e->set_dead_letters(s.dead_letters);
  }
  return grpc::Status::OK;
}

grpc::Status WebhookAdminService::ListDeadLetters(grpc::ServerContext* context,
                                                  const v1::ListDeadLettersRequest* request,
                                                  v1::ListDeadLettersResponse* response) {
  if (grpc::Status s = CheckAdmin(context, "ListDeadLetters"); !s.ok()) return s;
  absl::StatusOr<v1::ListDeadLettersResponse> r = shim_->ListDeadLetters(*request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status WebhookAdminService::ReplayDeadLetters(grpc::ServerContext* context,
                                                    const v1::ReplayDeadLettersRequest* request,
                                                    v1::ReplayDeadLettersResponse* response) {
  if (grpc::Status s = CheckAdmin(context, "ReplayDeadLetters"); !s.ok()) return s;
  absl::StatusOr<v1::ReplayDeadLettersResponse> r = shim_->ReplayDeadLetters(*request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status WebhookAdminService::EnableEndpoint(grpc::ServerContext* context,
                                                 const v1::EnableEndpointRequest* request,
                                                 v1::EnableEndpointResponse*) {
  if (grpc::Status s = CheckAdmin(context, "EnableEndpoint"); !s.ok()) return s;
  return ToGrpcStatus(shim_->EnableEndpoint(request->endpoint()));
}

}  // namespace hookstream::api
