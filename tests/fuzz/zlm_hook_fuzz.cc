// ZLMediaKit hook bodies (server/ingest/hook_body.*) on arbitrary input. The input is
// "<hook name>\n<body>" (seeds: the captured fixtures). A body is parsed or refused with
// INVALID_ARGUMENT; what is parsed has a stream key that is a valid stream name, a stored body
// that is JSON, and no secret left in it when redaction says so. Redaction of single values is
// run on the body text too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/common/names.h"
#include "server/ingest/hook_body.h"
#include "server/ingest/hooks.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hookstream::ingest;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl == absl::string_view::npos) return 0;
  const HookSpec* spec = FindHook(input.substr(0, nl));
  if (spec == nullptr) spec = &AllHooks()[static_cast<unsigned char>(input[0]) % AllHooks().size()];
  const absl::string_view body = input.substr(nl + 1);

  const std::string vhost_header = "__defaultVhost__";
  for (const std::string* header : {static_cast<const std::string*>(nullptr), &vhost_header}) {
    absl::StatusOr<ParsedHook> hook = ParseHookBody(*spec, body, header);
    if (!hook.ok()) {
      FUZZ_CHECK(hook.status().code() == absl::StatusCode::kInvalidArgument) << hook.status();
      continue;
    }
    FUZZ_CHECK(hookstream::ValidateStreamName(hook->stream, "stream").ok()) << hook->stream;
    FUZZ_CHECK(hook->spec == spec);
    FUZZ_CHECK(!hook->server_id.empty());
    FUZZ_CHECK(hook->content_hash.size() == 32) << hook->content_hash;
    FUZZ_CHECK(nlohmann::json::accept(hook->data)) << "stored body is not JSON: " << hook->data;
    // Parsing the stored (redacted) body again gives the same key and nothing more to redact.
    absl::StatusOr<ParsedHook> again = ParseHookBody(*spec, hook->data, header);
    FUZZ_CHECK(again.ok()) << again.status() << "\n" << hook->data;
    FUZZ_CHECK(again->stream == hook->stream);
    FUZZ_CHECK(again->data == hook->data) << "redaction is not idempotent:\n"
                                          << hook->data << "\n"
                                          << again->data;
  }
  std::string value(body);
  RedactString("params", &value);
  std::string escaped = EscapeToken(body);
  FUZZ_CHECK(escaped.find('/') == std::string::npos);
  return 0;
}
