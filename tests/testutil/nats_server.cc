#include "tests/testutil/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
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

// True when the server listening on 127.0.0.1:`port` is the nats-server named `name`: its INFO
// line names it. Another test's server that took the port (free ports are picked, released and
// bound later, so two test processes can pick the same one) is not taken for ours.
bool ServesAs(int port, const std::string& name) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval timeout = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string info;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    char buf[1024];
    while (info.find('\n') == std::string::npos && info.size() < 8192) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      info.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return absl::StartsWith(info, "INFO ") &&
         absl::StrContains(info, absl::StrCat("\"server_name\":\"", name, "\""));
}

// `n` distinct free ports: each is held bound until all are picked.
std::vector<int> FreePorts(int n) {
  std::vector<int> fds, ports;
  for (int i = 0; i < n; ++i) {
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
    if (fd >= 0) fds.push_back(fd);
    ports.push_back(port);
  }
  for (int fd : fds) close(fd);
  return ports;
}

}  // namespace

int FreePort() { return FreePorts(1)[0]; }

bool HaveNatsServer() { return access(NatsServerPath(), X_OK) == 0; }

NatsNode::NatsNode(std::string name, std::string dir, int client_port, int cluster_port,
                   std::string cluster_name, std::vector<int> routes)
    : name_(std::move(name)),
      dir_(std::move(dir)),
      client_port_(client_port),
      cluster_port_(cluster_port),
      cluster_name_(std::move(cluster_name)),
      routes_(std::move(routes)) {}

NatsNode::~NatsNode() {
  if (pid_ > 0) Kill9();
}

std::string NatsNode::url() const { return absl::StrCat("nats://127.0.0.1:", client_port_); }

std::string NatsNode::Log() const { return ReadFile(absl::StrCat(dir_, "/", name_, ".log")); }

std::string NatsNode::TryStart() {
  std::filesystem::create_directories(dir_);
  std::vector<std::string> args = {
      NatsServerPath(),           "-js", "-a",  "127.0.0.1", "-p",
      absl::StrCat(client_port_), "-n",  name_, "-sd",       absl::StrCat(dir_, "/", name_)};
  if (cluster_port_ != 0) {
    std::vector<std::string> urls;
    for (int p : routes_) urls.push_back(absl::StrCat("nats://127.0.0.1:", p));
    args.insert(args.end(), {"--cluster_name", cluster_name_, "--cluster",
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
  if (pid_ < 0) return absl::StrCat("fork: ", std::strerror(errno));
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
        return ServesAs(client_port_, name_);
      },
      absl::Seconds(30));
  if (up && pid_ > 0) return "";
  Kill9();
  return absl::StrCat("nats-server ", name_, " did not start:\n", Log());
}

void NatsNode::Start() {
  const std::string error = TryStart();
  ASSERT_TRUE(error.empty()) << error;
}

void NatsNode::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

NatsFixture::NatsFixture(int nodes) : size_(nodes) {
  static std::atomic<int> fixtures{0};
  name_ = absl::StrCat("hs", getpid(), "x", fixtures.fetch_add(1));
  PlaceNodes(0);
}

void NatsFixture::PlaceNodes(int attempt) {
  nodes_.clear();
  const std::vector<int> ports = FreePorts(size_ > 1 ? 2 * size_ : 1);
  for (int i = 0; i < size_; ++i) {
    std::vector<int> routes;
    for (int j = 0; j < size_ && size_ > 1; ++j) {
      if (j != i) routes.push_back(ports[size_ + j]);
    }
    nodes_.push_back(std::make_unique<NatsNode>(
        absl::StrCat(name_, "-a", attempt, "-n", i), dir_.path(), ports[i],
        size_ > 1 ? ports[size_ + i] : 0, name_, std::move(routes)));
  }
}

NatsFixture::~NatsFixture() {
  for (auto& n : nodes_) n->Kill9();
}

void NatsFixture::Start() {
  // A port picked free can be taken by another test's server before ours binds it: that node
  // then dies or is not the one answering, and the whole cluster starts again on new ports.
  constexpr int kAttempts = 5;
  std::string errors;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) PlaceNodes(attempt);
    std::string error;
    for (auto& n : nodes_) {
      error = n->TryStart();
      if (!error.empty()) break;
    }
    if (error.empty()) return;
    for (auto& n : nodes_) n->Kill9();
    absl::StrAppend(&errors, "attempt ", attempt + 1, ": ", error, "\n");
  }
  ADD_FAILURE() << "no NATS " << (size_ > 1 ? "cluster" : "server") << " started in " << kAttempts
                << " attempts:\n"
                << errors;
}

std::vector<std::string> NatsFixture::urls() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->url());
  return out;
}

}  // namespace hookstream::testing
