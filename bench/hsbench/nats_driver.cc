// The NATS JetStream driver (libnats, the official C client). Its fastest correct durable mode:
// a file-storage stream BENCH on "bench.>", asynchronous publishes with a bounded number in
// flight and a wait for every acknowledgement; ordered push consumers (no acks, flow control,
// gap detection) for catch-up and live reading; plain ephemeral push consumers for idle ones.
// nats-server acknowledges once the message is in its write buffer and fsyncs every
// sync_interval (2 minutes by default): its acks come before fsync.
#include <nats/nats.h>

#include <atomic>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/hsbench/driver.h"

namespace hsbench {
namespace {

absl::Status FromNats(natsStatus s, absl::string_view what) {
  if (s == NATS_OK) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(what, ": ", natsStatus_GetText(s), " ", nats_GetLastError(nullptr)));
}

std::string Subject(const std::string& prefix, int k) {
  return absl::StrCat("bench.", prefix, ".s", k);
}

// A connection and its JetStream context, destroyed together.
class Conn {
 public:
  absl::Status Open(const DriverOptions& options, int64_t max_pending) {
    natsOptions* opts = nullptr;
    if (natsStatus s = natsOptions_Create(&opts); s != NATS_OK) return FromNats(s, "options");
    natsOptions_SetURL(opts, absl::StrCat("nats://", options.address).c_str());
    natsOptions_SetSendAsap(opts, options.low_latency);
    natsStatus s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) return FromNats(s, "connect");
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.ErrHandler = &Conn::OnPublishError;
    jo.PublishAsync.ErrHandlerClosure = this;
    // At max_pending, a publish waits for acks (flow control) instead of failing after the
    // default 200 ms: a saturated server shows as latency, as it does for the other systems.
    jo.PublishAsync.StallWait = 60000;
    jo.Wait = 30000;
    return FromNats(natsConnection_JetStream(&js_, nc_, &jo), "jetstream context");
  }
  ~Conn() {
    for (natsSubscription* sub : subs_) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  jsCtx* js() { return js_; }
  int64_t publish_errors() const { return publish_errors_.load(); }
  void Keep(natsSubscription* sub) { subs_.push_back(sub); }

 private:
  static void OnPublishError(jsCtx*, jsPubAckErr* pae, void* closure) {
    ++static_cast<Conn*>(closure)->publish_errors_;
  }

  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::vector<natsSubscription*> subs_;
  std::atomic<int64_t> publish_errors_{0};
};

class NatsPublisher : public Publisher {
 public:
  absl::Status Open(const DriverOptions& options, const std::string& prefix) {
    for (int k = 0; k < options.streams; ++k) subjects_.push_back(Subject(prefix, k));
    return conn_.Open(options, options.inflight);
  }
  absl::Status Send(int stream_index, absl::string_view payload) override {
    return FromNats(js_PublishAsync(conn_.js(), subjects_[stream_index].c_str(), payload.data(),
                                    static_cast<int>(payload.size()), nullptr),
                    "js_PublishAsync");
  }
  // Each publish is already on its way (the flusher, or at once in low-latency mode).
  absl::Status Kick() override { return absl::OkStatus(); }
  absl::Status Finish() override {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (absl::Status s = FromNats(js_PublishAsyncComplete(conn_.js(), &po), "complete"); !s.ok()) {
      return s;
    }
    if (conn_.publish_errors() > 0) {
      return absl::DataLossError(absl::StrCat(conn_.publish_errors(), " publishes failed"));
    }
    return absl::OkStatus();
  }

