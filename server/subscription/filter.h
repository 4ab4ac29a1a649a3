// What a subscription wants: stream patterns OR-ed, and event types (exact or prefix*) OR-ed;
// an empty list matches everything. Immutable after Create: safe from any thread.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/common/names.h"

namespace hookstream::subscription {

class Filter {
 public:
  // INVALID_ARGUMENT naming the field (streams[i] / types[i]) on a bad pattern or type.
  //
  // `scopes` (the caller's token's stream patterns; empty: every stream) narrow the filter: its
  // patterns become the intersections of each requested pattern with each scope, so a filter
  // never matches a stream outside the scopes whatever it asks for, and everything downstream
  // (live index, ring and disk reads, snapshots, checkpoints) works on the narrowed filter
  // unchanged. PERMISSION_DENIED when no requested pattern overlaps any scope.
  static absl::StatusOr<Filter> Create(const std::vector<std::string>& streams,
                                       const std::vector<std::string>& types,
                                       const std::vector<StreamPattern>& scopes = {});

  bool Matches(absl::string_view stream, absl::string_view type) const;
  bool MatchesStream(absl::string_view stream) const;
  bool MatchesType(absl::string_view type) const;

  // True when every stream pattern is an exact name (and there is at least one): the
  // subscription can be indexed by stream name.
  bool exact_streams_only() const { return exact_only_; }
  const std::vector<StreamPattern>& patterns() const { return patterns_; }

 private:
  std::vector<StreamPattern> patterns_;
  std::vector<TypeFilter> types_;
  bool exact_only_ = false;
};

// The pattern matching exactly the streams both `a` and `b` match; nullopt when there is none.
// ("a/*/c" and "a/b/>" give "a/b/c"; ">" and "t/>" give "t/>"; "x/y" and "t/>" give nothing.)
std::optional<StreamPattern> IntersectPatterns(const StreamPattern& a, const StreamPattern& b);

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_
