#include <algorithm>

#include "hookstream/internal/records.pb.h"
#include "server/common/logging.h"
#include "server/storage/embedded_log_impl.h"
#include "server/storage/stream_index.h"

namespace hookstream::storage::embedded {

void EmbeddedLog::AppenderLoop() {
  std::vector<PendingAppend> group;
  while (true) {
    std::optional<TrimPlan> trim;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](EmbeddedLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return !self->queue_.empty() || self->pending_trim_.has_value() || self->closing_;
          },
          this));
      if (queue_.empty() && !pending_trim_) break;  // Closing and nothing pending.
      std::swap(trim, pending_trim_);
      TakeGroup(queue_, options_.max_group_events, group);
    }
    if (trim) {
      ApplyTrim(*trim);
      absl::MutexLock l(&mu_);
      ++trims_applied_;
    }
    if (!group.empty()) CommitGroup(group);
    group.clear();
  }
  Checkpoint();  // A clean close leaves nothing to replay on the next open.
}

rocksdb::Status EmbeddedLog::AddCheckpoint(const StreamChanges& changes, LogState* st,
                                           rocksdb::WriteBatch* batch) const {
  for (const auto& [name, state] : streams_.CheckpointRecords(changes)) {
    rocksdb::Status s = batch->Put(streams_cf_, name, state.ToRecord().SerializeAsString());
    if (!s.ok()) return s;
  }
  st->streams_through = st->head;
  return rocksdb::Status::OK();
}

void EmbeddedLog::Checkpoint() {
  if (streams_.dirty_count() == 0 && state_.streams_through == state_.head) return;
  LogState st = state_;
  rocksdb::WriteBatch batch;
  rocksdb::Status s = AddCheckpoint({}, &st, &batch);
  if (s.ok()) s = batch.Put(meta_cf_, kStateKey, st.Encode());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (s.ok()) s = db_->Write(wo, &batch);
  if (!s.ok()) {
    // Nothing lost: the next open replays the events after the previous checkpoint.
    HS_EVENT(WARNING, "log.streams.checkpoint_failed").Field("error", s.ToString());
    return;
  }
  streams_.Apply({}, st.head, /*checkpointed=*/true);
  state_ = st;
}

