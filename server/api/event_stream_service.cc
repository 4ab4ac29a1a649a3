#include "server/api/event_stream_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/api/publish_stream_reactor.h"
#include "server/api/status.h"
#include "server/api/subscribe_reactor.h"
#include "server/common/names.h"

namespace hookstream::api {
namespace {

// Page tokens are the last stream name of the previous page, opaque to clients.
constexpr char kPageTokenPrefix[] = "p1:";

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status DrainingError() {
  return absl::UnavailableError("the server is draining: publish again elsewhere or later");
}

}  // namespace

EventStreamService::EventStreamService(storage::Log* log, subscription::Hub* hub,
                                       EventStreamOptions options)
    : log_(log), hub_(hub), options_(std::move(options)) {}

grpc::ServerUnaryReactor* EventStreamService::Publish(grpc::CallbackServerContext* context,
                                                      const v1::PublishRequest* request,
                                                      v1::PublishResponse* response) {
  if (draining_.load()) return FinishNow(context, DrainingError());
  if (absl::Status s = ValidatePublishRequest(*request, options_.publish); !s.ok()) {
    return FinishNow(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::vector<v1::EventInput> events(request->events().begin(), request->events().end());
  log_->Append(std::move(events),
               [reactor, response](absl::StatusOr<v1::PublishResponse> result) {
                 if (result.ok()) {
                   *response = *std::move(result);
                   reactor->Finish(grpc::Status::OK);
                 } else {
                   reactor->Finish(ToGrpcStatus(result.status()));
                 }
               });
  return reactor;
}

grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>*
EventStreamService::PublishStream(grpc::CallbackServerContext* context) {
  return new PublishStreamReactor(log_, options_.publish, options_.publish_stream_max_in_flight,
                                  &draining_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* EventStreamService::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  v1::SubscribeRequest req;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (request->Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  if (!req.ParseFromString(bytes)) {
    return new RejectedWriteReactor(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "SubscribeRequest could not be parsed"));
  }
  absl::StatusOr<std::shared_ptr<subscription::Session>> session = hub_->Subscribe(req);
  if (!session.ok()) return new RejectedWriteReactor(ToGrpcStatus(session.status()));
  return new SubscribeReactor(*std::move(session));
}

grpc::ServerUnaryReactor* EventStreamService::GetStream(grpc::CallbackServerContext* context,
                                                        const v1::GetStreamRequest* request,
                                                        v1::StreamInfo* response) {
  if (absl::Status s = ValidateStreamName(request->stream(), "stream"); !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<v1::StreamInfo> info = log_->GetStream(request->stream());
  if (info.ok()) *response = *std::move(info);
  return FinishNow(context, info.status());
}

grpc::ServerUnaryReactor* EventStreamService::ListStreams(grpc::CallbackServerContext* context,
                                                          const v1::ListStreamsRequest* request,
                                                          v1::ListStreamsResponse* response) {
  std::optional<StreamPattern> pattern;
  if (!request->pattern().empty()) {
    absl::StatusOr<StreamPattern> p = StreamPattern::Parse(request->pattern(), "pattern");
    if (!p.ok()) return FinishNow(context, p.status());
    pattern = *std::move(p);
  }
  if (request->page_size() > options_.list_streams_max_page) {
    return FinishNow(context, absl::InvalidArgumentError(absl::StrCat(
                                  "page_size: at most ", options_.list_streams_max_page)));
  }
  const size_t page_size =
      request->page_size() == 0 ? options_.list_streams_default_page : request->page_size();
  std::string start_after;
  if (!request->page_token().empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(request->page_token(), &raw) ||
        raw.rfind(kPageTokenPrefix, 0) != 0) {
      return FinishNow(context, absl::InvalidArgumentError(
                                    "page_token: not a token from a previous ListStreams page"));
    }
    start_after = raw.substr(sizeof(kPageTokenPrefix) - 1);
  }
  bool more = false;
  absl::StatusOr<std::vector<v1::StreamInfo>> page = log_->ListStreams(
      start_after, page_size,
      [&pattern](absl::string_view name) { return !pattern || pattern->Matches(name); }, &more);
  if (!page.ok()) return FinishNow(context, page.status());
  for (v1::StreamInfo& info : *page) *response->add_streams() = std::move(info);
  if (more && response->streams_size() > 0) {
    std::string token;
    absl::WebSafeBase64Escape(
        absl::StrCat(kPageTokenPrefix, response->streams(response->streams_size() - 1).stream()),
        &token);
    response->set_next_page_token(token);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* EventStreamService::GetLog(grpc::CallbackServerContext* context,
                                                     const v1::GetLogRequest* request,
                                                     v1::LogInfo* response) {
  const storage::LogStats stats = log_->Stats();
  response->set_log_id(hub_->tokens().log_id_text());
  response->set_oldest_position(stats.oldest.value());
  response->set_head_position(stats.head.value());
  response->set_event_count(stats.event_count);
  response->set_bytes(stats.bytes);
  response->set_stream_count(stats.stream_count);
  return FinishNow(context, absl::OkStatus());
}

}  // namespace hookstream::api
