// ZLMediaKit ingest end to end: the real Server with its HTTP listener on 127.0.0.1:0, hooks
// POSTed with libcurl, what was stored read back from the log and from subscriptions.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/common/clock.h"
#include "tests/http/http_client.h"
#include "tests/ingest/fixtures.h"
#include "tests/testutil/subscribe_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::FromBeginning;
using ::hookstream::testing::HttpClient;
using ::hookstream::testing::HttpResult;
using ::hookstream::testing::LocalUrl;
using ::hookstream::testing::ReadZlmFixture;
using ::hookstream::testing::SubscribeClient;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::hookstream::testing::ZlmFixturePath;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kServerId[] = "zlm-e2e-test";

ServerOptions IngestOptions() {
  ServerOptions o;
  o.http_listen = "127.0.0.1:0";
  o.hub.session.checkpoint_interval = absl::Milliseconds(50);
  o.hub.tick_period = absl::Milliseconds(10);
  return o;
}

// Every event in the log, in position order.
std::vector<v1::Event> AllEvents(Server& server) {
  std::vector<v1::Event> out;
  Position after(0);
  const Position head = server.log()->head();
  while (after < head) {
    auto chunk = server.log()->Read(after, storage::ReadLimits(),
                                    [](absl::string_view, absl::string_view) { return true; });
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok()) break;
    for (const auto& e : chunk->events) {
      v1::Event ev;
      EXPECT_TRUE(ev.ParseFromString(e.bytes));
      out.push_back(std::move(ev));
    }
    after = chunk->scanned_through;
  }
  return out;
}

std::vector<v1::Event> OfStream(const std::vector<v1::Event>& all, const std::string& stream) {
  std::vector<v1::Event> out;
  for (const auto& e : all) {
    if (e.stream() == stream) out.push_back(e);
  }
  return out;
}

std::vector<std::string> Types(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type());
  return out;
}

size_t CountType(const std::vector<v1::Event>& events, const std::string& type) {
  return std::count_if(events.begin(), events.end(),
                       [&](const v1::Event& e) { return e.type() == type; });
}

// The hook a fixture file is a body of: the longest hook name its file name starts with.
std::string HookOfFixture(const std::string& stem) {
  static const char* kHooks[] = {
      "on_publish",           "on_play",           "on_flow_report",        "on_rtsp_realm",
      "on_rtsp_auth",         "on_stream_changed", "on_stream_not_found",   "on_record_mp4",
      "on_record_ts",         "on_shell_login",    "on_stream_none_reader", "on_http_access",
      "on_server_started",    "on_server_exited",  "on_server_keepalive",   "on_send_rtp_stopped",
      "on_rtp_server_timeout"};
  std::string best;
  for (const char* h : kHooks) {
    if (absl::StartsWith(stem, h) && std::string(h).size() > best.size()) best = h;
  }
  return best;
}

std::string WithHookIndex(const std::string& body, uint64_t index) {
  Json j = Json::parse(body);
  j["hook_index"] = index;
  return j.dump(1, '\t');
}

class ZlmIngestTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o = IngestOptions()) {
    server_ = std::make_unique<TestServer>(Transport::kInProcess, std::move(o));
  }
  Server& server() { return server_->server(); }
  HttpResult Hook(const std::string& hook, const std::string& body, const std::string& query = "") {
    return client_.Post(LocalUrl(server().http_port(), "/index/hook/" + hook + query), body,
                        {"Content-Type: application/json"});
  }
  // Waits (with a deadline) until a subscription from the beginning has seen `count` events of
  // `type`; returns everything it saw by then (empty on timeout).
  std::vector<v1::Event> WaitForType(const std::string& type, size_t count = 1) {
    SubscribeClient sub(server_->stub(), FromBeginning());
    auto seen = [&](const SubscribeClient::State& st) {
      size_t n = 0;
      for (const auto& d : st.events) n += d.event().type() == type;
      return n >= count;
    };
    if (!sub.WaitUntil(seen, absl::Seconds(20))) return {};
    std::vector<v1::Event> out;
    for (const auto& d : sub.Snapshot().events) out.push_back(d.event());
    return out;
  }

  HttpClient client_;
  // For tests that drive time; declared before server_, which reads it on its timer thread until
  // it is destroyed (a clock local to a test body was gone before the fixture stopped the server:
  // found by TSan as a SEGV in ZlmIngest::TimerLoop).
  ManualClock clock_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ZlmIngestTest, EveryFixtureIngestsWithItsStreamTypeRedactionAndReply) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ZlmFixturePath("examples"))) {
    const std::string stem = entry.path().stem().string();
    if (stem.front() == '_') continue;
    const std::string hook = HookOfFixture(stem);
    SCOPED_TRACE(stem);
    ASSERT_FALSE(hook.empty());
    Start();  // A fresh server each: fixtures repeat hook_index values and bodies.
    const std::string body = ReadZlmFixture("examples/" + stem + ".json");
    HttpResult r = Hook(hook, body);
    ASSERT_EQ(r.status, 200) << r.body << r.error;
    const Json reply = Json::parse(r.body);
    ASSERT_TRUE(reply["code"].is_number_integer());
    EXPECT_EQ(reply["code"], 0);
    if (hook == "on_stream_none_reader" || hook == "on_stream_not_found") {
      EXPECT_EQ(reply["close"], false);
    }
    if (hook == "on_rtsp_realm") {
      EXPECT_EQ(reply["realm"], "");
    }
    if (hook == "on_http_access") {
      EXPECT_EQ(reply["err"], "");
      EXPECT_EQ(reply["path"], "");
      EXPECT_EQ(reply["second"], 600);
    }

    const Json in = Json::parse(body);
    std::vector<v1::Event> all = AllEvents(server());
    std::vector<v1::Event> hooks;
    for (const auto& e : all) {
      if (absl::StartsWith(e.type(), "zlm.on_")) hooks.push_back(e);
    }
    ASSERT_EQ(hooks.size(), 1u);
    const v1::Event& e = hooks[0];
    EXPECT_EQ(e.type(), "zlm." + hook);
    std::string stream = absl::StrCat("_server/", kServerId);
    if (in.contains("app")) {
      stream =
          absl::StrCat(in.value("vhost", "__defaultVhost__"), "/", in["app"].get<std::string>(),
                       "/", in.value("stream", in.value("stream_id", "")));
    }
    EXPECT_EQ(e.stream(), stream);
    EXPECT_EQ(e.source(), kServerId);
    EXPECT_EQ(e.content_type(), "application/json");
    EXPECT_EQ(e.attributes().at("zlm.hook"), hook);
    EXPECT_EQ(e.attributes().at("zlm.hook_index"), absl::StrCat(in["hook_index"].get<uint64_t>()));
    EXPECT_EQ(e.attributes().at("zlm.media_server_id"), kServerId);
    EXPECT_EQ(e.attributes().at("zlm.boot"), "1");
    EXPECT_TRUE(e.has_time());
    if (hook == "on_server_started") {
      EXPECT_THAT(e.data(), Not(HasSubstr("zlm-e2e-secret-not-real")));
      EXPECT_EQ(Json::parse(e.data())["api.secret"], "***");
    } else {
      EXPECT_EQ(e.data(), body) << "nothing to redact: stored byte for byte";
    }
    if (stem == "on_stream_changed_regist" || stem == "on_stream_changed") {
      EXPECT_EQ(CountType(all, "zlm.stream_online"), 1u);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 22);
}

