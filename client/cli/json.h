// A small strict JSON (RFC 8259) reader for the CLI. It keeps the exact text of every value, so
// a payload can be stored as the JSON text it was given (protobuf's Struct would turn every
// number into a double) and spliced into output unchanged.
//
// Values are views into the parsed text: it must outlive them.
#ifndef HOOKSTREAM_CLIENT_CLI_JSON_H_
#define HOOKSTREAM_CLIENT_CLI_JSON_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hookstream::cli {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  absl::string_view raw;                                   // The value's text exactly as written.
  std::string string;                                      // kString: the decoded (UTF-8) string.
  bool boolean = false;                                    // kBool
  std::vector<JsonValue> items;                            // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject, in order

  // kObject: the member named `key`, or null.
  const JsonValue* Find(absl::string_view key) const;
};

// Parses one JSON value (surrounding whitespace allowed). INVALID_ARGUMENT names the offset.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

bool IsValidJson(absl::string_view text);

// `s` as a JSON string literal, quotes included. Bytes that are not valid UTF-8 become U+FFFD.
std::string JsonQuote(absl::string_view s);

// True for application/json and any media type ending in +json (parameters ignored).
bool IsJsonContentType(absl::string_view content_type);

}  // namespace hookstream::cli

#endif  // HOOKSTREAM_CLIENT_CLI_JSON_H_
