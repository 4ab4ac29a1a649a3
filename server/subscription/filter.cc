#include "server/subscription/filter.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hookstream::subscription {

std::optional<StreamPattern> IntersectPatterns(const StreamPattern& a, const StreamPattern& b) {
  const std::vector<std::string>& ta = a.tokens();
  const std::vector<std::string>& tb = b.tokens();
  const size_t common = std::min(ta.size(), tb.size());
  std::vector<std::string> out;
  for (size_t i = 0; i < common; ++i) {
    if (ta[i] == "*") {
      out.push_back(tb[i]);
    } else if (tb[i] == "*" || ta[i] == tb[i]) {
      out.push_back(ta[i]);
    } else {
      return std::nullopt;  // Two different literal tokens.
    }
  }
  bool tail;
  if (ta.size() == tb.size()) {
    // A trailing '>' needs one more token: both must have it, or neither.
    if (a.has_tail_wildcard() != b.has_tail_wildcard()) return std::nullopt;
    tail = a.has_tail_wildcard();
  } else {
    // The shorter pattern's '>' must absorb the longer one's remaining tokens (and its '>').
    const StreamPattern& shorter = ta.size() < tb.size() ? a : b;
    const StreamPattern& longer = ta.size() < tb.size() ? b : a;
    if (!shorter.has_tail_wildcard()) return std::nullopt;
    for (size_t i = common; i < longer.tokens().size(); ++i) out.push_back(longer.tokens()[i]);
    tail = longer.has_tail_wildcard();
  }
  if (tail) out.push_back(">");
  // Built from valid tokens, so it parses.
  absl::StatusOr<StreamPattern> p = StreamPattern::Parse(absl::StrJoin(out, "/"), "pattern");
  if (!p.ok()) return std::nullopt;
  return *std::move(p);
}

absl::StatusOr<Filter> Filter::Create(const std::vector<std::string>& streams,
                                      const std::vector<std::string>& types,
                                      const std::vector<StreamPattern>& scopes) {
  Filter f;
  std::vector<StreamPattern> requested;
  for (size_t i = 0; i < streams.size(); ++i) {
    absl::StatusOr<StreamPattern> p = StreamPattern::Parse(streams[i], absl::StrCat("streams[", i, "]"));
    if (!p.ok()) return p.status();
    requested.push_back(*std::move(p));
  }
  if (scopes.empty()) {
    f.patterns_ = std::move(requested);
  } else if (requested.empty()) {
    f.patterns_ = scopes;  // "Every stream" within the scopes.
  } else {
    absl::flat_hash_set<std::string> seen;
    for (const StreamPattern& r : requested) {
      for (const StreamPattern& s : scopes) {
        std::optional<StreamPattern> both = IntersectPatterns(r, s);
        if (both && seen.insert(both->text()).second) f.patterns_.push_back(*std::move(both));
      }
    }
    if (f.patterns_.empty()) {
      std::vector<std::string> names;
      for (const StreamPattern& s : scopes) names.push_back(s.text());
      return absl::PermissionDeniedError(
          absl::StrCat("streams: no requested pattern overlaps the streams this token may read (",
                       absl::StrJoin(names, ", "), ")"));
    }
  }
  f.exact_only_ = !f.patterns_.empty();
  for (const StreamPattern& p : f.patterns_) f.exact_only_ = f.exact_only_ && p.is_exact();
  for (size_t i = 0; i < types.size(); ++i) {
    absl::StatusOr<TypeFilter> t = TypeFilter::Parse(types[i], absl::StrCat("types[", i, "]"));
    if (!t.ok()) return t.status();
    f.types_.push_back(*std::move(t));
  }
  return f;
}

bool Filter::MatchesStream(absl::string_view stream) const {
  if (patterns_.empty()) return true;
  for (const StreamPattern& p : patterns_) {
    if (p.Matches(stream)) return true;
  }
  return false;
}

bool Filter::MatchesType(absl::string_view type) const {
  if (types_.empty()) return true;
  for (const TypeFilter& t : types_) {
    if (t.Matches(type)) return true;
  }
  return false;
}

bool Filter::Matches(absl::string_view stream, absl::string_view type) const {
  return MatchesStream(stream) && MatchesType(type);
}

}  // namespace hookstream::subscription
