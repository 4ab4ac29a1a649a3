// What the CLI's commands share: exit codes, the channel, call contexts, error reporting and
// the token file.
#ifndef HOOKSTREAM_CLIENT_CLI_COMMON_H_
#define HOOKSTREAM_CLIENT_CLI_COMMON_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace hookstream::cli {

// Documented in client/README.md; scripts depend on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,    // The server or the connection failed, or refused the request.
  kExitUsage = 2,          // Bad command line (also when the server rejects a flag's value).
  kExitTokenUnusable = 3,  // The resume token expired, is of another log, or is damaged.
  kExitBadInput = 4,       // publish: a stdin line is not a valid event.
};

// Prints "hookstream: <message>" to stderr.
void PrintError(absl::string_view message);
// Prints the message and a hint; returns kExitUsage.
int UsageError(absl::string_view message);

// A channel to --server that reconnects quickly after a server restart.
std::shared_ptr<grpc::Channel> MakeChannel();
// Adds --auth_token metadata.
void ConfigureContext(grpc::ClientContext& context);
// A context for a unary call: --auth_token, deadline --timeout.
std::unique_ptr<grpc::ClientContext> UnaryContext();

// `status` of the call `what`, with a hint when the server could not be reached.
std::string DescribeRpcError(absl::string_view what, const absl::Status& status,
                             grpc::Channel& channel);

// The token stored in `path`; empty when the file does not exist or is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);
// Replaces the file's content atomically (write a temporary file, rename it over).
absl::Status WriteTokenFile(const std::string& path, const std::string& token);

// Commands. `args` are the positional arguments after the command's name.
int RunPublish(const std::vector<std::string>& args);
int RunSubscribe(const std::vector<std::string>& args);
int RunStream(const std::vector<std::string>& args);
int RunLog(const std::vector<std::string>& args);
int RunWebhooks(const std::vector<std::string>& args);

}  // namespace hookstream::cli

#endif  // HOOKSTREAM_CLIENT_CLI_COMMON_H_
