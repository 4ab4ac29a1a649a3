// hookstream_bench: load generator for a running hookstreamd.
//
//   hookstream_bench publish --server=127.0.0.1:7070 --events=200000 --batch=100 --size=256
//       --streams=1000 --connections=4
//   hookstream_bench publish_stream ...   (pipelined over PublishStream, --inflight per call)
//   hookstream_bench catchup --server=... --events=200000
//
// Prints one line of key=value figures per run, so scripts can collect medians.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_callback.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "hookstreamd gRPC address");
ABSL_FLAG(int64_t, events, 200000, "events to publish / read");
ABSL_FLAG(int, batch, 100, "events per PublishRequest");
ABSL_FLAG(int, size, 256, "payload bytes per event");
ABSL_FLAG(int, streams, 1000, "distinct streams");
ABSL_FLAG(int, connections, 4, "concurrent publishers, each on its own channel");
ABSL_FLAG(int, inflight, 16, "publish_stream: requests in flight per call");
ABSL_FLAG(int, count, 1000, "idle: subscriptions to hold");
ABSL_FLAG(int, channels, 10, "idle: connections the subscriptions are spread over");
ABSL_FLAG(double, hold_seconds, 10, "idle/slow: how long to hold the subscriptions");

namespace {

using Clock = std::chrono::steady_clock;
using hookstream::v1::EventStream;

std::shared_ptr<grpc::Channel> NewChannel(int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt("bench.channel", index);  // Distinct args: one TCP connection per channel.
  return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(),
                                   args);
}

const std::string& RunId() {
  static const std::string id = absl::StrCat(getpid(), "-", absl::ToUnixNanos(absl::Now()));
  return id;
}

hookstream::v1::PublishRequest MakeBatch(int worker, int64_t first, int n) {
  static const std::string payload(absl::GetFlag(FLAGS_size), 'x');
  hookstream::v1::PublishRequest req;
  const int streams = absl::GetFlag(FLAGS_streams);
  for (int i = 0; i < n; ++i) {
    auto* e = req.add_events();
    const int64_t k = first + i;
    e->set_stream(absl::StrCat("bench/s", k % streams));
    e->set_type("bench.event");
    // A source unique to this run: ids repeat across runs, and the server would (rightly)
    // de-duplicate them inside its window.
    e->set_source(absl::StrCat("bench-", RunId(), "-", worker));
    e->set_id(absl::StrCat(worker, "-", k));
    e->set_data(payload);
  }
  return req;
}

