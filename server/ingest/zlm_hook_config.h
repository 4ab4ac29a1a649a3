// The [hook] section an operator pastes into ZLMediaKit's config.ini to point every hook at
// hookstream (`hookstreamd --print_zlm_config`, server/ingest/README.md). Pure function.
#ifndef HOOKSTREAM_SERVER_INGEST_ZLM_HOOK_CONFIG_H_
#define HOOKSTREAM_SERVER_INGEST_ZLM_HOOK_CONFIG_H_

#include <string>

#include "absl/strings/string_view.h"

namespace hookstream::ingest {

// `http_listen` is hookstream's host:port as ZLMediaKit reaches it; `token` is appended as
// ?token= to every URL when not empty.
std::string ZlmHookConfigBlock(absl::string_view http_listen, absl::string_view token);

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_ZLM_HOOK_CONFIG_H_
