#include "server/subscription/pattern_index.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::subscription {
namespace {

struct Sub {
  std::vector<StreamPattern> patterns;
};

std::vector<StreamPattern> Patterns(std::initializer_list<const char*> ps) {
  std::vector<StreamPattern> out;
  for (const char* p : ps) out.push_back(*StreamPattern::Parse(p, "test"));
  return out;
}

std::set<Sub*> Matches(const PatternIndex<Sub>& index, absl::string_view stream) {
  std::set<Sub*> out;
  index.ForEachMatch(stream, [&](Sub* s) { out.insert(s); });
  return out;
}

TEST(PatternIndexTest, MatchesExactlyWhatThePatternsSay) {
  PatternIndex<Sub> index;
  Sub exact{Patterns({"a/b/c"})}, star{Patterns({"a/*/c"})}, tail{Patterns({"a/>"})},
      all{{}}, two{Patterns({"x/y", "a/b/*"})};
  for (Sub* s : {&exact, &star, &tail, &all, &two}) index.Add(s->patterns, s);
  EXPECT_EQ(Matches(index, "a/b/c"), (std::set<Sub*>{&exact, &star, &tail, &all, &two}));
  EXPECT_EQ(Matches(index, "a/z/c"), (std::set<Sub*>{&star, &tail, &all}));
  EXPECT_EQ(Matches(index, "a"), (std::set<Sub*>{&all})) << "'>' needs one more token";
  EXPECT_EQ(Matches(index, "a/b"), (std::set<Sub*>{&tail, &all}));
  EXPECT_EQ(Matches(index, "a/b/c/d"), (std::set<Sub*>{&tail, &all}));
  EXPECT_EQ(Matches(index, "x/y"), (std::set<Sub*>{&two, &all}));
  for (Sub* s : {&exact, &star, &tail, &all, &two}) index.Remove(s->patterns, s);
  EXPECT_TRUE(index.empty()) << "removal prunes the trie";
}

TEST(PatternIndexTest, AgreesWithStreamPatternMatchingOnRandomInput) {
  std::mt19937 rng(42);
  const std::vector<std::string> tokens = {"a", "b", "c", "*"};
  std::vector<Sub> subs(300);
  PatternIndex<Sub> index;
  for (Sub& s : subs) {
    const int n = 1 + rng() % 3;
    std::string p;
    for (int i = 0; i < n; ++i) absl::StrAppend(&p, i ? "/" : "", tokens[rng() % 4]);
    if (rng() % 4 == 0) absl::StrAppend(&p, "/>");
    s.patterns.push_back(*StreamPattern::Parse(p, "p"));
    index.Add(s.patterns, &s);
  }
  for (int k = 0; k < 500; ++k) {
    const int n = 1 + rng() % 4;
    std::string stream;
    for (int i = 0; i < n; ++i) absl::StrAppend(&stream, i ? "/" : "", tokens[rng() % 3]);
    std::set<Sub*> want;
    for (Sub& s : subs) {
      if (s.patterns[0].Matches(stream)) want.insert(&s);
    }
    EXPECT_EQ(Matches(index, stream), want) << stream;
  }
}

}  // namespace
}  // namespace hookstream::subscription