int Publish(bool pipelined) {
  const int64_t total = absl::GetFlag(FLAGS_events);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int workers = absl::GetFlag(FLAGS_connections);
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      auto stub = EventStream::NewStub(NewChannel(w));
      if (!pipelined) {
        while (true) {
          const int64_t first = next.fetch_add(batch);
          if (first >= total) return;
          auto req = MakeBatch(w, first, static_cast<int>(std::min<int64_t>(batch, total - first)));
          hookstream::v1::PublishResponse resp;
          grpc::ClientContext ctx;
          grpc::Status s = stub->Publish(&ctx, req, &resp);
          if (!s.ok()) {
            std::cerr << "publish failed: " << s.error_message() << "\n";
            failed = true;
            return;
          }
        }
      }
      grpc::ClientContext ctx;
      auto stream = stub->PublishStream(&ctx);
      std::atomic<int64_t> sent{0};
      std::thread reader([&] {
        hookstream::v1::PublishResponse resp;
        while (stream->Read(&resp)) sent.fetch_sub(1);
      });
      const int inflight = absl::GetFlag(FLAGS_inflight);
      while (true) {
        const int64_t first = next.fetch_add(batch);
        if (first >= total) break;
        while (sent.load() >= inflight) std::this_thread::yield();
        sent.fetch_add(1);
        if (!stream->Write(MakeBatch(w, first, static_cast<int>(std::min<int64_t>(batch, total - first))))) break;
      }
      stream->WritesDone();
      reader.join();
      grpc::Status s = stream->Finish();
      if (!s.ok()) {
        std::cerr << "publish_stream failed: " << s.error_message() << "\n";
        failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "workload=" << (pipelined ? "publish_stream" : "publish") << " events=" << total
            << " batch=" << batch << " size=" << absl::GetFlag(FLAGS_size)
            << " connections=" << workers << " seconds=" << secs
            << " events_per_sec=" << static_cast<int64_t>(total / secs) << "\n";
  return failed ? 1 : 0;
}

int CatchUp() {
  const int64_t want = absl::GetFlag(FLAGS_events);
  auto stub = EventStream::NewStub(NewChannel(0));
  grpc::ClientContext ctx;
  hookstream::v1::SubscribeRequest req;
  req.set_from(hookstream::v1::SubscribeRequest::START_BEGINNING);
  const auto start = Clock::now();
  auto reader = stub->Subscribe(&ctx, req);
  hookstream::v1::SubscribeResponse msg;
  int64_t got = 0;
  int64_t messages = 0;
  while (got < want && reader->Read(&msg)) {
    ++messages;
    if (msg.has_events()) got += msg.events().events_size();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  ctx.TryCancel();
  std::cout << "workload=catchup events=" << got << " messages=" << messages
            << " seconds=" << secs << " events_per_sec=" << static_cast<int64_t>(got / secs)
            << "\n";
  return got >= want ? 0 : 1;
}

// Holds --count subscriptions (each on its own stream, START_NOW) spread over --channels
// connections, without a thread each; prints "ready" once all are live, then holds.
class IdleReader : public grpc::ClientReadReactor<hookstream::v1::SubscribeResponse> {
 public:
  IdleReader(EventStream::Stub& stub, const std::string& stream, std::atomic<int>* live,
             bool read_after_first)
      : live_(live), read_after_first_(read_after_first) {
    request_.add_streams(stream);
    stub.async()->Subscribe(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_caught_up()) ++*live_;
    // A slow reader stops reading once it is live: everything else piles up in the server.
    if (read_after_first_ || !response_.has_caught_up()) StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override {}
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  hookstream::v1::SubscribeRequest request_;
  hookstream::v1::SubscribeResponse response_;
  std::atomic<int>* live_;
  bool read_after_first_;
};

int Hold(bool slow) {
  const int count = slow ? 1 : absl::GetFlag(FLAGS_count);
  const int channels = std::max(1, std::min(count, absl::GetFlag(FLAGS_channels)));
  std::vector<std::unique_ptr<EventStream::Stub>> stubs;
  for (int c = 0; c < channels; ++c) stubs.push_back(EventStream::NewStub(NewChannel(c)));
  std::atomic<int> live{0};
  std::vector<std::unique_ptr<IdleReader>> readers;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    // The slow reader subscribes to everything; idle ones each to a stream nobody publishes to.
    readers.push_back(std::make_unique<IdleReader>(
        *stubs[i % channels], slow ? "bench/>" : absl::StrCat("idle/", i), &live, !slow));
  }
  while (live.load() < count) {
    if (std::chrono::duration<double>(Clock::now() - start).count() > 120) {
      std::cerr << "only " << live.load() << " of " << count << " subscriptions went live\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::cout << "ready subscriptions=" << count << " channels=" << channels << std::endl;
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_hold_seconds)));
  for (auto& r : readers) r->Cancel();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string mode = args.size() > 1 ? args[1] : "";
  if (mode == "publish") return Publish(false);
  if (mode == "publish_stream") return Publish(true);
  if (mode == "catchup") return CatchUp();
  if (mode == "idle") return Hold(false);
  if (mode == "slow") return Hold(true);
  std::cerr << "usage: hookstream_bench publish|publish_stream|catchup|idle|slow [--flags]\n";
  return 2;
}
