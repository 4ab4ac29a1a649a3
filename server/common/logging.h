// Structured logs: one line per event worth logging, to stderr, with a timestamp, a level, an
// event name and key/value fields:
//
//   ts=2026-11-25T21:00:00.123Z level=warn event=zlm.hook.rejected status=401 reason="wrong token"
//   {"ts":"2026-11-25T21:00:00.123Z","level":"warn","event":"zlm.hook.rejected","status":401,...}
//
// key=value (logfmt) is the default; JSON is selectable (SetFormat). Values that need it are
// quoted and escaped, so a line is always one line and parses back. Event names are
// "<component>.<what happened>", fixed strings; fields carry the variable parts.
//
//   HS_EVENT(WARNING, "zlm.hook.rejected").Field("status", 401).Field("reason", message);
//
// Secrets (bearer tokens, ZLMediaKit per-server tokens, whsec_ secrets, token keys) are never
// passed to the logger; request paths are logged without their query string. Tests check a run's
// output for configured secrets.
//
// Abseil 20220623 has no absl/log, hence this. Thread-safe: each line is one write(2), so
// concurrent lines do not interleave. HS_EVENT(FATAL, ...) aborts after writing.
#ifndef HOOKSTREAM_SERVER_COMMON_LOGGING_H_
#define HOOKSTREAM_SERVER_COMMON_LOGGING_H_

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hookstream::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };
enum class Format { kKeyValue, kJson };

// Records below this level are dropped. Default kInfo.
void SetMinLevel(Level level);
bool Enabled(Level level);
void SetFormat(Format format);

// "debug" | "info" | "warn" | "error" (the names lines carry); "kv" | "json".
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::StatusOr<Format> ParseFormat(absl::string_view name);

// Tests: while set, lines go to `sink` (without the trailing newline) instead of stderr.
// Passing nullptr restores stderr.
void SetSinkForTest(std::function<void(absl::string_view line)> sink);

class Event {
 public:
  Event(Level level, absl::string_view name);
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();  // Writes the line.

  Event& Field(absl::string_view key, absl::string_view value);
  Event& Field(absl::string_view key, const std::string& value) {
    return Field(key, absl::string_view(value));
  }
  Event& Field(absl::string_view key, const char* value) {
    return Field(key, absl::string_view(value));
  }
  Event& Field(absl::string_view key, bool value);
  Event& Field(absl::string_view key, double value);
  // Every integer type (sizes, counts, positions' value()).
  template <typename T, typename std::enable_if_t<std::is_integral_v<T> &&
                                                      !std::is_same_v<T, bool>,
                                                  int> = 0>
  Event& Field(absl::string_view key, T value) {
    if constexpr (std::is_signed_v<T>) return Int(key, static_cast<int64_t>(value));
    return Uint(key, static_cast<uint64_t>(value));
  }
  // A duration as absl formats it ("1.5s"); a status as its code and message.
  Event& Field(absl::string_view key, absl::Duration value);
  Event& Field(absl::string_view key, const absl::Status& status);

 private:
  Event& Int(absl::string_view key, int64_t value);
  Event& Uint(absl::string_view key, uint64_t value);
  // A number or bool, written unquoted in both formats.
  Event& Raw(absl::string_view key, absl::string_view text);

  Level level_;
  std::string line_;
};

// The quoting of one value, for tests: key=value quotes when needed, JSON always.
std::string QuoteForTest(Format format, absl::string_view value);

}  // namespace hookstream::logging

#define HS_LOG_LEVEL_DEBUG ::hookstream::logging::Level::kDebug
#define HS_LOG_LEVEL_INFO ::hookstream::logging::Level::kInfo
#define HS_LOG_LEVEL_WARNING ::hookstream::logging::Level::kWarning
#define HS_LOG_LEVEL_ERROR ::hookstream::logging::Level::kError
#define HS_LOG_LEVEL_FATAL ::hookstream::logging::Level::kFatal

// HS_EVENT(WARNING, "x.y").Field(...)...; fields are not evaluated when the level is off.
#define HS_EVENT(level, name)                                 \
  if (!::hookstream::logging::Enabled(HS_LOG_LEVEL_##level)) \
    ;                                                         \
  else                                                        \
    ::hookstream::logging::Event(HS_LOG_LEVEL_##level, name)

#endif  // HOOKSTREAM_SERVER_COMMON_LOGGING_H_
