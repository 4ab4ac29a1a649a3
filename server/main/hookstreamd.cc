// hookstreamd: the hookstream server. Wiring only: flags and config file in, a Server out,
// SIGTERM/SIGINT drain it and the process exits 0.
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/common/config.h"
#include "server/common/logging.h"
#include "server/ingest/zlm_hook_config.h"
#include "server/main/options.h"
#include "server/main/server.h"

ABSL_FLAG(std::string, data_dir, "", "Data directory of the embedded store (default ./data)");
ABSL_FLAG(std::string, grpc_listen, "", "gRPC listen address (default 127.0.0.1:7070)");
ABSL_FLAG(std::string, http_listen, "",
          "HTTP listen address for ZLMediaKit hooks and /healthz (default 127.0.0.1:7080; "
          "\"off\" for none)");
ABSL_FLAG(std::string, config, "", "Config file (YAML or JSON); flags override it");
ABSL_FLAG(std::string, log_level, "",
          "Lowest level logged: debug, info, warn or error (default info; overrides "
          "logging.level)");
ABSL_FLAG(std::string, log_format, "",
          "Log lines as kv (key=value, the default) or json (overrides logging.format)");
ABSL_FLAG(bool, print_zlm_config, false,
          "Print the [hook] section for ZLMediaKit's config.ini (URLs from --http_listen / the "
          "config file, ?token= from zlm.tokens) and exit");

namespace {

// logging.level / logging.format from the config file, then the flags over them.
absl::Status ConfigureLogging(const hookstream::v1::LoggingConfig& config) {
  std::string level = config.level();
  std::string format = config.format();
  if (!absl::GetFlag(FLAGS_log_level).empty()) level = absl::GetFlag(FLAGS_log_level);
  if (!absl::GetFlag(FLAGS_log_format).empty()) format = absl::GetFlag(FLAGS_log_format);
  if (!level.empty()) {
    absl::StatusOr<hookstream::logging::Level> l = hookstream::logging::ParseLevel(level);
    if (!l.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("logging.level: ", l.status().message()));
    }
    hookstream::logging::SetMinLevel(*l);
  }
  if (!format.empty()) {
    absl::StatusOr<hookstream::logging::Format> f = hookstream::logging::ParseFormat(format);
    if (!f.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("logging.format: ", f.status().message()));
    }
    hookstream::logging::SetFormat(*f);
  }
  return absl::OkStatus();
}

int Run() {
  hookstream::v1::Config config;
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (!config_path.empty()) {
    absl::StatusOr<hookstream::v1::Config> loaded = hookstream::LoadConfigFile(config_path);
    if (!loaded.ok()) {
      HS_EVENT(ERROR, "config.invalid").Field("error", loaded.status().message());
      return 2;
    }
    config = *std::move(loaded);
  }
  if (absl::Status s = ConfigureLogging(config.logging()); !s.ok()) {
    HS_EVENT(ERROR, "config.invalid").Field("error", s.message());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_data_dir).empty()) config.set_data_dir(absl::GetFlag(FLAGS_data_dir));
  if (!absl::GetFlag(FLAGS_grpc_listen).empty()) {
    config.set_grpc_listen(absl::GetFlag(FLAGS_grpc_listen));
  }
  if (!absl::GetFlag(FLAGS_http_listen).empty()) {
    config.set_http_listen(absl::GetFlag(FLAGS_http_listen));
  }
  // The default address is a convenience: when it is taken, run without HTTP rather than not at
  // all. An address asked for explicitly must be served.
  const bool http_default = config.http_listen().empty();
  if (http_default) config.set_http_listen("127.0.0.1:7080");
  if (config.http_listen() == "off") config.clear_http_listen();
  absl::StatusOr<hookstream::ServerOptions> options = hookstream::ServerOptionsFromConfig(config);
  if (!options.ok()) {
    HS_EVENT(ERROR, "config.invalid").Field("error", options.status().message());
    return 2;
  }
  options->http_optional = http_default;
  if (absl::GetFlag(FLAGS_print_zlm_config)) {
    const auto& tokens = options->zlm.tokens;
    std::string token;
    if (tokens.size() == 1) token = tokens.begin()->second;
    if (tokens.size() > 1) token = "<your token from zlm.tokens>";
    std::cout << hookstream::ingest::ZlmHookConfigBlock(
        config.http_listen().empty() ? "127.0.0.1:7080" : config.http_listen(), token);
    return 0;
  }

  // Signals are taken by sigwait below; block them before any thread starts so none of the
  // server's threads gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<hookstream::Server>> server =
      hookstream::Server::Start(*options);
  if (!server.ok()) {
    HS_EVENT(ERROR, "server.start_failed").Field("error", server.status());
    return 1;
  }
  const hookstream::storage::LogStats stats = (*server)->log()->Stats();
  // Scripts and tests wait for this line and read grpc_port from it.
  HS_EVENT(INFO, "server.started")
      .Field("log_id", absl::BytesToHexString(stats.log_id))
      .Field("storage", options->jetstream ? "jetstream" : "embedded")
      .Field(options->jetstream ? "stream" : "data_dir",
             options->jetstream ? options->jetstream->stream : options->log.data_dir)
      .Field("oldest_position", stats.oldest.value())
      .Field("head_position", stats.head.value())
      .Field("events", stats.event_count)
      .Field("streams", stats.stream_count)
      .Field("grpc", options->grpc_listen)
      .Field("grpc_port", (*server)->grpc_port());

  int sig = 0;
  sigwait(&signals, &sig);
  HS_EVENT(INFO, "server.draining").Field("signal", sig);
  (*server)->Drain(absl::Seconds(10));
  server->reset();
  HS_EVENT(INFO, "server.drained");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hookstreamd: durable, ordered event streams over gRPC.\n"
      "  hookstreamd [--data_dir=./data] [--grpc_listen=127.0.0.1:7070]\n"
      "              [--http_listen=127.0.0.1:7080] [--config=FILE] [--print_zlm_config]\n"
      "              [--log_level=info] [--log_format=kv|json]");
  absl::ParseCommandLine(argc, argv);
  return Run();
}
