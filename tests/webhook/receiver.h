// A real HTTP webhook receiver for tests, on hookstream's own HTTP listener (libmicrohttpd) on
// 127.0.0.1 port 0. A policy chooses each request's answer: a status, headers (Retry-After,
// Location), and a delay (answered later from a timer thread, so the sender's timeout can
// expire). Records every request and the answer it got.
#ifndef HOOKSTREAM_TESTS_WEBHOOK_RECEIVER_H_
#define HOOKSTREAM_TESTS_WEBHOOK_RECEIVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/http_server.h"

namespace hookstream::testing {

struct Received {
  std::string path;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;
  int status = 0;  // The answer given (0 while held).
  absl::Time at;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  bool ok() const { return status >= 200 && status < 300; }
};

struct Answer {
  Answer(int status = 200, std::vector<std::pair<std::string, std::string>> headers = {},
         absl::Duration delay = absl::ZeroDuration())
      : status(status), headers(std::move(headers)), delay(delay) {}
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  absl::Duration delay = absl::ZeroDuration();
};

class Receiver {
 public:
  // `policy` runs on the listener's threads, under no lock of the receiver.
  using Policy = std::function<Answer(const Received&)>;
  explicit Receiver(Policy policy = nullptr);
  ~Receiver();

  int port() const { return http_->port(); }
  std::string Url(const std::string& path) const;

  std::vector<Received> Requests() const;
  // Waits until `done(requests so far)` holds; false on timeout.
  bool WaitFor(const std::function<bool(const std::vector<Received>&)>& done,
               absl::Duration timeout) const;
  // Most requests that were waiting for an answer at the same time.
  int max_concurrent() const;
  void SetPolicy(Policy policy);

 private:
  void Handle(http::Request req, http::Responder responder);
  void TimerLoop();

  mutable absl::Mutex mu_;
  Policy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> requests_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int max_open_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<absl::Time, std::pair<size_t, http::Responder>> held_ ABSL_GUARDED_BY(mu_);
  std::map<size_t, Answer> held_answers_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_WEBHOOK_RECEIVER_H_
