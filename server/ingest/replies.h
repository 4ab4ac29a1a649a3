// The answers hookstream gives ZLMediaKit, per hook and policy (DESIGN.md §6): always HTTP 200
// with an integer `code` (ZLMediaKit treats any other status as a failure). Pure functions.
#ifndef HOOKSTREAM_SERVER_INGEST_REPLIES_H_
#define HOOKSTREAM_SERVER_INGEST_REPLIES_H_

#include <string>

#include "server/ingest/hook_body.h"
#include "server/ingest/zlm_options.h"

namespace hookstream::ingest {

struct HookReplies {
  // Once the event is durable (or was already: a retry).
  std::string stored;
  // When the log failed or did not answer within zlm.storage_timeout: for blocking hooks what
  // zlm.policy.on_storage_failure says; for the others code -1, so ZLMediaKit retries.
  std::string storage_failed;
};

HookReplies RepliesFor(const ParsedHook& hook, const ZlmOptions& options);

}  // namespace hookstream::ingest

#endif  // HOOKSTREAM_SERVER_INGEST_REPLIES_H_
