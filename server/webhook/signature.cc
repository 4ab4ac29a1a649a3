#include "server/webhook/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace hookstream::webhook {

absl::StatusOr<std::string> DecodeSecret(absl::string_view secret) {
  absl::string_view b64 = secret;
  if (!absl::ConsumePrefix(&b64, "whsec_")) {
    return absl::InvalidArgumentError("expected a Standard Webhooks secret \"whsec_<base64>\"");
  }
  std::string key;
  if (b64.empty() || !absl::Base64Unescape(b64, &key)) {
    return absl::InvalidArgumentError("the part after \"whsec_\" is not base64");
  }
  // Standard Webhooks asks for 24 to 64 bytes; fewer is no secret worth the name.
  if (key.size() < 16 || key.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("the secret must decode to 16 to 64 bytes, got ", key.size()));
  }
  return key;
}

std::string Sign(absl::string_view key, absl::string_view msg_id, int64_t timestamp,
                 absl::string_view body) {
  const std::string signed_content = absl::StrCat(msg_id, ".", timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), mac,
       &len);
  return absl::StrCat("v1,",
                      absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(mac), len)));
}

std::string SignatureHeader(const std::vector<std::string>& keys, absl::string_view msg_id,
                            int64_t timestamp, absl::string_view body) {
  std::string out;
  for (const std::string& k : keys) {
    absl::StrAppend(&out, out.empty() ? "" : " ", Sign(k, msg_id, timestamp, body));
  }
  return out;
}

}  // namespace hookstream::webhook
