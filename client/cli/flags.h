// The CLI's flags (defined in flags.cc). Each command reads the ones it uses.
#ifndef HOOKSTREAM_CLIENT_CLI_FLAGS_H_
#define HOOKSTREAM_CLIENT_CLI_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(absl::Duration, timeout);
ABSL_DECLARE_FLAG(std::string, auth_token);
ABSL_DECLARE_FLAG(bool, tls);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, stream);
ABSL_DECLARE_FLAG(std::string, type);
ABSL_DECLARE_FLAG(std::string, data);
ABSL_DECLARE_FLAG(std::string, id);
ABSL_DECLARE_FLAG(std::string, source);
ABSL_DECLARE_FLAG(std::string, content_type);
ABSL_DECLARE_FLAG(std::vector<std::string>, attributes);
ABSL_DECLARE_FLAG(int64_t, expected_seq);
ABSL_DECLARE_FLAG(std::string, from);
ABSL_DECLARE_FLAG(std::vector<std::string>, streams);
ABSL_DECLARE_FLAG(std::vector<std::string>, types);
ABSL_DECLARE_FLAG(std::string, token_file);
ABSL_DECLARE_FLAG(int64_t, count);
ABSL_DECLARE_FLAG(absl::Duration, heartbeat);
ABSL_DECLARE_FLAG(bool, quiet);
ABSL_DECLARE_FLAG(std::string, pattern);
ABSL_DECLARE_FLAG(bool, all);

#endif  // HOOKSTREAM_CLIENT_CLI_FLAGS_H_
