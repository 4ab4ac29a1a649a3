#include "server/common/config.h"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "server/common/names.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace hookstream {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

constexpr absl::string_view kDurationForms = R"((use e.g. "20ms", "5s", "0.5s", "2m", "1h"))";

// The range of google.protobuf.Duration: 10000 years.
constexpr int64_t kMaxDurationSeconds = 315'576'000'000;

// `s` in double quotes, escaped so that control characters and broken UTF-8 stay readable.
std::string Quoted(absl::string_view s) {
  return absl::StrCat("\"", IsValidUtf8(s) ? absl::Utf8SafeCHexEscape(s) : absl::CHexEscape(s),
                      "\"");
}

// Like Quoted, but cut short: values can be whole block scalars.
std::string Excerpt(absl::string_view s) {
  constexpr size_t kMaxBytes = 80;
  if (s.size() <= kMaxBytes) return Quoted(s);
  size_t cut = kMaxBytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // Whole chars.
  return absl::StrCat(Quoted(s.substr(0, cut)), "...");
}

// What a node is, for the "got ..." of error messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Excerpt(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

std::string KeyPath(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

// `path` is empty for the top level.
absl::Status KeyError(absl::string_view path, absl::string_view what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("config: ", what));
  return absl::InvalidArgumentError(absl::StrCat("config key ", Quoted(path), ": ", what));
}

absl::Status Expected(absl::string_view path, absl::string_view what, const YAML::Node& got) {
  return KeyError(path, absl::StrCat("expected ", what, ", got ", Describe(got)));
}

bool IsDuration(const Descriptor* type) { return type->full_name() == "google.protobuf.Duration"; }

// What a value of `field` looks like, for "expected ..." in error messages.
std::string ExpectedValue(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a non-negative integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "a finite number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    case FieldDescriptor::CPPTYPE_ENUM: {
      std::string names;
      const EnumDescriptor* type = field->enum_type();
      for (int i = 0; i < type->value_count(); ++i) {
        absl::StrAppend(&names, i == 0 ? "" : ", ", type->value(i)->name());
      }
      return absl::StrCat("one of ", names);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return IsDuration(field->message_type()) ? "a duration" : "a mapping";
  }
  return "a value";
}

enum class IntText { kOk, kMalformed, kTooLarge };

// A YAML integer: decimal with an optional sign, or 0x hex. Its sign and magnitude.
IntText ParseIntText(absl::string_view s, bool* negative, uint64_t* magnitude) {
  *negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    *negative = s[0] == '-';
    s.remove_prefix(1);
  }
  const uint64_t base = absl::ConsumePrefix(&s, "0x") ? 16 : 10;
  if (s.empty()) return IntText::kMalformed;
  uint64_t value = 0;
  bool too_large = false;
  for (const char c : s) {
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return IntText::kMalformed;
    }
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / base) too_large = true;
    value = value * base + digit;
  }
  *magnitude = value;
  return too_large ? IntText::kTooLarge : IntText::kOk;
}

// Sets a singular field or appends to a repeated one, whichever `field` is.
void StoreInt(const FieldDescriptor* field, Message* msg, bool negative, uint64_t magnitude) {
  const Reflection* r = msg->GetReflection();
  const bool add = field->is_repeated();
  // Two's complement without overflow, also for the most negative value.
  const int64_t as_signed = negative && magnitude > 0 ? -static_cast<int64_t>(magnitude - 1) - 1
                                                      : static_cast<int64_t>(magnitude);
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      add ? r->AddInt32(msg, field, as_signed) : r->SetInt32(msg, field, as_signed);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      add ? r->AddInt64(msg, field, as_signed) : r->SetInt64(msg, field, as_signed);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      add ? r->AddUInt32(msg, field, magnitude) : r->SetUInt32(msg, field, magnitude);
      break;
    default:
      add ? r->AddUInt64(msg, field, magnitude) : r->SetUInt64(msg, field, magnitude);
      break;
  }
}

absl::Status ParseInt(const YAML::Node& node, const FieldDescriptor* field, Message* msg,
                      absl::string_view path) {
  int64_t min;
  uint64_t max;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      min = std::numeric_limits<int32_t>::min();
      max = std::numeric_limits<int32_t>::max();
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      min = std::numeric_limits<int64_t>::min();
      max = std::numeric_limits<int64_t>::max();
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      min = 0;
      max = std::numeric_limits<uint32_t>::max();
      break;
    default:
      min = 0;
      max = std::numeric_limits<uint64_t>::max();
      break;
  }
  bool negative;
  uint64_t magnitude;
  const IntText parsed = ParseIntText(node.Scalar(), &negative, &magnitude);
  if (parsed == IntText::kMalformed || (negative && magnitude != 0 && min == 0)) {
    return Expected(path, ExpectedValue(field), node);
  }
  const uint64_t min_magnitude = min == 0 ? 0 : static_cast<uint64_t>(-(min + 1)) + 1;
  if (parsed == IntText::kTooLarge || magnitude > (negative ? min_magnitude : max)) {
    return KeyError(path, absl::StrCat(Excerpt(node.Scalar()), " is out of range for ",
                                       field->cpp_type_name(), " (", min, " to ", max, ")"));
  }
  StoreInt(field, msg, negative, magnitude);
  return absl::OkStatus();
}

