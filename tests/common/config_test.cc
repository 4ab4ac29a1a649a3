#include "server/common/config.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "config_test.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The message of a parse that must fail with InvalidArgument.
std::string ConfigError(absl::string_view text) {
  absl::StatusOr<v1::Config> config = ParseConfig(text);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(config.status().message());
}

absl::StatusOr<test::TestConfig> ParseTest(absl::string_view text) {
  test::TestConfig config;
  if (absl::Status s = ParseConfigInto(text, &config); !s.ok()) return s;
  return config;
}

std::string TestError(absl::string_view text) {
  absl::StatusOr<test::TestConfig> config = ParseTest(text);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(config.status().message());
}

// A file under the test's temp dir, removed at the end of the test.
class TempFile {
 public:
  TempFile(absl::string_view name, absl::string_view contents)
      : path_(absl::StrCat(::testing::TempDir(), "/", name)) {
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- ParseConfigDuration ---

TEST(ParseConfigDurationTest, AcceptsNumbersWithAUnit) {
  const std::pair<const char*, absl::Duration> cases[] = {
      {"20ms", absl::Milliseconds(20)},
      {"5s", absl::Seconds(5)},
      {"0.5s", absl::Milliseconds(500)},
      {"2m", absl::Minutes(2)},
      {"1h", absl::Hours(1)},
      {"1h30m", absl::Minutes(90)},
      {"250us", absl::Microseconds(250)},
      {"0s", absl::ZeroDuration()},
      {"0", absl::ZeroDuration()},
  };
  for (const auto& [text, want] : cases) {
    absl::StatusOr<absl::Duration> d = ParseConfigDuration(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status();
    EXPECT_EQ(*d, want) << text;
  }
}

TEST(ParseConfigDurationTest, RejectsBareNumbersOtherThanZeroNamingTheAcceptedForms) {
  for (const char* text : {"5", "1.5", "20"}) {
    absl::StatusOr<absl::Duration> d = ParseConfigDuration(text);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(
        d.status().message(),
        absl::StrCat("bad duration \"", text, R"(" (use e.g. "20ms", "5s", "0.5s", "2m", "1h"))"));
  }
}

TEST(ParseConfigDurationTest, RejectsNegativeInfiniteEmptyAndGarbage) {
  for (const char* text : {"-5s", "-1ms", "inf", "-inf", "", "5 parsecs", "5 s", "s", "5d"}) {
    absl::StatusOr<absl::Duration> d = ParseConfigDuration(text);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(R"((use e.g. "20ms", "5s")")) << text;
  }
  EXPECT_THAT(std::string(ParseConfigDuration("-5s").status().message()),
              HasSubstr("must not be negative"));
  EXPECT_THAT(std::string(ParseConfigDuration("inf").status().message()),
              HasSubstr("must be finite"));
}

// --- ParseConfig on the server's schema ---

TEST(ParseConfigTest, EmptyTextGivesADefaultConfig) {
  for (const char* text : {"", "\n\n", "# only\n  # comments\n", "---\n"}) {
    absl::StatusOr<v1::Config> config = ParseConfig(text);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->ByteSizeLong(), 0u) << text;
  }
}

TEST(ParseConfigTest, ParsesNestedMessagesScalarsAndDurations) {
  absl::StatusOr<v1::Config> config = ParseConfig(R"(
# hookstreamd.yaml
data_dir: /var/lib/hookstream
grpc_listen: "0.0.0.0:7070"
http_listen: 127.0.0.1:8080
limits:
  max_event_bytes: 1048576
  max_request_bytes: 0x4000000
  max_subscribers: 4294967295
  subscriber_buffer_bytes: 18446744073709551615
dedup:
  window: 2m
subscribe:
  default_heartbeat_interval: 15s
  checkpoint_interval: 0.5s
  live_ring_bytes: 67108864
  reader_threads: 2
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "/var/lib/hookstream");
  EXPECT_EQ(config->grpc_listen(), "0.0.0.0:7070");
  EXPECT_EQ(config->http_listen(), "127.0.0.1:8080");
  EXPECT_EQ(config->limits().max_event_bytes(), 1048576u);
  EXPECT_EQ(config->limits().max_request_bytes(), 64u << 20);
  EXPECT_EQ(config->limits().max_subscribers(), 4294967295u);
  EXPECT_EQ(config->limits().subscriber_buffer_bytes(), 18446744073709551615u);
  EXPECT_EQ(config->dedup().window().seconds(), 120);
  EXPECT_EQ(config->dedup().window().nanos(), 0);
  EXPECT_EQ(config->subscribe().default_heartbeat_interval().seconds(), 15);
  EXPECT_EQ(config->subscribe().checkpoint_interval().seconds(), 0);
  EXPECT_EQ(config->subscribe().checkpoint_interval().nanos(), 500000000);
  EXPECT_EQ(config->subscribe().live_ring_bytes(), 67108864u);
  EXPECT_EQ(config->subscribe().reader_threads(), 2u);
}

TEST(ParseConfigTest, JsonIsAccepted) {
  absl::StatusOr<v1::Config> config = ParseConfig(R"({
    "data_dir": "/data",
    "limits": {"max_event_bytes": 2048, "max_subscribers": 10},
    "dedup": {"window": "0s"},
    "subscribe": {"checkpoint_interval": "1h30m"}
  })");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "/data");
  EXPECT_EQ(config->limits().max_event_bytes(), 2048u);
  EXPECT_EQ(config->limits().max_subscribers(), 10u);
  EXPECT_TRUE(config->dedup().has_window());
  EXPECT_EQ(config->dedup().window().seconds(), 0);
  EXPECT_EQ(config->subscribe().checkpoint_interval().seconds(), 5400);
}

TEST(ParseConfigTest, JsonErrorsNameTheKeyToo) {
  EXPECT_EQ(ConfigError(R"({"limits": {"max_event_bytes": "abc"}})"),
            R"(config key "limits.max_event_bytes": expected a non-negative integer, got "abc")");
}

TEST(ParseConfigTest, EmptyValueLeavesTheFieldAtItsDefault) {
  absl::StatusOr<v1::Config> config = ParseConfig("data_dir: ~\nlimits:\ndedup: null\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "");
  EXPECT_FALSE(config->has_limits());
  EXPECT_FALSE(config->has_dedup());
}

TEST(ParseConfigTest, UnknownKeyIsAnErrorNamingTheKey) {
  EXPECT_EQ(ConfigError("limits:\n  foo: 1\n"), R"(config key "limits.foo": unknown key)");
  EXPECT_EQ(ConfigError("datadir: /x\n"), R"(config key "datadir": unknown key)");
}

TEST(ParseConfigTest, KeysAreCaseSensitiveSnakeCase) {
  EXPECT_EQ(ConfigError("dataDir: /x\n"), R"(config key "dataDir": unknown key)");
  EXPECT_EQ(ConfigError("DATA_DIR: /x\n"), R"(config key "DATA_DIR": unknown key)");
}

TEST(ParseConfigTest, NonIntegerForAnIntegerFieldIsAnError) {
  EXPECT_EQ(ConfigError("limits:\n  max_event_bytes: abc\n"),
            R"(config key "limits.max_event_bytes": expected a non-negative integer, got "abc")");
  for (const char* value : {"1.5", "1e6", "10MB", "0x", "true", "''", "1 000"}) {
    EXPECT_THAT(
        ConfigError(absl::StrCat("limits:\n  max_subscribers: ", value, "\n")),
        StartsWith(R"(config key "limits.max_subscribers": expected a non-negative integer)"))
        << value;
  }
  EXPECT_EQ(ConfigError("limits:\n  max_event_bytes: [1]\n"),
            R"(config key "limits.max_event_bytes": expected a non-negative integer, got a list)");
}

TEST(ParseConfigTest, NegativeValueForAnUnsignedFieldIsAnError) {
  EXPECT_EQ(ConfigError("limits:\n  max_subscribers: -1\n"),
            R"(config key "limits.max_subscribers": expected a non-negative integer, got "-1")");
}

TEST(ParseConfigTest, IntegerOutOfRangeForTheFieldTypeIsAnError) {
  EXPECT_EQ(ConfigError("limits:\n  max_subscribers: 4294967296\n"),
            R"(config key "limits.max_subscribers": "4294967296" is out of range for uint32 )"
            R"((0 to 4294967295))");
  EXPECT_THAT(ConfigError("limits:\n  max_event_bytes: 18446744073709551616\n"),
              HasSubstr("is out of range for uint64"));
  EXPECT_THAT(ConfigError("limits:\n  max_event_bytes: 99999999999999999999999999\n"),
              HasSubstr("is out of range for uint64"));
}

TEST(ParseConfigTest, BadDurationIsAnErrorNamingTheAcceptedForms) {
  EXPECT_EQ(ConfigError("dedup:\n  window: 5 parsecs\n"),
            R"(config key "dedup.window": bad duration "5 parsecs" )"
            R"((use e.g. "20ms", "5s", "0.5s", "2m", "1h"))");
  EXPECT_THAT(ConfigError("dedup:\n  window: 5\n"),
              StartsWith(R"(config key "dedup.window": bad duration "5" (use e.g.)"));
  EXPECT_THAT(ConfigError("dedup:\n  window: -5s\n"), HasSubstr("must not be negative"));
}

TEST(ParseConfigTest, DurationFieldTakesAStringNotAMapping) {
  EXPECT_EQ(ConfigError("dedup:\n  window: {seconds: 5}\n"),
            R"(config key "dedup.window": expected a duration, got a mapping)");
}

TEST(ParseConfigTest, DurationBeyondTheProtoRangeIsAnError) {
  EXPECT_THAT(ConfigError("dedup:\n  window: 100000000h\n"),
              HasSubstr("is longer than 10000 years"));
}

TEST(ParseConfigTest, MessageFieldThatIsNotAMappingIsAnError) {
  EXPECT_EQ(ConfigError("limits: 5\n"), R"(config key "limits": expected a mapping, got "5")");
  EXPECT_EQ(ConfigError("subscribe: [a, b]\n"),
            R"(config key "subscribe": expected a mapping, got a list)");
}

TEST(ParseConfigTest, StringFieldThatIsNotAScalarIsAnError) {
  EXPECT_EQ(ConfigError("data_dir: {a: b}\n"),
            R"(config key "data_dir": expected a string, got a mapping)");
}

TEST(ParseConfigTest, ScalarsAreTakenAsStringsForStringFields) {
  absl::StatusOr<v1::Config> config = ParseConfig("data_dir: 123\ngrpc_listen: yes\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "123");
  EXPECT_EQ(config->grpc_listen(), "yes");
}

TEST(ParseConfigTest, KeySetTwiceIsAnError) {
  EXPECT_EQ(ConfigError("data_dir: /a\ndata_dir: /b\n"), R"(config key "data_dir": set twice)");
  EXPECT_EQ(ConfigError("limits:\n  max_subscribers: 1\n  max_subscribers: 2\n"),
            R"(config key "limits.max_subscribers": set twice)");
  EXPECT_EQ(ConfigError(R"({"dedup": {"window": "1s", "window": "2s"}})"),
            R"(config key "dedup.window": set twice)");
}

TEST(ParseConfigTest, YamlSyntaxErrorGivesLineAndColumn) {
  EXPECT_EQ(ConfigError("data_dir: /x\nlimits: [1, 2\n"),
            "config: YAML syntax error at line 3, column 1: end of sequence flow not found");
  EXPECT_THAT(ConfigError("a: b: c\n"),
              StartsWith("config: YAML syntax error at line 1, column 5: "));
  EXPECT_THAT(ConfigError("limits:\n  max_subscribers: *nope\n"),
              StartsWith("config: YAML syntax error at line 2, column "));
  EXPECT_THAT(ConfigError(R"({"data_dir": "/x")"), StartsWith("config: YAML syntax error"));
}

TEST(ParseConfigTest, TopLevelThatIsNotAMappingIsAnError) {
  EXPECT_EQ(ConfigError("- a\n- b\n"), "config: expected a mapping at the top level, got a list");
  EXPECT_EQ(ConfigError("hello\n"), R"(config: expected a mapping at the top level, got "hello")");
  EXPECT_EQ(ConfigError("[]"), "config: expected a mapping at the top level, got a list");
}

TEST(ParseConfigTest, MoreThanOneDocumentIsAnError) {
  EXPECT_THAT(ConfigError("data_dir: /a\n---\ndata_dir: /b\n"),
              StartsWith("config: expected one YAML document, got more"));
}

// Found by tests/fuzz/config_fuzz: yaml-cpp's LoadAll never returned on these (an endless run of
// empty documents); they must be refused like any other malformed file.
TEST(ParseConfigTest, StrayFlowEntryIsAnErrorNotAHang) {
  EXPECT_THAT(ConfigError(","), StartsWith("config: expected one YAML document, got more"));
  EXPECT_THAT(ConfigError(",a"), StartsWith("config: expected one YAML document, got more"));
  EXPECT_THAT(ConfigError(",\x02"), StartsWith("config: "));
  EXPECT_THAT(ConfigError("[a],b"), StartsWith("config: expected one YAML document, got more"));
  EXPECT_THAT(ConfigError("data_dir: /a\n,\n"), StartsWith("config: "));
}

TEST(ParseConfigTest, NonStringKeyIsAnError) {
  EXPECT_EQ(ConfigError("limits:\n  ? [a]\n  : 1\n"),
            R"(config key "limits": keys must be strings, got a list)");
}

// --- LoadConfigFile ---

TEST(LoadConfigFileTest, ReadsAndParsesAFile) {
  TempFile file("config_test_reads.yaml", "data_dir: /srv\ndedup:\n  window: 20ms\n");
  absl::StatusOr<v1::Config> config = LoadConfigFile(file.path());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "/srv");
  EXPECT_EQ(config->dedup().window().nanos(), 20000000);
}

TEST(LoadConfigFileTest, EmptyFileGivesADefaultConfig) {
  TempFile file("config_test_empty.yaml", "");
  absl::StatusOr<v1::Config> config = LoadConfigFile(file.path());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ByteSizeLong(), 0u);
}

TEST(LoadConfigFileTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/no/such/hookstreamd.yaml");
  absl::StatusOr<v1::Config> config = LoadConfigFile(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith(absl::StrCat("cannot read config file \"", path, "\": ")));
}

TEST(LoadConfigFileTest, UnreadablePathIsAnErrorNamingThePath) {
  absl::StatusOr<v1::Config> config = LoadConfigFile(::testing::TempDir());
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("cannot read config file"));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(::testing::TempDir()));
}

