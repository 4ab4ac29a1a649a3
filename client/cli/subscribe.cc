// hookstream subscribe: events as JSON lines on stdout, control messages on stderr.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common.h"
#include "event_json.h"
#include "flags.h"
#include "hookstream/subscriber.h"
#include "json.h"

namespace hookstream::cli {
namespace {

std::atomic<bool> stop_requested{false};

void OnStopSignal(int) { stop_requested = true; }

client::StartPoint ParseFrom(const std::string& from) {
  if (from.empty() || from == "now") return client::StartPoint::Now();
  if (from == "beginning") return client::StartPoint::Beginning();
  if (from == "last") return client::StartPoint::LastPerStream();
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, from, &time, &error)) {
    return client::StartPoint::Time(time);
  }
  return client::StartPoint::Token(from);
}

std::string Quoted(uint64_t n) { return absl::StrCat("\"", n, "\""); }

std::string NoticeJson(const client::Notice& n) {
  using Kind = client::Notice::Kind;
  switch (n.kind) {
    case Kind::kSubscribed:
      return absl::StrCat("{\"subscribed\":{\"log_id\":", JsonQuote(n.log_id),
                          ",\"head_position\":", Quoted(n.head_position), "}}");
    case Kind::kCaughtUp:
      return "{\"caught_up\":{}}";
    case Kind::kFellBehind:
      return "{\"fell_behind\":{}}";
    case Kind::kCheckpoint:
      return absl::StrCat("{\"checkpoint\":{\"position\":", Quoted(n.position), "}}");
    case Kind::kHeartbeat:
      return "{\"heartbeat\":{}}";
    case Kind::kSnapshotEnd:
      return "{\"snapshot_end\":{}}";
    case Kind::kDisconnected:
      return absl::StrCat(
          "{\"disconnected\":{\"code\":", JsonQuote(absl::StatusCodeToString(n.status.code())),
          ",\"message\":", JsonQuote(n.status.message()), ",\"attempt\":", n.attempt,
          ",\"retry_in\":", JsonQuote(absl::FormatDuration(n.retry_in)), "}}");
  }
  return "{}";
}

std::string GapJson(const client::Gap& g) {
  if (g.kind == client::Gap::Kind::kServerGap) {
    return absl::StrCat("{\"gap\":{\"from_position\":", Quoted(g.from_position),
                        ",\"to_position\":", Quoted(g.to_position), "}}");
  }
  return absl::StrCat("{\"seq_break\":{\"stream\":", JsonQuote(g.stream),
                      ",\"expected_seq\":", Quoted(g.expected_seq),
                      ",\"got_seq\":", Quoted(g.got_seq), ",\"message\":", JsonQuote(g.ToString()),
                      "}}");
}

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return kExitTokenUnusable;
    case absl::StatusCode::kInvalidArgument:
      return absl::StrContains(s.message(), "resume_token") ? kExitTokenUnusable : kExitUsage;
    default:
      return kExitServerError;
  }
}

// `origin`: where the token came from ("--from" or the token file), for the message.
std::string TokenHint(const absl::Status& s, const std::string& origin) {
  if (ExitCodeFor(s) != kExitTokenUnusable) return "";
  switch (s.code()) {
    case absl::StatusCode::kOutOfRange:
      return absl::StrCat("; the resume token (", origin,
                          ") expired: its events are no longer retained");
    case absl::StatusCode::kFailedPrecondition:
      return absl::StrCat("; the resume token (", origin,
                          ") does not belong to this server's log, or is ahead of it");
    default:
      if (origin == "--from") {
        return "; --from is not beginning, now, last, an RFC 3339 time or a valid resume token";
      }
      return absl::StrCat("; the resume token is damaged (", origin, ")");
  }
}

}  // namespace

int RunSubscribe(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return UsageError(
        absl::StrCat("subscribe takes no arguments, got \"", absl::StrJoin(args, " "), "\""));
  }
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count < 0) return UsageError("subscribe: --count must be >= 0");
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  const bool quiet = absl::GetFlag(FLAGS_quiet);

  client::SubscriberOptions options;
  options.streams = absl::GetFlag(FLAGS_streams);
  options.types = absl::GetFlag(FLAGS_types);
  options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat);
  options.backoff.initial = absl::Milliseconds(100);
  options.backoff.max = absl::Seconds(5);
  options.configure_context = ConfigureContext;
  options.start = ParseFrom(absl::GetFlag(FLAGS_from));
  std::string token_origin = "--from";
  if (!token_file.empty()) {
    absl::StatusOr<std::string> stored = ReadTokenFile(token_file);
    if (!stored.ok()) {
      PrintError(stored.status().message());
      return kExitServerError;
    }
    if (!stored->empty()) {
      options.start = client::StartPoint::Token(*stored);
      token_origin = token_file;
    }
  }
  if (!quiet) {
    options.on_notice = [](const client::Notice& n) { std::cerr << NoticeJson(n) << std::endl; };
  }
  options.on_gap = [](const client::Gap& g) { std::cerr << GapJson(g) << std::endl; };

  std::shared_ptr<grpc::Channel> channel = MakeChannel();
  absl::StatusOr<std::unique_ptr<client::Subscriber>> subscriber =
      client::Subscriber::Start(channel, std::move(options));
  if (!subscriber.ok()) return UsageError(subscriber.status().message());

  signal(SIGINT, OnStopSignal);
  signal(SIGTERM, OnStopSignal);
  int exit_code = kExitOk;
  bool save_token = true;
  int64_t delivered = 0;
  while (!stop_requested) {
    // A short wait, so that a signal is noticed soon.
    absl::StatusOr<client::Delivery> d = (*subscriber)->Next(absl::Milliseconds(250));
    if (absl::IsDeadlineExceeded(d.status())) continue;
    if (!d.ok()) {
      PrintError(absl::StrCat(DescribeRpcError("Subscribe", d.status(), *channel),
                              TokenHint(d.status(), token_origin)));
      exit_code = ExitCodeFor(d.status());
      break;
    }
    std::cout << DeliveryToJsonLine(d->event, d->resume_token) << "\n";
    std::cout.flush();
    if (!std::cout) {
      // Not handed over: the token file keeps the previous event's token.
      PrintError("cannot write to stdout");
      exit_code = kExitServerError;
      save_token = false;
      break;
    }
    if (!token_file.empty()) {
      if (absl::Status s = WriteTokenFile(token_file, (*subscriber)->last_token()); !s.ok()) {
        PrintError(s.message());
        exit_code = kExitServerError;
        save_token = false;
        break;
      }
    }
    if (count > 0 && ++delivered >= count) break;
  }
  // The last token may have moved past the last event (checkpoints of a filtered subscription).
  const std::string last = (*subscriber)->last_token();
  (*subscriber)->Stop();
  if (save_token && !token_file.empty() && !last.empty()) {
    if (absl::Status s = WriteTokenFile(token_file, last); !s.ok()) {
      PrintError(s.message());
      if (exit_code == kExitOk) exit_code = kExitServerError;
    }
  }
  return exit_code;
}

}  // namespace hookstream::cli
