// Filters narrowed by a token's scopes: pattern intersection, checked exhaustively against the
// definition (a stream matches a ∩ b exactly when it matches both) on a small alphabet.
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/subscription/filter.h"

namespace hookstream::subscription {
namespace {

using ::testing::HasSubstr;

StreamPattern P(const std::string& text) {
  absl::StatusOr<StreamPattern> p = StreamPattern::Parse(text, "test");
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

std::string Intersect(const std::string& a, const std::string& b) {
  std::optional<StreamPattern> p = IntersectPatterns(P(a), P(b));
  return p ? p->text() : "(none)";
}

TEST(ScopeTest, IntersectionOfKnownPairs) {
  EXPECT_EQ(Intersect(">", "tenantA/>"), "tenantA/>");
  EXPECT_EQ(Intersect("tenantA/>", ">"), "tenantA/>");
  EXPECT_EQ(Intersect("*/cam1", "tenantA/>"), "tenantA/cam1");
  EXPECT_EQ(Intersect("a/*/c", "a/b/>"), "a/b/c");
  EXPECT_EQ(Intersect("tenantB/x", "tenantA/>"), "(none)");
  EXPECT_EQ(Intersect("*", "tenantA/>"), "(none)");  // '>' needs a second token.
  EXPECT_EQ(Intersect("tenantA", "tenantA/>"), "(none)");
  EXPECT_EQ(Intersect("a/>", "*/b/>"), "a/b/>");
  EXPECT_EQ(Intersect("a/*", "*/b"), "a/b");
  EXPECT_EQ(Intersect("a/b", "a/b"), "a/b");
}

TEST(ScopeTest, IntersectionMatchesExactlyWhatBothMatch) {
  const std::vector<std::string> tokens = {"a", "b", "*"};
  std::mt19937 rng(42);
  auto random_pattern = [&] {
    std::vector<std::string> t;
    const int n = std::uniform_int_distribution<int>(0, 3)(rng);
    for (int i = 0; i < n; ++i) t.push_back(tokens[rng() % tokens.size()]);
    if (t.empty() || rng() % 3 == 0) t.push_back(">");
    return absl::StrJoin(t, "/");
  };
  // Every stream of 1..4 tokens over {a, b, c}.
  std::vector<std::string> streams;
  std::vector<std::string> frontier = {""};
  for (int len = 1; len <= 4; ++len) {
    std::vector<std::string> next;
    for (const std::string& s : frontier) {
      for (const char* t : {"a", "b", "c"}) next.push_back(s.empty() ? t : s + "/" + t);
    }
    streams.insert(streams.end(), next.begin(), next.end());
    frontier = next;
  }
  for (int round = 0; round < 400; ++round) {
    const StreamPattern a = P(random_pattern());
    const StreamPattern b = P(random_pattern());
    std::optional<StreamPattern> both = IntersectPatterns(a, b);
    for (const std::string& s : streams) {
      const bool expected = a.Matches(s) && b.Matches(s);
      const bool got = both && both->Matches(s);
      ASSERT_EQ(got, expected) << a.text() << " ∩ " << b.text() << " = "
                               << (both ? both->text() : "(none)") << " on " << s;
    }
  }
}

TEST(ScopeTest, ScopedFilterNeverMatchesOutsideTheScopes) {
  const std::vector<StreamPattern> scopes = {P("tenantA/>")};
  for (const std::vector<std::string>& streams :
       std::vector<std::vector<std::string>>{{}, {">"}, {"*/cam1"}, {"tenantA/cam1", "tenantB/>"}}) {
    absl::StatusOr<Filter> f = Filter::Create(streams, {}, scopes);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_FALSE(f->MatchesStream("tenantB/cam1")) << absl::StrJoin(streams, ",");
    EXPECT_FALSE(f->MatchesStream("tenantA")) << absl::StrJoin(streams, ",");
    EXPECT_TRUE(f->MatchesStream("tenantA/cam1")) << absl::StrJoin(streams, ",");
  }
  // What the filter asked for still narrows further inside the scope.
  absl::StatusOr<Filter> f = Filter::Create({"*/cam1"}, {}, scopes);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->MatchesStream("tenantA/cam2"));
  EXPECT_TRUE(f->exact_streams_only());  // Narrowed to tenantA/cam1: indexable by name.
}

TEST(ScopeTest, FilterEntirelyOutsideTheScopesIsPermissionDenied) {
  absl::StatusOr<Filter> f = Filter::Create({"tenantB/>", "other"}, {}, {P("tenantA/>")});
  EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(f.status().message(), HasSubstr("tenantA/>"));
}

}  // namespace
}  // namespace hookstream::subscription
