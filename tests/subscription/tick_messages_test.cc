// TickMessages: the checkpoint and heartbeat one ticker pass shares between every session at
// the same head must be exactly what each session would have built for itself.
#include <string>

#include "gtest/gtest.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/subscription/session.h"
#include "server/subscription/token.h"

namespace hookstream::subscription {
namespace {

const TokenCodec& Tokens() {
  static const TokenCodec* const codec =
      new TokenCodec(std::string(16, '\x33'), std::string(32, '\x44'));
  return *codec;
}

TEST(TickMessagesTest, CheckpointCarriesTheHeadAndItsTokenAndIsBuiltOnce) {
  TickMessages at(Tokens(), Position(4242));
  const std::string& first = at.Checkpoint();
  v1::SubscribeResponse m;
  ASSERT_TRUE(m.ParseFromString(first));
  ASSERT_TRUE(m.has_checkpoint());
  EXPECT_EQ(m.checkpoint().position(), 4242u);
  EXPECT_EQ(m.checkpoint().resume_token(), Tokens().Encode(Position(4242)));
  EXPECT_EQ(&at.Checkpoint(), &first) << "shared, not rebuilt per session";
}

TEST(TickMessagesTest, HeartbeatCarriesTheTokenOfTheHead) {
  TickMessages at(Tokens(), Position(7));
  v1::SubscribeResponse m;
  ASSERT_TRUE(m.ParseFromString(at.Heartbeat()));
  ASSERT_TRUE(m.has_heartbeat());
  EXPECT_EQ(m.heartbeat().resume_token(), Tokens().Encode(Position(7)));
  absl::StatusOr<Position> p = Tokens().Decode(m.heartbeat().resume_token());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, Position(7));
}

}  // namespace
}  // namespace hookstream::subscription
