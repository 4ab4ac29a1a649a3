// JetStreamLog: connection, identity, the appender and the tailer. Reads are in
// jetstream_reads.cc, metadata in jetstream_meta.cc.
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/logging.h"
#include "server/storage/jetstream/jetstream_log_impl.h"
#include "server/storage/jetstream/naming.h"

namespace hookstream::storage {

absl::StatusOr<std::unique_ptr<Log>> OpenJetStreamLog(const JetStreamLogOptions& options) {
  auto log = std::make_unique<jetstream::JetStreamLog>(options);
  if (absl::Status s = log->Open(); !s.ok()) return s;
  return log;
}

namespace jetstream {
namespace {

constexpr char kTokenKeyKey[] = "token_key";

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    HS_EVENT(FATAL, "jetstream.no_entropy").Field("reason", "RAND_bytes failed");
  }
  return out;
}

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

}  // namespace

JetStreamLog::JetStreamLog(const JetStreamLogOptions& options)
    : options_(options),
      all_subjects_(absl::StrCat(options.subject_prefix, ".>")),
      kv_bucket_(absl::StrCat(options.stream, "_meta")),
      leases_bucket_(absl::StrCat(options.stream, "_leases")) {}

JetStreamLog::~JetStreamLog() { Close(); }

absl::Status JetStreamLog::Open() {
  if (absl::Status s = Connect(); !s.ok()) return s;
  if (absl::Status s = EnsureStream(); !s.ok()) return s;
  appender_ = std::thread([this] { AppenderLoop(); });
  return absl::OkStatus();
}

absl::Status JetStreamLog::Connect() {
  natsOptions* raw_opts = nullptr;
  if (natsOptions_Create(&raw_opts) != NATS_OK) return absl::InternalError("natsOptions_Create");
  NatsPtr<natsOptions> opts(raw_opts);
  std::vector<const char*> urls;
  for (const std::string& u : options_.servers) urls.push_back(u.c_str());
  natsStatus s = natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), Millis(options_.connect_timeout));
  if (s == NATS_OK) s = natsOptions_SetName(opts.get(), options_.connection_name.c_str());
  // Once connected, reconnect forever (to any server of the cluster): a NATS node going away
  // must not take this hookstream server down.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), 100);
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts.get(), 64 << 20);
  // Requests fail fast while disconnected instead of waiting out their timeout; the appender
  // retries them.
  if (s == NATS_OK) s = natsOptions_SetFailRequestsOnDisconnect(opts.get(), true);
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts.get(), 2000);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts.get(), 2);
  if (s != NATS_OK) return NatsStatus(s, "configuring the NATS connection");
  natsConnection* raw_conn = nullptr;
  s = natsConnection_Connect(&raw_conn, opts.get());
  if (s != NATS_OK) {
    return absl::UnavailableError(absl::StrCat("cannot connect to NATS at ",
                                               absl::StrJoin(options_.servers, ","), ": ",
                                               NatsStatus(s, "connect").message()));
  }
  conn_.reset(raw_conn);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = Millis(options_.request_timeout);
  jo.PublishAsync.AckHandler = &JetStreamLog::OnAsyncAck;
  jo.PublishAsync.AckHandlerClosure = this;
  jo.PublishAsync.MaxPending = 8192;
  jsCtx* raw_js = nullptr;
  s = natsConnection_JetStream(&raw_js, conn_.get(), &jo);
  if (s != NATS_OK) return NatsStatus(s, "opening the JetStream context");
  js_.reset(raw_js);
  return absl::OkStatus();
}

