// The HTTP request one delivery attempt sends: URL, headers and body in the endpoint's format
// (CloudEvents structured or binary, or ZLMediaKit's own hook body), with the Standard Webhooks
// headers and hookstream's stream / seq / position headers. Pure functions.
#ifndef HOOKSTREAM_SERVER_WEBHOOK_REQUEST_H_
#define HOOKSTREAM_SERVER_WEBHOOK_REQUEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/webhook/endpoint_config.h"

namespace hookstream::webhook {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines.
  std::string body;
};

// The webhook-id of an event: stable across retries, restarts and replays, and across
// endpoints ("msg_<first 8 bytes of the log id in hex>_<position>").
std::string WebhookId(absl::string_view log_id, uint64_t position);

// The hook name a zlm-format request is sent for: the event's zlm.hook attribute (hooks
// ingested from ZLMediaKit), else its type without the "zlm." prefix (derived events such as
// zlm.stream_online).
std::string ZlmHookName(const v1::Event& event);

// Percent-encodes what an HTTP header value must not carry raw (CloudEvents HTTP binding rule:
// space, '"', '%' and everything outside printable ASCII).
std::string HeaderEncode(absl::string_view value);

// The request for `event` at attempt `attempt` (1-based), signed at `timestamp` (Unix seconds).
HttpRequest BuildRequest(const EndpointConfig& endpoint, const v1::Event& event,
                         absl::string_view webhook_id, int64_t timestamp, uint32_t attempt);

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_REQUEST_H_
