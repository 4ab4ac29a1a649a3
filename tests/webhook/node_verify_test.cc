// Signatures checked by the official Standard Webhooks implementation (the standardwebhooks npm
// package, tests/webhook/node): real requests from the shim, recorded by a real receiver, for
// both secrets of a rotation and every format; a wrong secret must fail.
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/webhook/endpoint_config.h"
#include "tests/testutil/test_server.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {
namespace {

constexpr char kOld[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kNew[] = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";
constexpr char kOther[] = "whsec_b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVk";

int RunNode(const std::string& file, const std::string& secret) {
  const std::string cmd = absl::StrCat("'", HOOKSTREAM_NODE, "' '", WEBHOOK_NODE_DIR,
                                       "/verify.js' '", file, "' '", secret, "'");
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(WebhookNodeVerifyTest, StandardWebhooksPackageVerifiesEverySignature) {
  ASSERT_EQ(
      std::system(
          absl::StrCat("test -d '", WEBHOOK_NODE_DIR, "/node_modules/standardwebhooks'").c_str()),
      0)
      << "run: npm ci --prefix tests/webhook/node (as .ci/install-deps does)";
  Receiver rx;
  v1::WebhooksConfig c;
  const std::pair<const char*, v1::WebhookEndpointConfig::Format> formats[] = {
      {"ce", v1::WebhookEndpointConfig::cloudevents},
      {"bin", v1::WebhookEndpointConfig::cloudevents_binary},
      {"zlm", v1::WebhookEndpointConfig::zlm}};
  for (const auto& [name, format] : formats) {
    v1::WebhookEndpointConfig* e = c.add_endpoints();
    e->set_name(name);
    e->set_url(rx.Url(absl::StrCat("/", name)));
    e->set_format(format);
    e->add_secrets(kOld);
    e->add_secrets(kNew);
  }
  ServerOptions o;
  o.webhooks.endpoints = *webhook::EndpointsFromConfig(c);
  TestServer ts(Transport::kInProcess, o);
  std::vector<v1::EventInput> events;
  events.push_back(MakeEvent("a/b", "t", R"({"test": 2432232314})"));
  events.back().set_content_type("application/json");
  events.push_back(MakeEvent("a/b", "t", "caf\xc3\xa9 \xe2\x82\xac"));
  events.back().set_content_type("text/plain; charset=utf-8");
  events.push_back(MakeEvent("a/c", "t", std::string("\x00\x01\xff\xfe binary", 11)));
  events.back().set_content_type("application/octet-stream");
  events.push_back(MakeEvent("a/c", "t", ""));
  ASSERT_TRUE(Publish(ts.stub(), events).ok());
  // Every event delivered (2xx) to every endpoint. Counting attempts instead would let a retried
  // attempt stand in for a delivery not made yet, and check fewer requests than claimed.
  auto delivered_everywhere = [&](const std::vector<Received>& r) {
    std::map<std::string, std::set<std::string>> ids_by_path;
    for (const Received& x : r) {
      if (x.ok()) ids_by_path[x.path].insert(x.Header("webhook-id"));
    }
    for (const auto& [name, format] : formats) {
      if (ids_by_path[absl::StrCat("/", name)].size() < events.size()) return false;
    }
    return true;
  };
  ASSERT_TRUE(rx.WaitFor(delivered_everywhere, absl::Seconds(30))) << [&] {
    std::string got = "received:";
    for (const Received& r : rx.Requests()) {
      absl::StrAppend(&got, "\n  ", r.path, " ", r.Header("webhook-id"), " attempt ",
                      r.Header("hookstream-attempt"), " -> ", r.status, " at ",
                      absl::FormatTime(r.at));
    }
    return got;
  }();

  TempDir dir;
  const std::string file = dir.path() + "/requests.jsonl";
  {
    std::ofstream out(file);
    for (const Received& r : rx.Requests()) {
      nlohmann::json headers;
      for (const auto& [k, v] : r.headers) headers[k] = v;
      out << nlohmann::json{{"headers", headers}, {"body_base64", absl::Base64Escape(r.body)}}
                 .dump()
          << "\n";
    }
  }
  EXPECT_EQ(RunNode(file, kOld), 0);
  EXPECT_EQ(RunNode(file, kNew), 0);
  EXPECT_EQ(RunNode(file, kOther), 1);
}

}  // namespace
}  // namespace hookstream::testing
