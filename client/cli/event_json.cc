#include "event_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "json.h"

namespace hookstream::cli {
namespace {

absl::StatusOr<std::string> StringField(const JsonValue& v, absl::string_view name) {
  if (v.kind != JsonValue::Kind::kString) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be a string"));
  }
  return v.string;
}

}  // namespace

absl::StatusOr<v1::EventInput> EventFromJsonLine(absl::string_view line,
                                                 const std::string& default_source) {
  absl::StatusOr<JsonValue> parsed = ParseJson(line);
  if (!parsed.ok()) return parsed.status();
  if (parsed->kind != JsonValue::Kind::kObject) {
    return absl::InvalidArgumentError("a line must be a JSON object");
  }
  v1::EventInput event;
  for (const auto& [key, value] : parsed->members) {
    if (key == "stream" || key == "type" || key == "id" || key == "source") {
      absl::StatusOr<std::string> s = StringField(value, key);
      if (!s.ok()) return s.status();
      if (key == "stream") event.set_stream(*s);
      if (key == "type") event.set_type(*s);
      if (key == "id") event.set_id(*s);
      if (key == "source") event.set_source(*s);
    } else if (key == "attributes") {
      if (value.kind != JsonValue::Kind::kObject) {
        return absl::InvalidArgumentError("\"attributes\" must be an object of strings");
      }
      for (const auto& [name, attr] : value.members) {
        if (attr.kind != JsonValue::Kind::kString) {
          return absl::InvalidArgumentError(
              absl::StrCat("\"attributes\".\"", name, "\" must be a string"));
        }
        (*event.mutable_attributes())[name] = attr.string;
      }
    } else if (key == "data") {
      event.set_data(std::string(value.raw));
      event.set_content_type("application/json");
    } else if (key == "time") {
      absl::StatusOr<std::string> s = StringField(value, key);
      if (!s.ok()) return s.status();
      if (!google::protobuf::util::TimeUtil::FromString(*s, event.mutable_time())) {
        return absl::InvalidArgumentError(absl::StrCat("\"time\" is not an RFC 3339 time: ", *s));
      }
    } else if (key == "expected_seq") {
      uint64_t seq;
      if (value.kind != JsonValue::Kind::kNumber || !absl::SimpleAtoi(value.raw, &seq)) {
        return absl::InvalidArgumentError("\"expected_seq\" must be a non-negative integer");
      }
      event.set_expected_seq(seq);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field \"", key,
          "\" (known: stream, type, id, source, attributes, data, time, expected_seq)"));
    }
  }
  if (event.stream().empty()) return absl::InvalidArgumentError("\"stream\" is missing");
  if (event.type().empty()) return absl::InvalidArgumentError("\"type\" is missing");
  if (event.source().empty()) event.set_source(default_source);
  return event;
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  // Cannot fail for these messages (no Any fields); an empty object if it ever did.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) out = "{}";
  return out;
}

std::string DeliveryToJsonLine(const v1::Event& event, const std::string& resume_token) {
  std::string event_json;
  if (IsJsonContentType(event.content_type()) && IsValidJson(event.data())) {
    // Print the rest through protobuf, then put the payload in as the JSON it is.
    v1::Event rest = event;
    rest.clear_data();
    const std::string printed = MessageToJson(rest);
    absl::StatusOr<JsonValue> object = ParseJson(printed);
    event_json = "{";
    bool first = true;
    if (object.ok()) {
      for (const auto& [key, value] : object->members) {
        if (key == "data") continue;
        absl::StrAppend(&event_json, first ? "" : ",", JsonQuote(key), ":", value.raw);
        first = false;
      }
    }
    // Valid JSON has line breaks only between tokens: make them spaces to keep one line.
    std::string data = event.data();
    for (char& c : data) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    absl::StrAppend(&event_json, first ? "" : ",", "\"data\":", absl::StripAsciiWhitespace(data),
                    "}");
  } else {
    event_json = MessageToJson(event);
  }
  return absl::StrCat("{\"event\":", event_json, ",\"resume_token\":", JsonQuote(resume_token),
                      "}");
}

}  // namespace hookstream::cli
