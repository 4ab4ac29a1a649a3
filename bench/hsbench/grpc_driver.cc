// The gRPC driver: hookstream's EventStream API, spoken to hookstreamd and to the do-nothing
// reference server alike (bench/reference_server.cc), through the generated C++ stubs.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/hsbench/driver.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_callback.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

namespace hsbench {
namespace {

using hookstream::v1::EventStream;
using hookstream::v1::PublishRequest;
using hookstream::v1::PublishResponse;
using hookstream::v1::SubscribeRequest;
using hookstream::v1::SubscribeResponse;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// Distinct channel arguments give each channel its own TCP connection.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  static std::atomic<int> next{0};
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt("hsbench.channel", next++);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

class GrpcPublisher : public Publisher {
 public:
  GrpcPublisher(const DriverOptions& options, const std::string& prefix)
      : options_(options), stub_(EventStream::NewStub(NewChannel(options.address))) {
    static std::atomic<int> publishers{0};
    // Ids are set (as a producer that retries safely would), under a source unique to this
    // run: the server would rightly de-duplicate ids repeated from an earlier run.
    source_ =
        absl::StrCat("hsbench-", getpid(), "-", absl::ToUnixNanos(absl::Now()), "-", publishers++);
    for (int k = 0; k < options.streams; ++k) names_.push_back(absl::StrCat(prefix, "/s", k));
  }

  ~GrpcPublisher() override {
    if (stream_ != nullptr) {
      context_.TryCancel();
      reader_.join();
    }
  }

  absl::Status Send(int stream_index, absl::string_view payload) override {
    auto* e = pending_.add_events();
    e->set_stream(names_[stream_index]);
    e->set_type("bench.event");
    e->set_source(source_);
    e->set_id(absl::StrCat(next_id_++));
    e->set_data(payload.data(), payload.size());
    if (pending_.events_size() >= options_.batch) return Kick();
    return absl::OkStatus();
  }

  absl::Status Kick() override {
    if (pending_.events_size() == 0) return absl::OkStatus();
    absl::Status s = options_.publish_mode == "stream" ? Write() : Call();
    pending_.Clear();
    return s;
  }

  absl::Status Finish() override {
    if (absl::Status s = Kick(); !s.ok()) return s;
    if (stream_ == nullptr) return absl::OkStatus();
    stream_->WritesDone();
    reader_.join();
    grpc::Status s = stream_->Finish();
    stream_.reset();
    return FromGrpc(s, "PublishStream");
  }

 private:
  absl::Status Call() {
    grpc::ClientContext context;
    PublishResponse response;
    return FromGrpc(stub_->Publish(&context, pending_, &response), "Publish");
  }

  absl::Status Write() {
    if (stream_ == nullptr) {
      stream_ = stub_->PublishStream(&context_);
      reader_ = std::thread([this] {
        PublishResponse response;
        while (stream_->Read(&response)) {
          std::lock_guard<std::mutex> l(mu_);
          --outstanding_;
          cv_.notify_all();
        }
        std::lock_guard<std::mutex> l(mu_);
        ended_ = true;
        cv_.notify_all();
      });
    }
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return outstanding_ < options_.inflight || ended_; });
      if (ended_) return absl::UnavailableError("PublishStream ended early");
      ++outstanding_;
    }
    if (!stream_->Write(pending_)) return absl::UnavailableError("PublishStream write failed");
    return absl::OkStatus();
  }

  const DriverOptions options_;
  std::unique_ptr<EventStream::Stub> stub_;
  std::vector<std::string> names_;
  std::string source_;
  int64_t next_id_ = 0;
  PublishRequest pending_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<PublishRequest, PublishResponse>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;  // guarded by mu_
  bool ended_ = false;   // guarded by mu_
};

// One Subscribe call read by a thread of its own.
class GrpcSubscription : public Subscription {
 public:
  GrpcSubscription(const DriverOptions& options, const std::string& prefix, bool from_beginning,
                   EventSink sink)
      : stub_(EventStream::NewStub(NewChannel(options.address))), sink_(std::move(sink)) {
    SubscribeRequest request;
    request.add_streams(absl::StrCat(prefix, "/>"));
    request.set_from(from_beginning ? SubscribeRequest::START_BEGINNING
                                    : SubscribeRequest::START_NOW);
    reader_ = stub_->Subscribe(&context_, request);
    thread_ = std::thread([this] { Run(); });
  }

