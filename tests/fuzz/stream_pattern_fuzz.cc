// Stream names, stream patterns and type filters (server/common/names.*,
// server/subscription/filter.*) on arbitrary input. The input is lines: the first is a pattern,
// the rest are stream names (and type names). Checked against a reference matcher written here
// the obvious way: '*' matches one token, a trailing '>' one or more, anything else itself.
// Filter::Create over all lines must agree with the patterns one by one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/common/names.h"
#include "server/subscription/filter.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using hookstream::StreamPattern;
using hookstream::TypeFilter;

bool ReferenceMatch(const std::vector<std::string>& pattern, absl::string_view stream) {
  const std::vector<absl::string_view> s = absl::StrSplit(stream, '/');
  const bool tail = !pattern.empty() && pattern.back() == ">";
  const size_t fixed = tail ? pattern.size() - 1 : pattern.size();
  if (tail ? s.size() <= fixed : s.size() != fixed) return false;
  for (size_t i = 0; i < fixed; ++i) {
    if (pattern[i] != "*" && pattern[i] != s[i]) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> lines = absl::StrSplit(input, '\n');
  const std::string& text = lines[0];

  absl::StatusOr<StreamPattern> pattern = StreamPattern::Parse(text, "streams[0]");
  if (pattern.ok()) {
    const std::vector<std::string> tokens = absl::StrSplit(text, '/');
    FUZZ_CHECK(pattern->text() == text);
    if (pattern->is_exact()) {
      FUZZ_CHECK(hookstream::ValidateStreamName(text, "s").ok()) << "exact pattern " << text;
      FUZZ_CHECK(pattern->Matches(text));
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      if (!hookstream::ValidateStreamName(lines[i], "stream").ok()) continue;
      FUZZ_CHECK(pattern->Matches(lines[i]) == ReferenceMatch(tokens, lines[i]))
          << "pattern \"" << text << "\" on \"" << lines[i] << "\"";
    }
  } else {
    FUZZ_CHECK(pattern.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(absl::StrContains(pattern.status().message(), "streams[0]"))
        << "the error must name the field: " << pattern.status();
  }

  absl::StatusOr<TypeFilter> type = TypeFilter::Parse(text, "types[0]");
  if (type.ok()) {
    for (size_t i = 1; i < lines.size(); ++i) {
      const bool expected = !text.empty() && text.back() == '*'
                                ? absl::StartsWith(lines[i], text.substr(0, text.size() - 1))
                                : lines[i] == text;
      FUZZ_CHECK(type->Matches(lines[i]) == expected) << text << " on " << lines[i];
    }
  }

  // Every line as a pattern of one subscription: OR of the valid ones, or an error.
  absl::StatusOr<hookstream::subscription::Filter> filter =
      hookstream::subscription::Filter::Create(lines, {});
  std::vector<StreamPattern> each;
  bool all_valid = true;
  for (const std::string& line : lines) {
    absl::StatusOr<StreamPattern> p = StreamPattern::Parse(line, "s");
    if (!p.ok()) {
      all_valid = false;
      break;
    }
    each.push_back(*std::move(p));
  }
  FUZZ_CHECK(filter.ok() == all_valid) << filter.status();
  if (filter.ok()) {
    for (const std::string& stream : lines) {
      if (!hookstream::ValidateStreamName(stream, "stream").ok()) continue;
      bool any = false;
      for (const StreamPattern& p : each) any = any || p.Matches(stream);
      FUZZ_CHECK(filter->MatchesStream(stream) == any) << stream;
    }
  }
  return 0;
}
