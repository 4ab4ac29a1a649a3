#include "server/storage/retention.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/storage/event_codec.h"
#include "server/storage/stream_table.h"

namespace hookstream::storage {
namespace {

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

absl::Status ReadError(const rocksdb::Status& s) {
  return absl::UnavailableError(absl::StrCat("retention scan: ", s.ToString()));
}

// Ingest time of a stored event, without parsing the payload.
bool IngestTime(absl::string_view bytes, absl::Time* t) {
  v1::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  *t = absl::FromUnixSeconds(e.ingest_time().seconds()) + absl::Nanoseconds(e.ingest_time().nanos());
  return true;
}

// Adds to `plan` the oldest events of streams that hold more than the per-stream limit, beyond
// what the plan already deletes of them.
absl::Status PlanPerStream(rocksdb::DB* db, const StreamTable& streams,
                           rocksdb::ColumnFamilyHandle* index_cf, const RetentionPolicy& policy,
                           size_t budget, TrimPlan* plan) {
  // Copies of the streams over the limit (at most `budget` of them can be trimmed this pass),
  // so the index scans below run without holding the table's lock.
  bool more = false;
  const std::vector<std::pair<std::string, StreamState>> over = streams.List(
      "", budget, [&](absl::string_view, const StreamState& s) {
        return s.event_count > policy.max_events_per_stream;
      }, &more);
  for (auto o = over.begin(); o != over.end() && budget > 0; ++o) {
    const std::string& name = o->first;
    const StreamState& rec = o->second;
    StreamTrim* planned = nullptr;
    if (auto it = plan->streams.find(name); it != plan->streams.end()) planned = &it->second;
    const uint64_t planned_removed = planned ? planned->removed : 0;
    if (rec.event_count <= planned_removed + policy.max_events_per_stream) continue;
    uint64_t to_remove = rec.event_count - planned_removed - policy.max_events_per_stream;
    to_remove = std::min<uint64_t>(to_remove, budget);
    const uint64_t from_seq =
        std::max<uint64_t>(rec.first_seq, planned ? planned->max_removed_seq + 1 : 0);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), index_cf));
    const std::string prefix = name + std::string(1, '\0');
    for (it->Seek(IndexKey(name, from_seq)); it->Valid() && to_remove > 0; it->Next()) {
      const absl::string_view key = View(it->key());
      const absl::string_view value = View(it->value());
      uint64_t seq, pos, size;
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!DecodeBigEndian64(key.substr(prefix.size()), &seq) || value.size() != 16 ||
          !DecodeBigEndian64(value.substr(0, 8), &pos) ||
          !DecodeBigEndian64(value.substr(8, 8), &size)) {
        return absl::DataLossError("retention scan: a stream index entry is corrupt");
      }
      plan->delete_positions.push_back(pos);
      StreamTrim& st = plan->streams[name];
      ++st.removed;
      st.max_removed_seq = std::max(st.max_removed_seq, seq);
      plan->through = std::max(plan->through, pos);
      ++plan->removed_events;
      plan->removed_bytes += size;
      --to_remove;
      --budget;
    }
    if (!it->status().ok()) return ReadError(it->status());
  }
  return absl::OkStatus();
}

}  // namespace

std::string IndexKey(absl::string_view stream, uint64_t seq) {
  std::string key(stream);
  key.push_back('\0');
  key.append(EncodeBigEndian64(seq));
  return key;
}

std::string EncodeIndexValue(uint64_t position, uint64_t size) {
  return EncodeBigEndian64(position) + EncodeBigEndian64(size);
}

absl::StatusOr<TrimPlan> PlanTrim(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* log_cf,
                                  const StreamTable& streams,
                                  rocksdb::ColumnFamilyHandle* index_cf,
                                  const RetentionPolicy& policy, absl::Time now,
                                  uint64_t total_bytes, uint64_t head) {
  TrimPlan plan;
  plan.new_oldest = head + 1;
  if (!policy.enabled() || head == 0) return plan;
  if (policy.max_age <= absl::ZeroDuration() && policy.max_bytes == 0) {
    absl::Status s =
        PlanPerStream(db, streams, index_cf, policy, policy.max_deletes_per_pass, &plan);
    if (!s.ok()) return s;
    plan.new_oldest = 0;  // Unknown: the appender looks it up after applying.
    return plan;
  }
  const std::string upper = EncodeBigEndian64(head + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, log_cf));

  const absl::Time age_cutoff =
      policy.max_age > absl::ZeroDuration() ? now - policy.max_age : absl::InfinitePast();
  uint64_t excess = policy.max_bytes > 0 && total_bytes > policy.max_bytes
                        ? total_bytes - policy.max_bytes
                        : 0;
  // Stream heads seen this pass (keep_last_per_stream). A head only moves forward, so an old
  // read keeps an event that could have gone: never the reverse.
  absl::flat_hash_map<std::string, uint64_t> heads;
  uint64_t range_begin = 0;  // Open delete range, 0 when none.
  bool oldest_set = false;
  size_t deleted = 0;

  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t pos;
    RoutingFields rf;
    const absl::string_view value = View(it->value());
    if (!DecodeBigEndian64(View(it->key()), &pos) || !ScanRoutingFields(value, &rf)) {
      return absl::DataLossError("retention scan: a stored event is corrupt");
    }
    bool expired = excess > 0;
    if (!expired && age_cutoff != absl::InfinitePast()) {
      absl::Time t;
      if (!IngestTime(value, &t)) return absl::DataLossError("retention scan: corrupt event");
      expired = t < age_cutoff;
    }
    if (!expired || deleted >= policy.max_deletes_per_pass) {
      if (!oldest_set) plan.new_oldest = pos;
      break;
    }
    bool keep = false;
    if (policy.keep_last_per_stream) {
      auto h = heads.find(rf.stream);
      if (h == heads.end()) {
        StreamState rec;
        if (!streams.Get(rf.stream, &rec)) {
          return absl::DataLossError("retention scan: an event's stream has no record");
        }
        h = heads.emplace(std::string(rf.stream), rec.head_position).first;
      }
      keep = h->second == pos;
    }
    if (keep) {
      if (!oldest_set) {
        plan.new_oldest = pos;
        oldest_set = true;
      }
      if (range_begin != 0) {
        plan.delete_ranges.emplace_back(range_begin, pos);
        range_begin = 0;
      }
      continue;
    }
    if (range_begin == 0) range_begin = pos;
    plan.through = pos;
    StreamTrim& st = plan.streams[rf.stream];
    ++st.removed;
    st.max_removed_seq = std::max(st.max_removed_seq, rf.seq);
    ++plan.removed_events;
    plan.removed_bytes += value.size();
    excess = excess > value.size() ? excess - value.size() : 0;
    ++deleted;
  }
  if (!it->status().ok()) return ReadError(it->status());
  if (range_begin != 0) plan.delete_ranges.emplace_back(range_begin, plan.through + 1);
  if (!it->Valid() && !oldest_set) plan.new_oldest = head + 1;
  if (policy.max_events_per_stream > 0 && deleted < policy.max_deletes_per_pass) {
    absl::Status s = PlanPerStream(db, streams, index_cf, policy,
                                   policy.max_deletes_per_pass - deleted, &plan);
    if (!s.ok()) return s;
    if (!plan.delete_positions.empty()) plan.new_oldest = 0;  // Looked up after applying.
  }
  return plan;
}

}  // namespace hookstream::storage
