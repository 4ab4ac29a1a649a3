// Invariant checks over what a test receiver got, shared by the webhook tests.
#ifndef HOOKSTREAM_TESTS_WEBHOOK_CHECKS_H_
#define HOOKSTREAM_TESTS_WEBHOOK_CHECKS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/webhook/receiver.h"

namespace hookstream::testing {

inline uint64_t SeqOf(const Received& r) {
  uint64_t v = 0;
  (void)absl::SimpleAtoi(r.Header("hookstream-seq"), &v);
  return v;
}

// Per stream: no attempt at seq s arrived before every seq < s had been answered 2xx (2xx
// answers are given on arrival, so list order is answer order for them). Returns the first
// violation, or "".
inline std::string PerStreamOrderViolation(const std::vector<Received>& requests) {
  std::map<std::string, std::set<uint64_t>> ok;
  for (const Received& r : requests) {
    const std::string stream = r.Header("hookstream-stream");
    const uint64_t seq = SeqOf(r);
    const std::set<uint64_t>& done = ok[stream];
    for (uint64_t s = 1; s < seq; ++s) {
      if (done.count(s) == 0) {
        return absl::StrCat("stream ", stream, ": seq ", seq, " sent before seq ", s, " got a 2xx");
      }
    }
    if (r.ok()) ok[stream].insert(seq);
  }
  return "";
}

// webhook-id -> how many attempts were answered 2xx.
inline std::map<std::string, int> DeliveredCounts(const std::vector<Received>& requests) {
  std::map<std::string, int> out;
  for (const Received& r : requests) {
    if (r.ok()) ++out[r.Header("webhook-id")];
  }
  return out;
}

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_WEBHOOK_CHECKS_H_
