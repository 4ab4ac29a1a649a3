#include "server/webhook/request.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/webhook/signature.h"

namespace hookstream::webhook {
namespace {

using ::testing::Contains;
using ::testing::Not;

// The zlm hook body exactly as received (odd spacing and key order must survive).
constexpr char kZlmBody[] =
    "{ \"mediaServerId\" : \"z1\", \"app\":\"live\",\"stream\":\"cam1\", \"hook_index\": 7 }";

v1::Event ZlmEvent() {
  v1::Event e;
  e.set_id("abc.1.7");
  e.set_stream("__defaultVhost__/live/cam1");
  e.set_type("zlm.on_publish");
  e.set_source("z1");
  e.set_content_type("application/json");
  e.set_data(kZlmBody);
  e.set_seq(3);
  e.set_position(42);
  e.mutable_time()->set_seconds(1700000000);
  e.mutable_time()->set_nanos(5000000);
  (*e.mutable_attributes())["zlm.hook"] = "on_publish";
  return e;
}

EndpointConfig Config(Format f, std::string url = "http://h/x") {
  EndpointConfig c;
  c.name = "t";
  c.url = std::move(url);
  c.format = f;
  c.secret_keys.push_back(*DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  return c;
}

std::string HeaderValue(const HttpRequest& r, const std::string& name) {
  for (const std::string& h : r.headers) {
    if (absl::StartsWithIgnoreCase(h, name + ": ")) return h.substr(name.size() + 2);
  }
  return "<absent>";
}

TEST(RequestTest, ZlmFormatPostsTheBodyByteForByteToTheHookUrl) {
  const HttpRequest r = BuildRequest(Config(Format::kZlm, "http://h/index/hook/{hook}?t=1"),
                                     ZlmEvent(), "msg_1", 9, 1);
  EXPECT_EQ(r.url, "http://h/index/hook/on_publish?t=1");
  EXPECT_EQ(r.body, kZlmBody);
  EXPECT_EQ(HeaderValue(r, "Content-Type"), "application/json");
}

TEST(RequestTest, DerivedZlmEventsUseTheirTypeAsHookName) {
  v1::Event e = ZlmEvent();
  e.mutable_attributes()->clear();
  e.set_type("zlm.stream_online");
  EXPECT_EQ(BuildRequest(Config(Format::kZlm, "http://h/{hook}"), e, "m", 1, 1).url,
            "http://h/stream_online");
}

TEST(RequestTest, StandardWebhooksAndStreamHeadersOnEveryFormat) {
  for (Format f : {Format::kZlm, Format::kCloudEvents, Format::kCloudEventsBinary}) {
    const HttpRequest r = BuildRequest(Config(f), ZlmEvent(), "msg_x_42", 1614265330, 2);
    EXPECT_EQ(HeaderValue(r, "webhook-id"), "msg_x_42");
    EXPECT_EQ(HeaderValue(r, "webhook-timestamp"), "1614265330");
    EXPECT_EQ(HeaderValue(r, "webhook-signature"),
              Sign(Config(f).secret_keys[0], "msg_x_42", 1614265330, r.body));
    EXPECT_EQ(HeaderValue(r, "hookstream-stream"), "__defaultVhost__/live/cam1");
    EXPECT_EQ(HeaderValue(r, "hookstream-seq"), "3");
    EXPECT_EQ(HeaderValue(r, "hookstream-position"), "42");
    EXPECT_EQ(HeaderValue(r, "hookstream-attempt"), "2");
  }
}

TEST(RequestTest, CloudEventsStructuredEmbedsJsonDataAsIs) {
  const HttpRequest r = BuildRequest(Config(Format::kCloudEvents), ZlmEvent(), "m", 1, 1);
  EXPECT_EQ(HeaderValue(r, "Content-Type"), "application/cloudevents+json; charset=utf-8");
  const nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["specversion"], "1.0");
  EXPECT_EQ(j["id"], "abc.1.7");
  EXPECT_EQ(j["source"], "z1");
  EXPECT_EQ(j["type"], "zlm.on_publish");
  EXPECT_EQ(j["subject"], "__defaultVhost__/live/cam1");
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.005Z");
  EXPECT_EQ(j["datacontenttype"], "application/json");
  EXPECT_EQ(j["hookstreamseq"], 3);
  EXPECT_EQ(j["hookstreamposition"], 42);
  EXPECT_EQ(j["zlmhook"], "on_publish");
  EXPECT_EQ(j["data"]["hook_index"], 7);
  EXPECT_TRUE(absl::StrContains(r.body, std::string("\"data\":") + kZlmBody));
}

TEST(RequestTest, CloudEventsStructuredCarriesBinaryDataAsBase64) {
  v1::Event e = ZlmEvent();
  e.set_content_type("application/octet-stream");
  e.set_data(std::string("\x00\xff", 2));
  const nlohmann::json j =
      nlohmann::json::parse(BuildRequest(Config(Format::kCloudEvents), e, "m", 1, 1).body);
  EXPECT_EQ(j["data_base64"], "AP8=");
  EXPECT_FALSE(j.contains("data"));
}

TEST(RequestTest, CloudEventsBinaryPutsAttributesInCeHeaders) {
  v1::Event e = ZlmEvent();
  e.set_stream("a b/\"c\"%");
  const HttpRequest r = BuildRequest(Config(Format::kCloudEventsBinary), e, "m", 1, 1);
  EXPECT_EQ(r.body, kZlmBody);
  EXPECT_EQ(HeaderValue(r, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderValue(r, "ce-specversion"), "1.0");
  EXPECT_EQ(HeaderValue(r, "ce-id"), "abc.1.7");
  EXPECT_EQ(HeaderValue(r, "ce-type"), "zlm.on_publish");
  EXPECT_EQ(HeaderValue(r, "ce-subject"), "a%20b/%22c%22%25");
  EXPECT_EQ(HeaderValue(r, "ce-time"), "2023-11-14T22:13:20.005Z");
  EXPECT_EQ(HeaderValue(r, "ce-zlmhook"), "on_publish");
  EXPECT_THAT(r.headers, Not(Contains(::testing::StartsWith("ce-data"))));
}

}  // namespace
}  // namespace hookstream::webhook
