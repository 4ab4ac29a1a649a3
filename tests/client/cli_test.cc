// The `hookstream` CLI binary, run as a child process against a real server on TCP.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "json.h"
#include "tests/testutil/test_server.h"

extern char** environ;

namespace hookstream {
namespace {

using ::hookstream::cli::JsonValue;
using ::hookstream::cli::ParseJson;
using ::hookstream::testing::TempDir;
using ::hookstream::testing::TestServer;
using ::hookstream::testing::Transport;
using ::testing::HasSubstr;

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::vector<std::string> lines;  // Non-empty stdout lines.
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = std::make_unique<TestServer>(Transport::kTcp); }

  std::string server_flag() const {
    return absl::StrCat("--server=127.0.0.1:", server_->server().grpc_port());
  }

  // Runs `hookstream --server=<test server> args...` with `input` on stdin. Kills it after 30 s.
  CliRun Cli(std::vector<std::string> args, const std::string& input = "",
             bool with_server = true) {
    const std::string in = dir_.path() + "/stdin", out = dir_.path() + "/stdout",
                      err = dir_.path() + "/stderr";
    WriteFile(in, input);
    if (with_server) args.insert(args.begin(), server_flag());
    args.insert(args.begin(), HOOKSTREAM_CLI_PATH);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    const int spawned =
        posix_spawn(&pid, HOOKSTREAM_CLI_PATH, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    CliRun run;
    if (spawned != 0) {
      ADD_FAILURE() << "cannot start " << HOOKSTREAM_CLI_PATH;
      return run;
    }
    int status = 0;
    absl::Notification exited;
    std::thread waiter([&] {
      waitpid(pid, &status, 0);
      exited.Notify();
    });
    if (!exited.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      ADD_FAILURE() << "hookstream " << args[2] << " did not exit within 30 s";
      kill(pid, SIGKILL);
    }
    waiter.join();
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    for (absl::string_view l : absl::StrSplit(run.out, '\n', absl::SkipEmpty())) {
      run.lines.emplace_back(l);
    }
    return run;
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

JsonValue ParseOrDie(const std::string& line) {
  absl::StatusOr<JsonValue> v = ParseJson(line);
  EXPECT_TRUE(v.ok()) << v.status() << ": " << line;
  return v.ok() ? *std::move(v) : JsonValue();
}

// The text of `v` kept alive with it (JsonValue views point into it).
struct Line {
  explicit Line(std::string s) : text(std::move(s)), json(ParseOrDie(text)) {}
  std::string text;
  JsonValue json;
  const JsonValue& event() const { return *json.Find("event"); }
  std::string position() const { return event().Find("position")->string; }
};

TEST_F(CliTest, SubscribeWithATokenFileGetsExactlyTheEventsPublishedSince) {
  const std::string token_file = dir_.path() + "/token";
  CliRun published =
      Cli({"publish"},
          R"({"stream":"cli/a","type":"t","data":{"n":1}})"
          "\n\n"
          R"({"stream":"cli/a","type":"t","id":"fixed","data":{"n":2},"attributes":{"k":"v"}})"
          "\n"
          R"({"stream":"cli/b","type":"u","source":"me","data":[3]})"
          "\n");
  ASSERT_EQ(published.exit_code, 0) << published.err;
  ASSERT_EQ(published.lines.size(), 3u) << published.out;
  EXPECT_THAT(published.lines[1], HasSubstr(R"("id":"fixed")"));

  CliRun first = Cli({"subscribe", "--from=beginning", "--token_file=" + token_file, "--count=3"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(first.lines.size(), 3u) << first.out;
  for (int i = 0; i < 3; ++i) {
    Line line(first.lines[i]);
    EXPECT_EQ(line.position(), absl::StrCat(i + 1));
    EXPECT_FALSE(line.json.Find("resume_token")->string.empty());
    const JsonValue* data = line.event().Find("data");
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(data->kind, i < 2 ? JsonValue::Kind::kObject : JsonValue::Kind::kArray)
        << "JSON data shown as JSON";
  }
  EXPECT_EQ(Line(first.lines[1]).event().Find("attributes")->Find("k")->string, "v");
  EXPECT_EQ(Line(first.lines[2]).event().Find("source")->string, "me");
  EXPECT_THAT(first.err, HasSubstr(R"({"subscribed":)")) << "control messages on stderr";
  EXPECT_FALSE(ReadFile(token_file).empty());

  ASSERT_EQ(Cli({"publish", "--stream=cli/b", "--type=u", "--data=hello"}).exit_code, 0);
  ASSERT_EQ(Cli({"publish", "--stream=cli/a", "--type=t", R"(--data={"k":[1,2]})",
                 "--attributes=x=1,y=2"})
                .exit_code,
            0);
  CliRun second = Cli({"subscribe", "--token_file=" + token_file, "--count=2", "--quiet"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  ASSERT_EQ(second.lines.size(), 2u) << second.out;
  Line hello(second.lines[0]), json(second.lines[1]);
  EXPECT_EQ(hello.position(), "4") << "exactly the new events";
  EXPECT_EQ(hello.event().Find("data")->string, "aGVsbG8=") << "other bytes in base64";
  EXPECT_EQ(hello.event().Find("content_type")->string, "text/plain; charset=utf-8");
  EXPECT_EQ(json.position(), "5");
  EXPECT_EQ(json.event().Find("data")->raw, R"({"k":[1,2]})");
  EXPECT_EQ(json.event().Find("attributes")->Find("y")->string, "2");
  EXPECT_TRUE(second.err.empty()) << "--quiet: " << second.err;

  ASSERT_EQ(Cli({"publish", "--stream=cli/c", "--type=t"}).exit_code, 0);
  CliRun third = Cli({"subscribe", "--token_file=" + token_file, "--count=1"});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  ASSERT_EQ(third.lines.size(), 1u);
  EXPECT_EQ(Line(third.lines[0]).position(), "6");
}

TEST_F(CliTest, SubscribeFiltersByStreamAndType) {
  ASSERT_EQ(Cli({"publish"}, R"({"stream":"f/a/1","type":"x.one"})"
                             "\n"
                             R"({"stream":"f/b/1","type":"x.two"})"
                             "\n"
                             R"({"stream":"f/a/2","type":"y"})"
                             "\n"
                             R"({"stream":"f/a/3","type":"x.three"})"
                             "\n")
                .exit_code,
            0);
  CliRun run =
      Cli({"subscribe", "--from=beginning", "--streams=f/a/*", "--types=x.*", "--count=2"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.lines.size(), 2u);
  EXPECT_EQ(Line(run.lines[0]).position(), "1");
  EXPECT_EQ(Line(run.lines[1]).position(), "4");
}

TEST_F(CliTest, UnusableResumeTokensExitWith3AndSayWhy) {
  const std::string token_file = dir_.path() + "/token";
  WriteFile(token_file, "garbled-token\n");
  CliRun garbled = Cli({"subscribe", "--token_file=" + token_file});
  EXPECT_EQ(garbled.exit_code, 3);
  EXPECT_THAT(garbled.err, HasSubstr("resume token is damaged"));
  EXPECT_THAT(garbled.err, HasSubstr(token_file));

  ASSERT_EQ(Cli({"publish", "--stream=t/1", "--type=t"}).exit_code, 0);
  CliRun got = Cli({"subscribe", "--from=beginning", "--count=1"});
  ASSERT_EQ(got.lines.size(), 1u);
  const std::string token = Line(got.lines[0]).json.Find("resume_token")->string;
  TestServer other(Transport::kTcp);
  CliRun foreign = Cli({absl::StrCat("--server=127.0.0.1:", other.server().grpc_port()),
                        "subscribe", "--from=" + token},
                       "", /*with_server=*/false);
  EXPECT_EQ(foreign.exit_code, 3);
  EXPECT_THAT(foreign.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(foreign.err, HasSubstr("does not belong to this server's log"));
  CliRun typo = Cli({"subscribe", "--from=beginnig"});
  EXPECT_EQ(typo.exit_code, 3);
  EXPECT_THAT(typo.err, HasSubstr("--from is not beginning, now, last"));
}

TEST_F(CliTest, UsageErrorsExitWith2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"--no_such_flag", "log", "info"},
      {"--count=many", "subscribe"},
      {"subscribe", "--count=-1"},
      {"subscribe", "extra"},
      {"publish", "--stream=a"},
      {"publish", "--data=x"},
      {"publish", "--stream=a", "--type=t", "--attributes=novalue"},
      {"publish", "--stream=bad//name", "--type=t"},
      {"subscribe", "--streams=a/>/b"},
      {"stream"},
      {"stream", "get"},
      {"log", "size"},
  };
  for (const auto& args : cases) {
    CliRun run = Cli(args);
    EXPECT_EQ(run.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << run.err;
    EXPECT_THAT(run.err, HasSubstr("hookstream: ")) << absl::StrJoin(args, " ");
  }
  CliRun help = Cli({"help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
}

TEST_F(CliTest, BadInputLineStopsPublishingThereAndExitsWith4) {
  CliRun run = Cli({"publish"}, R"({"stream":"in/1","type":"t"})"
                                "\n"
                                R"({"stream":"in//2","type":"t"})"
                                "\n"
                                R"({"stream":"in/3","type":"t"})"
                                "\n"
                                "{not json\n"
                                R"({"stream":"in/5","type":"t"})"
                                "\n");
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_THAT(run.err, HasSubstr("line 2:"));
  EXPECT_THAT(run.err, HasSubstr("line 4: invalid JSON"));
  ASSERT_EQ(run.lines.size(), 3u) << "one result per line before the bad one";
  EXPECT_THAT(run.lines[1], HasSubstr(R"({"error":{"code":"INVALID_ARGUMENT")"));
  CliRun info = Cli({"log", "info"});
  EXPECT_THAT(info.out, HasSubstr(R"("head_position":"2")")) << "nothing after line 4";
}

TEST_F(CliTest, ServerErrorsExitWith1NamingTheProblem) {
  CliRun unreachable = Cli({"--server=127.0.0.1:1", "--timeout=1s", "log", "info"}, "",
                           /*with_server=*/false);
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot reach the server at 127.0.0.1:1"));
  CliRun missing = Cli({"stream", "get", "no/such"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr(R"(stream "no/such" not found)"));
  ASSERT_EQ(Cli({"publish", "--stream=o/1", "--type=t"}).exit_code, 0);
  CliRun conflict = Cli({"publish", "--stream=o/1", "--type=t", "--expected_seq=5"});
  EXPECT_EQ(conflict.exit_code, 1);
  EXPECT_THAT(conflict.err, HasSubstr("ABORTED"));
}

TEST_F(CliTest, StreamAndLogInfoAreJson) {
  ASSERT_EQ(Cli({"publish"}, R"({"stream":"s/1","type":"t"})"
                             "\n"
                             R"({"stream":"s/1","type":"t"})"
                             "\n"
                             R"({"stream":"s/2","type":"t"})"
                             "\n"
                             R"({"stream":"z","type":"t"})"
                             "\n")
                .exit_code,
            0);
  CliRun get = Cli({"stream", "get", "s/1"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  ASSERT_EQ(get.lines.size(), 1u);
  JsonValue info = ParseOrDie(get.lines[0]);
  EXPECT_EQ(info.Find("head_seq")->string, "2");
  CliRun list = Cli({"stream", "list", "s/*"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.lines.size(), 2u);
  EXPECT_THAT(list.lines[1], HasSubstr(R"("stream":"s/2")"));
  EXPECT_EQ(Cli({"stream", "list"}).lines.size(), 3u);
  CliRun log = Cli({"log", "info"});
  ASSERT_EQ(log.exit_code, 0) << log.err;
  EXPECT_EQ(ParseOrDie(log.lines[0]).Find("event_count")->string, "4");
}

}  // namespace
}  // namespace hookstream

namespace hookstream {
namespace {

TEST_F(CliTest, WebhooksListsEndpointsAndDeadLettersAndReplays) {
  // An endpoint nobody listens on, with a two-step schedule: its event is dead-lettered fast.
  v1::WebhooksConfig config;
  v1::WebhookEndpointConfig* e = config.add_endpoints();
  e->set_name("down");
  e->set_url("http://127.0.0.1:1/hook");
  e->add_retry_schedule();
  e->add_retry_schedule()->set_nanos(10'000'000);
  ServerOptions options;
  options.webhooks.endpoints = *webhook::EndpointsFromConfig(config);
  server_ = std::make_unique<TestServer>(Transport::kTcp, options);
  ASSERT_EQ(Cli({"publish", "--stream=a/b", "--type=t", "--data={}"}).exit_code, 0);
  CliRun dead;
  for (const absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
    dead = Cli({"webhooks", "dead-letters", "down"});
    if (dead.exit_code != 0 || !dead.lines.empty()) break;
  }
  ASSERT_EQ(dead.exit_code, 0) << dead.err;
  ASSERT_EQ(dead.lines.size(), 1u);
  EXPECT_EQ(ParseOrDie(dead.lines[0]).Find("stream")->string, "a/b");
  EXPECT_THAT(dead.lines[0], HasSubstr("Couldn't connect"));

  CliRun eps = Cli({"webhooks", "endpoints"});
  ASSERT_EQ(eps.exit_code, 0) << eps.err;
  ASSERT_EQ(eps.lines.size(), 1u);
  EXPECT_EQ(ParseOrDie(eps.lines[0]).Find("name")->string, "down");
  EXPECT_EQ(ParseOrDie(eps.lines[0]).Find("dead_letters")->string, "1");

  CliRun replay = Cli({"webhooks", "replay", "down", "--all"});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr(R"("replayed":"1")"));
  EXPECT_EQ(Cli({"webhooks", "replay", "down", "12345"}).exit_code, 1);
  CliRun unknown = Cli({"webhooks", "dead-letters", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no webhook endpoint \"nope\""));
  EXPECT_EQ(Cli({"webhooks", "replay", "down"}).exit_code, 2);
  EXPECT_EQ(Cli({"webhooks", "frobnicate"}).exit_code, 2);
}

}  // namespace
}  // namespace hookstream
