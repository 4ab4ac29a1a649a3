#include "server/ingest/hooks.h"

namespace hookstream::ingest {

const std::vector<HookSpec>& AllHooks() {
  static const auto* hooks = new std::vector<HookSpec>{
      {HookId::kOnPublish, "on_publish", true, "stream", true, true},
      {HookId::kOnPlay, "on_play", true, "stream", true, true},
      {HookId::kOnFlowReport, "on_flow_report", true, "stream", false, true},
      {HookId::kOnRtspRealm, "on_rtsp_realm", true, "stream", true, true},
      {HookId::kOnRtspAuth, "on_rtsp_auth", true, "stream", true, true},
      {HookId::kOnStreamChanged, "on_stream_changed", true, "stream", false, true},
      {HookId::kOnStreamNotFound, "on_stream_not_found", true, "stream", false, true},
      {HookId::kOnRecordMp4, "on_record_mp4", true, "stream", false, true},
      {HookId::kOnRecordTs, "on_record_ts", true, "stream", false, true},
      {HookId::kOnShellLogin, "on_shell_login", false, "", true, true},
      {HookId::kOnStreamNoneReader, "on_stream_none_reader", true, "stream", false, true},
      {HookId::kOnHttpAccess, "on_http_access", false, "", true, true},
      {HookId::kOnServerStarted, "on_server_started", false, "", false, true},
      {HookId::kOnServerExited, "on_server_exited", false, "", false, true},
      {HookId::kOnServerKeepalive, "on_server_keepalive", false, "", false, false},
      {HookId::kOnSendRtpStopped, "on_send_rtp_stopped", true, "stream", false, true},
      {HookId::kOnRtpServerTimeout, "on_rtp_server_timeout", true, "stream_id", false, true},
  };
  return *hooks;
}

const HookSpec* FindHook(absl::string_view name) {
  for (const HookSpec& h : AllHooks()) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

}  // namespace hookstream::ingest