TEST_F(ZlmIngestTest, SessionReplayedConcurrentlyAndShuffledComesOutInHookIndexOrder) {
  ServerOptions o = IngestOptions();
  // Real time: on a loaded 2-core CI machine the threads of one burst can start tens of
  // milliseconds apart. In-order hooks never wait, so a wide window costs only the first hook.
  o.zlm.reorder_window = absl::Milliseconds(500);
  Start(o);
  uint32_t seed = std::random_device()();
  if (const char* env = std::getenv("HOOKSTREAM_ZLM_SEED")) seed = std::atoi(env);
  std::cout << "session replay seed: " << seed << " (HOOKSTREAM_ZLM_SEED replays it)\n";
  RecordProperty("seed", std::to_string(seed));
  std::mt19937 rng(seed);

  // One burst: hooks that ZLMediaKit sent within 100ms of each other.
  std::vector<std::vector<Json>> bursts;
  std::ifstream in(ZlmFixturePath("session_rtmp_publish_play_record.jsonl"));
  double last_ms = -1e9;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    Json j = Json::parse(line);
    const double at = j["arrival_ms"].get<double>();
    if (at - last_ms > 100 || bursts.empty()) bursts.emplace_back();
    last_ms = at;
    bursts.back().push_back(std::move(j));
  }
  size_t sent = 0;
  for (auto& burst : bursts) {
    std::shuffle(burst.begin(), burst.end(), rng);
    std::vector<std::thread> threads;
    std::vector<HttpResult> results(burst.size());
    for (size_t i = 0; i < burst.size(); ++i) {
      threads.emplace_back([&, i] {
        const Json& h = burst[i];
        std::vector<std::string> headers;
        for (const auto& kv : h["headers"]) {
          const std::string name = kv[0];
          if (name == "Host" || name == "Content-Length") continue;  // curl sets them.
          headers.push_back(name + ": " + kv[1].get<std::string>());
        }
        HttpClient c;
        results[i] = c.Post(LocalUrl(server().http_port(), h["path"].get<std::string>()),
                            h["body_raw"].get<std::string>(), headers);
      });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < burst.size(); ++i) {
      ASSERT_EQ(results[i].status, 200) << burst[i]["hook"] << ": " << results[i].body;
      EXPECT_EQ(Json::parse(results[i].body)["code"], 0) << burst[i]["hook"];
    }
    sent += burst.size();
  }
  ASSERT_EQ(sent, 43u);

  // A subscriber sees each stream in hook_index order, the derived events in their places.
  SubscribeClient sub(server_->stub(), FromBeginning());
  const uint64_t head = server().log()->head().value();
  ASSERT_TRUE(sub.WaitUntil([&](const SubscribeClient::State& st) {
    return !st.events.empty() && st.events.back().event().position() >= head;
  }));
  std::vector<v1::Event> all;
  for (const auto& d : sub.Snapshot().events) all.push_back(d.event());
  std::map<std::string, uint64_t> last_index;
  size_t hooks = 0;
  for (const auto& e : all) {
    if (!absl::StartsWith(e.type(), "zlm.on_")) continue;
    ++hooks;
    const uint64_t index = std::stoull(e.attributes().at("zlm.hook_index"));
    auto it = last_index.find(e.stream());
    if (it != last_index.end()) {
      EXPECT_GT(index, it->second) << "hook_index order broken on " << e.stream();
    }
    last_index[e.stream()] = index;
  }
  EXPECT_EQ(hooks, 43u);

  const std::vector<v1::Event> test = OfStream(all, "__defaultVhost__/live/test");
  std::vector<std::string> seq;
  for (const auto& e : test) {
    seq.push_back(e.attributes().count("zlm.hook_index") != 0
                      ? absl::StrCat(e.attributes().at("zlm.hook_index"))
                      : e.type());
  }
  EXPECT_THAT(
      seq, ElementsAre("5", "6", "zlm.stream_online", "7", "8", "9", "11", "12", "13", "14", "16",
                       "17", "18", "19", "20", "21", "24", "25", "26", "27", "28", "30", "31", "32",
                       "33", "34", "35", "36", "37", "zlm.stream_offline", "38"));
  for (const auto& e : test) {
    if (e.type() == "zlm.stream_offline") {
      const Json d = Json::parse(e.data());
      EXPECT_EQ(d["schemas"], Json::array({"fmp4", "hls", "rtmp", "rtsp", "ts"}));
      EXPECT_EQ(d["reason"], "unregistered");
    }
    if (e.type() == "zlm.stream_online") {
      EXPECT_EQ(Json::parse(e.data())["schema"], "fmp4");
    }
  }
  const std::vector<v1::Event> missing = OfStream(all, "__defaultVhost__/live/missing");
  EXPECT_THAT(Types(missing), ElementsAre("zlm.on_rtsp_realm", "zlm.on_play",
                                          "zlm.on_stream_not_found", "zlm.on_flow_report"));
  const std::vector<v1::Event> srv = OfStream(all, absl::StrCat("_server/", kServerId));
  EXPECT_EQ(srv.front().type(), "zlm.on_server_started");
  EXPECT_EQ(srv.back().type(), "zlm.on_server_exited");
  EXPECT_EQ(CountType(all, "zlm.server_restarted"), 0u);
  EXPECT_EQ(CountType(all, "zlm.on_server_keepalive"), 7u);
}

