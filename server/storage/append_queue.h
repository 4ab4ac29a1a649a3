// The queue between Log::Append callers and a backend's appender thread, shared by both
// backends: appends wait here, and the appender takes them in groups (group commit).
#ifndef HOOKSTREAM_SERVER_STORAGE_APPEND_QUEUE_H_
#define HOOKSTREAM_SERVER_STORAGE_APPEND_QUEUE_H_

#include <cstddef>
#include <iterator>
#include <vector>

#include "hookstream/v1/event_stream.pb.h"
#include "server/storage/log.h"

namespace hookstream::storage {

struct PendingAppend {
  std::vector<v1::EventInput> events;
  AppendCallback done;
};

// Moves the oldest appends of `queue` into `group` (replacing its contents): whole appends
// until they hold `max_events` events, and always at least one, so a large append is never
// split or starved.
inline void TakeGroup(std::vector<PendingAppend>& queue, size_t max_events,
                      std::vector<PendingAppend>& group) {
  size_t events = 0;
  size_t take = 0;
  while (take < queue.size() && (take == 0 || events < max_events)) {
    events += queue[take].events.size();
    ++take;
  }
  group.assign(std::make_move_iterator(queue.begin()),
               std::make_move_iterator(queue.begin() + take));
  queue.erase(queue.begin(), queue.begin() + take);
}

}  // namespace hookstream::storage

#endif  // HOOKSTREAM_SERVER_STORAGE_APPEND_QUEUE_H_
