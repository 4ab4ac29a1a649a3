// The config loader (server/common/config.*) on arbitrary text: a config is either loaded or
// refused with INVALID_ARGUMENT ("config: ..." / "config key ..."); never a crash, a hang or
// another error. (A JSON round trip of what loads is not checked: YAML limits implicit keys in
// flow style to 1024 characters, so a longer map key loads as YAML but not as JSON.)
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/common/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<hookstream::v1::Config> config = hookstream::ParseConfig(text);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument) << config.status();
    FUZZ_CHECK(absl::StrContains(config.status().message(), "config")) << config.status();
  }
  return 0;
}