  ~GrpcSubscription() override {
    context_.TryCancel();
    thread_.join();
  }

  // Waits for caught_up: from then on every new event is delivered.
  absl::Status WaitLive() {
    if (live_.get_future().wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return absl::DeadlineExceededError("subscription did not go live in 30 s");
    }
    return live_ok_ ? absl::OkStatus() : absl::UnavailableError("subscription ended");
  }

 private:
  void Run() {
    SubscribeResponse message;
    bool live = false;
    while (reader_->Read(&message)) {
      if (message.has_events()) {
        for (const auto& d : message.events().events()) sink_(d.event().data());
      } else if (message.has_caught_up() && !live) {
        live = true;
        live_ok_ = true;
        live_.set_value();
      }
    }
    if (!live) live_.set_value();
  }

  std::unique_ptr<EventStream::Stub> stub_;
  EventSink sink_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<SubscribeResponse>> reader_;
  std::promise<void> live_;
  std::atomic<bool> live_ok_{false};
  std::thread thread_;
};

// An idle subscription held without a thread (callback API); counts itself live on caught_up.
class IdleReader : public grpc::ClientReadReactor<SubscribeResponse> {
 public:
  IdleReader(EventStream::Stub& stub, const std::string& stream, std::atomic<int>* live,
             std::atomic<int>* done)
      : live_(live), done_(done) {
    request_.add_streams(stream);
    stub.async()->Subscribe(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_caught_up()) ++*live_;
    StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override { ++*done_; }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  SubscribeRequest request_;
  SubscribeResponse response_;
  std::atomic<int>* live_;
  std::atomic<int>* done_;
};

class IdleSet : public Subscription {
 public:
  absl::Status Open(const DriverOptions& options, int count, int per_connection) {
    const int connections = (count + per_connection - 1) / per_connection;
    for (int c = 0; c < connections; ++c)
      stubs_.push_back(EventStream::NewStub(NewChannel(options.address)));
    for (int i = 0; i < count; ++i) {
      readers_.push_back(std::make_unique<IdleReader>(*stubs_[i / per_connection],
                                                      absl::StrCat("idle/", i), &live_, &done_));
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(180);
    while (live_.load() < count) {
      if (done_.load() > 0) return absl::UnavailableError("an idle subscription ended");
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("only ", live_.load(), " of ", count, " subscriptions went live"));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return absl::OkStatus();
  }
  ~IdleSet() override {
    for (auto& r : readers_) r->Cancel();
    // Reactors must outlive their calls.
    while (done_.load() < static_cast<int>(readers_.size())) absl::SleepFor(absl::Milliseconds(5));
  }

 private:
  std::vector<std::unique_ptr<EventStream::Stub>> stubs_;
  std::vector<std::unique_ptr<IdleReader>> readers_;
  std::atomic<int> live_{0};
  std::atomic<int> done_{0};
};

class GrpcDriver : public Driver {
 public:
  explicit GrpcDriver(const DriverOptions& options) : options_(options) {}

  absl::StatusOr<std::unique_ptr<Publisher>> NewPublisher(const std::string& prefix) override {
    return std::make_unique<GrpcPublisher>(options_, prefix);
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& prefix,
                                                          bool from_beginning,
                                                          EventSink sink) override {
    auto sub =
        std::make_unique<GrpcSubscription>(options_, prefix, from_beginning, std::move(sink));
    if (!from_beginning) {
      if (absl::Status s = sub->WaitLive(); !s.ok()) return s;
    }
    return sub;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> HoldIdle(int count, int per_connection) override {
    auto set = std::make_unique<IdleSet>();
    if (absl::Status s = set->Open(options_, count, per_connection); !s.ok()) return s;
    return set;
  }

 private:
  const DriverOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> NewGrpcDriver(const DriverOptions& options) {
  return std::make_unique<GrpcDriver>(options);
}

}  // namespace hsbench
