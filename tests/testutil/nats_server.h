// nats-server child processes with JetStream for tests of the JetStream backend: one server, or
// a cluster of three (routes between them, so R3 streams). Each node listens on 127.0.0.1 on a
// free port, keeps its store in a temporary directory, logs to a file, and is stopped by its PID
// (SIGKILL; the child also dies with the test process, PR_SET_PDEATHSIG).
#ifndef HOOKSTREAM_TESTS_TESTUTIL_NATS_SERVER_H_
#define HOOKSTREAM_TESTS_TESTUTIL_NATS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/testutil/test_server.h"

namespace hookstream::testing {

// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
int FreePort();

// True when a nats-server binary is installed (tests that need one fail otherwise: it is a
// declared test dependency, .ci/install-deps).
bool HaveNatsServer();

class NatsNode {
 public:
  // `routes`: cluster ports of the other nodes of the cluster `cluster_name` (unique per
  // fixture: nats-server refuses a route from another cluster); cluster_port 0: a single server.
  NatsNode(std::string name, std::string dir, int client_port, int cluster_port,
           std::string cluster_name, std::vector<int> routes);
  NatsNode(const NatsNode&) = delete;
  NatsNode& operator=(const NatsNode&) = delete;
  ~NatsNode();

  // Spawns it and waits until it answers client connections as itself (by its name); returns
  // what went wrong, empty when it runs.
  std::string TryStart();
  // TryStart as a gtest assertion.
  void Start();
  void Kill9();
  bool running() const { return pid_ > 0; }
  std::string url() const;
  std::string Log() const;

 private:
  const std::string name_;
  const std::string dir_;
  const int client_port_;
  const int cluster_port_;
  const std::string cluster_name_;
  const std::vector<int> routes_;
  pid_t pid_ = -1;
};

// One JetStream server, or three clustered, on a temporary directory.
class NatsFixture {
 public:
  explicit NatsFixture(int nodes = 1);
  ~NatsFixture();
  // Starts every node; tries again on new ports when one does not come up (gtest failure after
  // a few attempts).
  void Start();
  NatsNode& node(int i) { return *nodes_[i]; }
  int size() const { return size_; }
  // URLs of every node (a client fails over between them).
  std::vector<std::string> urls() const;
  std::string dir() const { return dir_.path(); }

 private:
  // Nodes on newly picked ports; names carry `attempt` so each start logs to a file of its own.
  void PlaceNodes(int attempt);

  const int size_;
  std::string name_;  // Unique in the machine: the cluster's name, the prefix of node names.
  TempDir dir_;
  std::vector<std::unique_ptr<NatsNode>> nodes_;
};

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_TESTUTIL_NATS_SERVER_H_
