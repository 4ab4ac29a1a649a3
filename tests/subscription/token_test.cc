#include "server/subscription/token.h"

#include <openssl/hmac.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::subscription {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kLogId("\x01\x23\x45\x67\x89\xab\xcd\xef\x10\x32\x54\x76\x98\xba\xdc\xfe", 16);
const std::string kOtherLogId("\xfe\xdc\xba\x98\x76\x54\x32\x10\xef\xcd\xab\x89\x67\x45\x23\x01",
                              16);
const std::string kKey(32, '\x5a');
const std::string kOtherKey(32, '\xa5');

const uint64_t kPositions[] = {0,   1,          127,          128,         255,
                               256, 1ull << 32, 1ull << 63, ~uint64_t{0} - 1, ~uint64_t{0}};

// The characters a token is made of, and some it is not.
const std::string kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const std::string kOthers = std::string("=+/ .!\n\t~", 9) + std::string(1, '\0') + "\xc3";

std::string RawOf(absl::string_view token) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return "";
  return raw;
}

// A well-formed token body with a valid MAC, for versions the codec does not know.
std::string TokenWithVersion(char version, const std::string& log_id, const std::string& key,
                             uint64_t position) {
  std::string raw(1, version);
  raw += log_id;
  char pos[8];
  absl::big_endian::Store64(pos, position);
  raw.append(pos, 8);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(raw.data()), raw.size(), digest, &len);
  raw.append(reinterpret_cast<const char*>(digest), 12);
  std::string out;
  absl::WebSafeBase64Escape(raw, &out);
  return out;
}

TEST(TokenCodecTest, RoundTripsEveryPositionIncludingZeroAndTheLargest) {
  TokenCodec codec(kLogId, kKey);
  for (uint64_t p : kPositions) {
    const std::string token = codec.Encode(Position(p));
    absl::StatusOr<Position> back = codec.Decode(token);
    ASSERT_TRUE(back.ok()) << p << ": " << back.status();
    EXPECT_EQ(*back, Position(p));
    // Another codec of the same log (a restarted server) reads it too.
    TokenCodec restarted(kLogId, kKey);
    EXPECT_EQ(restarted.Decode(token).value_or(Position(12345)), Position(p));
  }
}

TEST(TokenCodecTest, TokensAreUrlSafeAndDifferPerPosition) {
  TokenCodec codec(kLogId, kKey);
  std::set<std::string> seen;
  for (uint64_t p : kPositions) {
    const std::string token = codec.Encode(Position(p));
    EXPECT_EQ(token.find_first_not_of(kBase64Url), std::string::npos) << token;
    EXPECT_TRUE(seen.insert(token).second) << "two positions share token " << token;
  }
}

TEST(TokenCodecTest, ExposesTheLogIdAsHex) {
  TokenCodec codec(kLogId, kKey);
  EXPECT_EQ(codec.log_id(), kLogId);
  EXPECT_EQ(codec.log_id_text(), "0123456789abcdef1032547698badcfe");
}

TEST(TokenCodecTest, EverySingleCharacterChangeIsRejected) {
  TokenCodec codec(kLogId, kKey);
  std::vector<std::string> accepted;  // Damaged tokens that decoded (to the same position).
  for (uint64_t p : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
    const std::string token = codec.Encode(Position(p));
    for (size_t i = 0; i < token.size(); ++i) {
      for (char c : kBase64Url + kOthers) {
        if (c == token[i]) continue;
        std::string damaged = token;
        damaged[i] = c;
        absl::StatusOr<Position> got = codec.Decode(damaged);
        ASSERT_FALSE(got.ok() && *got != Position(p))
            << "damaged token " << damaged << " decoded to another position " << *got;
        if (got.ok()) {
          accepted.push_back(absl::StrCat(token, " -> ", damaged));
          continue;
        }
        if (got.status().code() == absl::StatusCode::kFailedPrecondition) {
          // Only when the damage lands in the log id bytes.
          const std::string raw = RawOf(damaged);
          ASSERT_EQ(raw.size(), 37u);
          EXPECT_NE(raw.substr(1, 16), kLogId);
        } else {
          EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
              << damaged << ": " << got.status();
        }
      }
    }
  }
  EXPECT_THAT(accepted, IsEmpty()) << accepted.size() << " damaged tokens were accepted";
}

