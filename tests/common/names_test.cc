#include "server/common/names.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kField = "events[3].stream";

// The message of a validation that must fail with INVALID_ARGUMENT; it must name the field.
std::string StreamNameError(absl::string_view name) {
  absl::Status s = ValidateStreamName(name, kField);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "name: " << name;
  EXPECT_THAT(std::string(s.message()), HasSubstr(kField)) << "name: " << name;
  return std::string(s.message());
}

std::string PatternError(absl::string_view pattern) {
  absl::StatusOr<StreamPattern> p = StreamPattern::Parse(pattern, "streams[2]");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << "pattern: " << pattern;
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("streams[2]")) << "pattern: " << pattern;
  return std::string(p.status().message());
}

StreamPattern MustParsePattern(absl::string_view pattern) {
  absl::StatusOr<StreamPattern> p = StreamPattern::Parse(pattern, "pattern");
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.status();
  return p.ok() ? *std::move(p) : StreamPattern();
}

TypeFilter MustParseType(absl::string_view filter) {
  absl::StatusOr<TypeFilter> f = TypeFilter::Parse(filter, "types[0]");
  EXPECT_TRUE(f.ok()) << filter << ": " << f.status();
  return f.ok() ? *std::move(f) : TypeFilter();
}

// Invalid UTF-8 sequences: stray continuation, truncated, overlong, surrogates, past U+10FFFF.
const char* const kBadUtf8[] = {
    "\x80",              // continuation byte without a lead
    "a\xC3",             // 2-byte sequence cut short
    "\xE2\x82",          // 3-byte sequence cut short
    "\xF0\x9F\x98",      // 4-byte sequence cut short
    "\xC3\x28",          // lead followed by a non-continuation
    "\xC0\xAF",          // overlong '/'
    "\xC1\xBF",          // overlong U+007F
    "\xE0\x80\xAF",      // overlong 3-byte '/'
    "\xF0\x80\x80\xAF",  // overlong 4-byte '/'
    "\xED\xA0\x80",      // U+D800, a high surrogate
    "\xED\xBF\xBF",      // U+DFFF, a low surrogate
    "\xF4\x90\x80\x80",  // U+110000
    "\xF8\x88\x80\x80\x80",  // 5-byte form
    "\xFF",
};

// --- IsValidUtf8 ---

TEST(IsValidUtf8Test, AcceptsAsciiAndMultiByteCharactersUpToTheLastCodePoint) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain/ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));               // U+00E9
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));              // U+20AC
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));              // U+D7FF, just below the surrogates
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));              // U+E000, just above them
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));          // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
}

TEST(IsValidUtf8Test, RejectsTruncatedOverlongSurrogateAndOutOfRangeSequences) {
  for (const char* bad : kBadUtf8) {
    EXPECT_FALSE(IsValidUtf8(bad)) << absl::CEscape(bad);
  }
}

// --- ValidateStreamName ---

TEST(ValidateStreamNameTest, AcceptsSlashSeparatedNamesAndUtf8) {
  EXPECT_TRUE(ValidateStreamName("__defaultVhost__/live/cam1", kField).ok());
  EXPECT_TRUE(ValidateStreamName("a", kField).ok());
  EXPECT_TRUE(ValidateStreamName("_server/zlm-1", kField).ok());
  EXPECT_TRUE(ValidateStreamName("live/caf\xC3\xA9/\xF0\x9F\x98\x80", kField).ok());
  // Wildcard characters inside a longer token are plain characters in a name.
  EXPECT_TRUE(ValidateStreamName("a*/b>", kField).ok());
}

TEST(ValidateStreamNameTest, RejectsEmptyNameNamingTheField) {
  EXPECT_THAT(StreamNameError(""), HasSubstr("empty"));
}

TEST(ValidateStreamNameTest, AcceptsExactly256BytesAndRejects257) {
  const std::string ok(kMaxNameBytes, 'x');
  EXPECT_TRUE(ValidateStreamName(ok, kField).ok());
  EXPECT_THAT(StreamNameError(ok + "x"), HasSubstr("257"));
}

TEST(ValidateStreamNameTest, CountsBytesNotCharacters) {
  // 128 two-byte characters are 256 bytes; one more ASCII byte goes over.
  std::string name;
  for (int i = 0; i < 128; ++i) name += "\xC3\xA9";
  EXPECT_TRUE(ValidateStreamName(name, kField).ok());
  StreamNameError(name + "a");
}

