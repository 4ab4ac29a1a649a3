// JetStreamLog's read side: catch-up reads through pull consumers kept between a subscriber's
// chunks, single messages by direct get (any replica answers; the leader confirms what a
// replica does not have), and stream information.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/storage/event_codec.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage::jetstream {
namespace {

constexpr size_t kMaxCursors = 16;
constexpr int kMaxFetch = 256;

google::protobuf::Timestamp ToProtoTime(int64_t nanos) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(nanos / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return ts;
}

}  // namespace

absl::StatusOr<RawMessage> JetStreamLog::DirectGet(uint64_t sequence,
                                                   const std::string* next_by_subject,
                                                   const std::string* last_by_subject) const {
  jsDirectGetMsgOptions dg;
  jsDirectGetMsgOptions_Init(&dg);
  dg.Sequence = sequence;
  if (next_by_subject != nullptr) dg.NextBySubject = next_by_subject->c_str();
  if (last_by_subject != nullptr) dg.LastBySubject = last_by_subject->c_str();
  if (options_.lag_faults.stale_head_reads && last_by_subject != nullptr) {
    dg.Sequence = 1;  // The subject's first message stands for an older last one.
    dg.NextBySubject = dg.LastBySubject;
    dg.LastBySubject = nullptr;
  }
  natsMsg* raw = nullptr;
  natsStatus s = options_.lag_faults.replica_missing_reads
                     ? NATS_NOT_FOUND
                     : js_DirectGetMsg(&raw, js_.get(), options_.stream.c_str(), nullptr, &dg);
  if (s == NATS_NOT_FOUND && clustered_) {
    return LeaderGet(sequence, next_by_subject, last_by_subject);
  }
  if (s != NATS_OK) return NatsStatus(s, "reading a message from JetStream");
  NatsPtr<natsMsg> msg(raw);
  RawMessage out;
  if (absl::Status st = ParseMessage(msg.get(), /*from_direct_get=*/true, &out); !st.ok()) {
    return st;
  }
  return out;
}