TEST(LoadConfigFileTest, ParseErrorsNameTheFileAndTheKey) {
  TempFile file("config_test_bad.yaml", "limits:\n  foo: 1\n");
  absl::StatusOr<v1::Config> config = LoadConfigFile(file.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), absl::StrCat("config file \"", file.path(),
                                                    R"(": config key "limits.foo": unknown key)"));
}

// --- ParseConfigInto on a schema with every field shape ---

TEST(ParseConfigIntoTest, ParsesRepeatedFieldsMapsEnumsAndEveryScalarType) {
  absl::StatusOr<test::TestConfig> config = ParseTest(R"(
enabled: true
ratio: 0.25
fraction: -1.5
offset: -2147483648
big: -9223372036854775808
count: 7
ubig: 18446744073709551615
mode: MODE_SAFE
timeout: 1h30m
webhooks:
  endpoints:
    - url: http://a
      timeout: 250us
      headers: {X-Token: secret, Accept: "*/*"}
    - url: http://b
    -
labels:
  team: media
  empty:
routes:
  primary: {url: http://p, timeout: 5s}
  fallback:
ports:
  80: http
  -1: weird
tags: [a, "b", 3]
modes: [MODE_FAST, MODE_SAFE]
backoff: [20ms, 1s, 0]
blob: raw bytes
sink_url: http://sink
retries: 0
attempts: 3
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->enabled());
  EXPECT_DOUBLE_EQ(config->ratio(), 0.25);
  EXPECT_FLOAT_EQ(config->fraction(), -1.5f);
  EXPECT_EQ(config->offset(), -2147483648LL);
  EXPECT_EQ(config->big(), INT64_MIN);
  EXPECT_EQ(config->count(), 7u);
  EXPECT_EQ(config->ubig(), UINT64_MAX);
  EXPECT_EQ(config->mode(), test::MODE_SAFE);
  EXPECT_EQ(config->timeout().seconds(), 5400);
  ASSERT_EQ(config->webhooks().endpoints_size(), 3);
  EXPECT_EQ(config->webhooks().endpoints(0).url(), "http://a");
  EXPECT_EQ(config->webhooks().endpoints(0).timeout().nanos(), 250000);
  EXPECT_EQ(config->webhooks().endpoints(0).headers().at("X-Token"), "secret");
  EXPECT_EQ(config->webhooks().endpoints(0).headers().at("Accept"), "*/*");
  EXPECT_EQ(config->webhooks().endpoints(1).url(), "http://b");
  EXPECT_EQ(config->webhooks().endpoints(2).ByteSizeLong(), 0u);
  EXPECT_EQ(config->labels().size(), 2u);
  EXPECT_EQ(config->labels().at("team"), "media");
  EXPECT_EQ(config->labels().at("empty"), "");
  EXPECT_EQ(config->routes().at("primary").url(), "http://p");
  EXPECT_EQ(config->routes().at("primary").timeout().seconds(), 5);
  EXPECT_EQ(config->routes().at("fallback").ByteSizeLong(), 0u);
  EXPECT_EQ(config->ports().at(80), "http");
  EXPECT_EQ(config->ports().at(-1), "weird");
  EXPECT_THAT(config->tags(), ::testing::ElementsAre("a", "b", "3"));
  EXPECT_THAT(config->modes(), ::testing::ElementsAre(test::MODE_FAST, test::MODE_SAFE));
  ASSERT_EQ(config->backoff_size(), 3);
  EXPECT_EQ(config->backoff(0).nanos(), 20000000);
  EXPECT_EQ(config->backoff(1).seconds(), 1);
  EXPECT_EQ(config->backoff(2).seconds(), 0);
  EXPECT_EQ(config->blob(), "raw bytes");
  EXPECT_EQ(config->sink_url(), "http://sink");
  EXPECT_TRUE(config->has_retries());
  EXPECT_EQ(config->retries(), 0u);
  EXPECT_EQ(config->attempts(), 3u);
}

TEST(ParseConfigIntoTest, ErrorInAListNamesTheIndex) {
  EXPECT_EQ(TestError("webhooks:\n  endpoints:\n    - url: a\n    - url: b\n    - url: [c]\n"),
            R"(config key "webhooks.endpoints[2].url": expected a string, got a list)");
  EXPECT_EQ(TestError("backoff: [1s, 2 s]\n"), R"(config key "backoff[1]": bad duration "2 s" )"
                                               R"((use e.g. "20ms", "5s", "0.5s", "2m", "1h"))");
  EXPECT_EQ(TestError("webhooks:\n  endpoints:\n    - url: a\n      bogus: 1\n"),
            R"(config key "webhooks.endpoints[0].bogus": unknown key)");
}

TEST(ParseConfigIntoTest, ErrorInAMapNamesTheMapKey) {
  EXPECT_THAT(TestError("routes:\n  primary:\n    timeout: soon\n"),
              StartsWith(R"(config key "routes.primary.timeout": bad duration "soon")"));
  EXPECT_EQ(TestError("labels: {team: [a]}\n"),
            R"(config key "labels.team": expected a string, got a list)");
  EXPECT_EQ(TestError("ports: {http: x}\n"),
            R"(config key "ports.http": expected an integer, got "http")");
  EXPECT_THAT(TestError("ports: {2147483648: x}\n"), HasSubstr("is out of range for int32"));
}

TEST(ParseConfigIntoTest, RepeatedFieldRequiresAList) {
  EXPECT_EQ(TestError("tags: a\n"), R"(config key "tags": expected a list, got "a")");
  EXPECT_EQ(TestError("webhooks: {endpoints: {url: x}}\n"),
            R"(config key "webhooks.endpoints": expected a list, got a mapping)");
}

TEST(ParseConfigIntoTest, MapFieldRequiresAMapping) {
  EXPECT_EQ(TestError("labels: [a, b]\n"),
            R"(config key "labels": expected a mapping, got a list)");
}

TEST(ParseConfigIntoTest, MapKeySetTwiceIsAnError) {
  EXPECT_EQ(TestError("labels:\n  a: x\n  a: y\n"), R"(config key "labels.a": set twice)");
}

TEST(ParseConfigIntoTest, EnumTakesAValueNameCaseSensitively) {
  absl::StatusOr<test::TestConfig> config = ParseTest("mode: MODE_FAST\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->mode(), test::MODE_FAST);
  EXPECT_EQ(TestError("mode: mode_fast\n"),
            R"(config key "mode": expected one of MODE_UNSPECIFIED, MODE_FAST, MODE_SAFE, )"
            R"(got "mode_fast")");
  EXPECT_THAT(TestError("mode: 1\n"), HasSubstr("expected one of"));
  EXPECT_THAT(TestError("modes: [MODE_FAST, FAST]\n"),
              StartsWith(R"(config key "modes[1]": expected one of)"));
}

TEST(ParseConfigIntoTest, BoolTakesTrueOrFalse) {
  for (const char* text : {"true", "false", "True", "yes", "no", "on", "off"}) {
    EXPECT_TRUE(ParseTest(absl::StrCat("enabled: ", text, "\n")).ok()) << text;
  }
  EXPECT_TRUE(ParseTest("enabled: yes\n")->enabled());
  EXPECT_FALSE(ParseTest("enabled: false\n")->enabled());
  EXPECT_EQ(TestError("enabled: maybe\n"),
            R"(config key "enabled": expected true or false, got "maybe")");
  EXPECT_THAT(TestError("enabled: 1\n"), HasSubstr("expected true or false"));
}

TEST(ParseConfigIntoTest, SignedIntegersAreRangeChecked) {
  EXPECT_EQ(ParseTest("offset: 2147483647\n")->offset(), 2147483647);
  EXPECT_EQ(ParseTest("offset: +5\n")->offset(), 5);
  EXPECT_EQ(ParseTest("offset: -0\n")->offset(), 0);
  EXPECT_EQ(TestError("offset: 2147483648\n"),
            R"(config key "offset": "2147483648" is out of range for int32 )"
            R"((-2147483648 to 2147483647))");
  EXPECT_THAT(TestError("offset: -2147483649\n"), HasSubstr("is out of range for int32"));
  EXPECT_THAT(TestError("big: 9223372036854775808\n"), HasSubstr("is out of range for int64"));
  EXPECT_EQ(TestError("offset: 1.5\n"), R"(config key "offset": expected an integer, got "1.5")");
}

TEST(ParseConfigIntoTest, FloatingPointTakesFiniteNumbers) {
  EXPECT_DOUBLE_EQ(ParseTest("ratio: 1e-3\n")->ratio(), 0.001);
  EXPECT_DOUBLE_EQ(ParseTest("ratio: 3\n")->ratio(), 3.0);
  EXPECT_EQ(TestError("ratio: half\n"),
            R"(config key "ratio": expected a finite number, got "half")");
  EXPECT_THAT(TestError("ratio: .nan\n"), HasSubstr("expected a finite number"));
  EXPECT_THAT(TestError("ratio: inf\n"), HasSubstr("expected a finite number"));
  EXPECT_THAT(TestError("fraction: 1e300\n"), HasSubstr("is out of range for float"));
}

TEST(ParseConfigIntoTest, StringFieldRejectsInvalidUtf8) {
  // Raw bytes pass through yaml-cpp; a quoted "\xff" escape instead gives the valid U+00FF.
  EXPECT_EQ(TestError("sink_file: a\xff\xfe\n"),
            R"(config key "sink_file": expected UTF-8 text, got "a\xff\xfe")");
  EXPECT_EQ(ParseTest("sink_file: \"\\xff\"\n")->sink_file(), "\u00ff");
}

TEST(ParseConfigIntoTest, LongValuesAreCutShortInErrorsAtACharacterBoundary) {
  const std::string value = "\u00e9" + std::string(100, 'x');
  EXPECT_EQ(TestError(absl::StrCat("count: ", value, "\n")),
            absl::StrCat(R"(config key "count": expected a non-negative integer, got ")",
                         value.substr(0, 80), "\"..."));
  EXPECT_EQ(TestError(absl::StrCat("mode: ", std::string(79, 'y'), "\u00e9\n")),
            absl::StrCat(R"(config key "mode": expected one of MODE_UNSPECIFIED, MODE_FAST, )",
                         R"(MODE_SAFE, got ")", std::string(79, 'y'), "\"..."));
}

