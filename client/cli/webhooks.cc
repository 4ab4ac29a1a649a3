// hookstream webhooks endpoints | dead-letters | replay | enable: the WebhookAdmin service.
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common.h"
#include "event_json.h"
#include "flags.h"
#include "hookstream/v1/webhook_admin.grpc.pb.h"

namespace hookstream::cli {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

int Failed(absl::string_view call, const absl::Status& s, grpc::Channel& channel) {
  PrintError(s.code() == absl::StatusCode::kNotFound ? std::string(s.message())
                                                     : DescribeRpcError(call, s, channel));
  return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitServerError;
}

int Endpoints(const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("webhooks endpoints takes no arguments");
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::WebhookAdmin::NewStub(channel);
  v1::ListEndpointsResponse response;
  const absl::Status s =
      FromGrpc(stub->ListEndpoints(UnaryContext().get(), v1::ListEndpointsRequest(), &response));
  if (!s.ok()) return Failed("ListEndpoints", s, *channel);
  for (const v1::WebhookEndpointStatus& e : response.endpoints()) {
    std::cout << MessageToJson(e) << "\n";
  }
  std::cout.flush();
  return kExitOk;
}

int DeadLetters(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("webhooks dead-letters takes one endpoint name");
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::WebhookAdmin::NewStub(channel);
  v1::ListDeadLettersRequest request;
  request.set_endpoint(args[0]);
  request.set_page_size(1000);
  do {
    v1::ListDeadLettersResponse response;
    const absl::Status s =
        FromGrpc(stub->ListDeadLetters(UnaryContext().get(), request, &response));
    if (!s.ok()) return Failed("ListDeadLetters", s, *channel);
    for (const v1::DeadLetter& d : response.dead_letters()) std::cout << MessageToJson(d) << "\n";
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  std::cout.flush();
  return kExitOk;
}

int Replay(const std::vector<std::string>& args) {
  const bool all = absl::GetFlag(FLAGS_all);
  if (args.empty()) return UsageError("webhooks replay: which endpoint?");
  if (all == (args.size() > 1)) {
    return UsageError("webhooks replay ENDPOINT takes dead-letter ids or --all (not both)");
  }
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::WebhookAdmin::NewStub(channel);
  v1::ReplayDeadLettersRequest request;
  request.set_endpoint(args[0]);
  request.set_all(all);
  for (size_t i = 1; i < args.size(); ++i) request.add_ids(args[i]);
  v1::ReplayDeadLettersResponse response;
  const absl::Status s =
      FromGrpc(stub->ReplayDeadLetters(UnaryContext().get(), request, &response));
  if (!s.ok()) return Failed("ReplayDeadLetters", s, *channel);
  std::cout << MessageToJson(response) << std::endl;
  return response.not_found().empty() ? kExitOk : kExitServerError;
}

int Enable(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("webhooks enable takes one endpoint name");
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::WebhookAdmin::NewStub(channel);
  v1::EnableEndpointRequest request;
  request.set_endpoint(args[0]);
  v1::EnableEndpointResponse response;
  const absl::Status s = FromGrpc(stub->EnableEndpoint(UnaryContext().get(), request, &response));
  if (!s.ok()) return Failed("EnableEndpoint", s, *channel);
  return kExitOk;
}

}  // namespace

int RunWebhooks(const std::vector<std::string>& args) {
  constexpr char kExpected[] = "expected 'endpoints', 'dead-letters', 'replay' or 'enable'";
  if (args.empty()) return UsageError(absl::StrCat("webhooks: ", kExpected));
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "endpoints") return Endpoints(rest);
  if (args[0] == "dead-letters") return DeadLetters(rest);
  if (args[0] == "replay") return Replay(rest);
  if (args[0] == "enable") return Enable(rest);
  return UsageError(
      absl::StrCat("webhooks: unknown subcommand \"", args[0], "\" (", kExpected, ")"));
}

}  // namespace hookstream::cli
