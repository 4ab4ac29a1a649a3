// The real hookstreamd, at debug level, in both log formats: ZLMediaKit hooks with the right
// token, a wrong one, none, and a server without one are answered, and the whole log of the run
// is searched for the configured secrets (the per-server tokens, the RTSP passwords) and for the
// wrong tokens clients sent. None may appear; the rejections themselves must be logged.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/http_client.h"
#include "tests/testutil/server_process.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::HttpClient;
using ::hookstream::testing::HttpResult;
using ::hookstream::testing::LocalUrl;
using ::hookstream::testing::ServerProcess;
using ::hookstream::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "zlm-per-server-secret-5f1c0d";
constexpr char kWildcardToken[] = "zlm-wildcard-secret-91ab77";
constexpr char kRtspPassword[] = "rtsp-password-secret-c3d2";
constexpr char kWrongToken[] = "attacker-guess-0e7d1b";

std::string Publish(const std::string& server_id, const std::string& params) {
  return absl::StrCat(R"({"mediaServerId":")", server_id,
                      R"(","app":"live","stream":"cam1","vhost":"__defaultVhost__",)"
                      R"("schema":"rtmp","ip":"127.0.0.1","port":1935,"id":"1",)"
                      R"("protocol":"rtmp","originType":1,"originTypeStr":"rtmp_push",)"
                      R"("hook_index":1,"params":")",
                      params, R"("})");
}

// The HTTP port from the "http.listening" line.
int HttpPort(const std::string& log) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "http.listening")) continue;
    for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" ,"))) {
      int port = 0;
      if (absl::ConsumePrefix(&field, "port=") && absl::SimpleAtoi(field, &port)) return port;
      if (absl::ConsumePrefix(&field, "\"port\":") && absl::SimpleAtoi(field, &port)) return port;
    }
  }
  return 0;
}

class LogSecretsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(LogSecretsTest, ConfiguredSecretsNeverAppearInTheLogOfARunWithAuthFailures) {
  TempDir dir;
  const std::string config = dir.path() + "/hookstream.yaml";
  std::ofstream(config) << "zlm:\n"
                        << "  tokens:\n"
                        << "    zlm-a: " << kToken << "\n"
                        << "    \"*\": " << kWildcardToken << "\n"
                        << "  rtsp_passwords:\n"
                        << "    admin: " << kRtspPassword << "\n"
                        << "logging:\n"
                        << "  level: debug\n"
                        << "  format: " << GetParam() << "\n";
  ServerProcess server(HOOKSTREAMD_PATH, dir.path() + "/data", dir.path() + "/log",
                       {absl::StrCat("--config=", config), "--http_listen=127.0.0.1:0"});
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const int http_port = HttpPort(server.Log());
  ASSERT_GT(http_port, 0) << server.Log();

  HttpClient client;
  const std::string url = LocalUrl(http_port, "/index/hook/on_publish");
  struct Case {
    std::string query;
    std::string body;
    long status;
  };
  const std::vector<Case> cases = {
      {absl::StrCat("?token=", kToken), Publish("zlm-a", ""), 200},
      {absl::StrCat("?token=", kWrongToken), Publish("zlm-a", ""), 401},
      {"", Publish("zlm-a", ""), 401},
      // The right token of one server used by another.
      {absl::StrCat("?token=", kToken), Publish("zlm-b", ""), 401},
      {absl::StrCat("?token=", kWildcardToken), Publish("zlm-b", ""), 200},
      // A secret in the body's params: stored redacted, never logged.
      {absl::StrCat("?token=", kWrongToken), Publish("zlm-a", absl::StrCat("token=", kToken)),
       401},
      // Unparseable body after a good token: rejected with a reason, still no secret.
      {absl::StrCat("?token=", kToken), absl::StrCat("{\"token\":\"", kToken), 400},
  };
  for (const Case& c : cases) {
    HttpResult r = client.Post(url + c.query, c.body);
    EXPECT_EQ(r.status, c.status) << c.query << " " << c.body << ": " << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr(kToken)));
  }
  ASSERT_TRUE(server.Terminate(absl::Seconds(30)).has_value());

  const std::string log = server.Log();
  for (const char* secret : {kToken, kWildcardToken, kRtspPassword, kWrongToken}) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << "the log:\n" << log;
  }
  // The failures were logged (so the search above looked at lines that could have leaked).
  size_t rejected = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "zlm.hook.rejected")) ++rejected;
  }
  EXPECT_EQ(rejected, 5u) << log;  // Four 401s and the 400.
  EXPECT_THAT(log, HasSubstr("server.drained"));
}

INSTANTIATE_TEST_SUITE_P(Formats, LogSecretsTest, ::testing::Values("kv", "json"));

}  // namespace
}  // namespace hookstream