TEST_F(ZlmIngestTest, RetriedHookStoresNothingAndGetsTheSameReply) {
  ServerOptions o = IngestOptions();
  o.zlm.clock = &clock_;
  o.zlm.reorder_window = absl::ZeroDuration();
  Start(o);
  const std::string body = ReadZlmFixture("examples/on_publish.json");
  HttpResult first = Hook("on_publish", body);
  ASSERT_EQ(first.status, 200);
  const uint64_t head = server().log()->head().value();
  clock_.Advance(absl::Seconds(4));  // ZLMediaKit retries after timeoutSec + retry_delay.
  HttpResult retry = Hook("on_publish", WithHookIndex(body, 17));
  EXPECT_EQ(retry.status, 200);
  EXPECT_EQ(retry.body, first.body);
  EXPECT_EQ(server().log()->head().value(), head) << "the retry stored nothing";
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_publish"), 1u);
  // The same body long after the window is a new event.
  clock_.Advance(absl::Seconds(10));
  HttpResult again = Hook("on_publish", WithHookIndex(body, 30));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_publish"), 2u);
  // Keepalives of an idle server are identical but real: never de-duplicated.
  const std::string ka = ReadZlmFixture("examples/on_server_keepalive.json");
  ASSERT_EQ(Hook("on_server_keepalive", WithHookIndex(ka, 31)).status, 200);
  ASSERT_EQ(Hook("on_server_keepalive", WithHookIndex(ka, 32)).status, 200);
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_server_keepalive"), 2u);
}

TEST_F(ZlmIngestTest, BadInputGetsAClearErrorAndStoresNothing) {
  ServerOptions o = IngestOptions();
  o.http.max_body_bytes = 4096;
  o.zlm.tokens = {{kServerId, "s3cret-token"}};
  Start(o);
  const std::string publish = ReadZlmFixture("examples/on_publish.json");
  struct Case {
    std::string hook, body, query;
    long status;
    std::string msg;
  };
  const std::vector<Case> cases = {
      {"on_publish", "{not json", "?token=s3cret-token", 400, "not JSON"},
      {"on_publish", "[]", "?token=s3cret-token", 400, "must be a JSON object"},
      {"on_teleport", publish, "?token=s3cret-token", 404, "unknown hook \\\"on_teleport\\\""},
      {"on_publish", std::string(5000, ' ') + publish, "?token=s3cret-token", 413,
       "larger than the limit of 4096"},
      {"on_publish", R"({"mediaServerId":"zlm-e2e-test","stream":"x"})", "?token=s3cret-token", 400,
       "\\\"app\\\" is missing"},
      {"on_stream_changed", R"({"mediaServerId":"zlm-e2e-test","app":"a","stream":"x"})",
       "?token=s3cret-token", 400, "\\\"regist\\\" is missing"},
      {"on_publish", publish, "?token=wrong", 401, "wrong token"},
      {"on_publish", publish, "", 401, "missing ?token="},
      {"on_publish", R"({"mediaServerId":"intruder","app":"a","stream":"b"})",
       "?token=s3cret-token", 401, "has no token"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.hook + " " + c.msg);
    HttpResult r = Hook(c.hook, c.body, c.query);
    EXPECT_EQ(r.status, c.status) << r.body;
    const Json j = Json::parse(r.body);
    EXPECT_TRUE(j["code"].is_number_integer());
    EXPECT_THAT(j["msg"].get<std::string>(),
                HasSubstr(Json::parse("\"" + c.msg + "\"").get<std::string>()));
  }
  HttpResult get = client_.Get(LocalUrl(server().http_port(), "/index/hook/on_publish"));
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(server().log()->head().value(), 0u) << "nothing stored";
  HttpResult ok = Hook("on_publish", publish, "?token=s3cret-token");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_publish"), 1u);
}