absl::Status JetStreamLog::EnsureStream() {
  const char* subjects[] = {all_subjects_.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = options_.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_LimitsPolicy;
  cfg.Discard = js_DiscardOld;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = options_.replicas;
  cfg.MaxAge = absl::ToInt64Nanoseconds(options_.max_age);
  cfg.MaxBytes = options_.max_bytes == 0 ? -1 : static_cast<int64_t>(options_.max_bytes);
  cfg.MaxMsgsPerSubject = options_.max_events_per_stream == 0
                              ? -1
                              : static_cast<int64_t>(options_.max_events_per_stream);
  if (options_.dedup_window > absl::ZeroDuration()) {
    cfg.Duplicates = absl::ToInt64Nanoseconds(options_.dedup_window);
  }
  cfg.AllowDirect = true;  // Reads by sequence / subject from any replica, without a consumer.

  jsStreamInfo* raw_info = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw_info, js_.get(), options_.stream.c_str(), nullptr, &ec);
  if (s == NATS_NOT_FOUND || ec == JSStreamNotFoundErr) {
    s = js_AddStream(&raw_info, js_.get(), &cfg, nullptr, &ec);
    if (s != NATS_OK) {
      return NatsStatus(s, absl::StrCat("creating JetStream stream ", options_.stream), ec);
    }
    HS_EVENT(INFO, "jetstream.stream.created")
        .Field("stream", options_.stream)
        .Field("subjects", all_subjects_)
        .Field("replicas", options_.replicas);
  } else if (s != NATS_OK) {
    return NatsStatus(s, absl::StrCat("looking up JetStream stream ", options_.stream), ec);
  } else {
    NatsPtr<jsStreamInfo> existing(raw_info);
    const jsStreamConfig* have = existing->Config;
    if (have->SubjectsLen != 1 || all_subjects_ != have->Subjects[0]) {
      return absl::FailedPreconditionError(
          absl::StrCat("JetStream stream ", options_.stream, " exists with other subjects than ",
                       all_subjects_, ": it is not a hookstream log with this subject_prefix"));
    }
    // Bring the limits in line with the configuration (JetStream applies them at once).
    if (have->Replicas != cfg.Replicas || have->MaxAge != cfg.MaxAge ||
        have->MaxBytes != cfg.MaxBytes || have->MaxMsgsPerSubject != cfg.MaxMsgsPerSubject ||
        (cfg.Duplicates != 0 && have->Duplicates != cfg.Duplicates) || !have->AllowDirect) {
      raw_info = nullptr;
      s = js_UpdateStream(&raw_info, js_.get(), &cfg, nullptr, &ec);
      if (s != NATS_OK) {
        return NatsStatus(s, absl::StrCat("updating JetStream stream ", options_.stream), ec);
      }
      HS_EVENT(INFO, "jetstream.stream.limits_updated").Field("stream", options_.stream);
    } else {
      raw_info = existing.release();
    }
  }
  NatsPtr<jsStreamInfo> info(raw_info);
  const int64_t created = info->Created;
  clustered_ = info->Config->Replicas > 1;
  {
    absl::MutexLock l(&head_mu_);
    head_ = info->State.LastSeq;
  }
  {
    // The tailer starts after this position: the model knows no stream yet.
    absl::MutexLock l(&heads_mu_);
    heads_through_ = heads_floor_ = info->State.LastSeq;
  }
  head_pub_.store(info->State.LastSeq, std::memory_order_release);
  if (absl::Status st = LoadIdentity(created); !st.ok()) return st;
  RefreshHorizon();
  return absl::OkStatus();
}

absl::StatusOr<NatsPtr<kvStore>> JetStreamLog::OpenBucket(const std::string& bucket,
                                                          absl::Duration* ttl) {
  kvStore* raw_kv = nullptr;
  natsStatus s = js_KeyValue(&raw_kv, js_.get(), bucket.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket.c_str();
    kc.History = 1;
    kc.Replicas = options_.replicas;
    kc.StorageType = js_FileStorage;
    kc.TTL = absl::ToInt64Nanoseconds(*ttl);  // Becomes the stream's MaxAge.
    s = js_CreateKeyValue(&raw_kv, js_.get(), &kc);
  }
  if (s != NATS_OK) return NatsStatus(s, absl::StrCat("opening the KV bucket ", bucket));
  NatsPtr<kvStore> kv(raw_kv);
  const std::string kv_stream = absl::StrCat("KV_", bucket);
  jsStreamInfo* raw_info = nullptr;
  jsErrCode ec = static_cast<jsErrCode>(0);
  s = js_GetStreamInfo(&raw_info, js_.get(), kv_stream.c_str(), nullptr, &ec);
  if (s != NATS_OK) {
    return NatsStatus(s, absl::StrCat("reading the stream of KV bucket ", bucket), ec);
  }
  NatsPtr<jsStreamInfo> info(raw_info);
  *ttl = absl::Nanoseconds(info->Config->MaxAge);
  if (clustered_) {
    // A KV bucket answers reads by direct get, from any replica, and one that is behind answers
    // an older value or none: a webhook cursor read so would move a shim that changed servers
    // back (deliveries again) or, read as absent, to the head (deliveries skipped). Reads of a
    // replicated bucket go to its stream leader instead ($JS.API.STREAM.MSG.GET): every server
    // turns the bucket's direct gets off and opens it again (nats.c picks the read path from
    // the stream's config when it opens a bucket).
    if (info->Config->AllowDirect) {
      info->Config->AllowDirect = false;
      jsStreamInfo* updated = nullptr;
      s = js_UpdateStream(&updated, js_.get(), info->Config, nullptr, &ec);
      NatsPtr<jsStreamInfo> updated_info(updated);
      if (s != NATS_OK) {
        return NatsStatus(s, absl::StrCat("turning off direct gets of KV bucket ", bucket), ec);
      }
    }
    kv.reset();
    s = js_KeyValue(&raw_kv, js_.get(), bucket.c_str());
    if (s != NATS_OK) return NatsStatus(s, absl::StrCat("opening the KV bucket ", bucket));
    kv.reset(raw_kv);
  }
  return kv;
}

