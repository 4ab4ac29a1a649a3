#include "common.h"

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "flags.h"

namespace hookstream::cli {

void PrintError(absl::string_view message) { std::cerr << "hookstream: " << message << std::endl; }

int UsageError(absl::string_view message) {
  PrintError(message);
  std::cerr << "Run 'hookstream help' for usage." << std::endl;
  return kExitUsage;
}

namespace {

// The whole file, or exits with a usage error naming the flag.
std::string ReadPemFlag(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  if (!in || content.str().empty()) {
    std::exit(UsageError(absl::StrCat("--", flag, "=", path, ": cannot read the file")));
  }
  return content.str();
}

std::shared_ptr<grpc::ChannelCredentials> Credentials() {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (!absl::GetFlag(FLAGS_tls) && ca.empty() && cert.empty() && key.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (cert.empty() != key.empty()) {
    std::exit(UsageError("--tls_cert and --tls_key go together"));
  }
  grpc::SslCredentialsOptions options;
  if (!ca.empty()) options.pem_root_certs = ReadPemFlag("tls_ca", ca);
  if (!cert.empty()) {
    options.pem_cert_chain = ReadPemFlag("tls_cert", cert);
    options.pem_private_key = ReadPemFlag("tls_key", key);
  }
  return grpc::SslCredentials(options);
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  // gRPC's default reconnect backoff grows to 2 minutes; a CLI wants a restarted server back soon.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), Credentials(), args);
}

void ConfigureContext(grpc::ClientContext& context) {
  const std::string token = absl::GetFlag(FLAGS_auth_token);
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

std::unique_ptr<grpc::ClientContext> UnaryContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  ConfigureContext(*context);
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  return context;
}

std::string DescribeRpcError(absl::string_view what, const absl::Status& status,
                             grpc::Channel& channel) {
  std::string message = absl::StrCat(what, " failed: ", absl::StatusCodeToString(status.code()),
                                     ": ", status.message());
  const grpc_connectivity_state state = channel.GetState(false);
  if ((status.code() == absl::StatusCode::kUnavailable ||
       status.code() == absl::StatusCode::kDeadlineExceeded) &&
      state != GRPC_CHANNEL_READY) {
    absl::StrAppend(&message, " (cannot reach the server at ", absl::GetFlag(FLAGS_server),
                    "; set it with --server=host:port)");
  }
  return message;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::string();
    return absl::NotFoundError(
        absl::StrCat("cannot read token file ", path, ": ", std::strerror(errno)));
  }
  std::stringstream content;
  content << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(content.str()));
}

absl::Status WriteTokenFile(const std::string& path, const std::string& token) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << token << "\n";
    out.flush();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write token file ", tmp, ": ", std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace hookstream::cli
