// A hookstreamd child process for tests of the real binary: spawned on port 0 with its stderr
// in a file, started when its start line names the port, killed with SIGKILL or drained with
// SIGTERM. The destructor SIGKILLs a child that still runs, and the child dies with the test
// process (PR_SET_PDEATHSIG), so a failing test never leaves a server behind.
#ifndef HOOKSTREAM_TESTS_TESTUTIL_SERVER_PROCESS_H_
#define HOOKSTREAM_TESTS_TESTUTIL_SERVER_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace hookstream::testing {

// Polls `done` every few milliseconds until it holds or `timeout` passes: for conditions nobody
// can signal to this process (a file another process writes, a child's exit).
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout);
std::string ReadFile(const std::string& path);
std::string DescribeWaitStatus(int status);

class ServerProcess {
 public:
  // `binary`: the hookstreamd to run; `extra_args` are appended to --data_dir/--grpc_listen.
  ServerProcess(std::string binary, std::string data_dir, std::string log_path,
                std::vector<std::string> extra_args = {});
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  // Spawns the server and waits for its start line (gtest assertions on failure).
  void Start();
  // kill -9, then reaps the child; it must not have died on its own before.
  void Kill9();
  // SIGTERM (the drain path): the wait status, or nullopt if it did not exit within `timeout`.
  std::optional<int> Terminate(absl::Duration timeout);

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Resident set size of the child in KiB (VmRSS), or -1.
  long RssKib() const;
  std::string Log() const { return ReadFile(log_path_); }

 private:
  bool ParsePort();

  const std::string binary_;
  const std::string data_dir_;
  const std::string log_path_;
  const std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_SERVER_PROCESS_H_
