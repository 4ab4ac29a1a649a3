// grpc::Status <-> absl::Status: the codes are the same numbers (both are the canonical codes).
#ifndef HOOKSTREAM_CLIENT_SRC_GRPC_STATUS_H_
#define HOOKSTREAM_CLIENT_SRC_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace hookstream::client {

inline absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace hookstream::client

#endif  // HOOKSTREAM_CLIENT_SRC_GRPC_STATUS_H_
