// Encoding helpers of the log's on-disk format: big-endian keys (so RocksDB's byte order is
// position order) and a cheap scan of a serialized hookstream.v1.Event for the fields readers
// filter on, without parsing the whole message. Pure functions: safe from any thread.
#ifndef HOOKSTREAM_SERVER_STORAGE_EVENT_CODEC_H_
#define HOOKSTREAM_SERVER_STORAGE_EVENT_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hookstream::storage {

std::string EncodeBigEndian64(uint64_t v);
// False when `bytes` is not exactly 8 bytes.
bool DecodeBigEndian64(absl::string_view bytes, uint64_t* v);

struct RoutingFields {
  absl::string_view stream;  // Views into the serialized event.
  absl::string_view type;
  uint64_t seq = 0;
};

// Extracts `stream`, `type` and `seq` from a serialized hookstream.v1.Event. False when the
// bytes are not a well-formed event (callers report DATA_LOSS: bytes from disk are never
// trusted).
bool ScanRoutingFields(absl::string_view event_bytes, RoutingFields* out);

// Appends the server-assigned fields of hookstream.v1.Event (seq, position, ingest_time) in wire
// format. hookstream.v1.EventInput shares field numbers 1-8 with Event, so a serialized input
// (without expected_seq) followed by these bytes is the serialized stored Event: the payload is
// copied once, not re-encoded.
void AppendAssignedFields(uint64_t seq, uint64_t position, absl::Time ingest_time,
                          std::string* out);

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_EVENT_CODEC_H_
