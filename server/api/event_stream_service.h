// hookstream.v1.EventStream over gRPC's callback API. Subscribe is served raw (ByteBuffer) so
// that events are written as the shared bytes encoded once per event (subscription/wire.h);
// clients see the ordinary SubscribeResponse messages.
//
// Thread-safe; handlers never block: publishes complete on the appender thread, subscriptions
// are driven by their sessions.
#ifndef HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_
#define HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_

#include <atomic>

#include "hookstream/v1/event_stream.grpc.pb.h"
#include "server/api/validation.h"
#include "server/storage/log.h"
#include "server/subscription/hub.h"

namespace hookstream::api {

struct EventStreamOptions {
  PublishLimits publish;
  // Requests of one PublishStream call appended but not yet answered.
  size_t publish_stream_max_in_flight = 64;
  size_t list_streams_default_page = 100;
  size_t list_streams_max_page = 1000;
};

class EventStreamService final
    : public v1::EventStream::WithRawCallbackMethod_Subscribe<v1::EventStream::CallbackService> {
 public:
  // `log` and `hub` must outlive the service.
  EventStreamService(storage::Log* log, subscription::Hub* hub, EventStreamOptions options);

  // Answers new publishes with UNAVAILABLE from now on (SIGTERM drain), so producers retry
  // elsewhere instead of racing the transport's shutdown.
  void StartDrain() { draining_.store(true); }

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* PublishStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetStream(grpc::CallbackServerContext* context,
                                      const v1::GetStreamRequest* request,
                                      v1::StreamInfo* response) override;
  grpc::ServerUnaryReactor* ListStreams(grpc::CallbackServerContext* context,
                                        const v1::ListStreamsRequest* request,
                                        v1::ListStreamsResponse* response) override;
  grpc::ServerUnaryReactor* GetLog(grpc::CallbackServerContext* context,
                                   const v1::GetLogRequest* request,
                                   v1::LogInfo* response) override;

 private:
  storage::Log* const log_;
  subscription::Hub* const hub_;
  const EventStreamOptions options_;
  std::atomic<bool> draining_{false};
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_EVENT_STREAM_SERVICE_H_
