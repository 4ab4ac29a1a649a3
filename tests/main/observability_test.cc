// /metrics, /healthz and /readyz on a real server: the metrics move when traffic flows (read
// back by parsing the exposition text), and readiness follows storage failures and the drain.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/http_client.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::HttpClient;
using ::hookstream::testing::HttpResult;
using ::hookstream::testing::LocalUrl;
using ::hookstream::testing::MakeEvent;
using ::hookstream::testing::Publish;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

constexpr char kFlowReport[] = R"({"app":"live","duration":20,"hook_index":1,"id":"2-11",
  "ip":"127.0.0.1","mediaServerId":"zlm-metrics","params":"","player":false,"port":41176,
  "protocol":"rtmp","schema":"rtmp","stream":"test","totalBytes":713854,
  "vhost":"__defaultVhost__"})";

// Every sample of an exposition text, by its full name with labels as rendered. Checks the
// format on the way: every sample's family was announced by a TYPE line first.
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> samples;
  std::string family;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
      EXPECT_EQ(parts.size(), 4u) << line;
      family = std::string(parts[2]);
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, absl::string_view::npos) << line;
    const std::string name(line.substr(0, space));
    EXPECT_TRUE(absl::StartsWith(name, family)) << name << " outside its family " << family;
    samples[name] = std::stod(std::string(line.substr(space + 1)));
  }
  return samples;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o = ServerOptions()) {
    o.http_listen = "127.0.0.1:0";
    o.zlm.storage_timeout = absl::Seconds(60);
    server_ = std::make_unique<TestServer>(Transport::kTcp, o);
  }
  std::map<std::string, double> Scrape() {
    HttpResult r = http_.Get(LocalUrl(server_->server().http_port(), "/metrics"));
    EXPECT_EQ(r.status, 200) << r.error;
    return ParseExposition(r.body);
  }
  // Scrapes until `pred` holds (values published by other threads settle); the last scrape.
  std::map<std::string, double> ScrapeUntil(
      const std::function<bool(std::map<std::string, double>&)>& pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::map<std::string, double> m = Scrape();
    while (!pred(m) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      m = Scrape();
    }
    return m;
  }

  HttpClient http_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ObservabilityTest, MetricsMoveWhenTrafficFlows) {
  Start();
  std::map<std::string, double> before = Scrape();
  EXPECT_EQ(before["hookstream_log_events"], 0);
  EXPECT_EQ(before[R"(hookstream_publish_requests_total{method="Publish"})"], 0);
  EXPECT_EQ(before["hookstream_commit_seconds_count"], 0);

  SubscribeClient sub(server_->stub(), FromBeginning());
  ASSERT_TRUE(sub.WaitForCaughtUp());
  ASSERT_TRUE(Publish(server_->stub(), {MakeEvent("a/1", "t", "x", "id1", "src"),
                                        MakeEvent("a/2", "t", "y", "id2", "src")})
                  .ok());
  // The same ids again: answered from the dedup window.
  ASSERT_TRUE(Publish(server_->stub(), {MakeEvent("a/1", "t", "x", "id1", "src")}).ok());
  // A refused publish, and a batch refused whole by the log (its duplicate is no dedup hit).
  EXPECT_FALSE(Publish(server_->stub(), {MakeEvent("bad//stream")}).ok());
  v1::EventInput conflict = MakeEvent("a/2");
  conflict.set_expected_seq(100);
  EXPECT_EQ(Publish(server_->stub(), {MakeEvent("a/1", "t", "x", "id1", "src"), conflict})
                .error_code(),
            grpc::ABORTED);
  ASSERT_TRUE(sub.WaitForEvents(2));
  HttpResult hook = http_.Post(
      LocalUrl(server_->server().http_port(), "/index/hook/on_flow_report"), kFlowReport);
  EXPECT_EQ(hook.status, 200) << hook.body;
  http_.Post(LocalUrl(server_->server().http_port(), "/index/hook/no_such_hook"), "{}");

  std::map<std::string, double> m = ScrapeUntil([](std::map<std::string, double>& m) {
    return m["hookstream_log_events"] >= 3 && m["hookstream_delivered_events_total"] >= 2;
  });
  EXPECT_EQ(m[R"(hookstream_rpc_requests_total{method="Publish"})"], 4);
  EXPECT_EQ(m[R"(hookstream_publish_requests_total{method="Publish"})"], 2);
  EXPECT_EQ(m[R"(hookstream_publish_events_total{method="Publish"})"], 3);
  EXPECT_EQ(m[R"(hookstream_rpc_errors_total{method="Publish",code="INVALID_ARGUMENT"})"], 1);
  EXPECT_EQ(m[R"(hookstream_rpc_errors_total{method="Publish",code="ABORTED"})"], 1);
  EXPECT_EQ(m[R"(hookstream_publish_latency_seconds_count{method="Publish"})"], 2);
  EXPECT_EQ(m["hookstream_dedup_hits_total"], 1);
  EXPECT_GE(m["hookstream_log_committed_events_total"], 3);  // 2 published + the hook's.
  EXPECT_GE(m["hookstream_commit_seconds_count"], 2);
  EXPECT_GT(m["hookstream_commit_seconds_sum"], 0);
  EXPECT_EQ(m[R"(hookstream_commit_seconds_bucket{le="+Inf"})"],
            m["hookstream_commit_seconds_count"]);
  EXPECT_GE(m["hookstream_log_events"], 3);
  EXPECT_GT(m["hookstream_log_bytes"], 0);
  EXPECT_GE(m["hookstream_log_streams"], 3);
  EXPECT_EQ(m["hookstream_log_head_position"], m["hookstream_log_events"]);
  EXPECT_EQ(m[R"(hookstream_subscribers{state="live"})"], 1);
  EXPECT_EQ(m["hookstream_subscriber_lag_positions_count"], 1);
  EXPECT_EQ(m[R"(hookstream_ingest_hooks_total{hook="on_flow_report"})"], 1);
  EXPECT_EQ(m[R"(hookstream_ingest_hooks_total{hook="on_publish"})"], 0);
  EXPECT_EQ(m[R"(hookstream_ingest_hooks_total{hook="unknown"})"], 1);
  EXPECT_GE(m["hookstream_grpc_connections"], 1) << "the subscription holds one";

  sub.Cancel();
  sub.WaitForFinish();
  m = ScrapeUntil([](std::map<std::string, double>& m) {
    return m[R"(hookstream_subscribers{state="live"})"] == 0;
  });
  EXPECT_EQ(m[R"(hookstream_subscribers{state="live"})"], 0);
  EXPECT_EQ(m["hookstream_subscriber_lag_positions_count"], 0);
}

