#include "tests/client/fake_event_stream.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hookstream::testing {

FakeEventStream::FakeEventStream(Script script) : script_(std::move(script)) {
  grpc::ServerBuilder builder;
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  channel_ = server_->InProcessChannel(grpc::ChannelArguments());
}

FakeEventStream::~FakeEventStream() {
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  server_->Wait();
}

std::vector<v1::SubscribeRequest> FakeEventStream::requests() {
  absl::MutexLock l(&mu_);
  return requests_;
}

bool FakeEventStream::WaitForCalls(int n, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  struct Arg {
    FakeEventStream* self;
    size_t n;
  } arg{this, static_cast<size_t>(n)};
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->self->requests_.size() >= a->n; },
          &arg),
      timeout);
}

bool FakeEventStream::WaitFor(const std::string& name, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  struct Arg {
    FakeEventStream* self;
    const std::string* name;
  } arg{this, &name};
  return mu_.AwaitWithTimeout(absl::Condition(
                                  +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return a->self->shutting_down_ ||
                                           std::find(a->self->released_.begin(),
                                                     a->self->released_.end(),
                                                     *a->name) != a->self->released_.end();
                                  },
                                  &arg),
                              timeout) &&
         !shutting_down_;
}

void FakeEventStream::Release(const std::string& name) {
  absl::MutexLock l(&mu_);
  released_.push_back(name);
}

grpc::Status FakeEventStream::Subscribe(grpc::ServerContext* context,
                                        const v1::SubscribeRequest* request, Writer* writer) {
  int call;
  {
    absl::MutexLock l(&mu_);
    call = static_cast<int>(requests_.size());
    requests_.push_back(*request);
  }
  return script_(call, *request, *writer, *this);
}

v1::DeliveredEvent Delivered(const std::string& stream, uint64_t seq, uint64_t position) {
  v1::DeliveredEvent d;
  d.mutable_event()->set_stream(stream);
  d.mutable_event()->set_type("t");
  d.mutable_event()->set_seq(seq);
  d.mutable_event()->set_position(position);
  d.mutable_event()->set_id(absl::StrCat("id-", position));
  d.set_resume_token(absl::StrCat("t", position));
  return d;
}

v1::SubscribeResponse Subscribed() {
  v1::SubscribeResponse m;
  m.mutable_subscribed()->set_log_id("fake");
  return m;
}

v1::SubscribeResponse Events(std::vector<v1::DeliveredEvent> events) {
  v1::SubscribeResponse m;
  for (auto& e : events) *m.mutable_events()->add_events() = std::move(e);
  return m;
}

v1::SubscribeResponse CheckpointMessage(const std::string& token, uint64_t position) {
  v1::SubscribeResponse m;
  m.mutable_checkpoint()->set_resume_token(token);
  m.mutable_checkpoint()->set_position(position);
  return m;
}

v1::SubscribeResponse HeartbeatMessage(const std::string& token) {
  v1::SubscribeResponse m;
  m.mutable_heartbeat()->set_resume_token(token);
  return m;
}

v1::SubscribeResponse GapMessage(uint64_t from, uint64_t to) {
  v1::SubscribeResponse m;
  m.mutable_gap()->set_from_position(from);
  m.mutable_gap()->set_to_position(to);
  return m;
}

}  // namespace hookstream::testing
