// hsbench drivers: one small interface that every system under test implements (hookstream and
// the do-nothing reference server over gRPC, NATS JetStream through libnats, Redis Streams
// through hiredis), so each workload in workloads.cc is written once and runs against all.
//
// Naming: a workload works on `streams` streams under a prefix; stream k of prefix "w1a" is the
// hookstream stream "w1a/s<k>", the JetStream subject "bench.w1a.s<k>" (stream BENCH captures
// "bench.>") and the Redis key "w1a:s<k>". A prefix is used by one workload of one run, so live
// subscribers never see events of an earlier workload.
//
// Threads: a Publisher is used by one thread at a time. A Subscription calls its sink from
// driver threads, one at a time per subscription (never concurrently for one subscription).
#ifndef HOOKSTREAM_BENCH_HSBENCH_DRIVER_H_
#define HOOKSTREAM_BENCH_HSBENCH_DRIVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hsbench {

// Options shared by all drivers; each uses the ones that apply to it (documented per flag in
// main.cc).
struct DriverOptions {
  std::string system;   // hookstream | reference | jetstream | redis
  std::string address;  // host:port of the server
  int streams = 1000;   // distinct streams per prefix
  // Events per request (gRPC Publish / PublishStream message) or per pipeline flush (Redis).
  int batch = 100;
  // gRPC publishing: "unary" (Publish, one call at a time per connection) or "stream"
  // (PublishStream, up to `inflight` requests outstanding).
  std::string publish_mode = "unary";
  int inflight = 256;        // outstanding requests (PublishStream) / async publishes (JetStream)
  int read_count = 100;      // Redis XREAD COUNT per stream key
  bool low_latency = false;  // NATS: send each publish at once instead of via the flusher
};

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Queues one event for stream `stream_index`; may send and may block on flow control.
  virtual absl::Status Send(int stream_index, absl::string_view payload) = 0;
  // Sends whatever is queued now, without waiting for acknowledgements (paced publishing).
  virtual absl::Status Kick() = 0;
  // Sends what is queued and returns once every event sent so far is acknowledged.
  virtual absl::Status Finish() = 0;
};

// Receives each event's payload. Called from a driver thread.
using EventSink = std::function<void(absl::string_view payload)>;

// An open subscription; destroying it ends it (and waits for its threads).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class Driver {
 public:
  virtual ~Driver() = default;
  // A publisher with a connection of its own.
  virtual absl::StatusOr<std::unique_ptr<Publisher>> NewPublisher(const std::string& prefix) = 0;
  // Subscribes (on a connection of its own) to every stream under `prefix`, from the oldest
  // event or from now. For `from_beginning == false` it returns once the subscription is
  // live, so events published afterwards are delivered.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& prefix,
                                                                  bool from_beginning,
                                                                  EventSink sink) = 0;
  // Opens `count` idle subscriptions, each on a stream nobody publishes to, `per_connection`
  // of them sharing each connection; returns once all are established.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> HoldIdle(int count, int per_connection) = 0;
};

absl::StatusOr<std::unique_ptr<Driver>> NewGrpcDriver(const DriverOptions& options);
absl::StatusOr<std::unique_ptr<Driver>> NewNatsDriver(const DriverOptions& options);
absl::StatusOr<std::unique_ptr<Driver>> NewRedisDriver(const DriverOptions& options);

}  // namespace hsbench

#endif  // HOOKSTREAM_BENCH_HSBENCH_DRIVER_H_