TEST(TokenCodecTest, TokenWithInsertedWhitespaceIsInvalidArgument) {
  TokenCodec codec(kLogId, kKey);
  const std::string token = codec.Encode(Position(1000));
  for (const char* ws : {" ", "\n", "\t", "\r\n"}) {
    for (size_t at : {size_t{0}, size_t{10}, token.size()}) {
      const std::string damaged = absl::StrCat(token.substr(0, at), ws, token.substr(at));
      absl::StatusOr<Position> got = codec.Decode(damaged);
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
          << "\"" << absl::CEscape(damaged) << "\": " << got.status();
    }
  }
}

TEST(TokenCodecTest, TokenOfAnotherLogIsFailedPreconditionNamingBothLogIds) {
  TokenCodec ours(kLogId, kKey);
  TokenCodec theirs(kOtherLogId, kOtherKey);
  absl::StatusOr<Position> got = ours.Decode(theirs.Encode(Position(7)));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr(ours.log_id_text()), HasSubstr(theirs.log_id_text())));
  // Even when the other log happens to use the same key.
  TokenCodec same_key(kOtherLogId, kKey);
  EXPECT_EQ(ours.Decode(same_key.Encode(Position(7))).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TokenCodecTest, ForgedTokenWithTheRightLogIdButAnotherKeyIsInvalidArgument) {
  TokenCodec ours(kLogId, kKey);
  TokenCodec forger(kLogId, kOtherKey);
  for (uint64_t p : kPositions) {
    absl::StatusOr<Position> got = ours.Decode(forger.Encode(Position(p)));
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << p;
  }
}

// Encode keeps precomputed HMAC states: its MAC must stay exactly OpenSSL's one-shot
// HMAC-SHA256, for every position and for keys shorter than, equal to and longer than a
// SHA-256 block (tokens already handed out must keep verifying).
TEST(TokenCodecTest, MacIsExactlyHmacSha256ForEveryKeyLength) {
  for (size_t key_len : {1, 16, 32, 63, 64, 65, 200}) {
    std::string key(key_len, '\0');
    for (size_t i = 0; i < key_len; ++i) key[i] = static_cast<char>(i * 37 + 11);
    TokenCodec codec(kLogId, key);
    for (uint64_t p : kPositions) {
      EXPECT_EQ(codec.Encode(Position(p)), TokenWithVersion(1, kLogId, key, p))
          << "key length " << key_len << ", position " << p;
      absl::StatusOr<Position> back = codec.Decode(TokenWithVersion(1, kLogId, key, p));
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, Position(p));
    }
  }
}

TEST(TokenCodecTest, EncodingIsAbslsUnpaddedBase64UrlForManyPositions) {
  TokenCodec codec(kLogId, kKey);
  for (uint64_t p = 0; p < 5000; p += 7) {
    const std::string token = codec.Encode(Position(p * 0x9e3779b97f4a7c15ull));
    std::string raw;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
    std::string again;
    absl::WebSafeBase64Escape(raw, &again);
    EXPECT_EQ(token, again);
  }
}

TEST(TokenCodecTest, TokenOfAnUnknownVersionIsInvalidArgumentEvenWithAValidMac) {
  TokenCodec codec(kLogId, kKey);
  ASSERT_EQ(TokenWithVersion(1, kLogId, kKey, 9), codec.Encode(Position(9)))
      << "the test's idea of the token layout is out of date";
  for (char version : {'\0', '\2', '\x7f', '\xff'}) {
    absl::StatusOr<Position> got = codec.Decode(TokenWithVersion(version, kLogId, kKey, 9));
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << int{version};
  }
}

TEST(TokenCodecTest, EmptyNonBase64TruncatedAndOverlongTokensAreInvalidArgument) {
  TokenCodec codec(kLogId, kKey);
  const std::string token = codec.Encode(Position(1000));
  std::string standard_alphabet = token;  // '-' / '_' swapped for '+' / '/'.
  for (char& c : standard_alphabet) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const std::string cases[] = {
      "",
      "not a token!",
      "????",
      "AAAA",
      token.substr(0, token.size() - 1),
      token.substr(0, token.size() - 4),
      token.substr(1),
      token + "A",
      token + "AAAA",
      token + token,
      std::string(10000, 'A'),
      std::string(token.size(), 'A'),
  };
  for (const std::string& bad : cases) {
    absl::StatusOr<Position> got = codec.Decode(bad);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << "\"" << absl::CEscape(bad) << "\": " << got.status();
  }
  if (standard_alphabet != token) {
    absl::StatusOr<Position> got = codec.Decode(standard_alphabet);
    EXPECT_FALSE(got.ok() && *got != Position(1000));
  }
}

}  // namespace
}  // namespace hookstream::subscription
