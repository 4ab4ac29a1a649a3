#include "server/ingest/zlm_hook_config.h"

#include "absl/strings/str_cat.h"
#include "server/ingest/hooks.h"

namespace hookstream::ingest {

std::string ZlmHookConfigBlock(absl::string_view http_listen, absl::string_view token) {
  std::string out = absl::StrCat(
      "[hook]\n"
      "; hookstream: every hook is stored durably, de-duplicated and ordered, then answered.\n"
      "enable=1\n"
      "; hookstream answers within zlm.storage_timeout (2s) plus zlm.reorder_window (20ms);\n"
      "; 5s leaves room without stalling players and publishers for ZLMediaKit's default 10s.\n"
      "timeoutSec=5\n"
      "; One retry, 1s later: a retry is recognised by its body (hook_index aside) and stores\n"
      "; nothing twice. It arrives at most timeoutSec + retry_delay = 6s after the first try,\n"
      "; inside zlm.dedup_window (10s).\n"
      "retry=1\n"
      "retry_delay=1.0\n"
      "; zlm.server_lost fires after 3 keepalive intervals without one (zlm.keepalive_timeout).\n"
      "alive_interval=10.0\n");
  const std::string base = absl::StrCat("http://", http_listen, "/index/hook/");
  const std::string query = token.empty() ? "" : absl::StrCat("?token=", token);
  for (const HookSpec& h : AllHooks()) {
    absl::StrAppend(&out, h.name, "=", base, h.name, query, "\n");
  }
  return out;
}

}  // namespace hookstream::ingest
