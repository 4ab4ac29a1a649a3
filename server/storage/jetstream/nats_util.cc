#include "server/storage/jetstream/nats_util.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hookstream::storage::jetstream {

absl::Status NatsStatus(natsStatus s, absl::string_view what, jsErrCode code) {
  if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) {
    return absl::NotFoundError(absl::StrCat(what, ": not found"));
  }
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail != nullptr && *detail != '\0') {
    text = detail;
  }
  if (code != 0) absl::StrAppend(&text, " (JetStream error ", static_cast<int>(code), ")");
  return absl::UnavailableError(absl::StrCat(what, ": ", text));
}

std::optional<uint64_t> WrongLastSequenceOf(const char* text) {
  // nats-server's JSStreamWrongLastSequenceErrF: "wrong last sequence: {seq}".
  constexpr absl::string_view kPrefix = "wrong last sequence: ";
  if (text == nullptr) return std::nullopt;
  absl::string_view t(text);
  const size_t at = t.find(kPrefix);
  if (at == absl::string_view::npos) return std::nullopt;
  t.remove_prefix(at + kPrefix.size());
  size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
  uint64_t n = 0;
  if (digits == 0 || !absl::SimpleAtoi(t.substr(0, digits), &n)) return std::nullopt;
  return n;
}

namespace {

bool Header(natsMsg* msg, const char* key, absl::string_view* out) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(msg, key, &v) != NATS_OK || v == nullptr) return false;
  *out = v;
  return true;
}

}  // namespace

absl::Status ParseMessage(natsMsg* msg, bool from_direct_get, RawMessage* out) {
  absl::string_view v;
  if (from_direct_get) {
    out->sequence = natsMsg_GetSequence(msg);
    out->time_nanos = natsMsg_GetTime(msg);
    if (out->sequence == 0 && Header(msg, "Nats-Sequence", &v)) {
      if (!absl::SimpleAtoi(v, &out->sequence)) out->sequence = 0;
    }
    if (out->time_nanos == 0 && Header(msg, "Nats-Time-Stamp", &v)) {
      absl::Time t;
      std::string err;
      if (absl::ParseTime(absl::RFC3339_full, std::string(v), &t, &err)) {
        out->time_nanos = absl::ToUnixNanos(t);
      }
    }
    if (Header(msg, "Nats-Subject", &v)) {
      out->subject = std::string(v);
    } else {
      out->subject = natsMsg_GetSubject(msg);
    }
  } else {
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK || meta == nullptr) {
      return absl::DataLossError("a JetStream delivery carries no metadata");
    }
    out->sequence = meta->Sequence.Stream;
    out->time_nanos = meta->Timestamp;
    jsMsgMetaData_Destroy(meta);
    out->subject = natsMsg_GetSubject(msg);
  }
  if (out->sequence == 0) return absl::DataLossError("a JetStream message has no sequence");
  if (!Header(msg, kSeqHeader, &v) || !absl::SimpleAtoi(v, &out->stream_seq) ||
      out->stream_seq == 0) {
    return absl::DataLossError(absl::StrCat("the message at position ", out->sequence,
                                            " has no valid ", kSeqHeader,
                                            " header (not written by hookstream?)"));
  }
  const char* data = natsMsg_GetData(msg);
  out->data.assign(data == nullptr ? "" : data, natsMsg_GetDataLength(msg));
  return absl::OkStatus();
}

}  // namespace hookstream::storage::jetstream
