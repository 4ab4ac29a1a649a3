#include "tests/webhook/receiver.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace hookstream::testing {

Receiver::Receiver(Policy policy) : policy_(std::move(policy)) {
  http::HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  o.max_body_bytes = 16 << 20;
  auto http = http::HttpServer::Start(o, {{"/", [this](http::Request req, http::Responder r) {
                                             Handle(std::move(req), std::move(r));
                                           }}});
  if (!http.ok()) ADD_FAILURE() << "receiver: " << http.status();
  http_ = *std::move(http);
  timer_ = std::thread([this] { TimerLoop(); });
}

Receiver::~Receiver() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  timer_.join();
  http_->Drain(absl::Now() + absl::Seconds(2));
}

std::string Receiver::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port(), path);
}

void Receiver::SetPolicy(Policy policy) {
  absl::MutexLock l(&mu_);
  policy_ = std::move(policy);
}

void Receiver::Handle(http::Request req, http::Responder responder) {
  Received r;
  r.path = req.path;
  for (auto& [k, v] : req.headers) r.headers[absl::AsciiStrToLower(k)] = v;
  r.body = std::move(req.body);
  r.at = absl::Now();
  Policy policy;
  {
    absl::MutexLock l(&mu_);
    policy = policy_;
  }
  const Answer a = policy ? policy(r) : Answer{};
  absl::MutexLock l(&mu_);
  const size_t index = requests_.size();
  requests_.push_back(std::move(r));
  if (a.delay > absl::ZeroDuration()) {
    ++open_;
    max_open_ = std::max(max_open_, open_);
    held_answers_[index] = a;
    held_.emplace(absl::Now() + a.delay, std::make_pair(index, std::move(responder)));
    return;
  }
  // Counted as open for the instant it is answered, so concurrency shows in max_open_.
  max_open_ = std::max(max_open_, open_ + 1);
  requests_[index].status = a.status;
  http::Response resp;
  resp.status = a.status;
  resp.body = "{}";
  resp.headers = a.headers;
  responder.Send(std::move(resp));
}

void Receiver::TimerLoop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    while (!held_.empty() && held_.begin()->first <= now) {
      auto [index, responder] = std::move(held_.begin()->second);
      held_.erase(held_.begin());
      const Answer a = held_answers_[index];
      held_answers_.erase(index);
      --open_;
      requests_[index].status = a.status;
      http::Response resp;
      resp.status = a.status;
      resp.headers = a.headers;
      responder.Send(std::move(resp));
    }
    const absl::Time next = held_.empty()
                                ? now + absl::Milliseconds(50)
                                : std::min(held_.begin()->first, now + absl::Milliseconds(50));
    mu_.AwaitWithDeadline(absl::Condition(&stop_), next);
  }
}

std::vector<Received> Receiver::Requests() const {
  absl::MutexLock l(&mu_);
  return requests_;
}

int Receiver::max_concurrent() const {
  absl::MutexLock l(&mu_);
  return max_open_;
}

bool Receiver::WaitFor(const std::function<bool(const std::vector<Received>&)>& done,
                       absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock l(&mu_);
  struct Arg {
    const std::vector<Received>* requests;
    size_t seen;
  };
  while (!done(requests_)) {
    if (absl::Now() >= deadline) return false;
    // Woken by a new request, or after 20 ms for answers given later (held requests).
    Arg arg{&requests_, requests_.size()};
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](Arg* a) { return a->requests->size() != a->seen; }, &arg),
                          std::min(deadline, absl::Now() + absl::Milliseconds(20)));
  }
  return true;
}

}  // namespace hookstream::testing
