#include "server/storage/event_codec.h"

#include <cstring>

#include "absl/base/internal/endian.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace hookstream::storage {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

std::string EncodeBigEndian64(uint64_t v) {
  std::string out(8, '\0');
  absl::big_endian::Store64(out.data(), v);
  return out;
}

bool DecodeBigEndian64(absl::string_view bytes, uint64_t* v) {
  if (bytes.size() != 8) return false;
  *v = absl::big_endian::Load64(bytes.data());
  return true;
}

// Field numbers of hookstream.v1.Event.
constexpr int kStreamField = 2;
constexpr int kTypeField = 3;
constexpr int kSeqField = 10;
constexpr int kPositionField = 11;
constexpr int kIngestTimeField = 12;

bool ScanRoutingFields(absl::string_view event_bytes, RoutingFields* out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(event_bytes.data()),
                                            static_cast<int>(event_bytes.size()));
  *out = RoutingFields();
  bool have_stream = false;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;  // End of message, or malformed: ConsumedEntireMessage tells.
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == kSeqField && WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      if (!in.ReadVarint64(&out->seq)) return false;
      continue;
    }
    if ((field == kStreamField || field == kTypeField) &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t len;
      if (!in.ReadVarint32(&len)) return false;
      const int offset = in.CurrentPosition();
      if (static_cast<size_t>(offset) + len > event_bytes.size()) return false;
      absl::string_view value = event_bytes.substr(offset, len);
      if (!in.Skip(static_cast<int>(len))) return false;
      if (field == kStreamField) {
        out->stream = value;
        have_stream = true;
      } else {
        out->type = value;
      }
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return false;
  }
  // Every stored event has a non-empty stream and a seq; proto3 omits empty strings, so a
  // missing type is an empty type.
  return have_stream && out->seq != 0 && in.ConsumedEntireMessage();
}

void AppendAssignedFields(uint64_t seq, uint64_t position, absl::Time ingest_time,
                          std::string* out) {
  const int64_t nanos_total = absl::ToUnixNanos(ingest_time);
  int64_t seconds = nanos_total / 1'000'000'000;
  int32_t nanos = static_cast<int32_t>(nanos_total % 1'000'000'000);
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  // Written straight into a stack buffer (this runs for every event on the appender thread):
  // seq, position, then ingest_time as a google.protobuf.Timestamp {seconds = 1, nanos = 2},
  // each field omitted when zero as proto3 does. Negative int64/int32 varints take 10 bytes.
  uint8_t ts[2 * (1 + 10)];
  uint8_t* t = ts;
  if (seconds != 0) {
    t = CodedOutputStream::WriteTagToArray(WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT), t);
    t = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(seconds), t);
  }
  if (nanos != 0) {
    t = CodedOutputStream::WriteTagToArray(WireFormatLite::MakeTag(2, WireFormatLite::WIRETYPE_VARINT), t);
    t = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(static_cast<int64_t>(nanos)), t);
  }
  uint8_t buf[3 * (2 + 10) + sizeof(ts)];
  uint8_t* p = buf;
  p = CodedOutputStream::WriteTagToArray(WireFormatLite::MakeTag(kSeqField, WireFormatLite::WIRETYPE_VARINT), p);
  p = CodedOutputStream::WriteVarint64ToArray(seq, p);
  p = CodedOutputStream::WriteTagToArray(WireFormatLite::MakeTag(kPositionField, WireFormatLite::WIRETYPE_VARINT), p);
  p = CodedOutputStream::WriteVarint64ToArray(position, p);
  p = CodedOutputStream::WriteTagToArray(
      WireFormatLite::MakeTag(kIngestTimeField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), p);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(t - ts), p);
  std::memcpy(p, ts, t - ts);
  p += t - ts;
  out->append(reinterpret_cast<const char*>(buf), p - buf);
}

}  // namespace hookstream::storage