TEST_F(ZlmIngestTest, PolicyAndPublishOptionsShapeTheReplies) {
  ServerOptions o = IngestOptions();
  v1::ZlmConfig config;
  config.mutable_on_publish()->set_enable_hls(true);
  config.mutable_on_publish()->set_enable_mp4(false);
  config.mutable_on_publish()->set_mp4_max_second(600);
  config.mutable_policy()->set_on_play(v1::ZlmPolicy::deny);
  config.set_none_reader_close(true);
  config.set_rtsp_realm("hookstream");
  (*config.mutable_rtsp_passwords())["viewer"] = "pw";
  auto zlm = ingest::ZlmOptionsFromConfig(config);
  ASSERT_TRUE(zlm.ok()) << zlm.status();
  o.zlm = *zlm;
  Start(o);
  Json pub = Json::parse(Hook("on_publish", ReadZlmFixture("examples/on_publish.json")).body);
  EXPECT_EQ(pub, Json::parse(R"({"code":0,"msg":"success","enable_hls":true,"enable_mp4":false,
                                 "mp4_max_second":600})"));
  Json play = Json::parse(Hook("on_play", ReadZlmFixture("examples/on_play.json")).body);
  EXPECT_EQ(play["code"], -1);
  EXPECT_THAT(play["msg"].get<std::string>(), HasSubstr("zlm.policy.on_play"));
  Json none = Json::parse(
      Hook("on_stream_none_reader", ReadZlmFixture("examples/on_stream_none_reader.json")).body);
  EXPECT_EQ(none["close"], true);
  Json realm =
      Json::parse(Hook("on_rtsp_realm", ReadZlmFixture("examples/on_rtsp_realm.json")).body);
  EXPECT_EQ(realm["realm"], "hookstream");
  const std::string auth_body =
      R"({"mediaServerId":"zlm-e2e-test","app":"live","stream":"s","user_name":"viewer",)"
      R"("realm":"hookstream","must_no_encrypt":false,"hook_index":40})";
  Json auth = Json::parse(Hook("on_rtsp_auth", auth_body).body);
  EXPECT_EQ(auth, Json::parse(R"({"code":0,"msg":"success","encrypted":false,"passwd":"pw"})"));
  Json shell = Json::parse(
      Hook("on_shell_login",
           R"({"mediaServerId":"zlm-e2e-test","user_name":"root","passwd":"x","hook_index":41})")
          .body);
  EXPECT_EQ(shell["code"], -1) << "the shell is denied by default";
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_play"), 1u) << "denied hooks are stored too";
}

TEST_F(ZlmIngestTest, StorageFailureAnswersPerPolicyAndUndoesTheState) {
  std::atomic<bool> fail{false};
  ServerOptions o = IngestOptions();
  o.log.faults.before_append = [&]() -> absl::Status {
    return fail ? absl::UnavailableError("disk on fire") : absl::OkStatus();
  };
  Start(o);
  ASSERT_EQ(Hook("on_publish", ReadZlmFixture("examples/on_publish.json")).status, 200);
  fail = true;
  Json pub = Json::parse(
      Hook("on_publish", WithHookIndex(ReadZlmFixture("examples/on_publish_rtsp_push.json"), 6))
          .body);
  EXPECT_EQ(pub["code"], 0) << "fail_open by default: the publisher is let in";
  const std::string regist = WithHookIndex(ReadZlmFixture("examples/on_stream_changed.json"), 7);
  Json changed = Json::parse(Hook("on_stream_changed", regist).body);
  EXPECT_EQ(changed["code"], -1) << "non-blocking hooks ask ZLMediaKit to retry";
  fail = false;
  // ZLMediaKit's retry: same body, next hook_index. The failed attempt left no trace.
  HttpResult retry = Hook("on_stream_changed", WithHookIndex(regist, 8));
  EXPECT_EQ(Json::parse(retry.body)["code"], 0);
  std::vector<v1::Event> all = AllEvents(server());
  EXPECT_EQ(CountType(all, "zlm.on_stream_changed"), 1u);
  EXPECT_EQ(CountType(all, "zlm.stream_online"), 1u) << "the state was rolled back and redone";
}

TEST_F(ZlmIngestTest, FailClosedDeniesWhenTheLogIsSlowerThanTheStorageTimeout) {
  absl::Notification release;
  std::atomic<bool> stall{false};
  ServerOptions o = IngestOptions();
  o.zlm.policy.fail_open = false;
  o.zlm.storage_timeout = absl::Milliseconds(100);
  o.log.faults.before_append = [&]() -> absl::Status {
    if (stall) release.WaitForNotificationWithTimeout(absl::Seconds(20));
    return absl::OkStatus();
  };
  Start(o);
  stall = true;
  const absl::Time t = absl::Now();
  Json pub = Json::parse(Hook("on_publish", ReadZlmFixture("examples/on_publish.json")).body);
  EXPECT_LT(absl::Now() - t, absl::Seconds(5)) << "bounded by zlm.storage_timeout";
  EXPECT_EQ(pub["code"], -1) << "fail_closed";
  stall = false;
  release.Notify();
  EXPECT_FALSE(WaitForType("zlm.on_publish").empty()) << "stored once the log moved again";
}

