// The workloads of issue 9, each written once against the Driver interface. Each prints one line
// of key=value figures to stdout (bench/compare.sh collects medians from them) and returns a
// non-OK status when the system failed the workload (an error, or events missing).
#ifndef HOOKSTREAM_BENCH_HSBENCH_WORKLOADS_H_
#define HOOKSTREAM_BENCH_HSBENCH_WORKLOADS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bench/hsbench/driver.h"

namespace hsbench {

struct WorkloadOptions {
  std::string prefix = "w";   // stream-name prefix (see driver.h)
  int64_t events = 200000;    // publish: events to publish; catchup: events to read
  int size = 256;             // payload bytes per event (at least 16: timestamp and number)
  int streams = 1000;         // events go round-robin over this many streams
  int connections = 4;        // publish: concurrent publishers, a connection each
  double rate = 2000;         // live: events per second of the one paced publisher
  double seconds = 5;         // live: how long it publishes
  int subscribers = 1;        // live: subscribers on every stream of the prefix
  int count = 1000;           // idle: subscriptions to hold
  int per_connection = 1;     // idle: subscriptions sharing one connection
  double hold_seconds = 600;  // idle: how long to hold them (the script kills us earlier)
};

// W1: `events` events over `streams` streams from `connections` publishers; events/s until the
// last one is acknowledged.
absl::Status RunPublish(Driver& driver, const WorkloadOptions& options);
// W2: one publisher at `rate` events/s for `seconds`; `subscribers` subscribers live on every
// stream; end-to-end latency from the send time carried in each payload (same process, same
// clock) to its arrival, p50/p99/p999 over all subscribers, the first 10% left out as warm-up.
absl::Status RunLive(Driver& driver, const WorkloadOptions& options);
// W3: one subscriber reads `events` events of the prefix from the beginning; events/s.
absl::Status RunCatchUp(Driver& driver, const WorkloadOptions& options);
// W4: holds `count` idle subscriptions, prints "ready" once all are established, then holds
// them for `hold_seconds` while the caller measures the server's memory.
absl::Status RunIdle(Driver& driver, const WorkloadOptions& options);

}  // namespace hsbench

#endif  // HOOKSTREAM_BENCH_HSBENCH_WORKLOADS_H_
