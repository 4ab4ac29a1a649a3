// The stream-state transitions and their snapshot.
#include "server/ingest/server_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hookstream::ingest {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);

ParsedHook Changed(const std::string& stream, const std::string& schema, bool regist,
                   uint64_t index) {
  ParsedHook h;
  h.spec = FindHook("on_stream_changed");
  h.server_id = "m1";
  h.vhost = "__defaultVhost__";
  h.app = "live";
  h.stream_name = stream;
  h.stream = "__defaultVhost__/live/" + stream;
  h.schema = schema;
  h.regist = regist;
  h.hook_index = index;
  return h;
}

std::vector<std::string> Types(const std::vector<DerivedEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

TEST(ServerStateTest, FirstSchemaOnlineLastSchemaOffline) {
  ServerState s;
  s.server_id = "m1";
  BeginBoot(s, 1, kBootByStarted, t0);
  EXPECT_THAT(Types(ApplyHook(s, Changed("a", "rtsp", true, 1), t0).after),
              ElementsAre("zlm.stream_online"));
  EXPECT_THAT(Types(ApplyHook(s, Changed("a", "rtmp", true, 2), t0).after), IsEmpty());
  EXPECT_THAT(Types(ApplyHook(s, Changed("a", "rtsp", false, 3), t0).after), IsEmpty());
  Transition off = ApplyHook(s, Changed("a", "rtmp", false, 4), t0 + absl::Seconds(9));
  ASSERT_THAT(Types(off.after), ElementsAre("zlm.stream_offline"));
  const auto d = nlohmann::json::parse(off.after[0].data);
  EXPECT_EQ(d["schemas"], nlohmann::json::array({"rtmp", "rtsp"}));
  EXPECT_EQ(d["reason"], "unregistered");
  EXPECT_EQ(d["online_seconds"], 9.0);
  EXPECT_EQ(off.after[0].stream, "__defaultVhost__/live/a");
  EXPECT_THAT(Types(ApplyHook(s, Changed("a", "rtmp", false, 5), t0).after), IsEmpty())
      << "unregister of an offline stream derives nothing";
  EXPECT_EQ(s.last_index, 5u);
}

TEST(ServerStateTest, NewBootTakesWhatTheOldOneLeftOffline) {
  ServerState s;
  s.server_id = "m1";
  EXPECT_THAT(Types(BeginBoot(s, 1, kBootByStarted, t0).before), IsEmpty())
      << "the first boot restarts nothing";
  ApplyHook(s, Changed("a", "rtsp", true, 1), t0);
  ApplyHook(s, Changed("b", "rtsp", true, 2), t0);
  Transition t = BeginBoot(s, 2, kBootByIndex, t0);
  EXPECT_THAT(Types(t.before),
              ElementsAre("zlm.stream_offline", "zlm.stream_offline", "zlm.server_restarted"));
  const auto d = nlohmann::json::parse(t.before[2].data);
  EXPECT_EQ(d["previous_boot"], 1);
  EXPECT_EQ(d["boot"], 2);
  EXPECT_EQ(d["detected_by"], "hook_index_reset");
  EXPECT_EQ(t.before[2].stream, "_server/m1");
  EXPECT_TRUE(s.online.empty());
}

TEST(ServerStateTest, LostAfterTheKeepaliveTimeout) {
  ServerState s;
  s.server_id = "m1";
  s.alive_interval_s = 5;
  ParsedHook ka;
  ka.spec = FindHook("on_server_keepalive");
  ka.server_id = "m1";
  ApplyHook(s, ka, t0);
  const absl::Duration timeout = KeepaliveTimeout(s, absl::ZeroDuration());
  EXPECT_EQ(timeout, absl::Seconds(15));
  EXPECT_EQ(KeepaliveTimeout(s, absl::Seconds(7)), absl::Seconds(7));
  EXPECT_FALSE(KeepaliveExpired(s, t0 + absl::Seconds(14), timeout));
  EXPECT_TRUE(KeepaliveExpired(s, t0 + absl::Seconds(15), timeout));
  EXPECT_THAT(Types(MarkLost(s, t0 + absl::Seconds(15), timeout).after),
              ElementsAre("zlm.server_lost"));
  EXPECT_FALSE(KeepaliveExpired(s, t0 + absl::Seconds(60), timeout)) << "once";
  ApplyHook(s, ka, t0 + absl::Seconds(61));
  EXPECT_FALSE(s.lost);
}

TEST(ServerStateTest, SnapshotRoundTrips) {
  ServerState s;
  s.server_id = "m/1";
  BeginBoot(s, 3, kBootByStarted, t0);
  s.boot_has_start = true;
  s.boot_start_hash = "abc";
  s.keepalive_armed = true;
  s.alive_interval_s = 10;
  ApplyHook(s, Changed("a", "rtsp", true, 17), t0);
  absl::StatusOr<ServerState> back = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->server_id, "m/1");
  EXPECT_EQ(back->boot, 3u);
  EXPECT_EQ(back->last_index, 17u);
  EXPECT_EQ(back->boot_start_hash, "abc");
  ASSERT_EQ(back->online.count("__defaultVhost__/live/a"), 1u);
  EXPECT_THAT(back->online.at("__defaultVhost__/live/a").schemas, ElementsAre("rtsp"));
  EXPECT_EQ(back->online.at("__defaultVhost__/live/a").since, t0);
  EXPECT_EQ(SnapshotStream("m/1"), "_zlm/state/m%2F1");
  EXPECT_FALSE(DecodeSnapshot("{}").ok());
  EXPECT_FALSE(DecodeSnapshot("garbage").ok());
}

}  // namespace
}  // namespace hookstream::ingest
