#include "server/subscription/wire.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace hookstream::subscription {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// Field numbers (see event_stream.proto).
constexpr int kResponseEventsField = 2;    // SubscribeResponse.events
constexpr int kBatchEventsField = 1;       // EventBatch.events
constexpr int kDeliveredEventField = 1;    // DeliveredEvent.event
constexpr int kDeliveredTokenField = 2;    // DeliveredEvent.resume_token

uint32_t LengthDelimitedTag(int field) {
  return WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}

// Appends tag + varint length header of a length-delimited field.
void AppendHeader(int field, size_t len, std::string* out) {
  uint8_t buf[16];
  uint8_t* p = CodedOutputStream::WriteVarint32ToArray(LengthDelimitedTag(field), buf);
  p = CodedOutputStream::WriteVarint64ToArray(len, p);
  out->append(reinterpret_cast<const char*>(buf), p - buf);
}

size_t HeaderSize(int field, size_t len) {
  return CodedOutputStream::VarintSize32(LengthDelimitedTag(field)) +
         CodedOutputStream::VarintSize64(len);
}

}  // namespace

LiveEventPtr ToLiveEvent(storage::StoredEvent& stored, const TokenCodec& tokens) {
  auto ev = std::make_shared<LiveEvent>();
  ev->position = stored.position;
  ev->seq = stored.seq;
  ev->entry = EncodeBatchEntry(stored.bytes, tokens.Encode(stored.position));
  ev->stream = std::move(stored.stream);
  ev->type = std::move(stored.type);
  return ev;
}

std::string EncodeBatchEntry(absl::string_view event_bytes, absl::string_view token) {
  const size_t body = HeaderSize(kDeliveredEventField, event_bytes.size()) + event_bytes.size() +
                      HeaderSize(kDeliveredTokenField, token.size()) + token.size();
  std::string out;
  out.reserve(HeaderSize(kBatchEventsField, body) + body);
  AppendHeader(kBatchEventsField, body, &out);
  AppendHeader(kDeliveredEventField, event_bytes.size(), &out);
  out.append(event_bytes.data(), event_bytes.size());
  AppendHeader(kDeliveredTokenField, token.size(), &out);
  out.append(token.data(), token.size());
  return out;
}

std::string EncodeEventsMessage(absl::Span<const LiveEventPtr> events) {
  size_t batch = 0;
  for (const LiveEventPtr& e : events) batch += e->entry.size();
  std::string out;
  out.reserve(HeaderSize(kResponseEventsField, batch) + batch);
  AppendHeader(kResponseEventsField, batch, &out);
  for (const LiveEventPtr& e : events) out.append(e->entry);
  return out;
}

std::string EncodeControlMessage(const v1::SubscribeResponse& message) {
  return message.SerializeAsString();
}

}  // namespace hookstream::subscription
