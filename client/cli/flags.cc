#include "flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "hookstream server, host:port");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "Deadline of unary calls, and how long publish keeps retrying");
ABSL_FLAG(std::string, auth_token, "", "Sent as 'authorization: Bearer <token>' metadata when set");
ABSL_FLAG(bool, tls, false, "Connect with TLS, trusting the system's CA certificates");
ABSL_FLAG(std::string, tls_ca, "",
          "Connect with TLS, trusting the CA certificates in this PEM file (implies --tls)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain for servers that require one (mTLS; implies --tls)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, stream, "",
          "publish: the event's stream (one event from flags); stream get: the stream");
ABSL_FLAG(std::string, type, "", "publish: the event's type");
ABSL_FLAG(std::string, data, "", "publish: the event's data (bytes as given)");
ABSL_FLAG(std::string, id, "", "publish: the event's id (default: a random 128-bit hex id)");
ABSL_FLAG(std::string, source, "hookstream-cli",
          "publish: the event's source (also for JSON lines without one)");
ABSL_FLAG(std::string, content_type, "",
          "publish: the event's content type (default: application/json when --data is valid "
          "JSON, else text/plain; charset=utf-8)");
ABSL_FLAG(std::vector<std::string>, attributes, {}, "publish: attributes, key=value,...");
ABSL_FLAG(int64_t, expected_seq, -1,
          "publish: the stream's current head seq must be this (0: the stream must not exist); "
          "-1: no check");
ABSL_FLAG(std::string, from, "now",
          "subscribe: beginning | now | last | <resume token> | <RFC 3339 time>");
ABSL_FLAG(std::vector<std::string>, streams, {}, "subscribe: stream patterns, comma-separated");
ABSL_FLAG(std::vector<std::string>, types, {}, "subscribe: event types, comma-separated");
ABSL_FLAG(std::string, token_file, "",
          "subscribe: resume from the token in this file when it exists, and store the last "
          "token in it after each event");
ABSL_FLAG(int64_t, count, 0, "subscribe: exit after this many events (0: never)");
ABSL_FLAG(absl::Duration, heartbeat, absl::Seconds(15),
          "subscribe: heartbeat interval asked of the server; the connection is replaced "
          "after 3 missed");
ABSL_FLAG(bool, quiet, false, "subscribe: no control messages on stderr");
ABSL_FLAG(std::string, pattern, "", "stream list: a stream pattern (default: all)");
ABSL_FLAG(bool, all, false, "webhooks replay: replay every dead letter of the endpoint");