TEST_F(ZlmIngestTest, GapInHookIndexIsGivenUpAfterTheReorderWindow) {
  Start();
  const std::string ts = ReadZlmFixture("examples/on_record_ts.json");
  ASSERT_EQ(Hook("on_record_ts", WithHookIndex(ts, 1)).status, 200);
  // Index 2 never comes (a hook ZLMediaKit sent elsewhere): 3 waits one window, then goes.
  Json j = Json::parse(ts);
  j["file_size"] = 1;
  ASSERT_EQ(Hook("on_record_ts", WithHookIndex(j.dump(), 3)).status, 200);
  std::vector<v1::Event> all = AllEvents(server());
  EXPECT_EQ(CountType(all, "zlm.on_record_ts"), 2u);
}

TEST_F(ZlmIngestTest, NewBootEndsWhatTheOldOneLeftOnline) {
  ServerOptions o = IngestOptions();
  o.zlm.clock = &clock_;
  o.zlm.reorder_window = absl::ZeroDuration();
  Start(o);
  ASSERT_EQ(Hook("on_server_started", ReadZlmFixture("examples/on_server_started.json")).status,
            200);
  ASSERT_EQ(Hook("on_stream_changed", ReadZlmFixture("examples/on_stream_changed.json")).status,
            200);
  // The media server crashed and came back a few seconds later: no unregister, and its counter
  // starts again (index 2 was skipped by this boot too long ago to be a late arrival).
  clock_.Advance(absl::Seconds(3));
  ASSERT_EQ(Hook("on_play", WithHookIndex(ReadZlmFixture("examples/on_play.json"), 2)).status, 200);
  std::vector<v1::Event> all = AllEvents(server());
  EXPECT_THAT(Types(OfStream(all, "__defaultVhost__/live/test")),
              ElementsAre("zlm.on_stream_changed", "zlm.stream_online", "zlm.stream_offline"));
  std::vector<v1::Event> srv = OfStream(all, absl::StrCat("_server/", kServerId));
  ASSERT_THAT(Types(srv), ElementsAre("zlm.on_server_started", "zlm.server_restarted"));
  EXPECT_EQ(Json::parse(srv[1].data())["detected_by"], "hook_index_reset");
  EXPECT_EQ(OfStream(all, "__defaultVhost__/live/missing")[0].attributes().at("zlm.boot"), "2");
}

TEST_F(ZlmIngestTest, ServerLostWhenKeepalivesStop) {
  ServerOptions o = IngestOptions();
  o.zlm.clock = &clock_;
  o.zlm.reorder_window = absl::ZeroDuration();
  Start(o);
  // alive_interval 5.0 in this config: lost after 15s without a keepalive.
  ASSERT_EQ(Hook("on_server_started", ReadZlmFixture("examples/on_server_started.json")).status,
            200);
  ASSERT_EQ(Hook("on_stream_changed", ReadZlmFixture("examples/on_stream_changed.json")).status,
            200);
  ASSERT_EQ(Hook("on_server_keepalive", ReadZlmFixture("examples/on_server_keepalive.json")).status,
            200);
  clock_.Advance(absl::Seconds(14));
  ASSERT_EQ(Hook("on_server_keepalive",
                 WithHookIndex(ReadZlmFixture("examples/on_server_keepalive.json"), 11))
                .status,
            200);
  clock_.Advance(absl::Seconds(16));
  std::vector<v1::Event> all = WaitForType("zlm.server_lost");
  ASSERT_EQ(CountType(all, "zlm.server_lost"), 1u);
  for (const auto& e : all) {
    if (e.type() != "zlm.server_lost") continue;
    EXPECT_EQ(e.stream(), absl::StrCat("_server/", kServerId));
    const Json d = Json::parse(e.data());
    EXPECT_EQ(d["timeout_seconds"], 15.0);
    EXPECT_EQ(d["online_streams"], Json::array({"__defaultVhost__/live/test"}));
  }
  // Back again, then silent again: lost a second time.
  ASSERT_EQ(Hook("on_server_keepalive",
                 WithHookIndex(ReadZlmFixture("examples/on_server_keepalive.json"), 12))
                .status,
            200);
  clock_.Advance(absl::Seconds(16));
  EXPECT_EQ(CountType(WaitForType("zlm.server_lost", 2), "zlm.server_lost"), 2u);
}

