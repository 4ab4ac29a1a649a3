// Turns the config file (hookstream.v1.Config) into ServerOptions: defaults for what the file
// leaves out, range checks naming the key for what it sets. Pure function.
#ifndef HOOKSTREAM_SERVER_MAIN_OPTIONS_H_
#define HOOKSTREAM_SERVER_MAIN_OPTIONS_H_

#include "absl/status/statusor.h"
#include "hookstream/v1/config.pb.h"
#include "server/main/server.h"

namespace hookstream {

absl::StatusOr<ServerOptions> ServerOptionsFromConfig(const v1::Config& config);

}  // namespace hookstream

#endif  // HOOKSTREAM_SERVER_MAIN_OPTIONS_H_
