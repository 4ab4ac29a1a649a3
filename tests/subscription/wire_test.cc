#include "server/subscription/wire.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hookstream/v1/event_stream.pb.h"
#include "server/subscription/token.h"

namespace hookstream::subscription {
namespace {

using ::google::protobuf::util::MessageDifferencer;

const TokenCodec& Codec() {
  static const TokenCodec* codec =
      new TokenCodec(std::string(16, '\x11'), std::string(32, '\x22'));
  return *codec;
}

v1::Event MakeEvent(uint64_t position, uint64_t seq, std::string data) {
  v1::Event e;
  e.set_id(absl::StrCat("evt-", position));
  e.set_stream("__defaultVhost__/live/cam1");
  e.set_type("zlm.on_stream_changed");
  e.set_source("zlm-1");
  e.mutable_time()->set_seconds(1'700'000'000);
  e.set_content_type("application/json");
  e.set_data(std::move(data));
  (*e.mutable_attributes())["regist"] = "true";
  e.set_seq(seq);
  e.set_position(position);
  e.mutable_ingest_time()->set_seconds(1'700'000'001);
  e.mutable_ingest_time()->set_nanos(5);
  return e;
}

LiveEventPtr Live(const v1::Event& e) {
  auto live = std::make_shared<LiveEvent>();
  live->position = Position(e.position());
  live->seq = Seq(e.seq());
  live->stream = e.stream();
  live->type = e.type();
  live->entry = EncodeBatchEntry(e.SerializeAsString(), Codec().Encode(Position(e.position())));
  return live;
}

// The message the generated code would build for these events.
v1::SubscribeResponse Expected(const std::vector<v1::Event>& events) {
  v1::SubscribeResponse r;
  v1::EventBatch* batch = r.mutable_events();
  for (const v1::Event& e : events) {
    v1::DeliveredEvent* d = batch->add_events();
    *d->mutable_event() = e;
    d->set_resume_token(Codec().Encode(Position(e.position())));
  }
  return r;
}

void ExpectParsesTo(const std::string& bytes, const v1::SubscribeResponse& want) {
  v1::SubscribeResponse got;
  ASSERT_TRUE(got.ParseFromString(bytes)) << "the generated parser rejects the bytes";
  ASSERT_EQ(got.message_case(), want.message_case());
  std::string diff;
  MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(want, got)) << diff;
}

TEST(WireTest, EventsMessageParsesWithEveryEventTokenAndOrder) {
  std::vector<v1::Event> events = {
      MakeEvent(3, 1, "{}"),
      MakeEvent(8, 2, std::string(300, 'x')),     // two-byte lengths
      MakeEvent(9, 1, std::string(20000, 'y')),   // three-byte lengths
      MakeEvent(15, 3, ""),
  };
  events[3].clear_attributes();
  events[3].clear_type();
  std::vector<LiveEventPtr> live;
  for (const v1::Event& e : events) live.push_back(Live(e));

  const std::string bytes = EncodeEventsMessage(live);
  ExpectParsesTo(bytes, Expected(events));
  v1::SubscribeResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_EQ(parsed.events().events_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(parsed.events().events(i).event().position(), events[i].position());
    EXPECT_EQ(Codec().Decode(parsed.events().events(i).resume_token()).value_or(Position(0)),
              Position(events[i].position()));
  }
  // Byte for byte what the generated code serializes.
  EXPECT_EQ(bytes, Expected(events).SerializeAsString());
}

TEST(WireTest, EmptyBatchIsAnEventsMessageWithNoEvents) {
  const std::string bytes = EncodeEventsMessage({});
  v1::SubscribeResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.message_case(), v1::SubscribeResponse::kEvents);
  EXPECT_EQ(parsed.events().events_size(), 0);
}

TEST(WireTest, LargeBatchNeedsMultiByteOuterLengthAndStillParses) {
  std::vector<v1::Event> events;
  std::vector<LiveEventPtr> live;
  for (uint64_t i = 1; i <= 300; ++i) {
    events.push_back(MakeEvent(i, i, std::string(250 + i, static_cast<char>('a' + i % 26))));
    live.push_back(Live(events.back()));
  }
  const std::string bytes = EncodeEventsMessage(live);
  ASSERT_GT(bytes.size(), 1u << 16);
  ExpectParsesTo(bytes, Expected(events));
}

TEST(WireTest, SameEntrySharedBetweenMessagesParsesInEach) {
  // Live fan-out reuses one encoded entry in many subscribers' messages.
  const v1::Event a = MakeEvent(1, 1, "a");
  const v1::Event b = MakeEvent(2, 2, std::string(500, 'b'));
  const LiveEventPtr la = Live(a);
  const LiveEventPtr lb = Live(b);
  ExpectParsesTo(EncodeEventsMessage({la, lb}), Expected({a, b}));
  ExpectParsesTo(EncodeEventsMessage({lb}), Expected({b}));
  ExpectParsesTo(EncodeEventsMessage({la}), Expected({a}));
}

TEST(WireTest, BatchEntryWithEmptyTokenOrEmptyEventParses) {
  auto live = std::make_shared<LiveEvent>();
  live->entry = EncodeBatchEntry("", "");
  v1::SubscribeResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(EncodeEventsMessage({live})));
  ASSERT_EQ(parsed.events().events_size(), 1);
  EXPECT_EQ(parsed.events().events(0).resume_token(), "");
}

TEST(WireTest, ControlMessagesRoundTrip) {
  const std::string token = Codec().Encode(Position(77));
  std::vector<v1::SubscribeResponse> messages(7);
  messages[0].mutable_subscribed()->set_log_id(Codec().log_id_text());
  messages[0].mutable_subscribed()->set_head_position(1234567);
  messages[1].mutable_checkpoint()->set_resume_token(token);
  messages[1].mutable_checkpoint()->set_position(77);
  messages[2].mutable_caught_up()->set_resume_token(token);
  messages[3].mutable_fell_behind();
  messages[4].mutable_heartbeat()->set_resume_token(token);
  messages[5].mutable_gap()->set_from_position(3);
  messages[5].mutable_gap()->set_to_position(~uint64_t{0});
  messages[6].mutable_snapshot_end()->set_resume_token(token);
  for (const v1::SubscribeResponse& m : messages) {
    SCOPED_TRACE(m.ShortDebugString());
    ExpectParsesTo(EncodeControlMessage(m), m);
  }
}

}  // namespace
}  // namespace hookstream::subscription
