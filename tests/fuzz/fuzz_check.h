// FUZZ_CHECK(cond) << ...: an invariant a fuzz target asserts on what the code under test
// returned. A failure prints the message and aborts, which libFuzzer reports as a crash with the
// input that caused it.
#ifndef HOOKSTREAM_TESTS_FUZZ_FUZZ_CHECK_H_
#define HOOKSTREAM_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace hookstream::fuzz {

class CheckFailure {
 public:
  CheckFailure(const char* cond, const char* file, int line) {
    out_ << file << ":" << line << ": FUZZ_CHECK(" << cond << ") failed: ";
  }
  [[noreturn]] ~CheckFailure() {
    std::cerr << out_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return out_; }

 private:
  std::ostringstream out_;
};

}  // namespace hookstream::fuzz

#define FUZZ_CHECK(cond) \
  if (cond)              \
    ;                    \
  else                   \
    ::hookstream::fuzz::CheckFailure(#cond, __FILE__, __LINE__).stream()

#endif  // HOOKSTREAM_TESTS_FUZZ_FUZZ_CHECK_H_
