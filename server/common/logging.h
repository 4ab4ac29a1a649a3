// Minimal leveled logging to stderr, one line per record:
//   2026-11-25T18:58:29.123456Z INFO  embedded_log.cc:123] message
// Abseil 20220623 has no absl/log, hence this. Thread-safe: each record is one write(2).
// HS_LOG(FATAL) aborts after writing.
#ifndef HOOKSTREAM_SERVER_COMMON_LOGGING_H_
#define HOOKSTREAM_SERVER_COMMON_LOGGING_H_

#include <sstream>

namespace hookstream::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Records below this level are dropped. Default kInfo.
void SetMinLevel(Level level);
bool Enabled(Level level);

class Record {
 public:
  Record(Level level, const char* file, int line);
  ~Record();
  std::ostream& stream() { return out_; }

 private:
  Level level_;
  std::ostringstream out_;
};

}  // namespace hookstream::logging

#define HS_LOG_LEVEL_DEBUG ::hookstream::logging::Level::kDebug
#define HS_LOG_LEVEL_INFO ::hookstream::logging::Level::kInfo
#define HS_LOG_LEVEL_WARNING ::hookstream::logging::Level::kWarning
#define HS_LOG_LEVEL_ERROR ::hookstream::logging::Level::kError
#define HS_LOG_LEVEL_FATAL ::hookstream::logging::Level::kFatal

#define HS_LOG(level)                                         \
  if (!::hookstream::logging::Enabled(HS_LOG_LEVEL_##level)) \
    ;                                                         \
  else                                                        \
    ::hookstream::logging::Record(HS_LOG_LEVEL_##level, __FILE__, __LINE__).stream()

#endif  // HOOKSTREAM_SERVER_COMMON_LOGGING_H_
