#include "server/common/logging.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// Captures every line while alive; restores stderr, kv and info afterwards.
class Captured {
 public:
  Captured() {
    SetSinkForTest([this](absl::string_view line) {
      absl::MutexLock l(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~Captured() {
    SetSinkForTest(nullptr);
    SetFormat(Format::kKeyValue);
    SetMinLevel(Level::kInfo);
  }
  std::vector<std::string> lines() {
    absl::MutexLock l(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

TEST(LoggingTest, KeyValueLineHasTimestampLevelEventAndFields) {
  Captured c;
  HS_EVENT(WARNING, "publish.rejected")
      .Field("stream", "a/b")
      .Field("count", 3)
      .Field("bytes", uint64_t{18446744073709551615u})
      .Field("ok", false)
      .Field("took", absl::Milliseconds(1500))
      .Field("reason", "bad \"thing\"\nhere");
  ASSERT_EQ(c.lines().size(), 1u);
  EXPECT_THAT(c.lines()[0],
              MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z "
                           ".*"));
  EXPECT_THAT(c.lines()[0],
              HasSubstr(R"(Z level=warn event=publish.rejected stream=a/b count=3 )"
                        R"(bytes=18446744073709551615 ok=false took=1.5s )"
                        R"(reason="bad \"thing\"\nhere")"));
}

TEST(LoggingTest, JsonLineIsOneObjectWithTypedValues) {
  Captured c;
  SetFormat(Format::kJson);
  HS_EVENT(ERROR, "log.commit_failed")
      .Field("events", 12)
      .Field("error", absl::UnavailableError("disk \"full\""))
      .Field("ratio", 0.5)
      .Field("bad_utf8", std::string("x\xff\x01y"));
  ASSERT_EQ(c.lines().size(), 1u);
  const std::string line = c.lines()[0];
  EXPECT_THAT(line, StartsWith("{\"ts\":\""));
  EXPECT_THAT(line, HasSubstr(R"("level":"error","event":"log.commit_failed","events":12,)"
                              R"("error_code":"UNAVAILABLE","error":"disk \"full\"","ratio":0.5,)"
                              R"("bad_utf8":"x\u00ff\u0001y"})"));
  EXPECT_THAT(line, Not(HasSubstr("\n")));
}

TEST(LoggingTest, ValuesAreQuotedOnlyWhenTheyWouldSplitTheLine) {
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "plain/value-1.2"), "plain/value-1.2");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, ""), "\"\"");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "a b"), "\"a b\"");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "k=v"), "\"k=v\"");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "tab\there"), "\"tab\\there\"");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "\x01"), "\"\\x01\"");
  EXPECT_EQ(QuoteForTest(Format::kKeyValue, "caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // Valid UTF-8.
  EXPECT_EQ(QuoteForTest(Format::kJson, "plain"), "\"plain\"");
  EXPECT_EQ(QuoteForTest(Format::kJson, "\x1f"), "\"\\u001f\"");
}

TEST(LoggingTest, LinesBelowTheLevelAreDroppedWithoutEvaluatingFields) {
  Captured c;
  SetMinLevel(Level::kWarning);
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  HS_EVENT(INFO, "dropped").Field("n", count());
  HS_EVENT(DEBUG, "dropped").Field("n", count());
  HS_EVENT(WARNING, "kept").Field("n", count());
  EXPECT_EQ(evaluated, 1);
  ASSERT_EQ(c.lines().size(), 1u);
  EXPECT_THAT(c.lines()[0], HasSubstr("level=warn event=kept n=1"));
  SetMinLevel(Level::kDebug);
  HS_EVENT(DEBUG, "now.kept");
  EXPECT_EQ(c.lines().size(), 2u);
}

TEST(LoggingTest, LevelAndFormatNamesParse) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  EXPECT_THAT(ParseLevel("loud").status().message(), HasSubstr("debug, info, warn or error"));
  EXPECT_EQ(*ParseFormat("kv"), Format::kKeyValue);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("xml").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hookstream::logging