TEST(ValidateStreamNameTest, RejectsInvalidUtf8) {
  for (const char* bad : kBadUtf8) {
    EXPECT_THAT(StreamNameError(absl::StrCat("live/", bad)), HasSubstr("UTF-8"))
        << absl::CEscape(bad);
  }
}

TEST(ValidateStreamNameTest, RejectsControlCharacters) {
  for (char c : {'\0', '\x01', '\t', '\n', '\r', '\x1f', '\x7f'}) {
    std::string name = "live/cam";
    name.push_back(c);
    EXPECT_THAT(StreamNameError(name), HasSubstr("control")) << int{c};
  }
}

TEST(ValidateStreamNameTest, RejectsEmptyTokens) {
  for (const char* name : {"a//b", "/a", "a/", "/", "//"}) {
    EXPECT_THAT(StreamNameError(name), HasSubstr("empty token")) << name;
  }
}

TEST(ValidateStreamNameTest, RejectsWildcardTokens) {
  for (const char* name : {"*", ">", "a/*", "a/>", "*/b", "a/>/b"}) {
    EXPECT_THAT(StreamNameError(name), HasSubstr("wildcard")) << name;
  }
}

// --- ValidateName ---

TEST(ValidateNameTest, EmptyIsAllowedOnlyWhenAsked) {
  EXPECT_TRUE(ValidateName("", "events[0].id", /*allow_empty=*/true).ok());
  absl::Status s = ValidateName("", "events[0].type", /*allow_empty=*/false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("events[0].type"));
}

TEST(ValidateNameTest, AcceptsSlashesAndWildcardCharacters) {
  // Types, ids and sources have no token structure.
  EXPECT_TRUE(ValidateName("zlm.on_publish", "t", false).ok());
  EXPECT_TRUE(ValidateName("urn:a/b//c*>", "t", false).ok());
}

TEST(ValidateNameTest, RejectsOversizedInvalidUtf8AndControlCharactersNamingTheField) {
  const std::string too_long(kMaxNameBytes + 1, 'i');
  EXPECT_TRUE(ValidateName(std::string(kMaxNameBytes, 'i'), "f", false).ok());
  for (const std::string& bad :
       {too_long, std::string("\xC0\xAF"), std::string("a\nb"), std::string("a\x7f")}) {
    for (bool allow_empty : {false, true}) {
      absl::Status s = ValidateName(bad, "events[7].source", allow_empty);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << absl::CEscape(bad);
      EXPECT_THAT(std::string(s.message()), HasSubstr("events[7].source"));
    }
  }
}

// --- StreamPattern ---

TEST(StreamPatternTest, ExactPatternMatchesOnlyItsOwnName) {
  StreamPattern p = MustParsePattern("live/cam1");
  EXPECT_TRUE(p.is_exact());
  EXPECT_FALSE(p.has_tail_wildcard());
  EXPECT_TRUE(p.Matches("live/cam1"));
  EXPECT_FALSE(p.Matches("live/cam10"));
  EXPECT_FALSE(p.Matches("live/cam"));
  EXPECT_FALSE(p.Matches("live/cam1/x"));
  EXPECT_FALSE(p.Matches("live"));
  EXPECT_FALSE(p.Matches(""));
  EXPECT_EQ(p.text(), "live/cam1");
}

TEST(StreamPatternTest, StarMatchesExactlyOneToken) {
  StreamPattern p = MustParsePattern("live/*");
  EXPECT_FALSE(p.is_exact());
  EXPECT_TRUE(p.Matches("live/cam1"));
  EXPECT_TRUE(p.Matches("live/x"));
  EXPECT_FALSE(p.Matches("live"));
  EXPECT_FALSE(p.Matches("live/"));
  EXPECT_FALSE(p.Matches("live/cam1/hd"));
  EXPECT_FALSE(p.Matches("vod/cam1"));

  StreamPattern mid = MustParsePattern("*/live/*");
  EXPECT_TRUE(mid.Matches("vhost/live/cam"));
  EXPECT_FALSE(mid.Matches("vhost/vod/cam"));
  EXPECT_FALSE(mid.Matches("live/cam"));
  EXPECT_FALSE(mid.Matches("a/b/live/cam"));

  StreamPattern star = MustParsePattern("*");
  EXPECT_TRUE(star.Matches("a"));
  EXPECT_FALSE(star.Matches("a/b"));
  EXPECT_FALSE(star.Matches(""));
}