TEST_F(ObservabilityTest, StalledSubscriberShowsLagUntilItReads) {
  ServerOptions o;
  o.hub.session.buffer_bytes = 64 << 10;
  Start(o);
  SubscribeClient sub(server_->stub(), FromBeginning());
  ASSERT_TRUE(sub.WaitForCaughtUp());
  sub.Pause();
  // Far more than the transport's windows and the session's buffer can hold.
  const std::string data(16 << 10, 'x');
  for (int i = 0; i < 40; ++i) {
    std::vector<v1::EventInput> batch;
    for (int j = 0; j < 50; ++j) batch.push_back(MakeEvent("lag/s", "t", data));
    ASSERT_TRUE(Publish(server_->stub(), batch).ok());
  }
  std::map<std::string, double> m = ScrapeUntil([](std::map<std::string, double>& m) {
    return m["hookstream_subscriber_lag_max_positions"] > 0;
  });
  EXPECT_GT(m["hookstream_subscriber_lag_max_positions"], 0);
  EXPECT_GT(m["hookstream_subscriber_lag_positions_sum"], 0);
  sub.Resume();
  ASSERT_TRUE(sub.WaitForEvents(2000, absl::Seconds(60)));
  m = ScrapeUntil([](std::map<std::string, double>& m) {
    return m["hookstream_subscriber_lag_max_positions"] == 0;
  });
  EXPECT_EQ(m["hookstream_subscriber_lag_max_positions"], 0);
  EXPECT_GE(m["hookstream_delivered_events_total"], 2000);
}

TEST_F(ObservabilityTest, ReadyzFollowsStorageFailures) {
  auto failing = std::make_shared<std::atomic<bool>>(false);
  ServerOptions o;
  o.log.faults.before_append = [failing]() {
    return failing->load() ? absl::UnavailableError("injected disk failure") : absl::OkStatus();
  };
  Start(o);
  const int port = server_->server().http_port();
  HttpResult r = http_.Get(LocalUrl(port, "/readyz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ready"})");
  failing->store(true);
  EXPECT_EQ(Publish(server_->stub(), {MakeEvent("a/b")}).error_code(), grpc::UNAVAILABLE);
  r = http_.Get(LocalUrl(port, "/readyz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr(R"("status":"not_ready")"));
  EXPECT_THAT(r.body, HasSubstr("storage"));
  // Liveness is not readiness: the process is fine.
  EXPECT_EQ(http_.Get(LocalUrl(port, "/healthz")).status, 200);
  EXPECT_EQ(Scrape()[R"(hookstream_group_commits_total{result="failed"})"], 1);
  failing->store(false);
  EXPECT_TRUE(Publish(server_->stub(), {MakeEvent("a/b")}).ok());
  EXPECT_EQ(http_.Get(LocalUrl(port, "/readyz")).status, 200);
}

TEST_F(ObservabilityTest, ReadyzIsUnavailableWhileDraining) {
  // A hook held in the appender keeps the drain from finishing while we look.
  auto hold = std::make_shared<absl::Notification>();
  auto entered = std::make_shared<absl::Notification>();
  auto holding = std::make_shared<std::atomic<bool>>(false);
  ServerOptions o;
  o.log.faults.before_append = [hold, entered, holding]() {
    if (holding->load()) {
      if (!entered->HasBeenNotified()) entered->Notify();
      hold->WaitForNotification();
    }
    return absl::OkStatus();
  };
  Start(o);
  const int port = server_->server().http_port();
  ASSERT_EQ(http_.Get(LocalUrl(port, "/readyz")).status, 200);  // Opens the kept-alive connection.
  holding->store(true);
  std::thread hook([port] {
    HttpClient c;
    c.Post(LocalUrl(port, "/index/hook/on_flow_report"), kFlowReport);
  });
  if (!entered->WaitForNotificationWithTimeout(absl::Seconds(30))) {
    hold->Notify();
    hook.join();
    FAIL() << "the hook never reached the log";
  }
  std::thread drain([this] { server_->server().Drain(absl::Seconds(30)); });
  HttpResult r;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    r = http_.Get(LocalUrl(port, "/readyz"));
  } while (r.status == 200 && absl::Now() < deadline);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"reason":"draining","status":"not_ready"})");
  hold->Notify();
  hook.join();
  drain.join();
}

}  // namespace
}  // namespace hookstream
