#include "server/api/connection_limits.h"

#include "absl/strings/str_cat.h"

namespace hookstream::api {

absl::StatusOr<std::unique_ptr<ConnectionTracker::Lease>> ConnectionTracker::Enter(
    const std::string& peer, bool subscriber) {
  {
    absl::MutexLock l(&mu_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) {
      if (limits_.max_connections != 0 && peers_.size() >= limits_.max_connections) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "connection limit reached: ", peers_.size(),
            " connections already have calls in flight (limits.max_connections); retry later "
            "or reuse an existing connection"));
      }
      it = peers_.emplace(peer, PerPeer{}).first;
    }
    PerPeer& p = it->second;
    if (subscriber && limits_.max_subscribers_per_connection != 0 &&
        p.subscribers >= limits_.max_subscribers_per_connection) {
      if (p.calls == 0) peers_.erase(it);
      return absl::ResourceExhaustedError(absl::StrCat(
          "this connection already has ", limits_.max_subscribers_per_connection,
          " subscriptions (limits.max_subscribers_per_connection); use another connection or "
          "combine filters"));
    }
    ++p.calls;
    if (subscriber) ++p.subscribers;
  }
  return std::make_unique<Lease>(this, peer, subscriber);
}

void ConnectionTracker::Release(const std::string& peer, bool subscriber) {
  absl::MutexLock l(&mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  --it->second.calls;
  if (subscriber) --it->second.subscribers;
  if (it->second.calls == 0) peers_.erase(it);
}

size_t ConnectionTracker::connections() const {
  absl::MutexLock l(&mu_);
  return peers_.size();
}

}  // namespace hookstream::api
