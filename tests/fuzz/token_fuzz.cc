// Resume-token decoding (server/subscription/token.*) on arbitrary client input: never crashes,
// and whatever it accepts is the one canonical spelling of a position of this log (Encode of the
// decoded position gives the input back). The input's first 8 bytes also encode a position that
// must decode to itself.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/string_view.h"
#include "server/subscription/token.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Fixed, so seeds in corpus/token made with it (see tests/fuzz/README.md) decode.
const hookstream::subscription::TokenCodec& Codec() {
  static const auto* codec = new hookstream::subscription::TokenCodec(
      std::string("0123456789abcdef", 16), std::string("fuzz-token-key-0123456789abcdef!"));
  return *codec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using hookstream::Position;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const auto& codec = Codec();
  absl::StatusOr<Position> decoded = codec.Decode(input);
  if (decoded.ok()) {
    FUZZ_CHECK(codec.Encode(*decoded) == input) << "accepted a non-canonical token";
  } else {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument ||
               decoded.status().code() == absl::StatusCode::kFailedPrecondition)
        << decoded.status();
  }
  if (size >= 8) {
    const Position p(absl::big_endian::Load64(data));
    absl::StatusOr<Position> round = codec.Decode(codec.Encode(p));
    FUZZ_CHECK(round.ok() && *round == p) << "position " << p.value() << " did not round-trip";
  }
  return 0;
}
