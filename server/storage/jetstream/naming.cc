#include "server/storage/jetstream/naming.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hookstream::storage::jetstream {
namespace {

bool IsPlain(unsigned char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // Lowercase is not what we write: rejecting it keeps the spelling unique.
}

}  // namespace

std::string StreamToSubject(absl::string_view prefix, absl::string_view stream) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(prefix);
  out.reserve(prefix.size() + 1 + stream.size() * 3);
  out.push_back('.');
  for (unsigned char c : stream) {
    if (c == '/') {
      out.push_back('.');
    } else if (IsPlain(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::optional<std::string> SubjectToStream(absl::string_view prefix, absl::string_view subject) {
  if (!absl::StartsWith(subject, prefix) || subject.size() <= prefix.size() + 1 ||
      subject[prefix.size()] != '.') {
    return std::nullopt;
  }
  absl::string_view rest = subject.substr(prefix.size() + 1);
  std::string out;
  out.reserve(rest.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '.') {
      out.push_back('/');
    } else if (c == '%') {
      if (i + 2 >= rest.size()) return std::nullopt;
      const int hi = HexValue(rest[i + 1]);
      const int lo = HexValue(rest[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const unsigned char b = static_cast<unsigned char>(hi * 16 + lo);
      if (IsPlain(b) || b == '/') return std::nullopt;  // Never escaped by StreamToSubject.
      out.push_back(static_cast<char>(b));
      i += 2;
    } else if (IsPlain(static_cast<unsigned char>(c))) {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string MetaKeyToKv(absl::string_view key) {
  return absl::StrCat("m_", absl::BytesToHexString(key));
}

std::optional<std::string> KvToMetaKey(absl::string_view kv_key) {
  if (!absl::StartsWith(kv_key, "m_")) return std::nullopt;
  absl::string_view hex = kv_key.substr(2);
  if (hex.size() % 2 != 0) return std::nullopt;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return std::nullopt;
  }
  return absl::HexStringToBytes(hex);
}

std::string DedupMsgId(absl::string_view source, absl::string_view id) {
  // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
  const std::string input = absl::StrCat(source.size(), ":", source, id);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace hookstream::storage::jetstream
