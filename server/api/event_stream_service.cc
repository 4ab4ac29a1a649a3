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

constexpr absl::string_view kMethodNames[] = {"Publish",   "PublishStream", "Subscribe",
                                              "GetStream", "ListStreams",   "GetLog"};

}  // namespace

struct EventStreamService::Metrics {
  explicit Metrics(metrics::Registry& r) : registry(r) {
    for (int m = 0; m < 6; ++m) {
      const metrics::Labels method = {{"method", std::string(kMethodNames[m])}};
      requests[m] = &r.GetCounter("hookstream_rpc_requests_total",
                                  "gRPC calls received, by method", method);
    }
    for (int m : {kPublish, kPublishStream}) {
      const metrics::Labels method = {{"method", std::string(kMethodNames[m])}};
      publish_requests[m] = &r.GetCounter(
          "hookstream_publish_requests_total",
          "Publish requests acknowledged (one per PublishStream message), by method", method);
      publish_events[m] = &r.GetCounter(
          "hookstream_publish_events_total",
          "Events in acknowledged publish requests (duplicates included), by method", method);
      publish_latency[m] = &r.GetHistogram(
          "hookstream_publish_latency_seconds",
          "From a publish request's arrival to its acknowledgement (durable), by method",
          metrics::LatencyBuckets(), method);
    }
  }
  metrics::Registry& registry;
  metrics::Counter* requests[6];
  metrics::Counter* publish_requests[2];
  metrics::Counter* publish_events[2];
  metrics::Histogram* publish_latency[2];

  // Acknowledged (or failed) publish of `events` events that arrived at `start`.
  void PublishDone(Method m, size_t events, absl::Time start) {
    publish_requests[m]->Increment();
    publish_events[m]->Increment(events);
    publish_latency[m]->ObserveDuration(absl::Now() - start);
  }
};