 private:
  Conn conn_;
  std::vector<std::string> subjects_;
};

class NatsSubscription : public Subscription {
 public:
  absl::Status Open(const DriverOptions& options, const std::string& prefix, bool from_beginning,
                    EventSink sink) {
    sink_ = std::move(sink);
    if (absl::Status s = conn_.Open(options, 1); !s.ok()) return s;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "BENCH";
    so.Ordered = true;
    so.Config.DeliverPolicy = from_beginning ? js_DeliverAll : js_DeliverNew;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsSubscription* sub = nullptr;
    natsStatus s = js_Subscribe(&sub, conn_.js(), absl::StrCat("bench.", prefix, ".>").c_str(),
                                &NatsSubscription::OnMessage, this, nullptr, &so, &jerr);
    if (s != NATS_OK) return FromNats(s, absl::StrCat("js_Subscribe (error ", jerr, ")"));
    conn_.Keep(sub);
    // A catch-up reader must never be cut off as a slow consumer.
    return FromNats(natsSubscription_SetPendingLimits(sub, -1, -1), "pending limits");
  }

 private:
  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsSubscription*>(closure);
    self->sink_(absl::string_view(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
  }

  EventSink sink_;  // Declared before conn_: the subscriptions die first.
  Conn conn_;
};

class NatsIdleSet : public Subscription {
 public:
  static constexpr int kMaxConnections = 2000;

  absl::Status Open(const DriverOptions& options, int count, int per_connection) {
    if ((count + per_connection - 1) / per_connection > kMaxConnections) {
      return absl::UnimplementedError(
          absl::StrCat("JetStream: more than ", kMaxConnections,
                       " connections from one process (libnats runs two threads per connection)"));
    }
    for (int i = 0; i < count; ++i) {
      if (i % per_connection == 0) {
        conns_.push_back(std::make_unique<Conn>());
        if (absl::Status s = conns_.back()->Open(options, 1); !s.ok()) return s;
      }
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = "BENCH";
      so.Config.DeliverPolicy = js_DeliverNew;
      so.Config.AckPolicy = js_AckNone;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsSubscription* sub = nullptr;
      natsStatus s = js_Subscribe(&sub, conns_.back()->js(), absl::StrCat("bench.idle.", i).c_str(),
                                  &NatsIdleSet::OnMessage, nullptr, nullptr, &so, &jerr);
      if (s != NATS_OK) return FromNats(s, absl::StrCat("idle js_Subscribe (error ", jerr, ")"));
      conns_.back()->Keep(sub);
    }
    return absl::OkStatus();
  }

 private:
  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void*) {
    natsMsg_Destroy(msg);
  }
  std::vector<std::unique_ptr<Conn>> conns_;
};

class NatsDriver : public Driver {
 public:
  explicit NatsDriver(const DriverOptions& options) : options_(options) {}

  // Creates the stream BENCH (file storage) unless it exists with the same configuration.
  absl::Status Setup() {
    Conn conn;
    if (absl::Status s = conn.Open(options_, 1); !s.ok()) return s;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char* subjects[] = {"bench.>"};
    sc.Name = "BENCH";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, conn.js(), &sc, nullptr, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return FromNats(s, absl::StrCat("js_AddStream (error ", jerr, ")"));
  }

  absl::StatusOr<std::unique_ptr<Publisher>> NewPublisher(const std::string& prefix) override {
    auto p = std::make_unique<NatsPublisher>();
    if (absl::Status s = p->Open(options_, prefix); !s.ok()) return s;
    return p;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& prefix,
                                                          bool from_beginning,
                                                          EventSink sink) override {
    auto sub = std::make_unique<NatsSubscription>();
    if (absl::Status s = sub->Open(options_, prefix, from_beginning, std::move(sink)); !s.ok()) {
      return s;
    }
    return sub;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> HoldIdle(int count, int per_connection) override {
    auto set = std::make_unique<NatsIdleSet>();
    if (absl::Status s = set->Open(options_, count, per_connection); !s.ok()) return s;
    return set;
  }

 private:
  const DriverOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> NewNatsDriver(const DriverOptions& options) {
  auto driver = std::make_unique<NatsDriver>(options);
  if (absl::Status s = driver->Setup(); !s.ok()) return s;
  return driver;
}

}  // namespace hsbench