void EmbeddedLog::CommitGroup(std::vector<PendingAppend>& group) {
  // Ingest times never go backwards, even if the wall clock does: the dedup window and
  // from_time starts rely on it.
  const absl::Time now = std::max(options_.clock->Now(), last_ingest_);
  dedup_.Expire(now);
  const int64_t now_nanos = absl::ToUnixNanos(now);

  std::vector<absl::StatusOr<v1::PublishResponse>> outcomes;
  outcomes.reserve(group.size());
  std::vector<StoredEvent> committed;
  // Changes of the requests accepted so far in this group, applied after the write succeeds.
  // Dedup entries go into the index at once (a later event of the group must find them) and
  // are undone with Truncate when their request or the group fails.
  StreamChanges staged_streams;
  const uint64_t group_dedup_mark = dedup_.end();
  // The input of each event appended so far in this group, at position - state_.head - 1: what
  // a dedup hit on an event of this group is confirmed against.
  std::vector<const v1::EventInput*> group_inputs;
  absl::Status group_error;  // The dedup check could not read an event: the group fails.
  uint64_t next = state_.head;
  uint64_t added_bytes = 0;
  GroupCommitInfo info;
  info.requests = group.size();

  for (PendingAppend& req : group) {
    // A request is atomic. Only an expected_seq check can reject it part-way, so a request
    // with one stages its changes in request-local overlays first; any other request (the
    // common case, and for one-event PublishStream requests most of the cost) writes straight
    // into the group's staging.
    const bool can_fail = std::any_of(req.events.begin(), req.events.end(),
                                      [](const v1::EventInput& e) { return e.has_expected_seq(); });
    StreamChanges local_streams;
    std::vector<StoredEvent> local_events;
    auto& req_streams = can_fail ? local_streams : staged_streams;
    auto& req_events = can_fail ? local_events : committed;
    const uint64_t req_dedup_mark = dedup_.end();
    v1::PublishResponse resp;
    absl::Status error;
    uint64_t p = next;
    uint64_t req_bytes = 0;
    size_t req_duplicates = 0;

    for (size_t i = 0; i < req.events.size(); ++i) {
      v1::EventInput& in = req.events[i];
      v1::PublishResult* result = resp.add_results();
      const bool dedup = dedup_.enabled() && !in.id().empty();
      uint64_t hash = 0;
      if (dedup) {
        hash = dedup_.Hash(in.source(), in.id());
        absl::StatusOr<std::optional<DedupIndex::Entry>> dup =
            dedup_.Find(hash, now, [&](const DedupIndex::Entry& e) {
              return HasKey(e.position, in.source(), in.id(), group_inputs);
            });
        if (!dup.ok()) {
          group_error = dup.status();
          break;
        }
        if (dup->has_value()) {
          result->set_position((*dup)->position.value());
          result->set_seq((*dup)->seq.value());
          result->set_duplicate(true);
          result->set_id(in.id());
          ++req_duplicates;
          continue;
        }
      }

      StreamState* rec;
      if (auto r = req_streams.find(in.stream()); r != req_streams.end()) {
        rec = &r->second;
      } else {
        StreamState base;
        if (auto g = can_fail ? staged_streams.find(in.stream()) : staged_streams.end();
            g != staged_streams.end()) {
          base = g->second;
        } else if (const StreamState* c = streams_.Find(in.stream())) {
          base = *c;
        }
        rec = &req_streams.emplace(in.stream(), base).first->second;
      }
      if (in.has_expected_seq() && in.expected_seq() != rec->head_seq) {
        error = absl::AbortedError(absl::StrCat(
            "events[", i, "].expected_seq is ", in.expected_seq(), " but stream \"", in.stream(),
            "\" is at seq ", rec->head_seq));
        break;
      }

      ++p;
      const uint64_t seq = rec->head_seq + 1;
      rec->Append(seq, p, now_nanos);

      if (in.id().empty()) in.set_id(AssignedId(p));
      in.clear_expected_seq();
      StoredEvent ev;
      ev.position = Position(p);
      ev.seq = Seq(seq);
      in.SerializeToString(&ev.bytes);
      AppendAssignedFields(seq, p, now, &ev.bytes);
      ev.stream = std::move(*in.mutable_stream());
      ev.type = std::move(*in.mutable_type());
      req_bytes += ev.bytes.size();
      group_inputs.push_back(&in);  // Its id and source stay in place until the acks.
      if (dedup) dedup_.Insert(hash, DedupIndex::Entry{ev.position, ev.seq, now});
      result->set_position(p);
      result->set_seq(seq);
      result->set_id(in.id());
      req_events.push_back(std::move(ev));
    }
    if (!group_error.ok()) break;

    if (!error.ok()) {
      dedup_.Truncate(req_dedup_mark);
      group_inputs.resize(next - state_.head);
      outcomes.emplace_back(std::move(error));
      continue;
    }
    if (can_fail) {
      for (auto& [name, rec] : local_streams) staged_streams.insert_or_assign(name, rec);
      for (StoredEvent& ev : local_events) committed.push_back(std::move(ev));
    }
    next = p;
    added_bytes += req_bytes;
    info.duplicates += req_duplicates;
    outcomes.emplace_back(std::move(resp));
  }

  if (!group_error.ok()) {
    HS_EVENT(ERROR, "log.dedup_check_failed")
        .Field("requests", group.size())
        .Field("error", group_error);
    dedup_.Truncate(group_dedup_mark);
    committed.clear();
    outcomes.clear();
    for (size_t i = 0; i < group.size(); ++i) outcomes.emplace_back(group_error);
    info.duplicates = 0;
    info.ok = false;
  }

  if (!committed.empty()) {
    LogState st = state_;
    st.head = next;
    st.event_count += committed.size();
    st.bytes += added_bytes;
    rocksdb::WriteBatch batch;
    rocksdb::Status s;
    if (!index_on_ && !index_gap_recorded_) {
      s = batch.Put(meta_cf_, kIndexGapKey, EncodeBigEndian64(committed.front().position.value()));
    }
    for (const StoredEvent& ev : committed) {
      if (!s.ok()) break;
      s = batch.Put(log_cf_, EncodeBigEndian64(ev.position.value()), ev.bytes);
      if (s.ok() && index_on_) {
        s = batch.Put(index_cf_, IndexKey(ev.stream, ev.seq.value()),
                      EncodeIndexValue(ev.position.value(), ev.bytes.size()));
      }
    }
    // Stream records are written only by a checkpoint (stream_table.h); in between, the events
    // themselves are what recovery rebuilds them from.
    const bool checkpoint = s.ok() && st.head - st.streams_through >= kCheckpointEvents;
    if (checkpoint) s = AddCheckpoint(staged_streams, &st, &batch);
    if (s.ok()) s = batch.Put(meta_cf_, kStateKey, st.Encode());
    absl::Status write_status = FromRocks(s, "building the write batch");
    if (write_status.ok() && options_.faults.before_append) {
      write_status = options_.faults.before_append();
    }
    if (write_status.ok()) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      const absl::Time write_start = absl::Now();
      write_status = FromRocks(db_->Write(wo, &batch), "committing to the log");
      info.sync_time = absl::Now() - write_start;
    }
    info.ok = write_status.ok();
    if (info.ok) {
      info.events = committed.size();
      info.bytes = added_bytes;
    }
    if (!write_status.ok()) {
      HS_EVENT(ERROR, "log.commit_failed")
          .Field("events", committed.size())
          .Field("acknowledged", 0)
          .Field("error", write_status);
      for (auto& o : outcomes) {
        if (o.ok()) o = absl::UnavailableError(write_status.message());
      }
      committed.clear();
      dedup_.Truncate(group_dedup_mark);
    } else {
      if (!index_on_) index_gap_recorded_ = true;
      streams_.Apply(std::move(staged_streams), st.head, checkpoint);
      state_ = st;
      last_ingest_ = now;
      if (oldest_pub_.load(std::memory_order_relaxed) > state_.head) {
        oldest_pub_.store(committed.front().position.value(), std::memory_order_release);
      }
      // Listener first, then readers' head: a reader never sees a position the subscription
      // registry has not been told about.
      if (listener_ != nullptr) listener_->OnCommit(committed, Position(state_.head));
      PublishStats();
    }
  }

  if (options_.on_group_commit) options_.on_group_commit(info);
  for (size_t i = 0; i < group.size(); ++i) {
    std::move(group[i].done)(std::move(outcomes[i]));
  }
}

