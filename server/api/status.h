// The one place where absl::Status becomes grpc::Status (STYLE.md). Abseil's canonical codes
// are gRPC's, so the mapping keeps the code and the message; the error-code table of
// DESIGN.md §4 is applied where the statuses are made.
#ifndef HOOKSTREAM_SERVER_API_STATUS_H_
#define HOOKSTREAM_SERVER_API_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace hookstream::api {

// Payloads of the absl::Status (type URL -> serialized message) become google.rpc.Status
// details in the grpc-status-details-bin trailer.
grpc::Status ToGrpcStatus(const absl::Status& s);

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_STATUS_H_
