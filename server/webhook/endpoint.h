// One webhook endpoint's delivery state: the window of events read from the log and not yet
// done, which of them may be sent now (ordering mode, max_in_flight, retry times), what a
// result does to them (retry with jitter, Retry-After, dead letter, hold, 410 disables), and the
// durable cursor that records what is done.
//
// The cursor is {through, done}: every matching event up to `through` is delivered or
// dead-lettered, and so are the positions in `done` after it (per_stream and unordered finish
// out of order). Restoring it resends exactly what was not finished, i.e. at most what was in
// flight when the server stopped.
//
// No I/O and no threads of its own: the shim's loop thread owns it and drives it.
#ifndef HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_H_
#define HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hookstream/internal/webhook.pb.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/common/types.h"
#include "server/storage/log.h"
#include "server/webhook/endpoint_config.h"

namespace hookstream::webhook {

// Readable copy of an endpoint's state and counters (admin API, metrics).
struct EndpointSnapshot {
  // kStandby: another server of a shared log (JetStream backend) delivers it.
  enum class State { kActive, kHolding, kDisabled, kStandby };
  std::string name;
  std::string url;
  State state = State::kActive;
  std::string holder;  // The server that delivers it (its lease holder).
  std::string disabled_reason;
  Position cursor;       // Durable cursor's `through`.
  uint64_t backlog = 0;  // Read and not done, plus log positions not yet read.
  uint64_t in_flight = 0;
  std::string last_error;
  absl::Time last_error_time = absl::InfinitePast();
  // Since start.
  uint64_t attempts = 0;
  uint64_t failures = 0;
  uint64_t delivered = 0;
  uint64_t dead_lettered = 0;
  // In the dead-letter list now.
  uint64_t dead_letters = 0;
};

struct AttemptResult {
  enum class Kind { kDelivered, kFailed, kGone };
  Kind kind = Kind::kFailed;
  // Wait at least this long before the next attempt (Retry-After of a 429 / 503).
  std::optional<absl::Duration> retry_after;
  std::string error;  // For kFailed / kGone.
};

struct EndpointTuning {
  // Events read from the log and not yet done, at most.
  size_t window_events = 4096;
  // Each retry delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter].
  double jitter = 0.2;
  // A cursor that moved only over events the filter skips is written at most this often.
  absl::Duration idle_cursor_interval = absl::Seconds(1);
};

// Metadata keys of the endpoint named `name`: "webhook/<name>/", under which its cursor
// ("cursor"), lease ("lease") and dead letters ("dead/<position>") are kept.
std::string EndpointKeyPrefix(absl::string_view name);
std::string DeadLetterKey(absl::string_view key_prefix, Position p);

class Endpoint {
 public:
  struct Item {
    Position position;
    std::shared_ptr<const v1::Event> event;
    std::string webhook_id;
    uint32_t attempts = 0;  // Attempts started.
    bool in_flight = false;
    bool replay = false;  // A dead letter being replayed.
    bool holding = false;
    absl::Time due;
  };

  Endpoint(EndpointConfig config, std::string log_id, EndpointTuning tuning);

  // `cursor`: the stored cursor, or nullopt for a new endpoint, which starts after `head`.
  // `dead_letters`: the size of its dead-letter list.
  void Restore(const std::optional<internal::WebhookCursor>& cursor, Position head,
               uint64_t dead_letters);

  const EndpointConfig& config() const { return config_; }
  const std::string& key_prefix() const { return key_prefix_; }  // EndpointKeyPrefix
  std::string DeadLetterKey(Position p) const { return webhook::DeadLetterKey(key_prefix_, p); }
  // Requests sent and not answered yet.
  size_t in_flight() const { return in_flight_; }

  // Reading: how many more events the window takes (0: none now), and where to read after.
  size_t ReadRoom() const;
  Position read_cursor() const { return read_cursor_; }
  // Events of one Read, position order; everything up to `scanned_through` was examined.
  void AddEvents(std::vector<storage::StoredEvent>& events, Position scanned_through,
                 absl::Time now);

  // The next item to send now, marked in flight; nullptr when none is due or allowed.
  Item* NextReady(absl::Time now);
  // When NextReady may next return something (InfiniteFuture: only after a result or read).
  absl::Time NextDue() const;
  void OnResult(Item* item, const AttemptResult& result, absl::Time now);

  // Dead letters to send again (their stored records); returns how many were queued.
  size_t Replay(std::vector<std::pair<Position, internal::WebhookDeadLetter>> records,
                absl::Time now);
  // Clears a 410's disable.
  void Enable();
  // Durable changes since the last call, for one atomic WriteMeta with those of the others.
  void TakeWrites(absl::Time now, std::vector<storage::MetaWrite>* out);

  EndpointSnapshot Snapshot(Position head) const;

 private:
  using DueKey = std::tuple<absl::Time, bool, uint64_t>;  // (due, replay, position)

  void Schedule(Item* item, absl::Time due);
  // The ordering queue an item of the main window belongs to; nullptr for unordered.
  std::deque<Position>* QueueFor(const Item& item, std::string* key);
  void FinishMain(Item* item, absl::Time now);
  absl::Duration Jittered(absl::Duration d);
  Position Watermark() const;
  void PutDeadLetter(const Item& item, uint32_t attempts, const std::string& error, bool replay,
                     absl::Time now);

  const EndpointConfig config_;
  const std::string log_id_;
  const EndpointTuning tuning_;
  const std::string key_prefix_;
  absl::BitGen rng_;

  Position read_cursor_;
  std::map<Position, Item> pending_;  // The main window.
  std::map<Position, Item> replays_;
  std::set<Position> done_above_;  // Done positions after the watermark.
  absl::flat_hash_map<std::string, std::deque<Position>> queues_;  // Ordering key -> waiting.
  std::set<DueKey> due_;  // Items allowed to be sent, by due time.
  size_t in_flight_ = 0;
  size_t holding_ = 0;
  bool disabled_ = false;
  std::string disabled_reason_;

  // Durable state.
  std::vector<storage::MetaWrite> writes_;
  bool cursor_dirty_ = false;  // Write it with the next batch.
  Position written_through_;   // Watermark as last written.
  absl::Time last_cursor_write_ = absl::InfinitePast();

  std::string last_error_;
  absl::Time last_error_time_ = absl::InfinitePast();
  uint64_t attempts_ = 0, failures_ = 0, delivered_ = 0, dead_lettered_ = 0, dead_letters_ = 0;
};

}  // namespace hookstream::webhook

#endif  // HOOKSTREAM_SERVER_WEBHOOK_ENDPOINT_H_