void EmbeddedLog::ApplyTrim(const TrimPlan& plan) {
  if (plan.through <= state_.trimmed_through) return;  // Stale plan.
  // Raise the horizon before the events disappear: a reader that misses them then sees it.
  LogState st = state_;
  KeepDedupKeys(plan);
  st.trimmed_through = plan.through;
  {
    std::string bytes;
    if (db_->Get(rocksdb::ReadOptions(), log_cf_, EncodeBigEndian64(plan.through), &bytes).ok()) {
      v1::Event e;
      if (e.ParseFromString(bytes)) {
        st.trimmed_time_nanos = e.ingest_time().seconds() * 1'000'000'000 + e.ingest_time().nanos();
      }
    }
  }
  trimmed_time_pub_.store(st.trimmed_time_nanos, std::memory_order_relaxed);
  trimmed_pub_.store(st.trimmed_through, std::memory_order_release);

  rocksdb::WriteBatch batch;
  rocksdb::Status s;
  for (const auto& [begin, end] : plan.delete_ranges) {
    if (s.ok()) s = batch.DeleteRange(log_cf_, EncodeBigEndian64(begin), EncodeBigEndian64(end));
  }
  for (uint64_t pos : plan.delete_positions) {
    if (s.ok()) s = batch.Delete(log_cf_, EncodeBigEndian64(pos));
  }
  StreamChanges changed;
  for (const auto& [name, trim] : plan.streams) {
    const StreamState* current = streams_.Find(name);
    if (current == nullptr) continue;
    StreamState rec = *current;
    // A stream's deleted seqs are a prefix: its index entries go as one range (this also
    // clears entries left from a stretch when the index was kept, if it is not now).
    if (s.ok()) {
      s = batch.DeleteRange(index_cf_, IndexKey(name, rec.first_seq),
                            IndexKey(name, trim.max_removed_seq + 1));
    }
    rec.event_count = rec.event_count > trim.removed ? rec.event_count - trim.removed : 0;
    rec.first_seq = std::max(rec.first_seq, trim.max_removed_seq + 1);
    changed.emplace(name, rec);
  }
  st.event_count = st.event_count > plan.removed_events ? st.event_count - plan.removed_events : 0;
  st.bytes = st.bytes > plan.removed_bytes ? st.bytes - plan.removed_bytes : 0;
  // A trim is a checkpoint: replaying events after an older checkpoint would count events
  // this trim already subtracted.
  if (s.ok()) s = AddCheckpoint(changed, &st, &batch);
  if (s.ok()) s = batch.Put(meta_cf_, kStateKey, st.Encode());
  if (s.ok()) s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    // Nothing was deleted; the raised horizon only expires tokens early, never skips events.
    HS_EVENT(ERROR, "retention.delete_failed")
        .Field("through_position", plan.through)
        .Field("error", s.ToString());
    return;
  }
  streams_.Apply(std::move(changed), st.head, /*checkpointed=*/true);
  state_ = st;
  uint64_t oldest = plan.new_oldest;
  if (oldest == 0) {  // Single deletions: look the first retained event up.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    it->SeekToFirst();
    oldest = state_.head + 1;
    if (it->Valid() && !DecodeBigEndian64(View(it->key()), &oldest)) oldest = state_.head + 1;
  }
  oldest_pub_.store(oldest, std::memory_order_release);
  PublishStats();
  HS_EVENT(INFO, "retention.deleted")
      .Field("events", plan.removed_events)
      .Field("bytes", plan.removed_bytes)
      .Field("through_position", plan.through)
      .Field("oldest_position", oldest);
}

