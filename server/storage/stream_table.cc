#include "server/storage/stream_table.h"

#include "google/protobuf/timestamp.pb.h"

namespace hookstream::storage {
namespace {

google::protobuf::Timestamp ToTimestamp(int64_t nanos) {
  google::protobuf::Timestamp ts;
  int64_t seconds = nanos / 1'000'000'000;
  int32_t rest = static_cast<int32_t>(nanos % 1'000'000'000);
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(rest);
  return ts;
}

}  // namespace

internal::StreamRecord StreamState::ToRecord() const {
  internal::StreamRecord r;
  r.set_first_seq(first_seq);
  r.set_head_seq(head_seq);
  r.set_head_position(head_position);
  r.set_event_count(event_count);
  *r.mutable_last_event_time() = ToTimestamp(last_event_nanos);
  return r;
}

StreamState StreamState::FromRecord(const internal::StreamRecord& r) {
  StreamState s;
  s.first_seq = r.first_seq();
  s.head_seq = r.head_seq();
  s.head_position = r.head_position();
  s.event_count = r.event_count();
  s.last_event_nanos = r.last_event_time().seconds() * 1'000'000'000 + r.last_event_time().nanos();
  return s;
}

v1::StreamInfo StreamState::ToInfo(absl::string_view name) const {
  v1::StreamInfo info;
  info.set_stream(std::string(name));
  info.set_first_seq(first_seq);
  info.set_head_seq(head_seq);
  info.set_event_count(event_count);
  *info.mutable_last_event_time() = ToTimestamp(last_event_nanos);
  info.set_head_position(head_position);
  return info;
}

void StreamTable::Load(std::string name, StreamState state) {
  absl::MutexLock l(&mu_);
  streams_.insert_or_assign(std::move(name), state);
}

const StreamState* StreamTable::Find(absl::string_view name) const {
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, StreamState>> StreamTable::CheckpointRecords(
    const StreamChanges& pending) const {
  std::vector<std::pair<std::string, StreamState>> out;
  out.reserve(dirty_.size() + pending.size());
  for (const auto& [name, state] : pending) out.emplace_back(name, state);
  for (const std::string& name : dirty_) {
    if (pending.contains(name)) continue;
    auto it = streams_.find(name);
    if (it != streams_.end()) out.emplace_back(name, it->second);
  }
  return out;
}

void StreamTable::Apply(StreamChanges changes, uint64_t through, bool checkpointed) {
  if (checkpointed) {
    dirty_.clear();
  } else {
    for (const auto& [name, state] : changes) dirty_.insert(name);
  }
  absl::MutexLock l(&mu_);
  for (auto& [name, state] : changes) streams_.insert_or_assign(name, state);
  through_ = through;
}

bool StreamTable::Get(absl::string_view name, StreamState* out) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) return false;
  *out = it->second;
  return true;
}

std::vector<std::pair<std::string, StreamState>> StreamTable::List(
    absl::string_view start_after, size_t limit,
    absl::FunctionRef<bool(absl::string_view name, const StreamState&)> keep, bool* more,
    uint64_t* through) const {
  std::vector<std::pair<std::string, StreamState>> out;
  *more = false;
  absl::ReaderMutexLock l(&mu_);
  if (through != nullptr) *through = through_;
  auto it = start_after.empty() ? streams_.begin() : streams_.upper_bound(start_after);
  for (; it != streams_.end(); ++it) {
    if (!keep(it->first, it->second)) continue;
    if (out.size() == limit) {
      *more = true;
      break;
    }
    out.emplace_back(it->first, it->second);
  }
  return out;
}

}  // namespace hookstream::storage