TEST(ParseConfigIntoTest, TwoMembersOfAOneofIsAnError) {
  EXPECT_EQ(TestError("sink_file: /x\nsink_url: http://y\n"),
            R"(config key "sink_url": cannot be set together with "sink_file" )"
            R"((both are in oneof sink))");
}

TEST(ParseConfigIntoTest, ProtoOptionalFieldsDoNotConflict) {
  absl::StatusOr<test::TestConfig> config = ParseTest("retries: 1\nattempts: 2\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->retries(), 1u);
  EXPECT_EQ(config->attempts(), 2u);
}

TEST(ParseConfigIntoTest, OverwritesPresetFieldsAndKeepsTheOthers) {
  test::TestConfig config;
  config.set_count(100);
  config.set_offset(5);
  config.add_tags("preset");
  ASSERT_TRUE(ParseConfigInto("count: 0\ntags: [extra]\n", &config).ok());
  EXPECT_EQ(config.count(), 0u);
  EXPECT_EQ(config.offset(), 5);
  EXPECT_THAT(config.tags(), ::testing::ElementsAre("preset", "extra"));
}

TEST(ParseConfigIntoTest, ErrorLeavesTheMessageUnchanged) {
  test::TestConfig config;
  config.set_count(100);
  const std::string before = config.SerializeAsString();
  EXPECT_FALSE(ParseConfigInto("count: 1\ntags: [a]\nmode: NOPE\n", &config).ok());
  EXPECT_EQ(config.SerializeAsString(), before);
}

}  // namespace
}  // namespace hookstream
