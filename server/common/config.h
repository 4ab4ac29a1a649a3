// Loading of hookstreamd's configuration file (DESIGN.md §9) into the hookstream.v1.Config proto.
// The file is YAML; JSON is accepted too, being YAML's flow style. Keys are the proto field names,
// durations are strings ("20ms", "5s", "1h30m"). The loader walks the YAML tree against the
// message descriptor, so a field added to config.proto is configurable without touching this
// code. An unknown key, a key set twice or a bad value is an InvalidArgumentError naming the key
// path, e.g. `config key "webhooks.endpoints[2].url": expected a string, got a list`.
// Pure functions, no global state: safe from any thread.
#ifndef HOOKSTREAM_SERVER_COMMON_CONFIG_H_
#define HOOKSTREAM_SERVER_COMMON_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "hookstream/v1/config.pb.h"

namespace hookstream {

// Parses a config document. Empty text, or text with only comments, gives a default Config.
absl::StatusOr<v1::Config> ParseConfig(absl::string_view text);

// Reads and parses the file at `path`. Every error names the path; a missing file is NotFound.
absl::StatusOr<v1::Config> LoadConfigFile(const std::string& path);

// Parses `text` into `*msg`, for any message type (ParseConfig is this with a v1::Config; tests
// use their own schema). Fields the text sets overwrite those already in `*msg`; repeated and map
// fields are appended to, as with MergeFrom, so a caller may fill in defaults first. A key whose
// value is empty or null ("limits:", "data_dir: ~") leaves its field untouched. On error `*msg` is
// left unchanged.
//
// Values by field type: integers are YAML integers (decimal, or 0x hex), range-checked for the
// field's type; floating point fields take finite numbers; bools take true/false (and yes/no,
// on/off); enums take a value name (case-sensitive); google.protobuf.Duration fields take a string
// for ParseConfigDuration; repeated fields take a list; maps and other messages take a mapping.
absl::Status ParseConfigInto(absl::string_view text, google::protobuf::Message* msg);

// A non-negative, finite duration with a unit: "20ms", "5s", "0.5s", "2m", "1h", "1h30m", "250us";
// "0" alone needs none. Units are those of absl::ParseDuration (ns, us, ms, s, m, h).
absl::StatusOr<absl::Duration> ParseConfigDuration(absl::string_view s);

// A google.protobuf.Duration field of the config as an absl::Duration.
absl::Duration ConfigDuration(const google::protobuf::Duration& d);

// INVALID_ARGUMENT `config key "<key>": <why>`: the one spelling of a bad value in the config,
// for the range checks done after parsing.
absl::Status BadConfigValue(absl::string_view key, absl::string_view why);

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_COMMON_CONFIG_H_
