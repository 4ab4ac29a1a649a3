// A real server on a fixed TCP port that can be drained and restarted on the same data dir and
// port, so that one client channel sees the restart as a reconnect (TestServer::Restart() hands
// out a new channel instead).
#ifndef HOOKSTREAM_TESTS_CLIENT_RESTARTABLE_SERVER_H_
#define HOOKSTREAM_TESTS_CLIENT_RESTARTABLE_SERVER_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/main/server.h"
#include "tests/testutil/test_server.h"

namespace hookstream::testing {

class RestartableServer {
 public:
  explicit RestartableServer(ServerOptions options = ServerOptions())
      : options_(std::move(options)) {
    options_.log.data_dir = dir_.path() + "/data";
    options_.grpc_listen = "127.0.0.1:0";
    Start();
    options_.grpc_listen = absl::StrCat("127.0.0.1:", port_);  // The same port from now on.
  }
  ~RestartableServer() {
    absl::MutexLock l(&mu_);
    if (server_ != nullptr) server_->Drain(absl::Seconds(2));
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // A channel that reconnects quickly after a restart.
  std::shared_ptr<grpc::Channel> Channel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  }

  // Drain (subscriptions end with UNAVAILABLE), then start again on the same dir and port.
  void Restart() {
    std::unique_ptr<Server> old;
    {
      absl::MutexLock l(&mu_);
      old = std::move(server_);
    }
    old->Drain(absl::Seconds(2));
    old.reset();
    Start();
  }

  // Publishes one event, retrying (same id) until acknowledged, as a restart-safe producer does.
  static bool PublishRetrying(v1::EventStream::Stub& stub, const v1::EventInput& event,
                              v1::PublishResult* result = nullptr) {
    v1::PublishRequest request;
    *request.add_events() = event;
    for (int attempt = 0; attempt < 10000; ++attempt) {
      grpc::ClientContext context;
      context.set_wait_for_ready(true);  // Waits for the restarted server instead of spinning.
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::PublishResponse response;
      grpc::Status s = stub.Publish(&context, request, &response);
      if (s.ok()) {
        if (result != nullptr) *result = response.results(0);
        return true;
      }
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
          s.error_code() != grpc::StatusCode::CANCELLED &&
          s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        ADD_FAILURE() << "publish failed: " << s.error_code() << " " << s.error_message();
        return false;
      }
    }
    return false;
  }

 private:
  void Start() {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::MutexLock l(&mu_);
    server_ = *std::move(s);
    port_ = server_->grpc_port();
  }

  TempDir dir_;
  ServerOptions options_;
  int port_ = 0;
  absl::Mutex mu_;
  std::unique_ptr<Server> server_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_CLIENT_RESTARTABLE_SERVER_H_
