// reference_server: a do-nothing hookstream.v1.EventStream server for the side-by-side benchmark
// (issue 9). It answers Publish, PublishStream and Subscribe from memory with no durability, no
// dedup and no retention: events go into a vector, live subscribers get them queued, and each
// subscriber's writer sends what has accumulated (up to 1,000 events) as one message, one write in
// flight. It stands for the cost of gRPC and protobuf alone next to hookstream's figures.
//
//   reference_server --listen=127.0.0.1:7171
//
// Stream filters: empty (everything), exact names, and a trailing ">" (prefix). Resume tokens are
// the decimal position; they are not accepted back (START_BEGINNING and START_NOW only).
#include <algorithm>
#include <csignal>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7171", "gRPC listen address");

namespace {

namespace v1 = hookstream::v1;
using EventPtr = std::shared_ptr<const v1::DeliveredEvent>;
constexpr int kMaxBatchEvents = 1000;

class SubscribeReactor;

// Every event, and the live subscribers. Lock order: Store::mu_ before SubscribeReactor::mu_.
class Store {
 public:
  void Publish(const v1::PublishRequest& request, v1::PublishResponse* response);
  // Hands `sub` the next matching events after `*cursor` (at most a batch); once none are left,
  // makes it live.
  void ReadOrJoin(size_t* cursor, SubscribeReactor* sub);
  void JoinNow(SubscribeReactor* sub);
  void Leave(SubscribeReactor* sub);

 private:
  absl::Mutex mu_;
  std::vector<EventPtr> events_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> heads_ ABSL_GUARDED_BY(mu_);
  std::vector<SubscribeReactor*> live_ ABSL_GUARDED_BY(mu_);
};

class SubscribeReactor : public grpc::ServerWriteReactor<v1::SubscribeResponse> {
 public:
  SubscribeReactor(Store* store, const v1::SubscribeRequest& request) : store_(store) {
    for (const std::string& p : request.streams()) {
      if (absl::EndsWith(p, ">")) {
        prefixes_.push_back(p.substr(0, p.size() - 1));
      } else {
        exact_.push_back(p);
      }
    }
    v1::SubscribeResponse subscribed;
    subscribed.mutable_subscribed()->set_log_id("reference");
    const bool from_beginning = request.from() == v1::SubscribeRequest::START_BEGINNING;
    {
      absl::MutexLock l(&mu_);
      PushControlLocked(std::move(subscribed));
      catching_up_ = from_beginning;
    }
    if (!from_beginning) store_->JoinNow(this);
    Pump();
  }

  bool Matches(const v1::Event& e) const {
    if (exact_.empty() && prefixes_.empty()) return true;
    for (const std::string& s : exact_) {
      if (e.stream() == s) return true;
    }
    for (const std::string& p : prefixes_) {
      if (absl::StartsWith(e.stream(), p)) return true;
    }
    return false;
  }

