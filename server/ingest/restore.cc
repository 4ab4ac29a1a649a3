#include "server/ingest/restore.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/logging.h"

namespace hookstream::ingest {
namespace {

constexpr absl::string_view kStatePrefix = "_zlm/state/";

absl::StatusOr<v1::Event> Decode(const storage::StoredEvent& e) {
  v1::Event ev;
  if (!ev.ParseFromString(e.bytes)) {
    return absl::DataLossError(
        absl::StrCat("zlm restore: event at position ", e.position.value(), " does not decode"));
  }
  return ev;
}

// The latest zlm.state event of every server.
absl::Status ReadSnapshots(const storage::Log& log, Restored* out,
                           std::map<std::string, Position>* snapshot_pos) {
  std::string after(kStatePrefix);
  while (true) {
    bool more = false;
    absl::StatusOr<std::vector<v1::StreamInfo>> page = log.ListStreams(
        after, 256, [](absl::string_view s) { return absl::StartsWith(s, kStatePrefix); }, &more);
    if (!page.ok()) return page.status();
    for (const v1::StreamInfo& info : *page) {
      after = info.stream();
      if (info.head_position() == 0) continue;
      storage::ReadLimits limits;
      limits.max_events = 1;
      const std::string name = info.stream();
      absl::StatusOr<storage::ReadChunk> chunk =
          log.Read(Position(info.head_position() - 1), limits,
                   [&](absl::string_view stream, absl::string_view) { return stream == name; });
      if (!chunk.ok()) return chunk.status();
      if (chunk->events.empty()) continue;  // Trimmed meanwhile.
      absl::StatusOr<v1::Event> ev = Decode(chunk->events.front());
      if (!ev.ok()) return ev.status();
      absl::StatusOr<ServerState> state = DecodeSnapshot(ev->data());
      if (!state.ok()) {
        HS_EVENT(WARNING, "zlm.restore.snapshot_ignored")
            .Field("stream", name)
            .Field("error", state.status().message());
        continue;
      }
      RestoredServer& r = out->servers[state->server_id];
      r.state = *std::move(state);
      r.snapshot_time = absl::FromUnixSeconds(ev->ingest_time().seconds()) +
                        absl::Nanoseconds(ev->ingest_time().nanos());
      (*snapshot_pos)[r.state.server_id] = chunk->events.front().position;
    }
    if (!more) break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RestoreFromLog(const storage::Log& log, const ZlmOptions& options, absl::Time now,
                            Restored* out) {
  std::map<std::string, Position> snapshot_pos;
  if (absl::Status s = ReadSnapshots(log, out, &snapshot_pos); !s.ok()) return s;

  const absl::Duration tail =
      std::max(options.dedup_window, options.snapshot_interval) + absl::Seconds(5);
  absl::StatusOr<Position> from = log.FindByTime(now - tail);
  if (!from.ok()) return from.status();
  const Position head = log.head();
  Position after = from->value() == 0 ? Position(0) : from->prev();
  storage::ReadLimits limits;
  limits.max_events = 4096;
  limits.max_bytes = 16 << 20;
  while (after < head) {
    absl::StatusOr<storage::ReadChunk> chunk =
        log.Read(after, limits, [](absl::string_view, absl::string_view type) {
          return absl::StartsWith(type, "zlm.on_");
        });
    if (!chunk.ok()) return chunk.status();
    for (const storage::StoredEvent& stored : chunk->events) {
      absl::StatusOr<v1::Event> ev = Decode(stored);
      if (!ev.ok()) return ev.status();
      auto it = out->servers.find(ev->source());
      if (it == out->servers.end()) continue;
      ServerState& state = it->second.state;
      const auto& attrs = ev->attributes();
      uint64_t boot = 0;
      auto b = attrs.find(kAttrBoot);
      if (b == attrs.end() || !absl::SimpleAtoi(b->second, &boot) || boot != state.boot) continue;
      auto idx = attrs.find(kAttrHookIndex);
      uint64_t index = 0;
      if (stored.position > snapshot_pos[ev->source()] && idx != attrs.end() &&
          absl::SimpleAtoi(idx->second, &index) &&
          (!state.has_last_index || index > state.last_index)) {
        state.has_last_index = true;
        state.last_index = index;
      }
      const absl::Time ingested = absl::FromUnixSeconds(ev->ingest_time().seconds()) +
                                  absl::Nanoseconds(ev->ingest_time().nanos());
      const size_t dot = ev->id().find('.');
      if (ingested + options.dedup_window > now && dot != std::string::npos) {
        out->dedup.push_back(RestoredDedup{
            ev->source(), absl::StrCat(boot, ":", ev->id().substr(0, dot)), ingested});
      }
    }
    if (chunk->scanned_through <= after) break;  // Nothing more to scan.
    after = chunk->scanned_through;
  }
  return absl::OkStatus();
}

}  // namespace hookstream::ingest