absl::StatusOr<RawMessage> JetStreamLog::LeaderGet(uint64_t sequence,
                                                   const std::string* next_by_subject,
                                                   const std::string* last_by_subject) const {
  nlohmann::json req = nlohmann::json::object();
  if (last_by_subject != nullptr) {
    req["last_by_subj"] = *last_by_subject;
  } else {
    req["seq"] = sequence;
    if (next_by_subject != nullptr) req["next_by_subj"] = *next_by_subject;
  }
  const std::string body = req.dump();
  const std::string api = absl::StrCat("$JS.API.STREAM.MSG.GET.", options_.stream);
  natsMsg* raw = nullptr;
  natsStatus s = natsConnection_Request(&raw, conn_.get(), api.c_str(), body.data(),
                                        static_cast<int>(body.size()),
                                        absl::ToInt64Milliseconds(options_.request_timeout));
  if (s != NATS_OK) return NatsStatus(s, "reading a message from the JetStream stream leader");
  NatsPtr<natsMsg> reply(raw);
  const char* reply_data = natsMsg_GetData(reply.get());
  const nlohmann::json resp = nlohmann::json::parse(
      reply_data == nullptr ? ""
                            : absl::string_view(reply_data, natsMsg_GetDataLength(reply.get())),
      nullptr, /*allow_exceptions=*/false);
  if (resp.is_discarded() || !resp.is_object()) {
    return absl::UnavailableError(
        "the JetStream stream leader answered a message get with no JSON");
  }
  // Fields are read by type (nlohmann's value() would throw on a field of another type).
  auto text = [](const nlohmann::json& obj, const char* key) -> std::optional<std::string> {
    const auto it = obj.find(key);
    if (it == obj.end()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (const auto err = resp.find("error"); err != resp.end() && err->is_object()) {
    const auto code = err->find("err_code");
    const int err_code = code != err->end() && code->is_number_integer() ? code->get<int>() : 0;
    if (err_code == JSNoMessageFoundErr) {
      return absl::NotFoundError("reading a message from JetStream: not found");
    }
    return absl::UnavailableError(
        absl::StrCat("reading a message from the JetStream stream leader: ",
                     text(*err, "description").value_or("?"), " (JetStream error ", err_code, ")"));
  }
  const auto m = resp.find("message");
  std::optional<std::string> subject, hdrs, data, time;
  uint64_t seq = 0;
  if (m != resp.end() && m->is_object()) {
    subject = text(*m, "subject");
    hdrs = text(*m, "hdrs");
    data = text(*m, "data");
    time = text(*m, "time");
    if (const auto it = m->find("seq"); it != m->end() && it->is_number_unsigned()) {
      seq = it->get<uint64_t>();
    }
  }
  std::string headers, payload;
  if (seq == 0 || !subject || subject->empty() || !hdrs || !data || !time ||
      !absl::Base64Unescape(*hdrs, &headers) || !absl::Base64Unescape(*data, &payload)) {
    return absl::DataLossError(
        "the JetStream stream leader answered a message get without a valid message");
  }
  // The message as a direct get returns it: its headers, and its place in the stream as the
  // Nats-Sequence / Nats-Subject / Nats-Time-Stamp headers ParseMessage reads.
  natsMsg* built = nullptr;
  s = natsMsg_Create(&built, subject->c_str(), nullptr, payload.data(),
                     static_cast<int>(payload.size()));
  if (s != NATS_OK) return NatsStatus(s, "building a message");
  NatsPtr<natsMsg> msg(built);
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Nats-Sequence", absl::StrCat(seq)}, {"Nats-Subject", *subject}, {"Nats-Time-Stamp", *time}};
  // "NATS/1.0\r\nKey: Value\r\n...\r\n\r\n"; the first line is the version.
  bool first_line = true;
  for (absl::string_view line : absl::StrSplit(headers, "\r\n", absl::SkipEmpty())) {
    if (std::exchange(first_line, false)) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    fields.emplace_back(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  for (const auto& [key, value] : fields) {
    s = natsMsgHeader_Add(msg.get(), key.c_str(), value.c_str());
    if (s != NATS_OK) return NatsStatus(s, "building a message");
  }
  RawMessage out;
  if (absl::Status st = ParseMessage(msg.get(), /*from_direct_get=*/true, &out); !st.ok()) {
    return st;
  }
  return out;
}

absl::StatusOr<StoredEvent> JetStreamLog::ToStored(RawMessage raw) const {
  StoredEvent ev;
  ev.position = Position(raw.sequence);
  ev.seq = Seq(raw.stream_seq);
  ev.bytes = std::move(raw.data);
  // The payload is the published EventInput; the fields JetStream assigned complete the Event.
  AppendAssignedFields(raw.stream_seq, raw.sequence, absl::FromUnixNanos(raw.time_nanos),
                       &ev.bytes);
  RoutingFields rf;
  if (!ScanRoutingFields(ev.bytes, &rf) ||
      StreamToSubject(options_.subject_prefix, rf.stream) != raw.subject) {
    return absl::DataLossError(absl::StrCat("the message at position ", raw.sequence,
                                            " is not a hookstream event of its subject"));
  }
  ev.stream = std::string(rf.stream);
  ev.type = std::string(rf.type);
  return ev;
}

absl::StatusOr<NatsPtr<natsSubscription>> JetStreamLog::NewCursor(uint64_t start) const {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = options_.stream.c_str();
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = start;
  so.Config.AckPolicy = js_AckNone;
  // An abandoned cursor (its reader gone, this server killed) is removed by JetStream.
  so.Config.InactiveThreshold = absl::ToInt64Nanoseconds(absl::Minutes(1));
  natsSubscription* raw = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  natsStatus s =
      js_PullSubscribe(&raw, js_.get(), all_subjects_.c_str(), nullptr, nullptr, &so, &ec);
  if (s != NATS_OK) return NatsStatus(s, "creating a catch-up consumer", ec);
  return NatsPtr<natsSubscription>(raw);
}

absl::StatusOr<ReadChunk> JetStreamLog::Read(Position after, const ReadLimits& limits,
                                             ReadFilter filter) const {
  if (options_.faults.before_read) {
    if (absl::Status s = options_.faults.before_read(); !s.ok()) return s;
  }
  ReadChunk chunk;
  chunk.scanned_through = after;
  const uint64_t head = head_pub_.load(std::memory_order_acquire);
  if (after.value() >= head) return chunk;

  NatsPtr<natsSubscription> sub;
  {
    absl::MutexLock l(&cursors_mu_);
    for (auto it = cursors_.begin(); it != cursors_.end(); ++it) {
      if (it->next == after.value() + 1) {
        sub = std::move(it->sub);
        cursors_.erase(it);
        break;
      }
    }
  }
  if (sub == nullptr) {
    absl::StatusOr<NatsPtr<natsSubscription>> created = NewCursor(after.value() + 1);
    if (!created.ok()) return created.status();
    sub = *std::move(created);
  }

  uint64_t next = after.value() + 1;  // The position the consumer delivers next.
  size_t scanned = 0;
  size_t bytes = 0;
  bool reusable = true;
  while (next <= head && scanned < limits.max_scanned && chunk.events.size() < limits.max_events &&
         bytes < limits.max_bytes) {
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = static_cast<int>(std::min<uint64_t>({head + 1 - next, limits.max_scanned - scanned,
                                                     limits.max_events - chunk.events.size(),
                                                     static_cast<uint64_t>(kMaxFetch)}));
    req.NoWait = true;
    req.Expires = absl::ToInt64Nanoseconds(options_.request_timeout);
    natsMsgList list{nullptr, 0};
    natsStatus s = natsSubscription_FetchRequest(&list, sub.get(), &req);
    if (s != NATS_OK || list.Count == 0) {
      natsMsgList_Destroy(&list);
      if (s != NATS_OK && s != NATS_NOT_FOUND && s != NATS_TIMEOUT) {
        return NatsStatus(s, "reading the log");
      }
      // Nothing to deliver although the head says there is: those messages were deleted
      // unless one exists after all (then the read is only late: let the caller retry).
      absl::StatusOr<RawMessage> probe = DirectGet(next, &all_subjects_, nullptr);
      if (probe.ok() && probe->sequence <= head) {
        return absl::UnavailableError("JetStream did not deliver existing messages; retry");
      }
      if (!probe.ok() && !absl::IsNotFound(probe.status())) return probe.status();
      RaiseHorizon(head);
      chunk.scanned_through = Position(head);
      reusable = false;
      break;
    }
    bool stop = false;
    for (int i = 0; i < list.Count; ++i) {
      RawMessage raw;
      absl::Status st = ParseMessage(list.Msgs[i], /*from_direct_get=*/false, &raw);
      if (stop || !st.ok() || raw.sequence > head) {
        if (!st.ok() && !stop) {
          natsMsgList_Destroy(&list);
          return st;
        }
        // Past the head of this read (only when deleted messages made room for newer ones).
        if (!stop && raw.sequence > head && next <= head) RaiseHorizon(head);
        if (!stop && raw.sequence > head) chunk.scanned_through = Position(head);
        stop = true;
        reusable = false;
        continue;
      }
      if (raw.sequence != next) {
        // Deleted messages in between (retention, or by hand): report, never skip.
        RaiseHorizon(raw.sequence - 1);
      }
      next = raw.sequence + 1;
      ++scanned;
      chunk.scanned_through = Position(raw.sequence);
      absl::StatusOr<StoredEvent> ev = ToStored(std::move(raw));
      if (!ev.ok()) {
        natsMsgList_Destroy(&list);
        return ev.status();
      }
      if (!filter(ev->stream, ev->type)) continue;
      bytes += ev->bytes.size();
      chunk.events.push_back(*std::move(ev));
      if (chunk.events.size() >= limits.max_events || bytes >= limits.max_bytes) {
        if (i + 1 < list.Count) reusable = false;  // Fetched past what this chunk returns.
        stop = true;
      }
    }
    natsMsgList_Destroy(&list);
    if (stop) break;
  }
  if (reusable) {
    absl::MutexLock l(&cursors_mu_);
    if (cursors_.size() >= kMaxCursors) cursors_.erase(cursors_.begin());
    cursors_.push_back(Cursor{std::move(sub), chunk.scanned_through.value() + 1});
  }
  return chunk;
}

absl::StatusOr<v1::StreamInfo> JetStreamLog::GetStream(absl::string_view stream) const {
  const std::string subject = StreamToSubject(options_.subject_prefix, stream);
  // A replica that is behind answers an older last message; the leader's answer covers every
  // event acknowledged before this call (through any server).
  absl::StatusOr<RawMessage> last =
      clustered_ ? LeaderGet(0, nullptr, &subject) : DirectGet(0, nullptr, &subject);
  if (absl::IsNotFound(last.status())) {
    return absl::NotFoundError(absl::StrCat("stream \"", stream, "\" has no events"));
  }
  if (!last.ok()) return last.status();
  absl::StatusOr<RawMessage> first = DirectGet(1, &subject, nullptr);
  if (!first.ok()) return first.status();
  v1::StreamInfo info;
  info.set_stream(std::string(stream));
  info.set_first_seq(first->stream_seq);
  info.set_head_seq(last->stream_seq);
  // Retention removes a stream's events oldest first, so its retained seqs are contiguous.
  info.set_event_count(last->stream_seq - first->stream_seq + 1);
  *info.mutable_last_event_time() = ToProtoTime(last->time_nanos);
  info.set_head_position(last->sequence);
  return info;
}

absl::StatusOr<std::vector<v1::StreamInfo>> JetStreamLog::ListStreams(
    absl::string_view start_after, size_t limit, absl::FunctionRef<bool(absl::string_view)> keep,
    bool* more) const {
  *more = false;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Stream.Info.SubjectsFilter = all_subjects_.c_str();
  jsStreamInfo* raw = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js_.get(), options_.stream.c_str(), &jo, &ec);
  if (s != NATS_OK) return NatsStatus(s, "listing streams", ec);
  NatsPtr<jsStreamInfo> info(raw);
  std::vector<std::string> names;
  if (const jsStreamStateSubjects* subs = info->State.Subjects; subs != nullptr) {
    for (int i = 0; i < subs->Count; ++i) {
      std::optional<std::string> name =
          SubjectToStream(options_.subject_prefix, subs->List[i].Subject);
      if (name && *name > start_after && keep(*name)) names.push_back(*std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<v1::StreamInfo> out;
  for (const std::string& name : names) {
    if (out.size() == limit) {
      *more = true;
      break;
    }
    absl::StatusOr<v1::StreamInfo> one = GetStream(name);
    if (absl::IsNotFound(one.status())) continue;  // Emptied by retention meanwhile.
    if (!one.ok()) return one.status();
    out.push_back(*std::move(one));
  }
  return out;
}

LogStats JetStreamLog::Stats() const {
  LogStats st;
  st.log_id = log_id_;
  st.head = head();
  jsStreamInfo* raw = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&raw, js_.get(), options_.stream.c_str(), nullptr, &ec) == NATS_OK) {
    NatsPtr<jsStreamInfo> info(raw);
    const jsStreamState& s = info->State;
    RaiseHorizon(s.Msgs == 0 ? s.LastSeq : (s.FirstSeq == 0 ? 0 : s.FirstSeq - 1));
    if (s.Msgs > 0) horizon_time_.store(s.FirstTime, std::memory_order_relaxed);
    st.event_count = s.Msgs;
    st.bytes = s.Bytes;
    st.stream_count = static_cast<uint64_t>(s.NumSubjects);
  }
  st.trimmed_through = trimmed_through();
  st.oldest = Position(std::min(st.trimmed_through.value(), st.head.value()) + 1);
  if (st.trimmed_through > Position(0)) {
    // The deleted events' times are gone; the first retained event's is an upper bound, so a
    // from_time before it is reported expired (conservative: never a silent skip).
    const int64_t t = horizon_time_.load(std::memory_order_relaxed);
    st.trimmed_time = t == 0 ? absl::InfiniteFuture() : absl::FromUnixNanos(t - 1);
  }
  return st;
}

absl::StatusOr<uint64_t> JetStreamLog::Trim() {
  RefreshHorizon();
  return 0;
}

}  // namespace hookstream::storage::jetstream
