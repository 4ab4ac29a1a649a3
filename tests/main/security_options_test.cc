// The config keys auth, tls and the connection/rate limits, from YAML to ServerOptions; every
// bad value is a start-up error naming the key.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/config.h"
#include "server/main/options.h"

namespace hookstream {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ServerOptions> FromYaml(const std::string& yaml) {
  absl::StatusOr<v1::Config> config = ParseConfig(yaml);
  if (!config.ok()) return config.status();
  return ServerOptionsFromConfig(*config);
}

std::string Error(const std::string& yaml) {
  absl::StatusOr<ServerOptions> o = FromYaml(yaml);
  EXPECT_FALSE(o.ok()) << yaml;
  return std::string(o.status().message());
}

TEST(SecurityOptionsTest, NoAuthNoTlsByDefault) {
  absl::StatusOr<ServerOptions> o = FromYaml("");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->api.auth.tokens.empty());
  EXPECT_FALSE(o->tls.enabled());
  EXPECT_EQ(o->api.connections.max_connections, 0u);
  EXPECT_EQ(o->api.auth.publish_events_per_second, 0);
}

TEST(SecurityOptionsTest, TokensTlsAndLimitsAreRead) {
  absl::StatusOr<ServerOptions> o = FromYaml(R"(
auth:
  tokens:
    - token: "0123456789abcdef-publisher"
      name: cams
      rights: [publish]
      streams: ["tenantA/>"]
    - token: "0123456789abcdef-ops"
      rights: [subscribe, admin]
      expires_at: "2030-01-02T03:04:05Z"
tls:
  cert_file: /etc/hs/cert.pem
  key_file: /etc/hs/key.pem
  client_ca_file: /etc/hs/ca.pem
limits:
  max_connections: 100
  max_subscribers_per_connection: 10
  max_concurrent_streams: 50
  publish_events_per_second: 2500.5
  publish_burst_events: 5000
  max_connection_idle: 5m
)");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->api.auth.tokens.size(), 2u);
  const api::TokenSpec& a = o->api.auth.tokens[0];
  EXPECT_EQ(a.name, "cams");
  EXPECT_EQ(a.rights, api::kRightPublish);
  ASSERT_EQ(a.scopes.size(), 1u);
  EXPECT_EQ(a.scopes[0].text(), "tenantA/>");
  EXPECT_EQ(a.expires_at, absl::InfiniteFuture());
  const api::TokenSpec& b = o->api.auth.tokens[1];
  EXPECT_EQ(b.name, "token1");
  EXPECT_EQ(b.rights, api::kRightSubscribe | api::kRightAdmin);
  EXPECT_EQ(b.expires_at, absl::FromUnixSeconds(1893553445));
  EXPECT_EQ(o->tls.client_ca_file, "/etc/hs/ca.pem");
  EXPECT_EQ(o->api.connections.max_connections, 100u);
  EXPECT_EQ(o->api.connections.max_subscribers_per_connection, 10u);
  EXPECT_EQ(o->max_concurrent_streams, 50);
  EXPECT_EQ(o->api.auth.publish_events_per_second, 2500.5);
  EXPECT_EQ(o->api.auth.publish_burst_events, 5000u);
  EXPECT_EQ(o->max_connection_idle, absl::Minutes(5));
}

TEST(SecurityOptionsTest, BadValuesNameTheKey) {
  EXPECT_THAT(Error("auth: {tokens: [{token: short, rights: [publish]}]}"),
              HasSubstr("auth.tokens[0].token"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0, rights: [read]}]}"),
              HasSubstr("auth.tokens[0].rights[0]"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0}]}"),
              HasSubstr("auth.tokens[0].rights"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0, rights: [publish], "
                    "streams: [\"a//b\"]}]}"),
              HasSubstr("auth.tokens[0].streams[0]"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0, rights: [publish], "
                    "expires_at: tomorrow}]}"),
              HasSubstr("auth.tokens[0].expires_at"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0, rights: [publish]}, "
                    "{token: 0123456789abcdef0, rights: [admin]}]}"),
              HasSubstr("auth.tokens[1].token"));
  EXPECT_THAT(Error("auth: {tokens: [{token: 0123456789abcdef0, rights: [publish], name: x}, "
                    "{token: 0123456789abcdef1, rights: [admin], name: x}]}"),
              HasSubstr("auth.tokens[1].name"));
  EXPECT_THAT(Error("tls: {cert_file: /a.pem}"), HasSubstr("tls.key_file"));
  EXPECT_THAT(Error("tls: {client_ca_file: /ca.pem}"), HasSubstr("tls.client_ca_file"));
  EXPECT_THAT(Error("limits: {publish_events_per_second: -1}"),
              HasSubstr("limits.publish_events_per_second"));
  EXPECT_THAT(Error("limits: {publish_burst_events: 10}"), HasSubstr("limits.publish_burst_events"));
  EXPECT_THAT(Error("limits: {max_connection_idle: 10ms}"), HasSubstr("limits.max_connection_idle"));
  EXPECT_THAT(Error("auth: {tokenz: []}"), HasSubstr("tokenz"));
}

}  // namespace
}  // namespace hookstream
