#include "tests/testutil/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/testutil/server_process.h"

extern char** environ;

namespace hookstream::testing {
namespace {

// Debian installs it in /usr/sbin.
const char* NatsServerPath() {
  for (const char* p :
       {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "/usr/sbin/nats-server";
}

bool CanConnect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

bool HaveNatsServer() { return access(NatsServerPath(), X_OK) == 0; }

NatsNode::NatsNode(std::string name, std::string dir, int client_port, int cluster_port,
                   std::vector<int> routes)
    : name_(std::move(name)),
      dir_(std::move(dir)),
      client_port_(client_port),
      cluster_port_(cluster_port),
      routes_(std::move(routes)) {}

NatsNode::~NatsNode() {
  if (pid_ > 0) Kill9();
}

std::string NatsNode::url() const { return absl::StrCat("nats://127.0.0.1:", client_port_); }

std::string NatsNode::Log() const { return ReadFile(absl::StrCat(dir_, "/", name_, ".log")); }

void NatsNode::Start() {
  std::filesystem::create_directories(dir_);
  std::vector<std::string> args = {
      NatsServerPath(),           "-js", "-a",  "127.0.0.1", "-p",
      absl::StrCat(client_port_), "-n",  name_, "-sd",       absl::StrCat(dir_, "/", name_)};
  if (cluster_port_ != 0) {
    std::vector<std::string> urls;
    for (int p : routes_) urls.push_back(absl::StrCat("nats://127.0.0.1:", p));
    args.insert(args.end(), {"--cluster_name", "hookstream-test", "--cluster",
                             absl::StrCat("nats://127.0.0.1:", cluster_port_), "--routes",
                             absl::StrJoin(urls, ",")});
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = absl::StrCat(dir_, "/", name_, ".log");
  const char* log = log_path.c_str();
  const pid_t parent = getpid();
  pid_ = fork();
  ASSERT_GE(pid_, 0) << "fork: " << std::strerror(errno);
  if (pid_ == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(out, STDERR_FILENO) < 0) {
      _exit(127);
    }
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  const bool up = PollUntil(
      [&] {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;  // Died: reported below.
        }
        return CanConnect(client_port_);
      },
      absl::Seconds(30));
  ASSERT_TRUE(up && pid_ > 0) << "nats-server " << name_ << " did not start:\n" << Log();
}

void NatsNode::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

NatsFixture::NatsFixture(int nodes) {
  std::vector<int> client(nodes), cluster(nodes);
  for (int i = 0; i < nodes; ++i) {
    client[i] = FreePort();
    cluster[i] = nodes > 1 ? FreePort() : 0;
  }
  for (int i = 0; i < nodes; ++i) {
    std::vector<int> routes;
    for (int j = 0; j < nodes && nodes > 1; ++j) {
      if (j != i) routes.push_back(cluster[j]);
    }
    nodes_.push_back(std::make_unique<NatsNode>(absl::StrCat("n", i), dir_.path(), client[i],
                                                cluster[i], std::move(routes)));
  }
}

NatsFixture::~NatsFixture() {
  for (auto& n : nodes_) n->Kill9();
}

void NatsFixture::Start() {
  for (auto& n : nodes_) {
    n->Start();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

std::vector<std::string> NatsFixture::urls() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->url());
  return out;
}

}  // namespace hookstream::testing