  // Called under Store::mu_: live events from publishers.
  void Enqueue(const EventPtr& e) {
    {
      absl::MutexLock l(&mu_);
      queue_.push_back(Item{e, nullptr});
    }
    Pump();
  }
  // Called under Store::mu_: a catch-up chunk, and caught_up after it once the subscriber joins
  // the live set.
  void Append(const std::vector<EventPtr>& chunk, bool joined) {
    absl::MutexLock l(&mu_);
    for (const EventPtr& e : chunk) queue_.push_back(Item{e, nullptr});
    if (joined) {
      catching_up_ = false;
      v1::SubscribeResponse m;
      m.mutable_caught_up()->set_resume_token("0");
      PushControlLocked(std::move(m));
    }
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
      if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    }
    Pump();
  }
  void OnCancel() override {
    absl::MutexLock l(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    store_->Leave(this);
    delete this;
  }

 private:
  // Either an event or a control message.
  struct Item {
    EventPtr event;
    std::unique_ptr<v1::SubscribeResponse> control;
  };

  void PushControlLocked(v1::SubscribeResponse m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.push_back(Item{nullptr, std::make_unique<v1::SubscribeResponse>(std::move(m))});
  }

  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  // Starts the next write when none is in flight: a control message alone, or the queued events
  // (up to a batch) in one message. A subscriber still catching up first reads the next chunk.
  void Pump() {
    bool refill = false;
    {
      absl::MutexLock l(&mu_);
      if (writing_ || finished_) return;
      refill = catching_up_ && queue_.empty();
    }
    if (refill) store_->ReadOrJoin(&cursor_, this);
    absl::MutexLock l(&mu_);
    if (writing_ || finished_ || queue_.empty()) return;
    out_.Clear();
    if (queue_.front().control != nullptr) {
      out_ = std::move(*queue_.front().control);
      queue_.pop_front();
    } else {
      auto* batch = out_.mutable_events();
      for (int n = 0; n < kMaxBatchEvents && !queue_.empty() && queue_.front().event; ++n) {
        *batch->add_events() = *queue_.front().event;
        queue_.pop_front();
      }
    }
    writing_ = true;
    StartWrite(&out_);
  }

  Store* const store_;
  std::vector<std::string> exact_;
  std::vector<std::string> prefixes_;
  size_t cursor_ = 0;  // catch-up: events looked at so far; only one Pump refills at a time
  absl::Mutex mu_;
  bool catching_up_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  v1::SubscribeResponse out_;  // owned by the write in flight
};

void Store::Publish(const v1::PublishRequest& request, v1::PublishResponse* response) {
  absl::MutexLock l(&mu_);
  for (const v1::EventInput& in : request.events()) {
    auto d = std::make_shared<v1::DeliveredEvent>();
    v1::Event* e = d->mutable_event();
    e->set_id(in.id().empty() ? absl::StrCat(events_.size() + 1) : in.id());
    e->set_stream(in.stream());
    e->set_type(in.type());
    e->set_source(in.source());
    e->set_content_type(in.content_type());
    e->set_data(in.data());
    *e->mutable_attributes() = in.attributes();
    e->set_position(events_.size() + 1);
    e->set_seq(++heads_[in.stream()]);
    d->set_resume_token(absl::StrCat(e->position()));
    auto* r = response->add_results();
    r->set_position(e->position());
    r->set_seq(e->seq());
    r->set_id(e->id());
    events_.push_back(d);
    for (SubscribeReactor* s : live_) {
      if (s->Matches(*e)) s->Enqueue(events_.back());
    }
  }
}

void Store::ReadOrJoin(size_t* cursor, SubscribeReactor* sub) {
  absl::MutexLock l(&mu_);
  std::vector<EventPtr> chunk;
  while (*cursor < events_.size() && chunk.size() < kMaxBatchEvents) {
    const EventPtr& e = events_[(*cursor)++];
    if (sub->Matches(e->event())) chunk.push_back(e);
  }
  // With everything handed out, the subscriber goes live under the same lock: no gap, no
  // duplicate at the seam.
  const bool joined = *cursor == events_.size();
  sub->Append(chunk, joined);
  if (joined) live_.push_back(sub);
}

void Store::JoinNow(SubscribeReactor* sub) {
  absl::MutexLock l(&mu_);
  sub->Append({}, /*joined=*/true);
  live_.push_back(sub);
}

void Store::Leave(SubscribeReactor* sub) {
  absl::MutexLock l(&mu_);
  live_.erase(std::remove(live_.begin(), live_.end(), sub), live_.end());
}

// PublishStream: read a request, publish it, write its response, read the next.
class PublishStreamReactor
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
 public:
  explicit PublishStreamReactor(Store* store) : store_(store) { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    response_.Clear();
    store_->Publish(request_, &response_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  Store* const store_;
  v1::PublishRequest request_;
  v1::PublishResponse response_;
};

class Service : public v1::EventStream::CallbackService {
 public:
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override {
    store_.Publish(*request, response);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* PublishStream(
      grpc::CallbackServerContext*) override {
    return new PublishStreamReactor(&store_);
  }
  grpc::ServerWriteReactor<v1::SubscribeResponse>* Subscribe(
      grpc::CallbackServerContext*, const v1::SubscribeRequest* request) override {
    return new SubscribeReactor(&store_, *request);
  }

 private:
  Store store_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Service service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "reference_server: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  std::cerr << "reference_server started on " << absl::GetFlag(FLAGS_listen) << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}
