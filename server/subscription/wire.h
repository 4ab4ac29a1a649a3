// Builds SubscribeResponse messages in protobuf wire format directly, so that an event is
// serialized once (when committed, or when read from disk) and every subscriber's message is a
// concatenation of shared, already-encoded entries. The bytes are exactly what the generated
// hookstream.v1.SubscribeResponse would serialize to; tests parse them with it.
// Thread-safety: LiveEvent is immutable and shared between threads by shared_ptr.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_WIRE_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_WIRE_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/common/types.h"
#include "server/storage/log.h"
#include "server/subscription/token.h"

namespace hookstream::subscription {

// A committed event ready for delivery.
struct LiveEvent {
  Position position;
  Seq seq;
  std::string stream;
  std::string type;
  // One element of EventBatch.events (field tag, length, DeliveredEvent{event, resume_token}).
  std::string entry;
};
using LiveEventPtr = std::shared_ptr<const LiveEvent>;

// A committed event (from a commit, a disk read or a snapshot) ready for delivery: its entry
// is encoded once here, with its resume token. Moves the stream and type out of `stored`.
LiveEventPtr ToLiveEvent(storage::StoredEvent& stored, const TokenCodec& tokens);

// The EventBatch entry for a serialized hookstream.v1.Event and its resume token.
std::string EncodeBatchEntry(absl::string_view event_bytes, absl::string_view token);

// A SubscribeResponse{events: EventBatch{...}} from a run of entries.
std::string EncodeEventsMessage(absl::Span<const LiveEventPtr> events);

// A SubscribeResponse holding any of the control messages.
std::string EncodeControlMessage(const v1::SubscribeResponse& message);

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_WIRE_H_
