// hookstream: the command-line client. See client/README.md.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common.h"
#include "flags.h"

namespace {

namespace cli = hookstream::cli;

constexpr char kUsage[] = R"(hookstream: command-line client of a hookstream server.

Usage: hookstream [--server=host:port] COMMAND [flags]

Commands:
  publish --stream=S --type=T [--data=D] [--id=I] [--source=SRC] [--content_type=C]
          [--attributes=k=v,...] [--expected_seq=N]
      Publishes one event; prints its result as JSON.
  publish < events.jsonl
      Publishes JSON lines, each {"stream","type","id","source","attributes","data"}
      ("data": any JSON value, stored as JSON text; also "time" (RFC 3339), "expected_seq").
      Prints one result (or {"error":...}) per line, in order; progress on stderr.
  subscribe [--from=beginning|now|last|TOKEN|RFC3339-TIME] [--streams=P,...] [--types=T,...]
            [--token_file=F] [--count=N] [--heartbeat=15s] [--quiet]
      Prints {"event":{...},"resume_token":"..."} per event; control messages on stderr.
      Resumes by itself after disconnects. With --token_file, starts from the stored token
      and stores the last one after every event.
  stream get NAME          One stream's info as JSON.
  stream list [PATTERN]    Streams (one JSON object per line).
  log info                 The log's info as JSON.
  webhooks endpoints       Webhook endpoints: state, cursor, backlog, last error, counters.
  webhooks dead-letters ENDPOINT
                           The endpoint's dead letters (one JSON object per line).
  webhooks replay ENDPOINT (ID... | --all)
                           Sends dead letters again; prints how many were queued.
  webhooks enable ENDPOINT Re-enables an endpoint a 410 Gone disabled.

Common flags: --server (default 127.0.0.1:7070), --timeout (default 10s), --auth_token,
  --tls / --tls_ca=FILE (TLS; trust the system's or FILE's CAs), --tls_cert / --tls_key (mTLS).
Exit codes: 0 ok, 1 server or connection error, 2 usage error, 3 resume token expired,
of another log or damaged, 4 bad input line (publish).
)";

// Abseil exits with 1 on a bad flag; this CLI promises 2. Check every flag first.
int CheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    arg = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) return cli::UsageError(absl::StrCat("unknown flag --", name));
    if (flag->IsOfType<bool>()) {
      if (eq != std::string::npos && negated) {
        return cli::UsageError(absl::StrCat("--", name, " takes no value"));
      }
      if (eq == std::string::npos) continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return cli::UsageError(absl::StrCat("--", name, " needs a value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return cli::UsageError(absl::StrCat("bad value for --", name, ": ", error));
    }
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpshort") {
      std::cout << kUsage;
      return cli::kExitOk;
    }
  }
  if (int code = CheckFlags(argc, argv); code != cli::kExitOk) return code;
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (args.empty()) return cli::UsageError("no command given");
  // A closed stdout must be an error we can report, not a silent death.
  signal(SIGPIPE, SIG_IGN);
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "help") {
    std::cout << kUsage;
    return cli::kExitOk;
  }
  if (command == "publish") return cli::RunPublish(args);
  if (command == "subscribe") return cli::RunSubscribe(args);
  if (command == "stream") return cli::RunStream(args);
  if (command == "log") return cli::RunLog(args);
  if (command == "webhooks") return cli::RunWebhooks(args);
  return cli::UsageError(absl::StrCat("unknown command \"", command, "\""));
}
