// Validation of the names clients send (streams, types, ids) and stream patterns with NATS-style
// wildcards. Pure functions and immutable values: safe from any thread.
#ifndef HOOKSTREAM_SERVER_COMMON_NAMES_H_
#define HOOKSTREAM_SERVER_COMMON_NAMES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hookstream {

inline constexpr size_t kMaxNameBytes = 256;

// A stream name: 1..256 bytes of valid UTF-8 without control characters, '/'-separated tokens
// that are neither empty nor a wildcard ('*', '>'). `field` names the field in the error.
absl::Status ValidateStreamName(absl::string_view name, absl::string_view field);

// An event type, id or source: at most 256 bytes of valid UTF-8 without control characters;
// empty only when `allow_empty`.
absl::Status ValidateName(absl::string_view name, absl::string_view field, bool allow_empty);

bool IsValidUtf8(absl::string_view s);

// A stream pattern: '/'-separated tokens; '*' matches exactly one token, a trailing '>' matches
// one or more tokens. "a/b" matches only "a/b".
class StreamPattern {
 public:
  static absl::StatusOr<StreamPattern> Parse(absl::string_view pattern, absl::string_view field);

  bool Matches(absl::string_view stream) const;
  // True when the pattern has no wildcard: it matches exactly one stream name.
  bool is_exact() const { return exact_; }
  const std::string& text() const { return text_; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  bool has_tail_wildcard() const { return tail_; }

 private:
  std::string text_;
  std::vector<std::string> tokens_;  // '*' tokens kept as "*"; the trailing '>' is not a token.
  bool tail_ = false;
  bool exact_ = true;
};

// An event-type filter: exact, or a prefix ending in '*' ("zlm.*", or "*" for every type).
class TypeFilter {
 public:
  static absl::StatusOr<TypeFilter> Parse(absl::string_view filter, absl::string_view field);
  bool Matches(absl::string_view type) const;

 private:
  std::string text_;  // Without the trailing '*' when prefix_.
  bool prefix_ = false;
};

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_COMMON_NAMES_H_
