#include "tests/testutil/subscribe_client.h"

namespace hookstream::testing {

SubscribeClient::SubscribeClient(v1::EventStream::Stub& stub,
                                 const v1::SubscribeRequest& request,
                                 const std::string& bearer_token) {
  if (!bearer_token.empty()) context_.AddMetadata("authorization", "Bearer " + bearer_token);
  thread_ = std::thread([this, &stub, request] { Run(stub, request); });
}

SubscribeClient::~SubscribeClient() {
  Cancel();
  Resume();
  thread_.join();
}

void SubscribeClient::Run(v1::EventStream::Stub& stub, v1::SubscribeRequest request) {
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader =
      stub.Subscribe(&context_, request);
  v1::SubscribeResponse msg;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](bool* paused) { return !*paused; }, &paused_));
    }
    if (!reader->Read(&msg)) break;
    absl::MutexLock l(&mu_);
    switch (msg.message_case()) {
      case v1::SubscribeResponse::kEvents:
        for (const auto& e : msg.events().events()) {
          state_.events.push_back(e);
          state_.last_token = e.resume_token();
        }
        break;
      case v1::SubscribeResponse::kCheckpoint:
        ++state_.checkpoints;
        state_.last_token = msg.checkpoint().resume_token();
        break;
      case v1::SubscribeResponse::kCaughtUp:
        ++state_.caught_up;
        state_.last_token = msg.caught_up().resume_token();
        break;
      case v1::SubscribeResponse::kHeartbeat:
        ++state_.heartbeats;
        state_.last_token = msg.heartbeat().resume_token();
        break;
      case v1::SubscribeResponse::kFellBehind:
        ++state_.fell_behind;
        break;
      default:
        break;
    }
    state_.messages.push_back(std::move(msg));
    msg.Clear();
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock l(&mu_);
  state_.finished = status;
}

bool SubscribeClient::WaitUntil(const std::function<bool(const State&)>& pred,
                                absl::Duration timeout) {
  struct Arg {
    const std::function<bool(const State&)>* pred;
    const State* state;
  };
  absl::MutexLock l(&mu_);
  Arg arg{&pred, &state_};
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](Arg* a) { return (*a->pred)(*a->state); }, &arg), timeout);
}

bool SubscribeClient::WaitForEvents(size_t n, absl::Duration timeout) {
  return WaitUntil([n](const State& s) { return s.events.size() >= n || s.finished; }, timeout) &&
         Snapshot().events.size() >= n;
}

bool SubscribeClient::WaitForCaughtUp(absl::Duration timeout) {
  return WaitUntil([](const State& s) { return s.caught_up > 0 || s.finished; }, timeout) &&
         Snapshot().caught_up > 0;
}

grpc::Status SubscribeClient::WaitForFinish(absl::Duration timeout) {
  if (!WaitUntil([](const State& s) { return s.finished.has_value(); }, timeout)) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "test: call did not finish in time");
  }
  return *Snapshot().finished;
}

void SubscribeClient::Cancel() { context_.TryCancel(); }

void SubscribeClient::Pause() {
  absl::MutexLock l(&mu_);
  paused_ = true;
}

void SubscribeClient::Resume() {
  absl::MutexLock l(&mu_);
  paused_ = false;
}

SubscribeClient::State SubscribeClient::Snapshot() {
  absl::MutexLock l(&mu_);
  return state_;
}

v1::SubscribeRequest FromBeginning(std::vector<std::string> streams) {
  v1::SubscribeRequest r;
  r.set_from(v1::SubscribeRequest::START_BEGINNING);
  for (auto& s : streams) r.add_streams(s);
  return r;
}

v1::SubscribeRequest FromToken(const std::string& token, std::vector<std::string> streams) {
  v1::SubscribeRequest r;
  r.set_resume_token(token);
  for (auto& s : streams) r.add_streams(s);
  return r;
}

}  // namespace hookstream::testing