EventStreamService::EventStreamService(storage::Log* log, subscription::Hub* hub,
                                       EventStreamOptions options)
    : log_(log),
      hub_(hub),
      options_(std::move(options)),
      auth_(options_.auth),
      connections_(options_.connections),
      own_metrics_(options_.metrics == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
      metrics_(options_.metrics != nullptr ? options_.metrics : own_metrics_.get()),
      m_(std::make_unique<Metrics>(*metrics_)) {}

EventStreamService::~EventStreamService() = default;

void EventStreamService::CountOutcome(Method method, const absl::Status& status) const {
  if (status.ok()) return;
  metrics_
      ->GetCounter("hookstream_rpc_errors_total", "gRPC calls that failed, by method and code",
                   {{"method", std::string(kMethodNames[method])},
                    {"code", absl::StatusCodeToString(status.code())}})
      .Increment();
}

grpc::ServerUnaryReactor* EventStreamService::FinishUnary(grpc::CallbackServerContext* context,
                                                          Method method,
                                                          const absl::Status& status) {
  CountOutcome(method, status);
  return FinishNow(context, status);
}

absl::StatusOr<Principal*> EventStreamService::Authorize(const grpc::ServerContextBase& context,
                                                         Right right,
                                                         absl::string_view rpc) const {
  std::optional<absl::string_view> authorization;
  const auto& md = context.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  absl::StatusOr<Principal*> principal = auth_.Authenticate(authorization);
  if (!principal.ok()) return principal.status();
  if (absl::Status s = (*principal)->Require(right, rpc); !s.ok()) return s;
  return principal;
}

absl::StatusOr<EventStreamService::Admitted> EventStreamService::Admit(
    grpc::CallbackServerContext* context, Method method, Right right) {
  m_->requests[method]->Increment();
  absl::StatusOr<Principal*> principal = Authorize(*context, right, kMethodNames[method]);
  if (!principal.ok()) return principal.status();
  absl::StatusOr<std::unique_ptr<ConnectionTracker::Lease>> lease =
      connections_.Enter(context->peer(), method == kSubscribe);
  if (!lease.ok()) return lease.status();
  return Admitted{*principal, *std::move(lease)};
}

absl::Status EventStreamService::CheckPublish(const v1::PublishRequest& request,
                                              Principal& principal) const {
  if (draining_.load()) return DrainingError();
  if (absl::Status s = ValidatePublishRequest(request, options_.publish); !s.ok()) return s;
  for (int i = 0; i < request.events_size(); ++i) {
    absl::Status s =
        principal.RequireStream(request.events(i).stream(), absl::StrCat("events[", i, "].stream"));
    if (!s.ok()) return s;
  }
  return principal.publish_rate().Take(request.events_size(),
                                       absl::StrCat("token \"", principal.name(), "\""));
}

grpc::ServerUnaryReactor* EventStreamService::Publish(grpc::CallbackServerContext* context,
                                                      const v1::PublishRequest* request,
                                                      v1::PublishResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<Admitted> admitted = Admit(context, kPublish, kRightPublish);
  if (!admitted.ok()) return FinishUnary(context, kPublish, admitted.status());
  if (absl::Status s = CheckPublish(*request, *admitted->principal); !s.ok()) {
    return FinishUnary(context, kPublish, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::vector<v1::EventInput> events(request->events().begin(), request->events().end());
  const size_t count = events.size();
  log_->Append(std::move(events), [this, reactor, response, count, start,
                                   lease = std::move(admitted->lease)](
                                      absl::StatusOr<v1::PublishResponse> result) {
    if (result.ok()) {
      m_->PublishDone(kPublish, count, start);
      *response = *std::move(result);
      reactor->Finish(grpc::Status::OK);
    } else {
      CountOutcome(kPublish, result.status());
      reactor->Finish(ToGrpcStatus(result.status()));
    }
  });
  return reactor;
}

grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>*
EventStreamService::PublishStream(grpc::CallbackServerContext* context) {
  absl::StatusOr<Admitted> admitted = Admit(context, kPublishStream, kRightPublish);
  if (!admitted.ok()) {
    CountOutcome(kPublishStream, admitted.status());
    return new RejectedBidiReactor(ToGrpcStatus(admitted.status()));
  }
  Principal* principal = admitted->principal;
  PublishStreamHooks hooks;
  hooks.check = [this, principal](const v1::PublishRequest& request) {
    absl::Status s = CheckPublish(request, *principal);
    CountOutcome(kPublishStream, s);
    return s;
  };
  hooks.on_outcome = [this](const absl::Status& status, size_t events, absl::Time start) {
    if (status.ok()) {
      m_->PublishDone(kPublishStream, events, start);
    } else {
      CountOutcome(kPublishStream, status);
    }
  };
  hooks.lease = std::shared_ptr<ConnectionTracker::Lease>(std::move(admitted->lease));
  return new PublishStreamReactor(log_, options_.publish_stream, std::move(hooks));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* EventStreamService::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  absl::StatusOr<Admitted> admitted = Admit(context, kSubscribe, kRightSubscribe);
  if (!admitted.ok()) {
    CountOutcome(kSubscribe, admitted.status());
    return new RejectedWriteReactor(ToGrpcStatus(admitted.status()));
  }
  v1::SubscribeRequest req;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (request->Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  if (!req.ParseFromString(bytes)) {
    const absl::Status bad = absl::InvalidArgumentError("SubscribeRequest could not be parsed");
    CountOutcome(kSubscribe, bad);
    return new RejectedWriteReactor(ToGrpcStatus(bad));
  }
  absl::StatusOr<std::shared_ptr<subscription::Session>> session =
      hub_->Subscribe(req, admitted->principal->scopes());
  if (!session.ok()) {
    CountOutcome(kSubscribe, session.status());
    return new RejectedWriteReactor(ToGrpcStatus(session.status()));
  }
  return new SubscribeReactor(*std::move(session), std::move(admitted->lease));
}

grpc::ServerUnaryReactor* EventStreamService::GetStream(grpc::CallbackServerContext* context,
                                                        const v1::GetStreamRequest* request,
                                                        v1::StreamInfo* response) {
  absl::StatusOr<Admitted> admitted = Admit(context, kGetStream, kRightSubscribe);
  if (!admitted.ok()) return FinishUnary(context, kGetStream, admitted.status());
  if (absl::Status s = ValidateStreamName(request->stream(), "stream"); !s.ok()) {
    return FinishUnary(context, kGetStream, s);
  }
  if (absl::Status s = admitted->principal->RequireStream(request->stream(), "stream"); !s.ok()) {
    return FinishUnary(context, kGetStream, s);
  }
  absl::StatusOr<v1::StreamInfo> info = log_->GetStream(request->stream());
  if (info.ok()) *response = *std::move(info);
  return FinishUnary(context, kGetStream, info.status());
}

grpc::ServerUnaryReactor* EventStreamService::ListStreams(grpc::CallbackServerContext* context,
                                                          const v1::ListStreamsRequest* request,
                                                          v1::ListStreamsResponse* response) {
  absl::StatusOr<Admitted> admitted = Admit(context, kListStreams, kRightSubscribe);
  if (!admitted.ok()) return FinishUnary(context, kListStreams, admitted.status());
  const Principal* principal = admitted->principal;
  std::optional<StreamPattern> pattern;
  if (!request->pattern().empty()) {
    absl::StatusOr<StreamPattern> p = StreamPattern::Parse(request->pattern(), "pattern");
    if (!p.ok()) return FinishUnary(context, kListStreams, p.status());
    pattern = *std::move(p);
  }
  if (request->page_size() > options_.list_streams_max_page) {
    return FinishUnary(context, kListStreams, absl::InvalidArgumentError(absl::StrCat(
                                  "page_size: at most ", options_.list_streams_max_page)));
  }
  const size_t page_size =
      request->page_size() == 0 ? options_.list_streams_default_page : request->page_size();
  std::string start_after;
  if (!request->page_token().empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(request->page_token(), &raw) ||
        raw.rfind(kPageTokenPrefix, 0) != 0) {
      return FinishUnary(context, kListStreams, absl::InvalidArgumentError(
                                    "page_token: not a token from a previous ListStreams page"));
    }
    start_after = raw.substr(sizeof(kPageTokenPrefix) - 1);
  }
  bool more = false;
  absl::StatusOr<std::vector<v1::StreamInfo>> page = log_->ListStreams(
      start_after, page_size,
      [&pattern, principal](absl::string_view name) {
        return (!pattern || pattern->Matches(name)) && principal->MayAccess(name);
      },
      &more);
  if (!page.ok()) return FinishUnary(context, kListStreams, page.status());
  for (v1::StreamInfo& info : *page) *response->add_streams() = std::move(info);
  if (more && response->streams_size() > 0) {
    std::string token;
    absl::WebSafeBase64Escape(
        absl::StrCat(kPageTokenPrefix, response->streams(response->streams_size() - 1).stream()),
        &token);
    response->set_next_page_token(token);
  }
  return FinishUnary(context, kListStreams, absl::OkStatus());
}

grpc::ServerUnaryReactor* EventStreamService::GetLog(grpc::CallbackServerContext* context,
                                                     const v1::GetLogRequest* request,
                                                     v1::LogInfo* response) {
  absl::StatusOr<Admitted> admitted = Admit(context, kGetLog, kRightAdmin);
  if (!admitted.ok()) return FinishUnary(context, kGetLog, admitted.status());
  const storage::LogStats stats = log_->Stats();
  response->set_log_id(hub_->tokens().log_id_text());
  response->set_oldest_position(stats.oldest.value());
  response->set_head_position(stats.head.value());
  response->set_event_count(stats.event_count);
  response->set_bytes(stats.bytes);
  response->set_stream_count(stats.stream_count);
  return FinishUnary(context, kListStreams, absl::OkStatus());
}

}  // namespace hookstream::api
