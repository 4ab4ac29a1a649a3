#include "server/common/names.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hookstream {
namespace {

bool HasControlChar(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

absl::Status CheckText(absl::string_view s, absl::string_view field, absl::string_view what) {
  if (s.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", what, " is ", s.size(), " bytes, at most ", kMaxNameBytes));
  }
  if (!IsValidUtf8(s)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", what, " is not valid UTF-8"));
  }
  if (HasControlChar(s)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", what, " contains a control character"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::Status ValidateName(absl::string_view name, absl::string_view field, bool allow_empty) {
  if (name.empty()) {
    if (allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  }
  return CheckText(name, field, "value");
}

absl::Status ValidateStreamName(absl::string_view name, absl::string_view field) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": stream name must not be empty"));
  }
  if (absl::Status s = CheckText(name, field, "stream name"); !s.ok()) return s;
  for (absl::string_view token : absl::StrSplit(name, '/')) {
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": stream name \"", name, "\" has an empty token (leading, trailing or double '/')"));
    }
    if (token == "*" || token == ">") {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": stream name \"", name, "\" has a wildcard token '", token,
          "'; wildcards are for subscription patterns"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StreamPattern> StreamPattern::Parse(absl::string_view pattern,
                                                   absl::string_view field) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": pattern must not be empty"));
  }
  if (absl::Status s = CheckText(pattern, field, "pattern"); !s.ok()) return s;
  StreamPattern p;
  p.text_ = std::string(pattern);
  std::vector<absl::string_view> tokens = absl::StrSplit(pattern, '/');
  for (size_t i = 0; i < tokens.size(); ++i) {
    absl::string_view t = tokens[i];
    if (t.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": pattern \"", pattern, "\" has an empty token (leading, trailing or double '/')"));
    }
    if (t == ">") {
      if (i + 1 != tokens.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": pattern \"", pattern, "\": '>' is only allowed as the last token"));
      }
      p.tail_ = true;
      p.exact_ = false;
      continue;
    }
    if (t.size() > 1 && (absl::StrContains(t, '*') || absl::StrContains(t, '>'))) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": pattern \"", pattern, "\": '*' and '>' must be whole tokens, not part of \"", t,
          "\""));
    }
    if (t == "*") p.exact_ = false;
    p.tokens_.emplace_back(t);
  }
  return p;
}

bool StreamPattern::Matches(absl::string_view stream) const {
  if (exact_) return stream == text_;
  size_t pos = 0;
  for (const std::string& token : tokens_) {
    if (pos > stream.size()) return false;
    size_t end = stream.find('/', pos);
    if (end == absl::string_view::npos) end = stream.size();
    absl::string_view got = stream.substr(pos, end - pos);
    if (got.empty()) return false;
    if (token != "*" && got != token) return false;
    pos = end + 1;
  }
  // All pattern tokens consumed: an exact-length match needs the stream to end here; '>' needs
  // at least one more token.
  if (tail_) return pos < stream.size();
  return pos == stream.size() + 1;
}

absl::StatusOr<TypeFilter> TypeFilter::Parse(absl::string_view filter, absl::string_view field) {
  if (filter.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": type filter must not be empty"));
  }
  if (absl::Status s = CheckText(filter, field, "type filter"); !s.ok()) return s;
  TypeFilter f;
  const size_t star = filter.find('*');
  if (star != absl::string_view::npos && star != filter.size() - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": type filter \"", filter, "\": '*' is only allowed at the end (a prefix match)"));
  }
  f.prefix_ = star != absl::string_view::npos;
  f.text_ = std::string(f.prefix_ ? filter.substr(0, filter.size() - 1) : filter);
  return f;
}

bool TypeFilter::Matches(absl::string_view type) const {
  return prefix_ ? absl::StartsWith(type, text_) : type == text_;
}

}  // namespace hookstream
