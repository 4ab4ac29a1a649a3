// webhooks.endpoints from a real config file: defaults, every key, and start-up errors that
// name the key.
#include "server/common/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/main/options.h"

namespace hookstream {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ServerOptions> FromYaml(const std::string& yaml) {
  absl::StatusOr<v1::Config> config = ParseConfig(yaml);
  if (!config.ok()) return config.status();
  return ServerOptionsFromConfig(*config);
}

std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<ServerOptions> o = FromYaml(yaml);
  return o.ok() ? "no error" : std::string(o.status().message());
}

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

TEST(WebhookConfigTest, EveryKeyIsReadIncludingListsOfDurations) {
  absl::StatusOr<ServerOptions> o = FromYaml(std::string(R"(
webhooks:
  endpoints:
    - name: billing
      url: https://example.com/hooks
    - name: legacy.zlm-1
      url: http://127.0.0.1:8080/index/hook/{hook}
      streams: [__defaultVhost__/live/>, a/*/c]
      types: [zlm.*]
      format: zlm
      secrets: [)") + kSecret + R"(, whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=]
      ordering: unordered
      max_in_flight: 64
      timeout: 2.5s
      retry_schedule: [0s, 50ms, 1m]
      on_exhausted: hold
)");
  ASSERT_TRUE(o.ok()) << o.status();
  const auto& eps = o->webhooks.endpoints;
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].format, webhook::Format::kCloudEvents);
  EXPECT_EQ(eps[0].ordering, webhook::Ordering::kPerStream);
  EXPECT_EQ(eps[0].max_in_flight, 16u);
  EXPECT_EQ(eps[0].timeout, absl::Seconds(15));
  EXPECT_EQ(eps[0].retry_schedule, webhook::DefaultRetrySchedule());
  EXPECT_EQ(eps[0].retry_schedule.size(), 8u);
  EXPECT_EQ(eps[0].retry_schedule[7], absl::Hours(10));
  EXPECT_EQ(eps[0].on_exhausted, webhook::OnExhausted::kDeadLetter);
  EXPECT_TRUE(eps[0].secret_keys.empty());

  EXPECT_EQ(eps[1].name, "legacy.zlm-1");
  EXPECT_EQ(eps[1].format, webhook::Format::kZlm);
  EXPECT_EQ(eps[1].ordering, webhook::Ordering::kUnordered);
  EXPECT_EQ(eps[1].max_in_flight, 64u);
  EXPECT_EQ(eps[1].timeout, absl::Milliseconds(2500));
  EXPECT_EQ(eps[1].retry_schedule,
            (std::vector<absl::Duration>{absl::ZeroDuration(), absl::Milliseconds(50),
                                         absl::Minutes(1)}));
  EXPECT_EQ(eps[1].on_exhausted, webhook::OnExhausted::kHold);
  EXPECT_EQ(eps[1].secret_keys.size(), 2u);
  EXPECT_TRUE(eps[1].filter.Matches("__defaultVhost__/live/cam1", "zlm.on_publish"));
  EXPECT_FALSE(eps[1].filter.Matches("__defaultVhost__/live/cam1", "app.x"));
  EXPECT_FALSE(eps[1].filter.Matches("other/live/cam1", "zlm.on_publish"));
}

TEST(WebhookConfigTest, BadValuesAreStartUpErrorsNamingTheKey) {
  const std::string ok = "    - {name: a, url: 'http://h/x'}\n";
  auto with = [&](const std::string& third) {
    return "webhooks:\n  endpoints:\n" + ok + "    - {name: b, url: 'http://h/y'}\n" + third;
  };
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', colour: red}\n")),
              HasSubstr("\"webhooks.endpoints[2].colour\": unknown key"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'ftp://h/'}\n")),
              HasSubstr("\"webhooks.endpoints[2].url\": bad URL"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http//nohost'}\n")),
              HasSubstr("\"webhooks.endpoints[2].url\": bad URL"));
  EXPECT_THAT(ErrorOf(with("    - {name: c}\n")),
              HasSubstr("\"webhooks.endpoints[2].url\": required"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', secrets: [hunter2]}\n")),
              HasSubstr("\"webhooks.endpoints[2].secrets[0]\": expected a Standard Webhooks"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', secrets: ['" + std::string(kSecret) +
                           "', 'whsec_%%']}\n")),
              HasSubstr("\"webhooks.endpoints[2].secrets[1]\": the part after"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', format: xml}\n")),
              HasSubstr("\"webhooks.endpoints[2].format\": expected one of"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', ordering: random}\n")),
              HasSubstr("\"webhooks.endpoints[2].ordering\": expected one of"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', on_exhausted: drop}\n")),
              HasSubstr("\"webhooks.endpoints[2].on_exhausted\": expected one of"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', retry_schedule: [1s, soon]}\n")),
              HasSubstr("\"webhooks.endpoints[2].retry_schedule[1]\": bad duration"));
  EXPECT_THAT(ErrorOf(with("    - {name: a, url: 'http://h/'}\n")),
              HasSubstr("\"webhooks.endpoints[2].name\": endpoint \"a\" is defined twice"));
  EXPECT_THAT(ErrorOf(with("    - {name: 'a/b', url: 'http://h/'}\n")),
              HasSubstr("\"webhooks.endpoints[2].name\""));
  EXPECT_THAT(
      ErrorOf(with("    - {name: c, url: 'http://h/{hook}'}\n")),
      HasSubstr("\"webhooks.endpoints[2].url\": \"{hook}\" is only replaced for format zlm"));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', streams: ['a/>/b']}\n")),
              HasSubstr("webhooks.endpoints[2]"));
  EXPECT_THAT(
      ErrorOf(with("    - {name: c, url: 'http://h/', ordering: fifo, max_in_flight: 4}\n")),
      HasSubstr("\"webhooks.endpoints[2].max_in_flight\""));
  EXPECT_THAT(ErrorOf(with("    - {name: c, url: 'http://h/', timeout: 1ms}\n")),
              HasSubstr("\"webhooks.endpoints[2].timeout\""));
  EXPECT_EQ(ErrorOf(with("")), "no error");
}

}  // namespace
}  // namespace hookstream
