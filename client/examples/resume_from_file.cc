// Example: a subscriber that survives its own restarts.
//
// It keeps the resume token of the last event it processed in a file. Started again, it
// continues right after that event: nothing missed, nothing twice. While it runs, the
// Subscriber resumes by itself after disconnects and server restarts.
//
//   resume_from_file SERVER TOKEN_FILE [MAX_EVENTS [STREAM_PATTERN...]]
//   resume_from_file 127.0.0.1:7070 /tmp/cam.token 0 '__defaultVhost__/live/>'
//
// MAX_EVENTS > 0 exits after that many events (try: run, publish, stop, publish, run again).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <string>

#include "hookstream/client.h"

namespace {

std::atomic<bool> interrupted{false};

std::string ReadToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  in >> token;  // Empty when the file does not exist yet.
  return token;
}

// Write-then-rename: a crash leaves the old token or the new one, never half of one.
bool WriteToken(const std::string& path, const std::string& token) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << token << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " SERVER TOKEN_FILE [MAX_EVENTS [STREAM_PATTERN...]]\n";
    return 2;
  }
  const std::string server = argv[1];
  const std::string token_file = argv[2];
  const long max_events = argc > 3 ? std::stol(argv[3]) : 0;

  hookstream::client::SubscriberOptions options;
  for (int i = 4; i < argc; ++i) options.streams.push_back(argv[i]);
  const std::string token = ReadToken(token_file);
  options.start = token.empty() ? hookstream::client::StartPoint::Beginning()
                                : hookstream::client::StartPoint::Token(token);
  std::cerr << (token.empty() ? "starting from the beginning\n" : "resuming from the token file\n");

  std::promise<int> exit_code;
  std::atomic<bool> exiting{false};
  auto finish = [&](int code) {
    if (!exiting.exchange(true)) exit_code.set_value(code);
  };
  long processed = 0;  // Only touched by the callbacks, which run one at a time.
  hookstream::client::Subscriber* self = nullptr;

  // Callbacks run on the Subscriber's delivery thread, one at a time, in order.
  options.on_event = [&](const hookstream::client::Delivery& d) {
    std::cout << d.event.stream() << " #" << d.event.seq() << " " << d.event.type() << " "
              << d.event.data() << std::endl;  // "Process" the event...
    // ...then record that it was processed. last_token() also covers checkpoints.
    if (!WriteToken(token_file, self->last_token())) {
      std::cerr << "cannot write " << token_file << "\n";
      self->Stop();  // No callback after this one.
      finish(1);
      return;
    }
    if (max_events > 0 && ++processed == max_events) {
      self->Stop();
      finish(0);
    }
  };
  options.on_error = [&](const absl::Status& status) {
    // OUT_OF_RANGE (token expired), FAILED_PRECONDITION (token of another log), ...: a person
    // must decide; never skip silently.
    std::cerr << "subscription ended: " << status << "\n";
    finish(1);
  };
  options.on_gap = [](const hookstream::client::Gap& gap) {
    std::cerr << "GAP: " << gap.ToString() << "\n";
  };
  options.on_notice = [](const hookstream::client::Notice& notice) {
    std::cerr << notice.ToString() << "\n";
  };

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
  absl::StatusOr<std::unique_ptr<hookstream::client::Subscriber>> subscriber =
      hookstream::client::Subscriber::Start(channel, std::move(options));
  if (!subscriber.ok()) {
    std::cerr << subscriber.status() << "\n";
    return 2;
  }
  self = subscriber->get();

  signal(SIGINT, [](int) { interrupted = true; });
  signal(SIGTERM, [](int) { interrupted = true; });
  std::future<int> done = exit_code.get_future();
  while (done.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    if (interrupted) {
      (*subscriber)->Stop();
      // A final save: checkpoints after the last event move the token on.
      const std::string last = (*subscriber)->last_token();
      if (!last.empty()) WriteToken(token_file, last);
      return 0;
    }
  }
  return done.get();
}
