// How hookstream names map onto NATS names, for the JetStream backend. Pure functions: safe from
// any thread.
//
// Streams: a stream "a/b.c" is the subject "<prefix>.a.b%2Ec": each '/'-separated token becomes a
// subject token, every byte outside [A-Za-z0-9_-] escaped as %XX (uppercase hex). Escaping is
// total and injective, so every valid stream name (names.h: UTF-8, no control characters, no
// empty or wildcard tokens) round-trips, and no token can become a NATS wildcard or separator.
// Metadata keys (opaque bytes) become KV keys "m_<lowercase hex>", which preserve byte order and
// prefixes. De-duplication ids become the hex SHA-256 of (source, id) (header-safe, fixed size).
#ifndef HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NAMING_H_
#define HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NAMING_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace hookstream::storage::jetstream {

std::string StreamToSubject(absl::string_view prefix, absl::string_view stream);
// nullopt when `subject` is not "<prefix>.<escaped tokens>" as StreamToSubject writes it.
std::optional<std::string> SubjectToStream(absl::string_view prefix, absl::string_view subject);

std::string MetaKeyToKv(absl::string_view key);
std::optional<std::string> KvToMetaKey(absl::string_view kv_key);

// The Nats-Msg-Id of a producer-chosen (source, id) pair.
std::string DedupMsgId(absl::string_view source, absl::string_view id);

}  // namespace hookstream::storage::jetstream

#endif  // HOOKSTREAM_SERVER_STORAGE_JETSTREAM_NAMING_H_
