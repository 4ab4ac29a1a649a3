// Access to the ZLMediaKit captures in shared/fixtures/zlm (see its README.md).
#ifndef HOOKSTREAM_TESTS_INGEST_FIXTURES_H_
#define HOOKSTREAM_TESTS_INGEST_FIXTURES_H_

#include <fstream>
#include <sstream>
#include <string>

namespace hookstream::testing {

inline std::string ZlmFixturePath(const std::string& name) {
  return std::string(HOOKSTREAM_FIXTURES_DIR) + "/zlm/" + name;
}

inline std::string ReadZlmFixture(const std::string& name) {
  std::ifstream in(ZlmFixturePath(name), std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_INGEST_FIXTURES_H_
