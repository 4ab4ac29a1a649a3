// hookstream publish: one event from flags, or JSON lines from stdin.
#include <deque>
#include <future>
#include <iostream>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common.h"
#include "event_json.h"
#include "flags.h"
#include "hookstream/publisher.h"
#include "json.h"

namespace hookstream::cli {
namespace {

constexpr size_t kMaxUnprintedResults = 10000;
constexpr absl::Duration kProgressInterval = absl::Seconds(2);

std::string ResultJson(const client::PublishResult& r) {
  v1::PublishResult message;
  message.set_id(r.id);
  message.set_position(r.position);
  message.set_seq(r.seq);
  message.set_duplicate(r.duplicate);
  return MessageToJson(message);
}

std::string ErrorJson(const absl::Status& s) {
  return absl::StrCat("{\"error\":{\"code\":", JsonQuote(absl::StatusCodeToString(s.code())),
                      ",\"message\":", JsonQuote(s.message()), "}}");
}

absl::StatusOr<std::unique_ptr<client::Publisher>> MakePublisher(
    std::shared_ptr<grpc::Channel> channel) {
  client::PublisherOptions options;
  options.default_source = absl::GetFlag(FLAGS_source);
  options.retry_budget = absl::GetFlag(FLAGS_timeout);
  options.attempt_timeout = std::min(absl::GetFlag(FLAGS_timeout), absl::Seconds(10));
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Seconds(1);
  options.configure_context = ConfigureContext;
  return client::Publisher::Create(std::move(channel), options);
}

int PublishOne(client::Publisher& publisher, grpc::Channel& channel) {
  if (absl::GetFlag(FLAGS_type).empty()) return UsageError("publish: --stream needs --type");
  v1::EventInput event;
  event.set_stream(absl::GetFlag(FLAGS_stream));
  event.set_type(absl::GetFlag(FLAGS_type));
  event.set_id(absl::GetFlag(FLAGS_id));
  event.set_data(absl::GetFlag(FLAGS_data));
  std::string content_type = absl::GetFlag(FLAGS_content_type);
  if (content_type.empty() && !event.data().empty()) {
    content_type = IsValidJson(event.data()) ? "application/json" : "text/plain; charset=utf-8";
  }
  event.set_content_type(content_type);
  for (const std::string& kv : absl::GetFlag(FLAGS_attributes)) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("publish: --attributes wants key=value, got \"", kv, "\""));
    }
    (*event.mutable_attributes())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  const int64_t expected_seq = absl::GetFlag(FLAGS_expected_seq);
  if (expected_seq < -1) return UsageError("publish: --expected_seq must be >= 0, or -1");
  if (expected_seq >= 0) event.set_expected_seq(static_cast<uint64_t>(expected_seq));

  absl::StatusOr<client::PublishResult> result = publisher.Publish(std::move(event)).get();
  if (!result.ok()) {
    PrintError(DescribeRpcError("Publish", result.status(), channel));
    return result.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                        : kExitServerError;
  }
  std::cout << ResultJson(*result) << std::endl;
  return kExitOk;
}

int PublishLines(client::Publisher& publisher, grpc::Channel& channel) {
  struct Outstanding {
    int line;
    std::future<absl::StatusOr<client::PublishResult>> result;
  };
  std::deque<Outstanding> outstanding;
  int64_t read = 0, acknowledged = 0;
  int exit_code = kExitOk;
  const absl::Time start = absl::Now();
  absl::Time last_progress = start;
  bool progress_shown = false;

  // Prints results in input order; with `wait`, waits for every one.
  auto print_ready = [&](bool wait) {
    while (!outstanding.empty()) {
      Outstanding& front = outstanding.front();
      if (!wait && outstanding.size() < kMaxUnprintedResults &&
          front.result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        break;
      }
      absl::StatusOr<client::PublishResult> r = front.result.get();
      if (r.ok()) {
        ++acknowledged;
        std::cout << ResultJson(*r) << "\n";
      } else {
        std::cout << ErrorJson(r.status()) << "\n";
        PrintError(absl::StrCat("line ", front.line, ": ",
                                DescribeRpcError("Publish", r.status(), channel)));
        const int code = r.status().code() == absl::StatusCode::kInvalidArgument ? kExitBadInput
                                                                                 : kExitServerError;
        if (exit_code == kExitOk || code == kExitServerError) exit_code = code;
      }
      outstanding.pop_front();
    }
    if (absl::Now() - last_progress >= kProgressInterval) {
      last_progress = absl::Now();
      progress_shown = true;
      std::cerr << "hookstream: " << read << " events read, " << acknowledged << " acknowledged"
                << std::endl;
    }
  };

  std::string line;
  int line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<v1::EventInput> event = EventFromJsonLine(line, absl::GetFlag(FLAGS_source));
    if (!event.ok()) {
      // Stop here: everything before this line is published, nothing after it.
      publisher.Flush().IgnoreError();
      print_ready(true);
      std::cout.flush();
      PrintError(absl::StrCat("line ", line_number, ": ", event.status().message(),
                              "; stopped there (", acknowledged, " events before it published)"));
      return kExitBadInput;
    }
    ++read;
    outstanding.push_back({line_number, publisher.Publish(*std::move(event))});
    print_ready(false);
  }
  publisher.Flush().IgnoreError();
  print_ready(true);
  std::cout.flush();
  if (progress_shown) {
    std::cerr << "hookstream: done: " << read << " events read, " << acknowledged
              << " acknowledged in " << absl::FormatDuration(absl::Now() - start) << std::endl;
  }
  return exit_code;
}

}  // namespace

int RunPublish(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return UsageError(
        absl::StrCat("publish takes no arguments, got \"", absl::StrJoin(args, " "), "\""));
  }
  const bool single = !absl::GetFlag(FLAGS_stream).empty();
  if (!single) {
    const std::pair<const char*, bool> single_only[] = {
        {"type", !absl::GetFlag(FLAGS_type).empty()},
        {"data", !absl::GetFlag(FLAGS_data).empty()},
        {"id", !absl::GetFlag(FLAGS_id).empty()},
        {"content_type", !absl::GetFlag(FLAGS_content_type).empty()},
        {"attributes", !absl::GetFlag(FLAGS_attributes).empty()},
        {"expected_seq", absl::GetFlag(FLAGS_expected_seq) != -1},
    };
    for (const auto& [name, set] : single_only) {
      if (set) {
        return UsageError(absl::StrCat("publish: --", name,
                                       " needs --stream (one event from flags); JSON lines on "
                                       "stdin carry their own fields"));
      }
    }
  }
  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  absl::StatusOr<std::unique_ptr<client::Publisher>> publisher = MakePublisher(channel);
  if (!publisher.ok()) return UsageError(publisher.status().message());
  return single ? PublishOne(**publisher, *channel) : PublishLines(**publisher, *channel);
}

}  // namespace hookstream::cli
