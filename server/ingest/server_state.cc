#include "server/ingest/server_state.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace hookstream::ingest {
namespace {

using Json = nlohmann::ordered_json;

std::string Iso(absl::Time t) {
  if (t == absl::InfinitePast()) return "";
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

Json StreamIds(const ServerState& s, const OnlineStream& o) {
  return Json{
      {"mediaServerId", s.server_id}, {"vhost", o.vhost}, {"app", o.app}, {"stream", o.stream}};
}

DerivedEvent Offline(const ServerState& s, const std::string& key, const OnlineStream& o,
                     absl::string_view reason, absl::Time now) {
  Json d = StreamIds(s, o);
  d["schemas"] = o.seen;
  d["reason"] = reason;
  d["boot"] = s.boot;
  d["online_since"] = Iso(o.since);
  d["online_seconds"] = absl::ToDoubleSeconds(now - o.since);
  return DerivedEvent{key, "zlm.stream_offline", d.dump()};
}

std::vector<std::string> OnlineKeys(const ServerState& s) {
  std::vector<std::string> keys;
  keys.reserve(s.online.size());
  for (const auto& [key, o] : s.online) keys.push_back(key);
  return keys;
}

}  // namespace

Transition BeginBoot(ServerState& s, uint64_t boot, absl::string_view detected_by, absl::Time now) {
  Transition t;
  t.state_changed = true;
  const uint64_t previous = s.boot;
  if (previous != 0) {
    for (const auto& [key, o] : s.online) {
      t.before.push_back(Offline(s, key, o, "server_restarted", now));
    }
    Json d{{"mediaServerId", s.server_id},
           {"previous_boot", previous},
           {"boot", boot},
           {"detected_by", detected_by},
           {"offline_streams", OnlineKeys(s)}};
    t.before.push_back(DerivedEvent{ServerStream(s.server_id), "zlm.server_restarted", d.dump()});
  }
  s.boot = boot;
  s.boot_has_start = false;
  s.boot_start_hash.clear();
  s.boot_start_index = 0;
  s.has_last_index = false;
  s.last_index = 0;
  s.keepalive_armed = false;
  s.last_keepalive = absl::InfinitePast();
  s.lost = false;
  s.online.clear();
  return t;
}

Transition ApplyHook(ServerState& s, const ParsedHook& h, absl::Time now) {
  Transition t;
  if (h.hook_index.has_value() && (!s.has_last_index || *h.hook_index > s.last_index)) {
    s.has_last_index = true;
    s.last_index = *h.hook_index;
  }
  switch (h.spec->id) {
    case HookId::kOnServerStarted:
      s.boot_has_start = true;
      s.boot_start_hash = h.content_hash;
      s.boot_start_index = h.hook_index.value_or(0);
      if (h.alive_interval_s > 0) s.alive_interval_s = h.alive_interval_s;
      t.state_changed = true;
      break;
    case HookId::kOnServerKeepalive:
      s.last_keepalive = now;
      if (!s.keepalive_armed || s.lost) t.state_changed = true;
      s.keepalive_armed = true;
      s.lost = false;
      break;
    case HookId::kOnServerExited:
      for (const auto& [key, o] : s.online) {
        t.after.push_back(Offline(s, key, o, "server_exited", now));
      }
      s.online.clear();
      s.keepalive_armed = false;
      t.state_changed = true;
      break;
    case HookId::kOnStreamChanged: {
      if (h.regist) {
        auto [it, inserted] = s.online.try_emplace(h.stream);
        OnlineStream& o = it->second;
        if (inserted) {
          o.vhost = h.vhost;
          o.app = h.app;
          o.stream = h.stream_name;
          o.since = now;
          o.origin_json = h.origin_json;
          Json d{{"mediaServerId", s.server_id},
                 {"vhost", o.vhost},
                 {"app", o.app},
                 {"stream", o.stream},
                 {"schema", h.schema},
                 {"boot", s.boot},
                 {"origin", Json::parse(h.origin_json, nullptr, false)}};
          t.after.push_back(DerivedEvent{h.stream, "zlm.stream_online", d.dump()});
        }
        o.schemas.insert(h.schema);
        o.seen.insert(h.schema);
        t.state_changed = true;
      } else {
        auto it = s.online.find(h.stream);
        if (it == s.online.end()) break;  // Unregister of a stream not known online.
        it->second.schemas.erase(h.schema);
        if (it->second.schemas.empty()) {
          t.after.push_back(Offline(s, it->first, it->second, "unregistered", now));
          s.online.erase(it);
        }
        t.state_changed = true;
      }
      break;
    }
    default:
      break;
  }
  return t;
}

absl::Duration KeepaliveTimeout(const ServerState& s, absl::Duration configured) {
  if (configured > absl::ZeroDuration()) return configured;
  if (s.alive_interval_s > 0) return absl::Seconds(3 * s.alive_interval_s);
  return absl::Seconds(30);
}

bool KeepaliveExpired(const ServerState& s, absl::Time now, absl::Duration timeout) {
  return s.keepalive_armed && !s.lost && now - s.last_keepalive >= timeout;
}

Transition MarkLost(ServerState& s, absl::Time now, absl::Duration timeout) {
  Transition t;
  s.lost = true;
  t.state_changed = true;
  Json d{{"mediaServerId", s.server_id},
         {"boot", s.boot},
         {"last_keepalive", Iso(s.last_keepalive)},
         {"timeout_seconds", absl::ToDoubleSeconds(timeout)},
         {"online_streams", OnlineKeys(s)}};
  t.after.push_back(DerivedEvent{ServerStream(s.server_id), "zlm.server_lost", d.dump()});
  return t;
}

std::string SnapshotStream(absl::string_view server_id) {
  return absl::StrCat("_zlm/state/", EscapeToken(server_id));
}

std::string EncodeSnapshot(const ServerState& s) {
  Json streams = Json::object();
  for (const auto& [key, o] : s.online) {
    streams[key] = Json{{"vhost", o.vhost},
                        {"app", o.app},
                        {"stream", o.stream},
                        {"schemas", o.schemas},
                        {"seen", o.seen},
                        {"since_us", absl::ToUnixMicros(o.since)},
                        {"origin", Json::parse(o.origin_json, nullptr, false)}};
  }
  Json d{{"version", 1},
         {"mediaServerId", s.server_id},
         {"boot", s.boot},
         {"boot_has_start", s.boot_has_start},
         {"boot_start_hash", s.boot_start_hash},
         {"boot_start_index", s.boot_start_index},
         {"has_last_index", s.has_last_index},
         {"last_index", s.last_index},
         {"alive_interval_s", s.alive_interval_s},
         {"keepalive_armed", s.keepalive_armed},
         {"lost", s.lost},
         {"online", streams}};
  return d.dump();
}

absl::StatusOr<ServerState> DecodeSnapshot(absl::string_view json) {
  try {
    const Json d = Json::parse(json.begin(), json.end());
    if (d.at("version").get<int>() != 1) {
      return absl::InvalidArgumentError("zlm.state: unknown snapshot version");
    }
    ServerState s;
    s.server_id = d.at("mediaServerId").get<std::string>();
    s.boot = d.at("boot").get<uint64_t>();
    s.boot_has_start = d.at("boot_has_start").get<bool>();
    s.boot_start_hash = d.at("boot_start_hash").get<std::string>();
    s.boot_start_index = d.at("boot_start_index").get<uint64_t>();
    s.has_last_index = d.at("has_last_index").get<bool>();
    s.last_index = d.at("last_index").get<uint64_t>();
    s.alive_interval_s = d.at("alive_interval_s").get<double>();
    s.keepalive_armed = d.at("keepalive_armed").get<bool>();
    s.lost = d.at("lost").get<bool>();
    for (const auto& [key, v] : d.at("online").items()) {
      OnlineStream o;
      o.vhost = v.at("vhost").get<std::string>();
      o.app = v.at("app").get<std::string>();
      o.stream = v.at("stream").get<std::string>();
      o.schemas = v.at("schemas").get<std::set<std::string>>();
      o.seen = v.at("seen").get<std::set<std::string>>();
      o.since = absl::FromUnixMicros(v.at("since_us").get<int64_t>());
      o.origin_json = v.at("origin").dump();
      s.online.emplace(key, std::move(o));
    }
    return s;
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("zlm.state: bad snapshot: ", e.what()));
  }
}

}  // namespace hookstream::ingest
