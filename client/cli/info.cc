// hookstream stream get | stream list | log info: unary calls, JSON out.
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common.h"
#include "event_json.h"
#include "flags.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hookstream::cli {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

int StreamGet(const std::vector<std::string>& args) {
  std::string name = absl::GetFlag(FLAGS_stream);
  if (args.size() > 1 || (args.size() == 1 && !name.empty())) {
    return UsageError("stream get takes one stream name (or --stream)");
  }
  if (args.size() == 1) name = args[0];
  if (name.empty()) return UsageError("stream get: which stream? (hookstream stream get NAME)");
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::EventStream::NewStub(channel);
  v1::GetStreamRequest request;
  request.set_stream(name);
  v1::StreamInfo info;
  const absl::Status s = FromGrpc(stub->GetStream(UnaryContext().get(), request, &info));
  if (s.code() == absl::StatusCode::kNotFound) {
    PrintError(absl::StrCat("stream \"", name, "\" not found"));
    return kExitServerError;
  }
  if (!s.ok()) {
    PrintError(DescribeRpcError("GetStream", s, *channel));
    return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitServerError;
  }
  std::cout << MessageToJson(info) << std::endl;
  return kExitOk;
}

int StreamList(const std::vector<std::string>& args) {
  std::string pattern = absl::GetFlag(FLAGS_pattern);
  if (args.size() > 1 || (args.size() == 1 && !pattern.empty())) {
    return UsageError("stream list takes at most one pattern (or --pattern)");
  }
  if (args.size() == 1) pattern = args[0];
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::EventStream::NewStub(channel);
  v1::ListStreamsRequest request;
  request.set_pattern(pattern);
  request.set_page_size(1000);
  do {
    v1::ListStreamsResponse response;
    const absl::Status s = FromGrpc(stub->ListStreams(UnaryContext().get(), request, &response));
    if (!s.ok()) {
      PrintError(DescribeRpcError("ListStreams", s, *channel));
      return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitServerError;
    }
    for (const v1::StreamInfo& info : response.streams()) {
      std::cout << MessageToJson(info) << "\n";
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  std::cout.flush();
  return kExitOk;
}

}  // namespace

int RunStream(const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("stream: expected 'get' or 'list'");
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "get") return StreamGet(rest);
  if (args[0] == "list") return StreamList(rest);
  return UsageError(
      absl::StrCat("stream: unknown subcommand \"", args[0], "\" (expected 'get' or 'list')"));
}

int RunLog(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "info") {
    return UsageError(absl::StrCat("log: expected 'info', got \"", absl::StrJoin(args, " "), "\""));
  }
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  auto stub = v1::EventStream::NewStub(channel);
  v1::LogInfo info;
  const absl::Status s = FromGrpc(stub->GetLog(UnaryContext().get(), v1::GetLogRequest(), &info));
  if (!s.ok()) {
    PrintError(DescribeRpcError("GetLog", s, *channel));
    return kExitServerError;
  }
  std::cout << MessageToJson(info) << std::endl;
  return kExitOk;
}

}  // namespace hookstream::cli