absl::Status ParseDurationValue(const YAML::Node& node, Message* duration, absl::string_view path) {
  const std::string& text = node.Scalar();
  absl::StatusOr<absl::Duration> d = ParseConfigDuration(text);
  if (!d.ok()) return KeyError(path, d.status().message());
  const int64_t seconds = absl::ToInt64Seconds(*d);
  if (seconds > kMaxDurationSeconds) {
    return KeyError(path, absl::StrCat("duration ", Excerpt(text), " is longer than 10000 years"));
  }
  const int32_t nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(*d - absl::Seconds(seconds)));
  const Descriptor* type = duration->GetDescriptor();
  const Reflection* r = duration->GetReflection();
  r->SetInt64(duration, type->FindFieldByName("seconds"), seconds);
  r->SetInt32(duration, type->FindFieldByName("nanos"), nanos);
  return absl::OkStatus();
}

absl::Status ParseMessage(const YAML::Node& node, Message* msg, absl::string_view path);

// Parses one value of `field`, ignoring whether it is repeated, and sets it (singular field) or
// appends it (repeated field).
absl::Status ParseValue(const YAML::Node& node, const FieldDescriptor* field, Message* msg,
                        absl::string_view path) {
  const Reflection* r = msg->GetReflection();
  const bool add = field->is_repeated();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    const bool duration = IsDuration(field->message_type());
    if (duration && !node.IsScalar()) return Expected(path, ExpectedValue(field), node);
    Message* sub = add ? r->AddMessage(msg, field) : r->MutableMessage(msg, field);
    return duration ? ParseDurationValue(node, sub, path) : ParseMessage(node, sub, path);
  }
  if (!node.IsScalar()) return Expected(path, ExpectedValue(field), node);
  const std::string& text = node.Scalar();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return ParseInt(node, field, msg, path);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value;
      if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
        return Expected(path, ExpectedValue(field), node);
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        add ? r->AddDouble(msg, field, value) : r->SetDouble(msg, field, value);
      } else if (std::fabs(value) > FLT_MAX) {
        return KeyError(path, absl::StrCat(Excerpt(text), " is out of range for float"));
      } else {
        const float f = static_cast<float>(value);
        add ? r->AddFloat(msg, field, f) : r->SetFloat(msg, field, f);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value;
      if (!YAML::convert<bool>::decode(node, value)) {
        return Expected(path, ExpectedValue(field), node);
      }
      add ? r->AddBool(msg, field, value) : r->SetBool(msg, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumValueDescriptor* value = field->enum_type()->FindValueByName(text);
      if (value == nullptr) return Expected(path, ExpectedValue(field), node);
      add ? r->AddEnum(msg, field, value) : r->SetEnum(msg, field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(text)) {
        return Expected(path, "UTF-8 text", node);
      }
      add ? r->AddString(msg, field, text) : r->SetString(msg, field, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;  // Handled above.
  }
  return absl::OkStatus();
}

// A map field: a YAML mapping whose keys are parsed as the map's key type. The error path of an
// entry is that of a nested key, "routes.primary.url".
absl::Status ParseMap(const YAML::Node& node, const FieldDescriptor* field, Message* msg,
                      absl::string_view path) {
  if (!node.IsMap()) return Expected(path, "a mapping", node);
  const FieldDescriptor* key_field = field->message_type()->map_key();
  const FieldDescriptor* value_field = field->message_type()->map_value();
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      return KeyError(path, absl::StrCat("keys must be scalars, got ", Describe(entry.first)));
    }
    const std::string entry_path = KeyPath(path, entry.first.Scalar());
    if (!seen.insert(entry.first.Scalar()).second) return KeyError(entry_path, "set twice");
    Message* entry_msg = msg->GetReflection()->AddMessage(msg, field);
    if (absl::Status s = ParseValue(entry.first, key_field, entry_msg, entry_path); !s.ok()) {
      return s;
    }
    // A null value leaves the entry's value at its default ("" or 0 or an empty message).
    if (entry.second.IsNull()) continue;
    if (absl::Status s = ParseValue(entry.second, value_field, entry_msg, entry_path); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseField(const YAML::Node& node, const FieldDescriptor* field, Message* msg,
                        absl::string_view path) {
  if (field->is_map()) return ParseMap(node, field, msg, path);
  if (!field->is_repeated()) return ParseValue(node, field, msg, path);
  if (!node.IsSequence()) return Expected(path, "a list", node);
  for (size_t i = 0; i < node.size(); ++i) {
    if (absl::Status s = ParseValue(node[i], field, msg, absl::StrCat(path, "[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseMessage(const YAML::Node& node, Message* msg, absl::string_view path) {
  // "limits:" with every key below it commented out.
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return Expected(path, path.empty() ? "a mapping at the top level" : "a mapping", node);
  }
  const Descriptor* type = msg->GetDescriptor();
  // yaml-cpp keeps both pairs of a repeated key, so a set of the keys seen finds it.
  std::set<std::string> seen;
  // For each oneof set so far, the key that set it.
  std::map<const OneofDescriptor*, std::string> oneof_keys;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      return KeyError(path, absl::StrCat("keys must be strings, got ", Describe(entry.first)));
    }
    const std::string& key = entry.first.Scalar();
    const std::string key_path = KeyPath(path, key);
    if (!seen.insert(key).second) return KeyError(key_path, "set twice");
    const FieldDescriptor* field = type->FindFieldByName(key);
    if (field == nullptr) return KeyError(key_path, "unknown key");
    if (entry.second.IsNull()) continue;
    if (const OneofDescriptor* oneof = field->real_containing_oneof(); oneof != nullptr) {
      const auto [it, inserted] = oneof_keys.emplace(oneof, key);
      if (!inserted) {
        return KeyError(key_path, absl::StrCat("cannot be set together with ",
                                               Quoted(KeyPath(path, it->second)),
                                               " (both are in oneof ", oneof->name(), ")"));
      }
    }
    if (absl::Status s = ParseField(entry.second, field, msg, key_path); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Counts the documents of a YAML stream; nothing else.
class DocumentCounter : public YAML::EventHandler {
 public:
  int documents = 0;
  void OnDocumentStart(const YAML::Mark&) override { ++documents; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

absl::Status ParseDocument(absl::string_view text, Message* msg) {
  try {
    // Not YAML::LoadAll: on some malformed input (",a", "[a],b") yaml-cpp 0.7 reports an endless
    // run of documents and LoadAll never returns (found by tests/fuzz/config_fuzz). Count them
    // with the parser, stopping at the second, then load the one there is.
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    DocumentCounter counter;
    while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
    }
    if (counter.documents > 1) {
      return KeyError("", "expected one YAML document, got more (a '---' line, or text after "
                          "the first value such as a stray ',')");
    }
    if (counter.documents == 0) return absl::OkStatus();
    return ParseMessage(YAML::Load(std::string(text)), msg, "");
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return KeyError("", absl::StrCat("YAML syntax error: ", e.msg));
    return KeyError("", absl::StrCat("YAML syntax error at line ", e.mark.line + 1, ", column ",
                                     e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("config: ", e.what()));
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const std::string what = absl::StrCat("cannot read config file ", Quoted(path));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (file == nullptr) return absl::ErrnoToStatus(errno, what);
  std::string text;
  char buf[64 * 1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) text.append(buf, n);
  if (std::ferror(file.get())) return absl::ErrnoToStatus(errno, what);
  return text;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseConfigDuration(absl::string_view s) {
  absl::Duration d;
  if (!absl::ParseDuration(s, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration ", Excerpt(s), " ", kDurationForms));
  }
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration ", Excerpt(s), ": must be finite ", kDurationForms));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration ", Excerpt(s), ": must not be negative ", kDurationForms));
  }
  return d;
}

absl::Status ParseConfigInto(absl::string_view text, google::protobuf::Message* msg) {
  // Parse into a copy so that an error leaves *msg as it was.
  std::unique_ptr<Message> scratch(msg->New());
  scratch->CopyFrom(*msg);
  if (absl::Status s = ParseDocument(text, scratch.get()); !s.ok()) return s;
  msg->CopyFrom(*scratch);
  return absl::OkStatus();
}

absl::StatusOr<v1::Config> ParseConfig(absl::string_view text) {
  v1::Config config;
  if (absl::Status s = ParseConfigInto(text, &config); !s.ok()) return s;
  return config;
}

absl::StatusOr<v1::Config> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<v1::Config> config = ParseConfig(*text);
  if (!config.ok()) {
    return absl::Status(config.status().code(), absl::StrCat("config file ", Quoted(path), ": ",
                                                             config.status().message()));
  }
  return config;
}

absl::Duration ConfigDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status BadConfigValue(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\": ", why));
}

}  // namespace hookstream
