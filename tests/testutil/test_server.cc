#include "tests/testutil/test_server.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testutil/nats_server.h"

namespace hookstream::testing {

std::string TransportName(Transport t) {
  switch (t) {
    case Transport::kInProcess:
      return "InProcess";
    case Transport::kTcp:
      return "Tcp";
    case Transport::kTcpOnJetStream:
      return "TcpOnJetStream";
  }
  return "?";
}

std::vector<std::string> SharedNatsUrls() {
  // One server for the whole test process, stopped (SIGKILL) when the process exits.
  static NatsFixture* nats = [] {
    auto* f = new NatsFixture(1);
    f->Start();
    return f;
  }();
  return nats->urls();
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = absl::StrCat(::testing::TempDir(), "hookstream-", getpid(), "-", counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TestServer::TestServer(Transport transport, ServerOptions options)
    : transport_(transport), options_(std::move(options)) {
  options_.log.data_dir = dir_.path() + "/data";
  options_.grpc_listen = transport_ == Transport::kInProcess ? "" : "127.0.0.1:0";
  if (transport_ == Transport::kTcpOnJetStream) {
    static std::atomic<int> counter{0};
    storage::JetStreamLogOptions js;
    js.servers = SharedNatsUrls();
    js.stream = absl::StrCat("T", getpid(), "_", counter++);
    js.subject_prefix = js.stream;
    js.dedup_window = options_.log.dedup_window;
    options_.jetstream = js;
  }
  StartServer();
}

TestServer::~TestServer() { Stop(); }

void TestServer::StartServer() {
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(options_);
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = *std::move(s);
  if (transport_ != Transport::kInProcess) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    // A fresh channel per start: tests must see real reconnects, not a reused subchannel.
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                         grpc::InsecureChannelCredentials(), args);
  } else {
    channel_ = server_->InProcessChannel();
  }
  stub_ = v1::EventStream::NewStub(channel_);
}

void TestServer::Stop() {
  stub_.reset();
  channel_.reset();
  if (server_ != nullptr) server_->Drain(absl::Seconds(2));
  server_.reset();
}

void TestServer::Restart() {
  Stop();
  StartServer();
}

v1::EventInput MakeEvent(const std::string& stream, const std::string& type,
                         const std::string& data, const std::string& id,
                         const std::string& source) {
  v1::EventInput e;
  e.set_stream(stream);
  e.set_type(type);
  e.set_data(data);
  e.set_id(id);
  e.set_source(source);
  return e;
}

grpc::Status Publish(v1::EventStream::Stub& stub, const std::vector<v1::EventInput>& events,
                     v1::PublishResponse* response) {
  v1::PublishRequest req;
  for (const auto& e : events) *req.add_events() = e;
  v1::PublishResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status s = stub.Publish(&ctx, req, &resp);
  if (response != nullptr) *response = std::move(resp);
  return s;
}

}  // namespace hookstream::testing
