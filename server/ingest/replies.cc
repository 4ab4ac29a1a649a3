#include "server/ingest/replies.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace hookstream::ingest {
namespace {

using Json = nlohmann::ordered_json;

Json Success() { return Json{{"code", 0}, {"msg", "success"}}; }

Json Denied(const ParsedHook& h) {
  return Json{
      {"code", -1},
      {"msg", absl::StrCat(h.spec->name, " denied by hookstream (zlm.policy.", h.spec->name, ")")}};
}

Decision PolicyFor(HookId id, const ZlmPolicy& p) {
  switch (id) {
    case HookId::kOnPublish:
      return p.on_publish;
    case HookId::kOnPlay:
      return p.on_play;
    case HookId::kOnRtspRealm:
      return p.on_rtsp_realm;
    case HookId::kOnRtspAuth:
      return p.on_rtsp_auth;
    case HookId::kOnHttpAccess:
      return p.on_http_access;
    case HookId::kOnShellLogin:
      return p.on_shell_login;
    default:
      return Decision::kAllow;
  }
}

// The answer of a blocking hook.
Json BlockingReply(const ParsedHook& h, const ZlmOptions& o, Decision d) {
  switch (h.spec->id) {
    case HookId::kOnPublish: {
      if (d == Decision::kDeny) return Denied(h);
      Json r = Success();
      Json extra = Json::parse(o.on_publish_json, nullptr, /*allow_exceptions=*/false);
      if (extra.is_object()) {
        for (auto it = extra.begin(); it != extra.end(); ++it) r[it.key()] = it.value();
      }
      return r;
    }
    case HookId::kOnRtspRealm: {
      if (d == Decision::kDeny) return Denied(h);
      Json r = Success();
      r["realm"] = o.rtsp_realm;
      return r;
    }
    case HookId::kOnRtspAuth: {
      auto it = o.rtsp_passwords.find(h.user_name);
      if (d == Decision::kDeny || it == o.rtsp_passwords.end()) return Denied(h);
      Json r = Success();
      r["encrypted"] = false;
      r["passwd"] = it->second;
      return r;
    }
    case HookId::kOnHttpAccess: {
      Json r = d == Decision::kDeny ? Denied(h) : Success();
      r["err"] = d == Decision::kDeny ? "access denied by hookstream policy" : "";
      r["path"] = "";
      r["second"] = o.http_access_second;
      return r;
    }
    default:
      return d == Decision::kDeny ? Denied(h) : Success();
  }
}

}  // namespace

HookReplies RepliesFor(const ParsedHook& h, const ZlmOptions& o) {
  HookReplies out;
  if (h.spec->blocking) {
    out.stored = BlockingReply(h, o, PolicyFor(h.spec->id, o.policy)).dump();
    out.storage_failed =
        BlockingReply(h, o, o.policy.fail_open ? PolicyFor(h.spec->id, o.policy) : Decision::kDeny)
            .dump();
    return out;
  }
  Json stored = Success();
  if (h.spec->id == HookId::kOnStreamNoneReader) stored["close"] = o.none_reader_close;
  if (h.spec->id == HookId::kOnStreamNotFound) stored["close"] = o.not_found_close;
  out.stored = stored.dump();
  out.storage_failed =
      Json{{"code", -1}, {"msg", "hookstream could not store the event; retry"}}.dump();
  return out;
}

}  // namespace hookstream::ingest
