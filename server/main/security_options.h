// The config keys of access control, TLS and the connection/rate limits (`auth`, `tls`,
// `limits.max_connections` and friends) turned into ServerOptions. Checks name the key.
// Pure function; called by ServerOptionsFromConfig.
#ifndef HOOKSTREAM_SERVER_MAIN_SECURITY_OPTIONS_H_
#define HOOKSTREAM_SERVER_MAIN_SECURITY_OPTIONS_H_

#include "absl/status/status.h"
#include "hookstream/v1/config.pb.h"
#include "server/main/server.h"

namespace hookstream {

absl::Status ApplySecurityConfig(const v1::Config& config, ServerOptions* options);

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_SECURITY_OPTIONS_H_
