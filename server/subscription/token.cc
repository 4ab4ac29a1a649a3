#include "server/subscription/token.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace hookstream::subscription {
namespace {

constexpr char kVersion = 1;
constexpr size_t kLogIdBytes = 16;
constexpr size_t kBodyBytes = 1 + kLogIdBytes + 8;
constexpr size_t kMacBytes = 12;
constexpr size_t kTokenBytes = kBodyBytes + kMacBytes;

}  // namespace

TokenCodec::TokenCodec(std::string log_id, std::string key)
    : log_id_(std::move(log_id)),
      log_id_text_(absl::BytesToHexString(log_id_)),
      key_(std::move(key)) {}

std::string TokenCodec::Mac(absl::string_view body) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), kMacBytes);
}

std::string TokenCodec::Encode(Position position) const {
  std::string raw;
  raw.reserve(kTokenBytes);
  raw.push_back(kVersion);
  raw.append(log_id_);
  char pos[8];
  absl::big_endian::Store64(pos, position.value());
  raw.append(pos, 8);
  raw.append(Mac(raw));
  std::string out;
  absl::WebSafeBase64Escape(raw, &out);
  return out;
}

absl::StatusOr<Position> TokenCodec::Decode(absl::string_view token) const {
  std::string raw;
  if (token.empty()) return absl::InvalidArgumentError("resume_token is empty");
  // Base64 decoding tolerates whitespace and ignores the unused bits of the last character, so
  // only the canonical encoding of the decoded bytes is accepted: one token, one spelling.
  std::string canonical;
  if (token.size() > 2 * kTokenBytes || !absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() != kTokenBytes || raw[0] != kVersion ||
      (absl::WebSafeBase64Escape(raw, &canonical), canonical != token)) {
    return absl::InvalidArgumentError(
        "resume_token is not a hookstream resume token (damaged, truncated or of another "
        "version)");
  }
  const absl::string_view log_id = absl::string_view(raw).substr(1, kLogIdBytes);
  if (log_id != log_id_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "resume_token is from another log (", absl::BytesToHexString(log_id),
        "); this server's log is ", log_id_text_,
        " (the data was recreated or restored): start over from the beginning"));
  }
  const std::string mac = Mac(absl::string_view(raw).substr(0, kBodyBytes));
  if (CRYPTO_memcmp(mac.data(), raw.data() + kBodyBytes, kMacBytes) != 0) {
    return absl::InvalidArgumentError("resume_token failed its integrity check (damaged or forged)");
  }
  return Position(absl::big_endian::Load64(raw.data() + 1 + kLogIdBytes));
}

}  // namespace hookstream::subscription
