// The CLI's JSON shapes: publish input lines, subscribe output lines, and proto messages.
//
// Input line:  {"stream", "type", "id", "source", "attributes", "data", "time", "expected_seq"}
//              `data` is any JSON value, stored as its JSON text with content type
//              application/json; `time` is RFC 3339; `attributes` an object of strings.
// Output line: {"event": {...}, "resume_token": "..."}: the event in protobuf's JSON mapping
//              (proto field names, 64-bit integers as strings), except that `data` is the JSON
//              value itself when the content type is JSON (application/json, *+json) and the
//              bytes are valid JSON, and base64 otherwise.
#ifndef HOOKSTREAM_CLIENT_CLI_EVENT_JSON_H_
#define HOOKSTREAM_CLIENT_CLI_EVENT_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "hookstream/v1/event_stream.pb.h"

namespace hookstream::cli {

// One input line as an event. INVALID_ARGUMENT names the field. `default_source` is used when
// the line has no "source".
absl::StatusOr<v1::EventInput> EventFromJsonLine(absl::string_view line,
                                                 const std::string& default_source);

// A delivered event as an output line (no trailing newline).
std::string DeliveryToJsonLine(const v1::Event& event, const std::string& resume_token);

// `message` in protobuf's JSON mapping, proto field names, every field printed.
std::string MessageToJson(const google::protobuf::Message& message);

}  // namespace hookstream::cli

#endif  // HOOKSTREAM_CLIENT_CLI_EVENT_JSON_H_
