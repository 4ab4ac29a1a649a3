// The `storage` section of the config file: which log backend the server opens (embedded or
// JetStream) and the JetStream connection. Pure function.
#ifndef HOOKSTREAM_SERVER_MAIN_STORAGE_OPTIONS_H_
#define HOOKSTREAM_SERVER_MAIN_STORAGE_OPTIONS_H_

#include "absl/status/status.h"
#include "hookstream/v1/config.pb.h"
#include "server/main/server.h"

namespace hookstream {

// Sets options->jetstream for `storage.backend: jetstream`, from `storage`, `dedup` and
// `retention` (already read into options->log). INVALID_ARGUMENT naming the key on a bad value,
// or on storage keys given for the embedded backend.
absl::Status ApplyStorageConfig(const v1::Config& config, ServerOptions* options);

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_STORAGE_OPTIONS_H_
