#include "server/common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace hookstream::logging {
namespace {

std::atomic<int> min_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO ";
    case Level::kWarning:
      return "WARN ";
    case Level::kError:
      return "ERROR";
    case Level::kFatal:
      return "FATAL";
  }
  return "?";
}

}  // namespace

void SetMinLevel(Level level) { min_level.store(static_cast<int>(level)); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

Record::Record(Level level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  out_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()) << ' '
       << LevelName(level) << ' ' << (base != nullptr ? base + 1 : file) << ':' << line << "] ";
}

Record::~Record() {
  out_ << '\n';
  const std::string line = out_.str();
  // One write per record so concurrent records do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  if (level_ == Level::kFatal) std::abort();
}

}  // namespace hookstream::logging
