// Starts a real hookstream server for a test, in-process or over TCP on port 0 (gRPC's own
// end-to-end tests are parameterised the same way), on a temporary data dir it removes.
#ifndef HOOKSTREAM_TESTS_TESTUTIL_TEST_SERVER_H_
#define HOOKSTREAM_TESTS_TESTUTIL_TEST_SERVER_H_

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "server/main/server.h"

namespace hookstream::testing {

// kTcpOnJetStream: over TCP, with the JetStream backend on a nats-server -js this process
// starts once (nats_server.h); each TestServer gets a stream of its own, kept across Restart().
enum class Transport { kInProcess, kTcp, kTcpOnJetStream };
std::string TransportName(Transport t);

// A directory under the test temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class TestServer {
 public:
  // Options start from ServerOptions' defaults with the data dir and listen address set.
  explicit TestServer(Transport transport, ServerOptions options = ServerOptions());
  ~TestServer();

  // Drain and start again on the same data dir (and a new port for TCP).
  void Restart();
  void Stop();

  Server& server() { return *server_; }
  v1::EventStream::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  const std::string& data_dir() const { return dir_.path(); }
  ServerOptions& options() { return options_; }

 private:
  void StartServer();

  Transport transport_;
  TempDir dir_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventStream::Stub> stub_;
};

// Convenience builders.
v1::EventInput MakeEvent(const std::string& stream, const std::string& type = "t",
                         const std::string& data = "", const std::string& id = "",
                         const std::string& source = "test");
grpc::Status Publish(v1::EventStream::Stub& stub, const std::vector<v1::EventInput>& events,
                     v1::PublishResponse* response = nullptr);

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_TEST_SERVER_H_
