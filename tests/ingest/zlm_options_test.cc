// The `zlm:` section of the config file, through the real config loader.
#include "server/ingest/zlm_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/config.h"

namespace hookstream::ingest {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ZlmOptions> FromYaml(const std::string& yaml) {
  absl::StatusOr<v1::Config> config = ParseConfig(yaml);
  if (!config.ok()) return config.status();
  return ZlmOptionsFromConfig(config->zlm());
}

TEST(ZlmOptionsTest, DefaultsWhenTheSectionIsAbsent) {
  absl::StatusOr<ZlmOptions> o = FromYaml("");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->tokens.empty());
  EXPECT_EQ(o->reorder_window, absl::Milliseconds(20));
  EXPECT_EQ(o->dedup_window, absl::Seconds(10));
  EXPECT_EQ(o->storage_timeout, absl::Seconds(2));
  EXPECT_EQ(o->on_publish_json, "{}");
  EXPECT_EQ(o->policy.on_publish, Decision::kAllow);
  EXPECT_EQ(o->policy.on_shell_login, Decision::kDeny);
  EXPECT_TRUE(o->policy.fail_open);
  EXPECT_EQ(o->http_access_second, 600);
}

TEST(ZlmOptionsTest, EveryKeyIsRead) {
  absl::StatusOr<ZlmOptions> o = FromYaml(R"(
zlm:
  tokens: {zlm-1: abc, "*": shared}
  reorder_window: 5ms
  dedup_window: 30s
  keepalive_timeout: 45s
  storage_timeout: 500ms
  snapshot_interval: 1m
  max_servers: 10
  on_publish: {enable_hls: true, enable_mp4: false, mp4_max_second: 600, mp4_save_path: /rec}
  policy: {on_publish: deny, on_shell_login: allow, on_storage_failure: fail_closed}
  rtsp_realm: hs
  rtsp_passwords: {u: p}
  none_reader_close: true
  not_found_close: true
  http_access_second: 0
)");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->tokens.at("zlm-1"), "abc");
  EXPECT_EQ(o->tokens.at("*"), "shared");
  EXPECT_EQ(o->reorder_window, absl::Milliseconds(5));
  EXPECT_EQ(o->dedup_window, absl::Seconds(30));
  EXPECT_EQ(o->keepalive_timeout, absl::Seconds(45));
  EXPECT_EQ(o->storage_timeout, absl::Milliseconds(500));
  EXPECT_EQ(o->snapshot_interval, absl::Minutes(1));
  EXPECT_EQ(o->max_servers, 10u);
  EXPECT_EQ(
      o->on_publish_json,
      R"({"enable_hls":true,"enable_mp4":false,"mp4_max_second":600,"mp4_save_path":"/rec"})");
  EXPECT_EQ(o->policy.on_publish, Decision::kDeny);
  EXPECT_EQ(o->policy.on_play, Decision::kAllow);
  EXPECT_EQ(o->policy.on_shell_login, Decision::kAllow);
  EXPECT_FALSE(o->policy.fail_open);
  EXPECT_EQ(o->rtsp_realm, "hs");
  EXPECT_EQ(o->rtsp_passwords.at("u"), "p");
  EXPECT_TRUE(o->none_reader_close);
  EXPECT_TRUE(o->not_found_close);
  EXPECT_EQ(o->http_access_second, 0) << "explicitly 0 is kept";
}

TEST(ZlmOptionsTest, BadValuesNameTheKey) {
  EXPECT_THAT(FromYaml("zlm: {policy: {on_play: maybe}}").status().message(),
              HasSubstr("zlm.policy.on_play"));
  EXPECT_THAT(FromYaml("zlm: {reorder_window: 10s}").status().message(),
              HasSubstr("zlm.reorder_window"));
  EXPECT_THAT(FromYaml("zlm: {storage_timeout: 1ms}").status().message(),
              HasSubstr("zlm.storage_timeout"));
  EXPECT_THAT(FromYaml("zlm: {tokens: {a: \"\"}}").status().message(), HasSubstr("zlm.tokens.a"));
  EXPECT_THAT(FromYaml("zlm: {on_publish: {enable_flux: true}}").status().message(),
              HasSubstr("enable_flux"));
  EXPECT_THAT(FromYaml("zlm: {keepalive_timeout: 100ms}").status().message(),
              HasSubstr("zlm.keepalive_timeout"));
}

}  // namespace
}  // namespace hookstream::ingest
