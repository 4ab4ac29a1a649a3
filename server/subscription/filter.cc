#include "server/subscription/filter.h"

#include "absl/strings/str_cat.h"

namespace hookstream::subscription {

absl::StatusOr<Filter> Filter::Create(const std::vector<std::string>& streams,
                                      const std::vector<std::string>& types) {
  Filter f;
  f.exact_only_ = !streams.empty();
  for (size_t i = 0; i < streams.size(); ++i) {
    absl::StatusOr<StreamPattern> p = StreamPattern::Parse(streams[i], absl::StrCat("streams[", i, "]"));
    if (!p.ok()) return p.status();
    f.exact_only_ = f.exact_only_ && p->is_exact();
    f.patterns_.push_back(*std::move(p));
  }
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
