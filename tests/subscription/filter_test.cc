#include "server/subscription/filter.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::subscription {
namespace {

using ::testing::HasSubstr;

Filter MustCreate(const std::vector<std::string>& streams, const std::vector<std::string>& types) {
  absl::StatusOr<Filter> f = Filter::Create(streams, types);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : Filter();
}

std::string CreateError(const std::vector<std::string>& streams,
                        const std::vector<std::string>& types) {
  absl::StatusOr<Filter> f = Filter::Create(streams, types);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(f.status().message());
}

TEST(FilterTest, BadStreamPatternErrorNamesItsIndex) {
  EXPECT_THAT(CreateError({"live/cam1", "live/*", "a//b"}, {}), HasSubstr("streams[2]"));
  EXPECT_THAT(CreateError({"a*"}, {}), HasSubstr("streams[0]"));
  EXPECT_THAT(CreateError({"live/>", "a/>/b"}, {"zlm.*"}), HasSubstr("streams[1]"));
  EXPECT_THAT(CreateError({""}, {}), HasSubstr("streams[0]"));
}

TEST(FilterTest, BadTypeErrorNamesItsIndex) {
  EXPECT_THAT(CreateError({}, {"zlm.on_publish", "*.x"}), HasSubstr("types[1]"));
  EXPECT_THAT(CreateError({"live/*"}, {""}), HasSubstr("types[0]"));
  EXPECT_THAT(CreateError({}, {"a", "b", "c\n"}), HasSubstr("types[2]"));
}

TEST(FilterTest, EmptyFilterMatchesEverything) {
  Filter f = MustCreate({}, {});
  EXPECT_TRUE(f.Matches("any/stream", "any.type"));
  EXPECT_TRUE(f.Matches("x", ""));
  EXPECT_FALSE(f.exact_streams_only()) << "an empty stream list is not indexable by name";
}

TEST(FilterTest, StreamPatternsAreOred) {
  Filter f = MustCreate({"live/cam1", "vod/*", "rec/>"}, {});
  EXPECT_TRUE(f.MatchesStream("live/cam1"));
  EXPECT_TRUE(f.MatchesStream("vod/x"));
  EXPECT_TRUE(f.MatchesStream("rec/a/b/c"));
  EXPECT_FALSE(f.MatchesStream("live/cam2"));
  EXPECT_FALSE(f.MatchesStream("vod/x/y"));
  EXPECT_FALSE(f.MatchesStream("rec"));
  EXPECT_TRUE(f.Matches("vod/x", "whatever"));
  ASSERT_EQ(f.patterns().size(), 3u);
  EXPECT_EQ(f.patterns()[1].text(), "vod/*");
}

TEST(FilterTest, TypesAreOredAndBothDimensionsMustMatch) {
  Filter f = MustCreate({"live/>"}, {"zlm.on_publish", "app.*"});
  EXPECT_TRUE(f.MatchesType("zlm.on_publish"));
  EXPECT_TRUE(f.MatchesType("app.login"));
  EXPECT_FALSE(f.MatchesType("zlm.on_play"));
  EXPECT_TRUE(f.Matches("live/cam", "app.login"));
  EXPECT_FALSE(f.Matches("vod/cam", "app.login")) << "type matches but stream does not";
  EXPECT_FALSE(f.Matches("live/cam", "zlm.on_play")) << "stream matches but type does not";

  Filter types_only = MustCreate({}, {"zlm.*"});
  EXPECT_TRUE(types_only.Matches("anything/at/all", "zlm.on_publish"));
  EXPECT_FALSE(types_only.Matches("anything", "app.x"));
}

TEST(FilterTest, ExactStreamsOnlyWhenEveryPatternIsAName) {
  EXPECT_TRUE(MustCreate({"live/cam1"}, {}).exact_streams_only());
  EXPECT_TRUE(MustCreate({"live/cam1", "live/cam2"}, {"zlm.*"}).exact_streams_only());
  EXPECT_FALSE(MustCreate({"live/cam1", "live/*"}, {}).exact_streams_only());
  EXPECT_FALSE(MustCreate({"live/>", "live/cam1"}, {}).exact_streams_only());
  EXPECT_FALSE(MustCreate({">"}, {}).exact_streams_only());
  EXPECT_FALSE(MustCreate({}, {"zlm.on_publish"}).exact_streams_only());
}

}  // namespace
}  // namespace hookstream::subscription
