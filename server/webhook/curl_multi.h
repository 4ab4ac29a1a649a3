// HTTP POSTs for the shim: libcurl's multi interface, many transfers on one thread, connections
// kept alive and reused across requests (the multi handle owns the connection cache), no thread
// per request. Also turns a finished transfer into an AttemptResult: 2xx delivered; 410 gone;
// 3xx a failure (redirects are never followed); 429 / 503 a failure carrying Retry-After.
//
// Threads: everything from the one thread that owns it, except Wakeup (any thread).
#ifndef HOOKSTREAM_SERVER_WEBHOOK_CURL_MULTI_H_
#define HOOKSTREAM_SERVER_WEBHOOK_CURL_MULTI_H_

#include <memory>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/webhook/endpoint.h"
#include "server/webhook/request.h"

namespace hookstream::webhook {

class CurlMulti {
 public:
  struct Completion {
    void* tag;
    AttemptResult result;
  };

  // `max_connections`: idle connections kept for reuse.
  static absl::StatusOr<std::unique_ptr<CurlMulti>> Create(size_t max_connections);
  // Abandons transfers still running.
  ~CurlMulti();

  // Starts POSTing `request`; its completion comes back from Perform with `tag`.
  void Start(HttpRequest request, absl::Duration timeout, void* tag);
  // Moves transfers forward and appends those that finished.
  void Perform(std::vector<Completion>* done);
  // Waits for network activity, a Wakeup, or `timeout`.
  void Poll(absl::Duration timeout);
  // Ends a Poll now, or the next one if none is running. Thread-safe.
  void Wakeup();
  size_t active() const { return running_.size(); }

 private:
  struct Transfer;
  CurlMulti() = default;
  void Finish(Transfer* t, int curl_code, std::vector<Completion>* done);

  void* multi_ = nullptr;                        // CURLM*
  std::vector<std::unique_ptr<Transfer>> free_;  // Easy handles kept for reuse.
  std::set<Transfer*> running_;                  // Owned: added to the multi handle.
};

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_CURL_MULTI_H_
