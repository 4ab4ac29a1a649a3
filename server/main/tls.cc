#include "server/main/tls.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"

namespace hookstream {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\": cannot read \"",
                                                   path, "\": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (!absl::StrContains(content.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key \"", key, "\": \"", path, "\" holds no PEM data"));
  }
  return content.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "config keys \"tls.cert_file\" and \"tls.key_file\" must be set together");
  }
  absl::StatusOr<std::string> cert = ReadPemFile(tls.cert_file, "tls.cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(tls.key_file, "tls.key_file");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(tls.client_ca_file, "tls.client_ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace hookstream