absl::StatusOr<uint64_t> EmbeddedLog::Trim() {
  absl::MutexLock trim_lock(&trim_mu_);
  absl::StatusOr<TrimPlan> plan =
      PlanTrim(db_.get(), log_cf_, streams_, index_cf_, options_.retention, options_.clock->Now(),
               bytes_pub_.load(std::memory_order_relaxed), head().value());
  if (!plan.ok()) return plan.status();
  if (plan->removed_events == 0) return 0;
  const uint64_t removed = plan->removed_events;
  absl::MutexLock l(&mu_);
  if (closing_) return absl::UnavailableError("the log is closing");
  std::pair<EmbeddedLog*, uint64_t> wait(this, trims_applied_ + 1);
  pending_trim_ = *std::move(plan);
  mu_.Await(absl::Condition(
      +[](std::pair<EmbeddedLog*, uint64_t>* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return a->first->trims_applied_ >= a->second;
      },
      &wait));
  return removed;
}

void EmbeddedLog::TrimmerLoop() {
  while (!stop_trimmer_.WaitForNotificationWithTimeout(options_.retention.check_interval)) {
    // Passes are bounded; keep going while there is more to delete.
    while (!stop_trimmer_.HasBeenNotified()) {
      absl::StatusOr<uint64_t> removed = Trim();
      if (!removed.ok()) {
        HS_EVENT(WARNING, "retention.pass_failed").Field("error", removed.status());
        break;
      }
      if (*removed < options_.retention.max_deletes_per_pass) break;
    }
  }
}

}  // namespace hookstream::storage::embedded
