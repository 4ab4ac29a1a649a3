// A scriptable in-process EventStream server for the client's failure paths that the real
// server cannot produce on demand (OUT_OF_RANGE, a server gone silent, a seq break, any status
// code at any point). Each Subscribe call runs the script with its index; the script writes
// messages and returns the status the call ends with.
#ifndef HOOKSTREAM_TESTS_CLIENT_FAKE_EVENT_STREAM_H_
#define HOOKSTREAM_TESTS_CLIENT_FAKE_EVENT_STREAM_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hookstream::testing {

class FakeEventStream : public v1::EventStream::Service {
 public:
  using Writer = grpc::ServerWriter<v1::SubscribeResponse>;
  using Script = std::function<grpc::Status(int call, const v1::SubscribeRequest& request,
                                            Writer& writer, FakeEventStream& fake)>;

  explicit FakeEventStream(Script script);
  ~FakeEventStream() override;

  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  // Requests of the Subscribe calls so far, in order.
  std::vector<v1::SubscribeRequest> requests();
  // Waits until at least `n` calls have started; false on timeout.
  bool WaitForCalls(int n, absl::Duration timeout = absl::Seconds(10));

  // For scripts: blocks until Release(name) (or the fake shuts down); false on timeout.
  bool WaitFor(const std::string& name, absl::Duration timeout = absl::Seconds(30));
  void Release(const std::string& name);

  grpc::Status Subscribe(grpc::ServerContext* context, const v1::SubscribeRequest* request,
                         Writer* writer) override;

 private:
  Script script_;
  absl::Mutex mu_;
  std::vector<v1::SubscribeRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Message builders. Event n of `stream` has token "t<position>".
v1::DeliveredEvent Delivered(const std::string& stream, uint64_t seq, uint64_t position);
v1::SubscribeResponse Subscribed();
v1::SubscribeResponse Events(std::vector<v1::DeliveredEvent> events);
v1::SubscribeResponse CheckpointMessage(const std::string& token, uint64_t position);
v1::SubscribeResponse HeartbeatMessage(const std::string& token);
v1::SubscribeResponse GapMessage(uint64_t from, uint64_t to);

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_CLIENT_FAKE_EVENT_STREAM_H_
