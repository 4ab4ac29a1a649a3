// TLS material for the listeners, read from the PEM files the config names (key `tls`).
// Errors name the config key and the file. Pure functions (they read files).
#ifndef HOOKSTREAM_SERVER_MAIN_TLS_H_
#define HOOKSTREAM_SERVER_MAIN_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/main/server.h"

namespace hookstream {

// The whole file at `path`; INVALID_ARGUMENT naming `key` when it cannot be read or holds no
// PEM block.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view key);

// Insecure credentials when TLS is off; else TLS with the certificate and key, requiring and
// verifying client certificates when client_ca_file is set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const TlsFiles& tls);

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_TLS_H_
