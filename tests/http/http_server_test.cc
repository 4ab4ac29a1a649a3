// The HTTP listener on its own: routing, /healthz, body limits, keep-alive, answers from other
// threads, and the drain sequence.
#include "server/http/http_server.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/http_client.h"

namespace hookstream::http {
namespace {

using ::hookstream::testing::HttpClient;
using ::hookstream::testing::LocalUrl;
using ::testing::HasSubstr;

// Answers requests to /later/ only when the test says so, from the test's thread.
class Parked {
 public:
  void Park(Request req, Responder r) {
    absl::MutexLock l(&mu_);
    parked_.emplace_back(std::move(req.body), std::move(r));
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return parked_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<std::pair<std::string, Responder>> Take() {
    absl::MutexLock l(&mu_);
    return std::move(parked_);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, Responder>> parked_ ABSL_GUARDED_BY(mu_);
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o = HttpServerOptions()) {
    o.listen = "127.0.0.1:0";
    std::vector<HttpServer::Route> routes;
    routes.push_back({"/echo", [](Request req, Responder r) {
                        Response resp;
                        resp.body = absl::StrCat(req.method, " ", req.body, " ",
                                                 req.QueryArg("q") ? *req.QueryArg("q") : "-");
                        resp.content_type = "text/plain";
                        r.Send(std::move(resp));
                      }});
    routes.push_back({"/later/", [this](Request req, Responder r) {
                        parked_.Park(std::move(req), std::move(r));
                      }});
    routes.push_back({"/drop", [](Request, Responder) {}});
    absl::StatusOr<std::unique_ptr<HttpServer>> s = HttpServer::Start(o, std::move(routes));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  std::string Url(const std::string& path) { return LocalUrl(server_->port(), path); }

  Parked parked_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoutesByPathAndPassesBodyAndQuery) {
  Start();
  HttpClient c;
  auto r = c.Post(Url("/echo?q=a%20b"), "hello");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "POST hello a b");
  r = c.Get(Url("/nowhere"));
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr(R"("msg":"no such path: /nowhere")"));
}

TEST_F(HttpServerTest, HealthzIsOkWhileServingAnd503WhileDraining) {
  Start();
  HttpClient c;
  auto r = c.Get(Url("/healthz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  // A request in flight keeps the drain open; /healthz on the open connection says draining.
  HttpClient parked_client;
  std::thread t([&] { EXPECT_EQ(parked_client.Post(Url("/later/x"), "p").status, 200); });
  ASSERT_TRUE(parked_.WaitFor(1));
  server_->BeginDrain();
  r = c.Get(Url("/healthz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"status":"draining"})");
  r = c.Post(Url("/echo"), "x");
  EXPECT_EQ(r.status, 503) << "new requests are refused while draining";
  for (auto& [body, responder] : parked_.Take()) responder.Send(Response{});
  t.join();
}

TEST_F(HttpServerTest, ReadyzFollowsNotReadyAndTheDrain) {
  std::atomic<bool> ready{true};
  HttpServerOptions o;
  o.not_ready = [&ready] { return ready.load() ? std::string() : std::string("log \"closed\""); };
  Start(o);
  HttpClient c;
  auto r = c.Get(Url("/readyz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ready"})");
  ready.store(false);
  r = c.Get(Url("/readyz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"reason":"log \"closed\"","status":"not_ready"})");
  EXPECT_EQ(c.Get(Url("/healthz")).status, 200) << "not ready is not dead";
  ready.store(true);
  EXPECT_EQ(c.Get(Url("/readyz")).status, 200);
  // While draining (a parked request keeps the drain open), /readyz says why.
  HttpClient parked_client;
  std::thread t([&] { EXPECT_EQ(parked_client.Post(Url("/later/x"), "p").status, 200); });
  ASSERT_TRUE(parked_.WaitFor(1));
  server_->BeginDrain();
  r = c.Get(Url("/readyz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"reason":"draining","status":"not_ready"})");
  for (auto& [body, responder] : parked_.Take()) responder.Send(Response{});
  t.join();
}

TEST_F(HttpServerTest, KeepAliveReusesOneConnection) {
  Start();
  HttpClient c;
  auto first = c.Post(Url("/echo"), "1");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.new_connections, 1);
  for (int i = 0; i < 20; ++i) {
    auto r = c.Post(Url("/echo"), absl::StrCat(i));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.new_connections, 0) << "request " << i << " opened a new connection";
  }
}

TEST_F(HttpServerTest, AnnouncedOversizedBodyIs413WithJsonReason) {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  Start(o);
  HttpClient c;
  auto r = c.Post(Url("/echo"), std::string(1001, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("larger than the limit of 1000 bytes"));
  EXPECT_THAT(r.body, HasSubstr(R"("code":413)"));
  r = c.Post(Url("/echo"), std::string(1000, 'x'));
  EXPECT_EQ(r.status, 200) << "exactly the limit is fine";
}

TEST_F(HttpServerTest, ChunkedOversizedBodyIs413) {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  Start(o);
  HttpClient c;
  auto r = c.Post(Url("/echo"), std::string(50000, 'x'), {}, /*chunked=*/true);
  EXPECT_EQ(r.status, 413) << r.error;
  HttpClient fresh;
  EXPECT_EQ(fresh.Post(Url("/echo"), "small", {}, /*chunked=*/true).body, "POST small -");
}

TEST_F(HttpServerTest, AnswersComeFromAnotherThreadInAnyOrderOnConcurrentConnections) {
  Start();
  constexpr int kClients = 16;
  std::vector<std::string> got(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      HttpClient c;
      auto r = c.Post(Url("/later/q"), absl::StrCat("req", i));
      got[i] = absl::StrCat(r.status, ":", r.body);
    });
  }
  ASSERT_TRUE(parked_.WaitFor(kClients)) << "all requests are parked at once";
  EXPECT_EQ(server_->InFlight(), static_cast<size_t>(kClients));
  auto parked = parked_.Take();
  std::thread answerer([&] {
    for (auto it = parked.rbegin(); it != parked.rend(); ++it) {
      Response resp;
      resp.body = absl::StrCat("answer-", it->first);
      EXPECT_TRUE(it->second.Send(std::move(resp)));
      EXPECT_FALSE(it->second.Send(Response{})) << "a second answer is ignored";
    }
  });
  answerer.join();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(got[i], absl::StrCat("200:answer-req", i));
  EXPECT_EQ(server_->InFlight(), 0u);
}

TEST_F(HttpServerTest, ResponderDroppedUnansweredAnswers500) {
  Start();
  HttpClient c;
  auto r = c.Post(Url("/drop"), "x");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("not answered"));
}

TEST_F(HttpServerTest, DrainWaitsForInFlightAnswersThenStops) {
  Start();
  HttpClient c;
  std::string body;
  std::thread client([&] { body = c.Post(Url("/later/x"), "slow").body; });
  ASSERT_TRUE(parked_.WaitFor(1));
  absl::Notification drained;
  std::thread drainer([&] {
    server_->Drain(absl::Now() + absl::Seconds(30));
    drained.Notify();
  });
  EXPECT_FALSE(drained.WaitForNotificationWithTimeout(absl::Milliseconds(100)))
      << "Drain must wait for the parked request";
  auto parked = parked_.Take();
  Response resp;
  resp.body = "late but delivered";
  parked[0].second.Send(std::move(resp));
  client.join();
  EXPECT_EQ(body, "late but delivered");
  drainer.join();
  HttpClient after;
  EXPECT_EQ(after.Get(Url("/healthz")).status, 0) << "the listener is closed";
}

TEST_F(HttpServerTest, DrainAnswers503AtItsDeadline) {
  Start();
  HttpClient c;
  long status = 0;
  std::thread client([&] { status = c.Post(Url("/later/x"), "never").status; });
  ASSERT_TRUE(parked_.WaitFor(1));
  server_->Drain(absl::Now() + absl::Milliseconds(50));
  client.join();
  EXPECT_EQ(status, 503);
  auto parked = parked_.Take();
  EXPECT_FALSE(parked[0].second.Send(Response{})) << "already answered by the drain";
}

TEST(HttpServerStartTest, AddressInUseIsAClearError) {
  std::vector<HttpServer::Route> routes;
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  auto first = HttpServer::Start(o, {});
  ASSERT_TRUE(first.ok());
  o.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = HttpServer::Start(o, {});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("cannot serve HTTP on 127.0.0.1:"));
  o.listen = "nonsense";
  EXPECT_FALSE(HttpServer::Start(o, {}).ok());
}

}  // namespace
}  // namespace hookstream::http
