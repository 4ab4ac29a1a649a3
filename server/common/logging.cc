#include "server/common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/common/names.h"

namespace hookstream::logging {
namespace {

std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
std::atomic<int> format{static_cast<int>(Format::kKeyValue)};

absl::Mutex sink_mu(absl::kConstInit);
std::function<void(absl::string_view)>* sink ABSL_GUARDED_BY(sink_mu) = nullptr;
std::atomic<bool> has_sink{false};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kFatal:
      return "fatal";
  }
  return "?";
}

Format CurrentFormat() { return static_cast<Format>(format.load(std::memory_order_relaxed)); }

// logfmt leaves a value bare when it has nothing that would split or confuse the line.
bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (unsigned char c : value) {
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f) return true;
  }
  return false;
}

// Quoted and escaped: the value can never end the line or the field early. Bytes that are not
// valid UTF-8 are escaped one by one (\xNN in key=value, \u00NN in JSON) so JSON lines stay valid.
void AppendQuoted(Format f, absl::string_view value, std::string* out) {
  const bool utf8 = IsValidUtf8(value);
  out->push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), f == Format::kJson ? "\\u%04x" : "\\x%02x", c);
      out->append(buf);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void AppendKey(Format f, absl::string_view key, std::string* out) {
  if (f == Format::kJson) {
    out->push_back(',');
    AppendQuoted(f, key, out);
    out->push_back(':');
  } else {
    out->push_back(' ');
    out->append(key.data(), key.size());
    out->push_back('=');
  }
}

void Write(const std::string& line) {
  if (has_sink.load(std::memory_order_acquire)) {
    absl::MutexLock l(&sink_mu);
    if (sink != nullptr) {
      (*sink)(absl::string_view(line).substr(0, line.size() - 1));
      return;
    }
  }
  // One write per line so concurrent lines do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

void SetMinLevel(Level level) { min_level.store(static_cast<int>(level)); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

void SetFormat(Format f) { format.store(static_cast<int>(f)); }

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return Level::kDebug;
  if (n == "info") return Level::kInfo;
  if (n == "warn" || n == "warning") return Level::kWarning;
  if (n == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log level \"", name, "\": expected debug, info, warn or error"));
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "kv") return Format::kKeyValue;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format \"", name, "\": expected kv or json"));
}

void SetSinkForTest(std::function<void(absl::string_view)> new_sink) {
  absl::MutexLock l(&sink_mu);
  delete sink;
  sink = new_sink ? new std::function<void(absl::string_view)>(std::move(new_sink)) : nullptr;
  has_sink.store(sink != nullptr, std::memory_order_release);
}

std::string QuoteForTest(Format f, absl::string_view value) {
  std::string out;
  if (f == Format::kKeyValue && !NeedsQuotes(value)) return std::string(value);
  AppendQuoted(f, value, &out);
  return out;
}

Event::Event(Level level, absl::string_view name) : level_(level) {
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  if (CurrentFormat() == Format::kJson) {
    line_ = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", LevelName(level), "\"");
    AppendKey(Format::kJson, "event", &line_);
    AppendQuoted(Format::kJson, name, &line_);
  } else {
    line_ = absl::StrCat("ts=", ts, " level=", LevelName(level), " event=");
    line_.append(QuoteForTest(Format::kKeyValue, name));
  }
}

Event::~Event() {
  if (CurrentFormat() == Format::kJson) line_.push_back('}');
  line_.push_back('\n');
  Write(line_);
  if (level_ == Level::kFatal) std::abort();
}

Event& Event::Field(absl::string_view key, absl::string_view value) {
  const Format f = CurrentFormat();
  AppendKey(f, key, &line_);
  if (f == Format::kKeyValue && !NeedsQuotes(value)) {
    line_.append(value.data(), value.size());
  } else {
    AppendQuoted(f, value, &line_);
  }
  return *this;
}

Event& Event::Raw(absl::string_view key, absl::string_view text) {
  AppendKey(CurrentFormat(), key, &line_);
  line_.append(text.data(), text.size());
  return *this;
}

Event& Event::Field(absl::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}
Event& Event::Field(absl::string_view key, double value) {
  if (!std::isfinite(value)) return Field(key, absl::StrCat(value));  // JSON has no inf/nan.
  return Raw(key, absl::StrCat(value));
}
Event& Event::Int(absl::string_view key, int64_t value) { return Raw(key, absl::StrCat(value)); }
Event& Event::Uint(absl::string_view key, uint64_t value) {
  return Raw(key, absl::StrCat(value));
}
Event& Event::Field(absl::string_view key, absl::Duration value) {
  return Field(key, absl::FormatDuration(value));
}
Event& Event::Field(absl::string_view key, const absl::Status& status) {
  Field(absl::StrCat(key, "_code"), absl::StatusCodeToString(status.code()));
  return Field(key, status.message());
}

}  // namespace hookstream::logging
