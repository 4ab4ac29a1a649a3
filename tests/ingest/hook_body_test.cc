// Parsing, stream keys, redaction and content hashes of hook bodies, on the captured fixtures.
#include "server/ingest/hook_body.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/common/names.h"
#include "tests/ingest/fixtures.h"

namespace hookstream::ingest {
namespace {

using ::hookstream::testing::ReadZlmFixture;
using ::testing::HasSubstr;
using ::testing::Not;

ParsedHook Parse(const std::string& hook, const std::string& body) {
  const HookSpec* spec = FindHook(hook);
  EXPECT_NE(spec, nullptr) << hook;
  absl::StatusOr<ParsedHook> h = ParseHookBody(*spec, body, nullptr);
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *h : ParsedHook{};
}

TEST(HookBodyTest, StreamHooksAreKeyedByVhostAppStream) {
  ParsedHook h = Parse("on_publish", ReadZlmFixture("examples/on_publish.json"));
  EXPECT_EQ(h.stream, "__defaultVhost__/live/test");
  EXPECT_EQ(h.server_id, "zlm-e2e-test");
  EXPECT_EQ(h.hook_index, 5u);
  EXPECT_FALSE(h.redacted);
  EXPECT_EQ(h.data, ReadZlmFixture("examples/on_publish.json")) << "stored as received";
  h = Parse("on_rtp_server_timeout", ReadZlmFixture("examples/on_rtp_server_timeout.json"));
  EXPECT_EQ(h.stream, "__defaultVhost__/rtp/idle1") << "stream_id names the stream";
}

TEST(HookBodyTest, ServerHooksAreKeyedByServer) {
  for (const char* hook : {"on_server_keepalive", "on_server_exited", "on_http_access"}) {
    ParsedHook h = Parse(hook, ReadZlmFixture(std::string("examples/") + hook + ".json"));
    EXPECT_EQ(h.stream, "_server/zlm-e2e-test") << hook;
  }
}

TEST(HookBodyTest, TokensAreEscapedIntoValidStreamNames) {
  EXPECT_EQ(EscapeToken("a/b"), "a%2Fb");
  EXPECT_EQ(EscapeToken("50%"), "50%25");
  EXPECT_EQ(EscapeToken("*"), "%2A");
  EXPECT_EQ(EscapeToken(">"), "%3E");
  EXPECT_EQ(EscapeToken("a*b"), "a*b");
  EXPECT_EQ(EscapeToken("tab\there"), "tab%09here");
  ParsedHook h =
      Parse("on_play",
            R"({"mediaServerId":"m/1","app":"live","stream":"cam/1","vhost":"*","hook_index":1})");
  EXPECT_EQ(h.stream, "%2A/live/cam%2F1");
  EXPECT_TRUE(ValidateStreamName(h.stream, "s").ok());
  EXPECT_EQ(h.stream_name, "cam/1") << "the unescaped name is kept for the state events";
  EXPECT_EQ(ServerStream("m/1"), "_server/m%2F1");
}

TEST(HookBodyTest, MissingOrBadFieldsAreNamed) {
  const HookSpec& play = *FindHook("on_play");
  auto err = [&](const HookSpec& spec, const std::string& body) {
    absl::StatusOr<ParsedHook> h = ParseHookBody(spec, body, nullptr);
    EXPECT_FALSE(h.ok()) << body;
    return std::string(h.status().message());
  };
  EXPECT_THAT(err(play, "not json"), HasSubstr("not JSON"));
  // The parser's excerpt of the body is not repeated: it can hold a secret (found by
  // log_secrets_test: the reply and the log quoted an unterminated "token" value).
  const std::string secret_body = R"({"mediaServerId":"m","token":"hunter2-secret)";
  EXPECT_THAT(err(play, secret_body), HasSubstr("body is not JSON (syntax error at byte "));
  EXPECT_THAT(err(play, secret_body), Not(HasSubstr("hunter2")));
  EXPECT_THAT(err(play, "[1,2]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(err(play, R"({"app":"a","stream":"s"})"), HasSubstr("\"mediaServerId\" is missing"));
  EXPECT_THAT(err(play, R"({"mediaServerId":"m","stream":"s"})"), HasSubstr("\"app\" is missing"));
  EXPECT_THAT(err(play, R"({"mediaServerId":"m","app":"","stream":"s"})"),
              HasSubstr("\"app\" must not be empty"));
  EXPECT_THAT(err(play, R"({"mediaServerId":"m","app":"a","stream":7})"),
              HasSubstr("\"stream\" must be a string"));
  EXPECT_THAT(err(play, R"({"mediaServerId":"m","app":"a","stream":"s","hook_index":-1})"),
              HasSubstr("hook_index"));
  EXPECT_THAT(err(*FindHook("on_stream_changed"),
                  R"({"mediaServerId":"m","app":"a","stream":"s","schema":"rtsp"})"),
              HasSubstr("\"regist\" is missing"));
  EXPECT_THAT(
      err(play, R"({"mediaServerId":"m","app":"a","stream":")" + std::string(300, 'x') + R"("})"),
      HasSubstr("at most 256"));
  // The vhost falls back to the X-VHOST header, then to ZLMediaKit's default.
  const std::string no_vhost = R"({"mediaServerId":"m","app":"a","stream":"s"})";
  std::string header = "vh";
  EXPECT_EQ(ParseHookBody(play, no_vhost, &header)->stream, "vh/a/s");
  EXPECT_EQ(ParseHookBody(play, no_vhost, nullptr)->stream, "__defaultVhost__/a/s");
}

TEST(HookBodyTest, ServerStartedSecretsAreRedacted) {
  std::string body = ReadZlmFixture("examples/on_server_started.json");
  // As an operator would configure it: hook URLs with hookstream's token.
  const std::string url = "http://127.0.0.1:18999/index/hook/on_publish";
  body.replace(body.find(url), url.size(), url + "?token=hook-token-1&x=1");
  ParsedHook h = Parse("on_server_started", body);
  EXPECT_TRUE(h.redacted);
  EXPECT_THAT(h.data, Not(HasSubstr("zlm-e2e-secret-not-real")));
  EXPECT_THAT(h.data, Not(HasSubstr("hook-token-1")));
  const auto json = nlohmann::json::parse(h.data);
  EXPECT_EQ(json["api.secret"], "***");
  EXPECT_EQ(json["rtc.icePwd"], "***");
  EXPECT_EQ(json["hook.on_publish"], url + "?token=***&x=1");
  EXPECT_EQ(json["srt.passPhrase"], "") << "empty secrets stay empty";
  EXPECT_EQ(json["rtc.iceUfrag"], "ZLMediaKit") << "not a secret";
  EXPECT_EQ(json["hook_index"], 0);
  EXPECT_EQ(h.alive_interval_s, 5.0);
  EXPECT_THAT(h.data, HasSubstr("\n\t\"api.apiDebug\": \"1\"")) << "tab-indented like ZLMediaKit";
}

TEST(HookBodyTest, PasswordsAndAuthParamsAreRedacted) {
  ParsedHook shell =
      Parse("on_shell_login",
            R"({"mediaServerId":"m","user_name":"admin","passwd":"hunter2","hook_index":3})");
  EXPECT_THAT(shell.data, Not(HasSubstr("hunter2")));
  EXPECT_EQ(shell.user_name, "admin");
  ParsedHook auth = Parse(
      "on_rtsp_auth",
      R"({"mediaServerId":"m","app":"live","stream":"s","user_name":"u","passwd":"pw1",)"
      R"("params":"sign=abc123&token=t0k&password=p&keep=1","realm":"r","must_no_encrypt":false})");
  EXPECT_THAT(auth.data, Not(HasSubstr("pw1")));
  EXPECT_THAT(auth.data, Not(HasSubstr("abc123")));
  EXPECT_THAT(auth.data, Not(HasSubstr("t0k")));
  EXPECT_THAT(auth.data, HasSubstr("sign=***&token=***&password=***&keep=1"));
  ParsedHook origin =
      Parse("on_stream_changed",
            R"({"mediaServerId":"m","app":"live","stream":"s","schema":"rtsp","regist":true,)"
            R"("originUrl":"rtsp://cam:Secr3t@10.0.0.5/live?auth=zz&a=1"})");
  EXPECT_THAT(origin.data, HasSubstr("rtsp://cam:***@10.0.0.5/live?auth=***&a=1"));
  EXPECT_THAT(origin.origin_json, Not(HasSubstr("Secr3t")));
  ParsedHook access =
      Parse("on_http_access", R"({"mediaServerId":"m","header.Authorization":"Basic eHg6eXk=",)"
                              R"("header.Cookie":"session=1","path":"/a","hook_index":2})");
  EXPECT_THAT(access.data, Not(HasSubstr("eHg6eXk=")));
  EXPECT_THAT(access.data, Not(HasSubstr("session=1")));
}

// Found by zlm_hook_fuzz: a mediaServerId shaped like a URL with credentials was redacted in
// the stored body, so the body named another server than the event's stream key. The fields a
// key is made of are names and stay as sent; the stored body parses back to the same key.
TEST(HookBodyTest, StreamKeyFieldsAreNeverRedacted) {
  const std::string id = "otmp://user:pass@host/live/x?secret=y";
  ParsedHook server = Parse("on_server_keepalive",
                            R"({"mediaServerId":")" + id + R"(","hook_index":5})");
  EXPECT_EQ(nlohmann::json::parse(server.data)["mediaServerId"], id);
  ParsedHook again = Parse("on_server_keepalive", server.data);
  EXPECT_EQ(again.stream, server.stream);
  EXPECT_EQ(again.data, server.data);
  ParsedHook pub = Parse("on_publish", R"({"mediaServerId":"m","app":"a?token=t","stream":"s",)"
                                       R"("params":"token=t0k","schema":"rtmp"})");
  EXPECT_EQ(nlohmann::json::parse(pub.data)["app"], "a?token=t");
  EXPECT_THAT(pub.data, Not(HasSubstr("t0k")));  // Other fields are still redacted.
  EXPECT_EQ(Parse("on_publish", pub.data).stream, pub.stream);
}

TEST(HookBodyTest, ContentHashIgnoresHookIndexOnly) {
  const std::string a = ReadZlmFixture("examples/on_record_mp4.json");
  std::string retry = a;
  retry.replace(retry.find("\"hook_index\": 24"), 16, "\"hook_index\": 99");
  ParsedHook h1 = Parse("on_record_mp4", a);
  ParsedHook h2 = Parse("on_record_mp4", retry);
  EXPECT_EQ(h1.content_hash, h2.content_hash);
  EXPECT_EQ(h1.content_hash.size(), 32u);
  std::string other = a;
  other.replace(other.find("424016"), 6, "424017");
  EXPECT_NE(Parse("on_record_mp4", other).content_hash, h1.content_hash);
  // on_rtsp_realm, on_play and on_stream_not_found of one player carry the same body.
  const std::string play = ReadZlmFixture("examples/on_play.json");
  EXPECT_NE(Parse("on_play", play).content_hash, Parse("on_stream_not_found", play).content_hash);
}

TEST(HookBodyTest, RedactStringLeavesOrdinaryValuesAlone) {
  std::string s = "rtmp://host/live/test";
  EXPECT_FALSE(RedactString("originUrl", &s));
  s = "a=1&b=2";
  EXPECT_FALSE(RedactString("params", &s));
  s = "token=";
  EXPECT_FALSE(RedactString("params", &s)) << "nothing to hide";
  EXPECT_TRUE(IsSecretKey("api.secret"));
  EXPECT_TRUE(IsSecretKey("passwd"));
  EXPECT_FALSE(IsSecretKey("stream"));
}

}  // namespace
}  // namespace hookstream::ingest
