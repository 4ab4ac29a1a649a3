// hsbench: the same workloads against hookstream, the do-nothing reference gRPC server, NATS
// JetStream and Redis Streams (issue 9). bench/compare.sh drives it; bench/README.md explains
// each workload and figure.
//
//   hsbench publish --system=hookstream --server=127.0.0.1:7070 --prefix=w1 --events=200000
//       --batch=100 [--publish_mode=stream --inflight=256] --connections=4
//   hsbench live    --system=jetstream --server=127.0.0.1:4222 --prefix=w2 --rate=2000
//       --seconds=5 --subscribers=10
//   hsbench catchup --system=redis --server=127.0.0.1:6379 --prefix=w1 --events=200000
//   hsbench idle    --system=reference --server=... --count=1000 --per_connection=100
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/hsbench/driver.h"
#include "bench/hsbench/workloads.h"

ABSL_FLAG(std::string, system, "hookstream", "hookstream | reference | jetstream | redis");
ABSL_FLAG(std::string, server, "127.0.0.1:7070", "host:port of the system under test");
ABSL_FLAG(std::string, prefix, "w", "stream-name prefix; one per workload and run");
ABSL_FLAG(int64_t, events, 200000, "publish: events to publish; catchup: events to read");
ABSL_FLAG(int, size, 256, "payload bytes per event (at least 16)");
ABSL_FLAG(int, streams, 1000, "distinct streams");
ABSL_FLAG(int, connections, 4, "publish: concurrent publishers, one connection each");
ABSL_FLAG(int, batch, 100,
          "events per gRPC request (Publish / PublishStream), or XADDs per Redis pipeline flush");
ABSL_FLAG(std::string, publish_mode, "unary",
          "gRPC: unary (Publish, one call at a time per connection) or stream (PublishStream)");
ABSL_FLAG(int, inflight, 256,
          "requests outstanding per PublishStream call; async publishes in flight (JetStream)");
ABSL_FLAG(int, read_count, 100, "Redis: XREAD COUNT per key");
ABSL_FLAG(double, rate, 2000, "live: events per second");
ABSL_FLAG(double, seconds, 5, "live: seconds of publishing");
ABSL_FLAG(int, subscribers, 1, "live: subscribers");
ABSL_FLAG(int, count, 1000, "idle: subscriptions to hold");
ABSL_FLAG(int, per_connection, 1, "idle: subscriptions per connection");
ABSL_FLAG(double, hold_seconds, 600, "idle: seconds to hold the subscriptions");

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string mode = args.size() == 2 ? args[1] : "";

  hsbench::DriverOptions d;
  d.system = absl::GetFlag(FLAGS_system);
  d.address = absl::GetFlag(FLAGS_server);
  d.streams = absl::GetFlag(FLAGS_streams);
  d.batch = absl::GetFlag(FLAGS_batch);
  d.publish_mode = absl::GetFlag(FLAGS_publish_mode);
  d.inflight = absl::GetFlag(FLAGS_inflight);
  d.read_count = absl::GetFlag(FLAGS_read_count);
  // Latency is what the live workload measures; throughput what the others do.
  d.low_latency = mode == "live";

  hsbench::WorkloadOptions w;
  w.prefix = absl::GetFlag(FLAGS_prefix);
  w.events = absl::GetFlag(FLAGS_events);
  w.size = absl::GetFlag(FLAGS_size);
  w.streams = d.streams;
  w.connections = absl::GetFlag(FLAGS_connections);
  w.rate = absl::GetFlag(FLAGS_rate);
  w.seconds = absl::GetFlag(FLAGS_seconds);
  w.subscribers = absl::GetFlag(FLAGS_subscribers);
  w.count = absl::GetFlag(FLAGS_count);
  w.per_connection = std::max(1, absl::GetFlag(FLAGS_per_connection));
  w.hold_seconds = absl::GetFlag(FLAGS_hold_seconds);

  if (d.streams < 1 || d.batch < 1 || d.inflight < 1 || w.size < 16 || w.connections < 1 ||
      w.rate <= 0 || w.subscribers < 1 || w.count < 1) {
    std::cerr << "hsbench: --streams, --batch, --inflight, --connections, --rate, --subscribers "
                 "and --count must be positive, --size at least 16\n";
    return 2;
  }
  if (d.publish_mode != "unary" && d.publish_mode != "stream") {
    std::cerr << "hsbench: --publish_mode must be unary or stream\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<hsbench::Driver>> driver;
  if (d.system == "hookstream" || d.system == "reference") {
    driver = hsbench::NewGrpcDriver(d);
  } else if (d.system == "jetstream") {
    driver = hsbench::NewNatsDriver(d);
  } else if (d.system == "redis") {
    driver = hsbench::NewRedisDriver(d);
  } else {
    std::cerr << "hsbench: unknown --system=" << d.system << "\n";
    return 2;
  }
  if (!driver.ok()) {
    std::cerr << "hsbench: " << driver.status() << "\n";
    return 1;
  }

  absl::Status s;
  if (mode == "publish") {
    s = hsbench::RunPublish(**driver, w);
  } else if (mode == "live") {
    s = hsbench::RunLive(**driver, w);
  } else if (mode == "catchup") {
    s = hsbench::RunCatchUp(**driver, w);
  } else if (mode == "idle") {
    s = hsbench::RunIdle(**driver, w);
  } else {
    std::cerr << "usage: hsbench publish|live|catchup|idle [--flags]; see --help\n";
    return 2;
  }
  if (!s.ok()) {
    std::cerr << "hsbench " << mode << " (" << d.system << "): " << s << "\n";
    return 1;
  }
  return 0;
}
