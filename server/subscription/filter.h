// What a subscription wants: stream patterns OR-ed, and event types (exact or prefix*) OR-ed;
// an empty list matches everything. Immutable after Create: safe from any thread.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/common/names.h"

namespace hookstream::subscription {

class Filter {
 public:
  // INVALID_ARGUMENT naming the field (streams[i] / types[i]) on a bad pattern or type.
  static absl::StatusOr<Filter> Create(const std::vector<std::string>& streams,
                                       const std::vector<std::string>& types);

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

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_FILTER_H_