TEST_F(ZlmIngestTest, RestartOfHookstreamKeepsOnlineStateBootsAndRetries) {
  Start();
  ASSERT_EQ(Hook("on_server_started", ReadZlmFixture("examples/on_server_started.json")).status,
            200);
  const std::string regist = ReadZlmFixture("examples/on_stream_changed.json");  // index 7
  ASSERT_EQ(Hook("on_stream_changed", regist).status, 200);
  server_->Restart();
  // A retry of the register from before the restart stores nothing.
  ASSERT_EQ(Hook("on_stream_changed", WithHookIndex(regist, 8)).status, 200);
  EXPECT_EQ(CountType(AllEvents(server()), "zlm.on_stream_changed"), 1u);
  // Same boot, more schemas; then the last one goes: offline, with every schema seen.
  Json ts = Json::parse(regist);
  ts["schema"] = "ts";
  ts["hook_index"] = 9;
  ASSERT_EQ(Hook("on_stream_changed", ts.dump()).status, 200);
  server_->Restart();
  const std::string unregist =
      ReadZlmFixture("examples/on_stream_changed_unregist.json");  // hls, 32
  Json u = Json::parse(unregist);
  u["schema"] = "rtsp";
  u["hook_index"] = 10;
  ASSERT_EQ(Hook("on_stream_changed", u.dump()).status, 200);
  u["schema"] = "ts";
  u["hook_index"] = 11;
  ASSERT_EQ(Hook("on_stream_changed", u.dump()).status, 200);
  std::vector<v1::Event> all = AllEvents(server());
  EXPECT_EQ(CountType(all, "zlm.server_restarted"), 0u) << "hookstream restarted, not ZLMediaKit";
  EXPECT_THAT(Types(OfStream(all, "__defaultVhost__/live/test")),
              ElementsAre("zlm.on_stream_changed", "zlm.stream_online", "zlm.on_stream_changed",
                          "zlm.on_stream_changed", "zlm.on_stream_changed", "zlm.stream_offline"));
  // Online again, hookstream restarts, then ZLMediaKit restarts: synthetic offline on its boot.
  Json again = Json::parse(regist);
  again["hook_index"] = 12;
  again["createStamp"] = 1795629999;  // A new publish, not a retry of the first one.
  ASSERT_EQ(Hook("on_stream_changed", again.dump()).status, 200);
  server_->Restart();
  ASSERT_EQ(Hook("on_server_started", ReadZlmFixture("examples/on_server_started.json")).status,
            200);
  all = AllEvents(server());
  std::vector<v1::Event> srv = OfStream(all, absl::StrCat("_server/", kServerId));
  ASSERT_THAT(Types(srv), ElementsAre("zlm.on_server_started", "zlm.server_restarted",
                                      "zlm.on_server_started"));
  EXPECT_EQ(Json::parse(srv[1].data())["detected_by"], "on_server_started");
  std::vector<v1::Event> test = OfStream(all, "__defaultVhost__/live/test");
  EXPECT_EQ(test.back().type(), "zlm.stream_offline");
  EXPECT_EQ(Json::parse(test.back().data())["reason"], "server_restarted");
}

TEST_F(ZlmIngestTest, DrainStoresAndAnswersHeldHooksBeforeClosing) {
  ServerOptions o = IngestOptions();
  o.zlm.reorder_window = absl::Seconds(5);
  Start(o);
  HttpResult held;
  std::thread t([&] {
    HttpClient c;
    held = c.Post(LocalUrl(server().http_port(), "/index/hook/on_record_ts"),
                  ReadZlmFixture("examples/on_record_ts.json"));  // Held: the first one.
  });
  // Wait (deadline) for the hook to be held.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server().zlm_ingest()->HeldHooks() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(server().zlm_ingest()->HeldHooks(), 1u);
  server().Drain(absl::Seconds(10));
  t.join();
  EXPECT_EQ(held.status, 200) << held.body << held.error;
  EXPECT_EQ(Json::parse(held.body)["code"], 0);
}

TEST_F(ZlmIngestTest, HealthzFollowsTheServer) {
  Start();
  EXPECT_EQ(client_.Get(LocalUrl(server().http_port(), "/healthz")).body, R"({"status":"ok"})");
}

}  // namespace
}  // namespace hookstream