TEST(StreamPatternTest, TrailingGreaterThanMatchesOneOrMoreTokens) {
  StreamPattern p = MustParsePattern("a/>");
  EXPECT_FALSE(p.is_exact());
  EXPECT_TRUE(p.has_tail_wildcard());
  EXPECT_TRUE(p.Matches("a/b"));
  EXPECT_TRUE(p.Matches("a/b/c/d"));
  EXPECT_FALSE(p.Matches("a")) << "'>' needs at least one token";
  EXPECT_FALSE(p.Matches("a/"));
  EXPECT_FALSE(p.Matches("ab/c"));
  EXPECT_FALSE(p.Matches("b/a"));

  StreamPattern all = MustParsePattern(">");
  EXPECT_TRUE(all.Matches("a"));
  EXPECT_TRUE(all.Matches("a/b/c"));
  EXPECT_FALSE(all.Matches(""));

  StreamPattern mixed = MustParsePattern("*/live/>");
  EXPECT_TRUE(mixed.Matches("v/live/cam"));
  EXPECT_TRUE(mixed.Matches("v/live/cam/hd"));
  EXPECT_FALSE(mixed.Matches("v/live"));
  EXPECT_FALSE(mixed.Matches("live/cam"));
}

TEST(StreamPatternTest, GreaterThanBeforeTheLastTokenIsAnError) {
  EXPECT_THAT(PatternError("a/>/b"), HasSubstr("last token"));
  EXPECT_THAT(PatternError(">/a"), HasSubstr("last token"));
  EXPECT_THAT(PatternError(">/>"), HasSubstr("last token"));
}

TEST(StreamPatternTest, PartialWildcardTokensAreErrors) {
  for (const char* p : {"a*", "live/cam*", "a/*b", "a/b>", "a/>>", "**", "a/*>"}) {
    EXPECT_THAT(PatternError(p), HasSubstr("whole tokens")) << p;
  }
}

TEST(StreamPatternTest, EmptyPatternsTokensAndBadTextAreErrors) {
  PatternError("");
  for (const char* p : {"a//b", "/a", "a/", "/>"}) {
    EXPECT_THAT(PatternError(p), HasSubstr("empty token")) << p;
  }
  PatternError("a/\xC0\xAF");
  PatternError("a/\n");
  PatternError(std::string(kMaxNameBytes + 1, 'p'));
}

// --- TypeFilter ---

TEST(TypeFilterTest, ExactFilterMatchesOnlyThatType) {
  TypeFilter f = MustParseType("zlm.on_publish");
  EXPECT_TRUE(f.Matches("zlm.on_publish"));
  EXPECT_FALSE(f.Matches("zlm.on_publish2"));
  EXPECT_FALSE(f.Matches("zlm.on_publis"));
  EXPECT_FALSE(f.Matches(""));
}

TEST(TypeFilterTest, TrailingStarIsAPrefixMatch) {
  TypeFilter f = MustParseType("zlm.*");
  EXPECT_TRUE(f.Matches("zlm.on_publish"));
  EXPECT_TRUE(f.Matches("zlm.stream_online"));
  EXPECT_FALSE(f.Matches("zlm"));
  EXPECT_FALSE(f.Matches("zl"));
  EXPECT_FALSE(f.Matches("app.zlm.x"));
}

TEST(TypeFilterTest, LoneStarMatchesEveryType) {
  TypeFilter f = MustParseType("*");
  EXPECT_TRUE(f.Matches("zlm.on_publish"));
  EXPECT_TRUE(f.Matches("anything"));
  EXPECT_TRUE(f.Matches(""));
}

TEST(TypeFilterTest, StarAnywhereButTheEndIsAnErrorNamingTheField) {
  for (const char* bad : {"*.on_publish", "zlm.*.x", "**", "a*b", ""}) {
    absl::StatusOr<TypeFilter> f = TypeFilter::Parse(bad, "types[4]");
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("types[4]")) << bad;
  }
}

TEST(TypeFilterTest, RejectsInvalidText) {
  for (const std::string& bad : {std::string("zlm.\x01"), std::string("\xED\xA0\x80"),
                                 std::string(kMaxNameBytes + 1, 't')}) {
    absl::StatusOr<TypeFilter> f = TypeFilter::Parse(bad, "types[1]");
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << absl::CEscape(bad);
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("types[1]"));
  }
}

}  // namespace
}  // namespace hookstream
