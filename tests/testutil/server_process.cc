#include "tests/testutil/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace hookstream::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(30);
constexpr absl::Duration kPollInterval = absl::Milliseconds(5);

// In the forked child. The server dies with the test process even when that is killed and no
// destructor runs; it starts with no signals blocked and default dispositions.
[[noreturn]] void RunChild(pid_t parent, const char* log_path, char* const* argv) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGTERM, SIGINT, SIGPIPE}) sigaction(sig, &dfl, nullptr);
  const int in = open("/dev/null", O_RDONLY);
  const int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
      dup2(out, STDERR_FILENO) < 0) {
    _exit(127);
  }
  execve(argv[0], argv, environ);
  _exit(127);
}

}  // namespace

bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(kPollInterval);
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

ServerProcess::ServerProcess(std::string binary, std::string data_dir, std::string log_path,
                             std::vector<std::string> extra_args)
    : binary_(std::move(binary)),
      data_dir_(std::move(data_dir)),
      log_path_(std::move(log_path)),
      extra_args_(std::move(extra_args)) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ServerProcess::Start() {
  // Everything the child needs is prepared before fork(): this process has threads, so the
  // child may only make async-signal-safe calls until exec.
  std::vector<std::string> args = {binary_, absl::StrCat("--data_dir=", data_dir_),
                                   "--grpc_listen=127.0.0.1:0"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const char* log_path = log_path_.c_str();
  const pid_t parent = getpid();
  port_ = 0;
  pid_ = fork();
  ASSERT_GE(pid_, 0) << "fork: " << std::strerror(errno);
  if (pid_ == 0) RunChild(parent, log_path, argv.data());

  std::optional<int> early_exit;
  const bool started = PollUntil(
      [&] {
        if (ParsePort()) return true;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          early_exit = status;
          return true;
        }
        return false;
      },
      kStartTimeout);
  ASSERT_FALSE(early_exit.has_value())
      << binary_ << " " << DescribeWaitStatus(*early_exit)
      << " before starting (127: it could not be run); its log:\n"
      << Log();
  ASSERT_TRUE(started) << "no start line from hookstreamd within " << kStartTimeout
                       << "; its log:\n"
                       << Log();
}

void ServerProcess::Kill9() {
  ASSERT_GT(pid_, 0);
  ASSERT_EQ(kill(pid_, SIGKILL), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_) << std::strerror(errno);
  pid_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "hookstreamd ended before the kill: " << DescribeWaitStatus(status) << "; its log:\n"
      << Log();
}

std::optional<int> ServerProcess::Terminate(absl::Duration timeout) {
  if (pid_ <= 0 || kill(pid_, SIGTERM) != 0) return std::nullopt;
  int status = 0;
  if (!PollUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout)) {
    return std::nullopt;
  }
  pid_ = -1;
  return status;
}

long ServerProcess::RssKib() const {
  if (pid_ <= 0) return -1;
  const std::string status = ReadFile(absl::StrCat("/proc/", pid_, "/status"));
  const size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return -1;
  long kib = -1;
  std::istringstream in(status.substr(at + 6));
  in >> kib;
  return kib;
}

bool ServerProcess::ParsePort() {
  const std::string log = Log();
  // The server.started line, in key=value or JSON format.
  const size_t start = log.find("server.started");
  if (start == std::string::npos) return false;
  const size_t end = log.find('\n', start);  // The line is written whole, but maybe not yet.
  if (end == std::string::npos) return false;
  const std::string line = log.substr(start, end - start);
  size_t at = line.find("grpc_port=");
  if (at == std::string::npos) at = line.find("\"grpc_port\":");
  if (at == std::string::npos) return false;
  at = line.find_first_of("=:", at) + 1;
  const size_t stop = line.find_first_not_of("0123456789", at);
  const std::string digits = line.substr(at, stop == std::string::npos ? stop : stop - at);
  return absl::SimpleAtoi(digits, &port_) && port_ > 0;
}

}  // namespace hookstream::testing
