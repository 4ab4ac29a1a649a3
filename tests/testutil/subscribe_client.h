// A test subscriber: runs one Subscribe call on its own thread and records every message, so a
// test can wait (with a deadline, never a sleep) for what it expects and check invariants.
#ifndef HOOKSTREAM_TESTS_TESTUTIL_SUBSCRIBE_CLIENT_H_
#define HOOKSTREAM_TESTS_TESTUTIL_SUBSCRIBE_CLIENT_H_

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hookstream::testing {

class SubscribeClient {
 public:
  struct State {
    std::vector<v1::SubscribeResponse> messages;  // Every message, in order.
    std::vector<v1::DeliveredEvent> events;       // Events of all `events` messages, in order.
    std::string last_token;                       // Of the last event or control message.
    int caught_up = 0;
    int checkpoints = 0;
    int heartbeats = 0;
    int fell_behind = 0;
    std::optional<grpc::Status> finished;
  };

  // Starts the call on its own thread; `bearer_token`, when set, is sent as
  // `authorization: Bearer <token>`.
  SubscribeClient(v1::EventStream::Stub& stub, const v1::SubscribeRequest& request,
                  const std::string& bearer_token = "");
  ~SubscribeClient();

  // Waits until `pred` holds; false on timeout.
  bool WaitUntil(const std::function<bool(const State&)>& pred,
                 absl::Duration timeout = absl::Seconds(30));
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(30));
  bool WaitForCaughtUp(absl::Duration timeout = absl::Seconds(30));
  // Waits for the call to end; its status.
  grpc::Status WaitForFinish(absl::Duration timeout = absl::Seconds(30));
  void Cancel();
  // Stops reading until Resume() (messages pile up in gRPC's and the server's buffers).
  void Pause();
  void Resume();

  State Snapshot();

 private:
  void Run(v1::EventStream::Stub& stub, v1::SubscribeRequest request);

  grpc::ClientContext context_;
  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

v1::SubscribeRequest FromBeginning(std::vector<std::string> streams = {});
v1::SubscribeRequest FromToken(const std::string& token, std::vector<std::string> streams = {});

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_SUBSCRIBE_CLIENT_H_
