#include "server/webhook/signature.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::webhook {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

TEST(SignatureTest, MatchesTheStandardWebhooksTestVector) {
  absl::StatusOr<std::string> key = DecodeSecret(kSecret);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(SignatureTest, AnyChangeToIdTimestampOrBodyChangesTheSignature) {
  const std::string key = *DecodeSecret(kSecret);
  const std::string good = Sign(key, "msg_1", 100, "{}");
  EXPECT_NE(Sign(key, "msg_2", 100, "{}"), good);
  EXPECT_NE(Sign(key, "msg_1", 101, "{}"), good);
  EXPECT_NE(Sign(key, "msg_1", 100, "{ }"), good);
}

TEST(SignatureTest, OneSignaturePerSecretSeparatedBySpaces) {
  const std::string a = *DecodeSecret(kSecret);
  const std::string b = *DecodeSecret("whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=");
  const std::string header = SignatureHeader({a, b}, "msg_1", 5, "x");
  EXPECT_EQ(header, Sign(a, "msg_1", 5, "x") + " " + Sign(b, "msg_1", 5, "x"));
  EXPECT_EQ(SignatureHeader({}, "msg_1", 5, "x"), "");
}

TEST(SignatureTest, BadSecretsSayWhatIsWrong) {
  EXPECT_THAT(std::string(DecodeSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").status().message()),
              HasSubstr("whsec_"));
  EXPECT_THAT(std::string(DecodeSecret("whsec_not*base64!").status().message()),
              HasSubstr("not base64"));
  EXPECT_THAT(std::string(DecodeSecret("whsec_c2hvcnQ=").status().message()),
              HasSubstr("16 to 64 bytes"));
  EXPECT_FALSE(DecodeSecret("whsec_").ok());
}

}  // namespace
}  // namespace hookstream::webhook