absl::Status JetStreamLog::LoadIdentity(int64_t stream_created_nanos) {
  absl::Duration no_ttl = absl::ZeroDuration();
  absl::StatusOr<NatsPtr<kvStore>> kv = OpenBucket(kv_bucket_, &no_ttl);
  if (!kv.ok()) return kv.status();
  kv_ = *std::move(kv);
  lease_time_ = options_.lease_time;
  absl::StatusOr<NatsPtr<kvStore>> leases = OpenBucket(leases_bucket_, &lease_time_);
  if (!leases.ok()) return leases.status();
  leases_ = *std::move(leases);
  if (lease_time_ < absl::Seconds(1)) {  // Not a bucket a hookstream server created.
    return absl::FailedPreconditionError(absl::StrCat(
        "the KV bucket ", leases_bucket_, " keeps entries for ", absl::FormatDuration(lease_time_),
        " (0: for ever); leases need 1s or more: delete the bucket and a server creates it "
        "again with storage.lease_time"));
  }
  if (lease_time_ != options_.lease_time) {
    HS_EVENT(WARNING, "jetstream.lease_time_differs")
        .Field("configured", options_.lease_time)
        .Field("bucket", lease_time_)
        .Field("reason", "the leases bucket was created with another lease_time; it applies");
  }
  natsStatus s;

  // The token key is created once; of two servers starting together, one Create wins and the
  // other reads the winner's key.
  for (int attempt = 0; attempt < 2 && token_key_.empty(); ++attempt) {
    kvEntry* raw_entry = nullptr;
    s = kvStore_Get(&raw_entry, kv_.get(), kTokenKeyKey);
    if (s == NATS_OK) {
      NatsPtr<kvEntry> e(raw_entry);
      if (kvEntry_ValueLen(e.get()) != 32) {
        return absl::DataLossError(
            absl::StrCat("the token key in KV bucket ", kv_bucket_, " is not 32 bytes"));
      }
      token_key_.assign(static_cast<const char*>(kvEntry_Value(e.get())), 32);
    } else if (s == NATS_NOT_FOUND) {
      const std::string key = RandomBytes(32);
      uint64_t rev = 0;
      s = kvStore_Create(&rev, kv_.get(), kTokenKeyKey, key.data(), static_cast<int>(key.size()));
      if (s == NATS_OK) token_key_ = key;
    } else {
      return NatsStatus(s, "reading the token key");
    }
  }
  if (token_key_.empty()) return absl::UnavailableError("could not create or read the token key");

  // The log id names this incarnation of the stream and key: recreating either gives a new one.
  const std::string input = absl::StrCat("hookstream/jetstream/1\n", options_.stream, "\n",
                                         stream_created_nanos, "\n", token_key_);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  log_id_.assign(reinterpret_cast<const char*>(digest), 16);
  return absl::OkStatus();
}

void JetStreamLog::SetCommitListener(CommitListener* listener) {
  {
    absl::MutexLock l(&listener_mu_);
    listener_ = listener;
  }
  StartTailer();
}

void JetStreamLog::Close() {
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
  }
  std::call_once(close_once_, [this] {
    // The appender finishes what is pending first; its acks wait for the tailer.
    if (appender_.joinable()) appender_.join();
    stop_tailer_.store(true);
    if (tailer_.joinable()) tailer_.join();
    {
      absl::MutexLock l(&cursors_mu_);
      cursors_.clear();
    }
    kv_.reset();
    js_.reset();
    conn_.reset();
  });
}

void JetStreamLog::Append(std::vector<v1::EventInput> events, AppendCallback done) {
  StartTailer();  // A log used without a listener still needs its head to advance.
  {
    absl::MutexLock l(&mu_);
    if (!closing_) {
      queue_.push_back(PendingAppend{std::move(events), std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("the log is closing (server draining)"));
}

void JetStreamLog::AppenderLoop() {
  std::vector<PendingAppend> group;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](JetStreamLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return !self->queue_.empty() || self->closing_;
          },
          this));
      if (queue_.empty()) return;  // Closing and nothing pending.
      TakeGroup(queue_, options_.max_group_events, group);
    }
    uint64_t max_position = 0;
    std::vector<absl::StatusOr<v1::PublishResponse>> outcomes = PublishGroup(group, &max_position);
    // Acknowledge only once this server's subscribers were offered the events (the tailer has
    // passed them), as the embedded log does. JetStream already has them: if the tailer is
    // late (NATS trouble), acknowledge anyway after the timeout rather than hold publishers.
    if (max_position > 0 &&
        AwaitHead(Position(max_position), options_.request_timeout) < Position(max_position)) {
      HS_EVENT(WARNING, "jetstream.tailer.late")
          .Field("position", max_position)
          .Field("waited", options_.request_timeout)
          .Field("action", "acknowledging the stored events anyway");
    }
    for (size_t i = 0; i < group.size(); ++i) std::move(group[i].done)(std::move(outcomes[i]));
    group.clear();
  }
}

}  // namespace jetstream
}  // namespace hookstream::storage
