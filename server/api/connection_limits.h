// Per-connection accounting for the gRPC API: how many connections have calls in flight and how
// many Subscribe calls each holds, with limits on both (limits.max_connections,
// limits.max_subscribers_per_connection).
//
// gRPC 1.51 has no server-side cap on accepted connections (grpc.max_allowed_incoming_connections
// came later), so the closest honest limit is on connections *with calls in flight*: a call
// that would make one connection too many is refused with RESOURCE_EXHAUSTED before it does
// anything. A connection is identified by its peer address (ip:port), which is unique per TCP
// connection; every in-process call shares one peer.
//
// Thread-safety: thread-safe. A Lease must not outlive its tracker.
#ifndef HOOKSTREAM_SERVER_API_CONNECTION_LIMITS_H_
#define HOOKSTREAM_SERVER_API_CONNECTION_LIMITS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace hookstream::api {

struct ConnectionLimits {
  size_t max_connections = 0;                 // 0: no limit.
  size_t max_subscribers_per_connection = 0;  // 0: no limit.
};

class ConnectionTracker {
 public:
  // Held for as long as a call is in flight; releases its slot when destroyed.
  class Lease {
   public:
    Lease(ConnectionTracker* tracker, std::string peer, bool subscriber)
        : tracker_(tracker), peer_(std::move(peer)), subscriber_(subscriber) {}
    ~Lease() { tracker_->Release(peer_, subscriber_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    ConnectionTracker* const tracker_;
    const std::string peer_;
    const bool subscriber_;
  };

  explicit ConnectionTracker(ConnectionLimits limits) : limits_(limits) {}

  // A slot for one call from `peer`; RESOURCE_EXHAUSTED naming the limit when it would exceed
  // one.
  absl::StatusOr<std::unique_ptr<Lease>> Enter(const std::string& peer, bool subscriber);

  // Connections with calls in flight.
  size_t connections() const;

 private:
  void Release(const std::string& peer, bool subscriber);

  struct PerPeer {
    size_t calls = 0;
    size_t subscribers = 0;
  };
  const ConnectionLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, PerPeer> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hookstream::api

#endif  // HOOKSTREAM_SERVER_API_CONNECTION_LIMITS_H_
