// Small helpers over the NATS C client (libnats 3.4): owning pointers for its objects and the
// mapping of its errors onto absl::Status (UNAVAILABLE: retry; NOT_FOUND: no such message).
// Stateless; safe from any thread.
#ifndef HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NATS_UTIL_H_
#define HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NATS_UTIL_H_

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hookstream::storage::jetstream {

struct NatsDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
  void operator()(natsConnection* c) const {
    natsConnection_Close(c);
    natsConnection_Destroy(c);
  }
  void operator()(jsCtx* j) const { jsCtx_Destroy(j); }
  void operator()(natsSubscription* s) const {
    natsSubscription_Unsubscribe(s);  // Deletes the ephemeral consumer the library created.
    natsSubscription_Destroy(s);
  }
  void operator()(jsStreamInfo* i) const { jsStreamInfo_Destroy(i); }
  void operator()(jsPubAck* a) const { jsPubAck_Destroy(a); }
  void operator()(kvStore* k) const { kvStore_Destroy(k); }
  void operator()(kvEntry* e) const { kvEntry_Destroy(e); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// Non-OK status for a failed NATS call: NOT_FOUND for NATS_NOT_FOUND (and JetStream's "no
// message found"), UNAVAILABLE otherwise; the text names `what` and the server's reason.
absl::Status NatsStatus(natsStatus s, absl::string_view what,
                        jsErrCode code = static_cast<jsErrCode>(0));

// A stored message as JetStream returned it (direct get or consumer delivery).
struct RawMessage {
  uint64_t sequence = 0;   // JetStream stream sequence = hookstream position.
  int64_t time_nanos = 0;  // When JetStream stored it = hookstream ingest time.
  std::string subject;
  std::string data;
  uint64_t stream_seq = 0;  // The per-stream seq carried in the kSeqHeader header.
};

// The position JetStream names in a "wrong last sequence: N" refusal (error 10071); nullopt
// when `text` (jsPubAckErr::ErrText) is not such a refusal or carries no number.
std::optional<uint64_t> WrongLastSequenceOf(const char* text);

// Header carrying a message's per-stream seq, assigned by the publishing hookstream server.
inline constexpr char kSeqHeader[] = "Hs-Seq";

// Reads a message got from a direct get (sequence and time in its headers) or a consumer
// (sequence and time in its metadata). INVALID... never: a malformed message is DATA_LOSS.
absl::Status ParseMessage(natsMsg* msg, bool from_direct_get, RawMessage* out);

}  // namespace hookstream::storage::jetstream

#endif  // HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NATS_UTIL_H_
