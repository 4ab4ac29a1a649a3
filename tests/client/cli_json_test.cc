// The CLI's JSON reader and its event shapes (client/cli/json.h, client/cli/event_json.h).
#include <string>

#include "event_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "json.h"

namespace hookstream::cli {
namespace {

using ::testing::HasSubstr;

TEST(JsonTest, ParsesEveryKindAndKeepsTheRawTextOfEachValue) {
  const std::string text =
      R"( {"a": [1, 2.5e3, -0, true, false, null], "b": {"c": {}}, "s": "x\u00e9\ud83d\ude00\n",
          "big": 123456789012345678901234567890} )";
  absl::StatusOr<JsonValue> v = ParseJson(text);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->kind, JsonValue::Kind::kObject);
  ASSERT_EQ(v->members.size(), 4u);
  EXPECT_EQ(v->Find("a")->raw, "[1, 2.5e3, -0, true, false, null]");
  EXPECT_EQ(v->Find("a")->items.size(), 6u);
  EXPECT_TRUE(v->Find("a")->items[3].boolean);
  EXPECT_EQ(v->Find("b")->raw, R"({"c": {}})");
  EXPECT_EQ(v->Find("s")->string, "x\xC3\xA9\xF0\x9F\x98\x80\n");
  EXPECT_EQ(v->Find("big")->raw, "123456789012345678901234567890") << "no precision lost";
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonTest, RejectsWhatRfc8259Rejects) {
  const std::string bad[] = {"",
                             "{",
                             "[1,]",
                             R"({"a" 1})",
                             "01",
                             "1.",
                             "-",
                             R"("\x")",
                             "\"\x01\"",
                             "nul",
                             "1 2",
                             R"({"a":1,"a":2})",
                             R"("\ud800")",
                             R"("\udc00")",
                             "\"\xff\"",
                             "\"\xC0\xAF\"",
                             "'a'",
                             "[1 2]",
                             "{1:2}",
                             std::string(300, '[')};
  for (const std::string& text : bad) {
    EXPECT_FALSE(IsValidJson(text)) << text;
  }
  EXPECT_THAT(ParseJson("[1,]").status().message(), HasSubstr("offset 3"));
}

TEST(JsonTest, QuoteEscapesAndReplacesInvalidUtf8) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
  EXPECT_EQ(JsonQuote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(JsonQuote("\xFF"), "\"\xEF\xBF\xBD\"");
  EXPECT_TRUE(IsValidJson(JsonQuote("any \x7f bytes \xC3")));
}

TEST(JsonTest, JsonContentTypes) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(IsJsonContentType("application/cloudevents+json"));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_FALSE(IsJsonContentType("application/jsonl"));
}

TEST(EventJsonTest, InputLineBecomesAnEventWithDataStoredAsItsJsonText) {
  absl::StatusOr<v1::EventInput> e = EventFromJsonLine(
      R"({"stream":"v/live/cam1","type":"zlm.on_publish","id":"e-1","source":"zlm-1",)"
      R"("attributes":{"k":"v"},"data":{"n": 18446744073709551617, "x": [1]},)"
      R"("time":"2024-05-01T10:00:00.5Z","expected_seq":3})",
      "default");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->stream(), "v/live/cam1");
  EXPECT_EQ(e->type(), "zlm.on_publish");
  EXPECT_EQ(e->id(), "e-1");
  EXPECT_EQ(e->source(), "zlm-1");
  EXPECT_EQ(e->attributes().at("k"), "v");
  EXPECT_EQ(e->data(), R"({"n": 18446744073709551617, "x": [1]})");
  EXPECT_EQ(e->content_type(), "application/json");
  EXPECT_EQ(e->time().seconds(), 1714557600);
  EXPECT_EQ(e->time().nanos(), 500'000'000);
  EXPECT_EQ(e->expected_seq(), 3u);

  absl::StatusOr<v1::EventInput> minimal = EventFromJsonLine(R"({"stream":"a","type":"t"})", "d");
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->source(), "d");
  EXPECT_TRUE(minimal->data().empty());
  EXPECT_FALSE(minimal->has_expected_seq());
  absl::StatusOr<v1::EventInput> string_data =
      EventFromJsonLine(R"({"stream":"a","type":"t","data":"text"})", "d");
  ASSERT_TRUE(string_data.ok());
  EXPECT_EQ(string_data->data(), R"("text")") << "a JSON string stays JSON";
}

TEST(EventJsonTest, BadInputLinesNameTheProblem) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"type":"t"})", "\"stream\" is missing"},
      {R"({"stream":"a"})", "\"type\" is missing"},
      {R"({"stream":1,"type":"t"})", "\"stream\" must be a string"},
      {R"({"stream":"a","type":"t","colour":"red"})", "unknown field \"colour\""},
      {R"({"stream":"a","type":"t","attributes":{"k":1}})", "\"attributes\".\"k\""},
      {R"({"stream":"a","type":"t","time":"yesterday"})", "RFC 3339"},
      {R"({"stream":"a","type":"t","expected_seq":-1})", "expected_seq"},
      {R"(["stream"])", "JSON object"},
      {R"({"stream":"a",)", "invalid JSON"},
  };
  for (const auto& [line, message] : cases) {
    absl::StatusOr<v1::EventInput> e = EventFromJsonLine(line, "d");
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(e.status().message(), HasSubstr(message)) << line;
  }
}

TEST(EventJsonTest, OutputShowsJsonDataAsJsonAndOtherBytesAsBase64) {
  v1::Event e;
  e.set_stream("a/b");
  e.set_type("t");
  e.set_seq(7);
  e.set_position(12);
  e.set_content_type("application/json");
  e.set_data("{\n  \"n\": 18446744073709551617\n}\n");
  const std::string line = DeliveryToJsonLine(e, "tok");
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
  absl::StatusOr<JsonValue> v = ParseJson(line);
  ASSERT_TRUE(v.ok()) << v.status() << "\n" << line;
  EXPECT_EQ(v->Find("resume_token")->string, "tok");
  const JsonValue* event = v->Find("event");
  ASSERT_NE(event, nullptr);
  EXPECT_EQ(event->Find("seq")->string, "7") << "64-bit integers as strings (proto JSON)";
  EXPECT_EQ(event->Find("position")->string, "12");
  ASSERT_EQ(event->Find("data")->kind, JsonValue::Kind::kObject);
  EXPECT_EQ(event->Find("data")->Find("n")->raw, "18446744073709551617");

  e.set_content_type("text/plain");
  e.set_data("hello");
  v = ParseJson(DeliveryToJsonLine(e, "tok"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("event")->Find("data")->string, "aGVsbG8=");

  e.set_content_type("application/json");
  e.set_data("{not json");
  v = ParseJson(DeliveryToJsonLine(e, "tok"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("event")->Find("data")->string, "e25vdCBqc29u") << "invalid JSON: base64";
}

}  // namespace
}  // namespace hookstream::cli
