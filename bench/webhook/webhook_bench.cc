// webhook_bench: how fast the webhook shim delivers to a local receiver that answers at once,
// next to what the same receiver takes from wrk.
//
//   webhook_bench deliver --events=50000 --streams=100 --max_in_flight=64 --size=256
//       An in-process hookstream server (temp data dir) with one per_stream endpoint pointing
//       at an in-process receiver (hookstream's libmicrohttpd listener, answering 200 at once);
//       publishes the events and times their delivery. Prints key=value figures.
//   webhook_bench serve --seconds=30
//       Only the receiver, for wrk (bench/webhook/run.sh); prints "port=N".
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "hookstream/v1/event_stream.grpc.pb.h"
#include "server/http/http_server.h"
#include "server/main/server.h"
#include "server/webhook/endpoint_config.h"

ABSL_FLAG(int64_t, events, 50000, "deliver: events to publish and deliver");
ABSL_FLAG(int, streams, 100, "deliver: distinct streams");
ABSL_FLAG(int, size, 256, "deliver: payload bytes per event");
ABSL_FLAG(int, max_in_flight, 64, "deliver: the endpoint's max_in_flight");
ABSL_FLAG(int, receiver_threads, 2, "receiver threads");
ABSL_FLAG(double, seconds, 30, "serve: how long to serve");

namespace {

using namespace hookstream;  // NOLINT: a small tool.

std::atomic<int64_t> g_received{0};
std::atomic<int64_t> g_first_ns{0};

std::unique_ptr<http::HttpServer> StartReceiver() {
  http::HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = absl::GetFlag(FLAGS_receiver_threads);
  o.max_connections = 4096;
  auto s = http::HttpServer::Start(o, {{"/", [](http::Request, http::Responder r) {
                                          int64_t zero = 0;
                                          g_first_ns.compare_exchange_strong(
                                              zero, absl::GetCurrentTimeNanos());
                                          g_received.fetch_add(1);
                                          http::Response resp;
                                          resp.body = "{}";
                                          r.Send(std::move(resp));
                                        }}});
  if (!s.ok()) {
    std::cerr << "receiver: " << s.status() << "\n";
    std::exit(1);
  }
  return *std::move(s);
}

int Deliver() {
  auto rx = StartReceiver();
  char tmpl[] = "/tmp/webhook_bench.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  v1::WebhooksConfig wc;
  v1::WebhookEndpointConfig* e = wc.add_endpoints();
  e->set_name("bench");
  e->set_url(absl::StrCat("http://127.0.0.1:", rx->port(), "/hook"));
  e->add_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  e->set_max_in_flight(absl::GetFlag(FLAGS_max_in_flight));
  ServerOptions o;
  o.grpc_listen = "";
  o.log.data_dir = dir + "/data";
  o.webhooks.endpoints = *webhook::EndpointsFromConfig(wc);
  auto server = Server::Start(o);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  auto stub = v1::EventStream::NewStub((*server)->InProcessChannel());
  const int64_t n = absl::GetFlag(FLAGS_events);
  const int streams = absl::GetFlag(FLAGS_streams);
  const std::string payload =
      absl::StrCat("{\"p\":\"", std::string(absl::GetFlag(FLAGS_size), 'x'), "\"}");
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < n;) {
    v1::PublishRequest req;
    for (int j = 0; j < 500 && i < n; ++j, ++i) {
      v1::EventInput* ev = req.add_events();
      ev->set_stream(absl::StrCat("bench/", i % streams));
      ev->set_type("bench");
      ev->set_content_type("application/json");
      ev->set_data(payload);
    }
    grpc::ClientContext ctx;
    v1::PublishResponse resp;
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    if (!s.ok()) {
      std::cerr << "publish: " << s.error_message() << "\n";
      return 1;
    }
  }
  const absl::Time published = absl::Now();
  absl::Time last_report = absl::Now();
  while (g_received.load() < n) {
    usleep(1000);
    if (absl::Now() - last_report > absl::Seconds(5)) {
      last_report = absl::Now();
      std::fprintf(stderr, "received %lld of %lld\n", static_cast<long long>(g_received.load()),
                   static_cast<long long>(n));
    }
  }
  const absl::Time end = absl::Now();
  const double secs = absl::ToDoubleSeconds(end - absl::FromUnixNanos(g_first_ns.load()));
  std::printf(
      "mode=deliver events=%lld streams=%d max_in_flight=%d publish_s=%.3f deliver_s=%.3f "
      "deliveries_per_s=%.0f\n",
      static_cast<long long>(n), streams, absl::GetFlag(FLAGS_max_in_flight),
      absl::ToDoubleSeconds(published - start), secs, n / secs);
  (*server)->Drain(absl::Seconds(5));
  server->reset();
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  return 0;
}

int Serve() {
  auto rx = StartReceiver();
  std::printf("port=%d\n", rx->port());
  std::fflush(stdout);
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  std::printf("received=%lld\n", static_cast<long long>(g_received.load()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string mode = args.size() > 1 ? args[1] : "";
  if (mode == "deliver") return Deliver();
  if (mode == "serve") return Serve();
  std::cerr << "usage: webhook_bench deliver|serve [flags]\n";
  return 2;
}
