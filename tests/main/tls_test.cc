// TLS on both listeners, with certificates made at test time by the openssl CLI: a throwaway
// CA, a server certificate for localhost / 127.0.0.1, client certificates, and a second CA that
// nobody trusts.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/http/http_client.h"
#include "tests/testutil/test_server.h"

namespace hookstream {
namespace {

using ::hookstream::testing::HttpClient;
using ::hookstream::testing::HttpResult;
using ::hookstream::testing::TempDir;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs a shell command; true on exit status 0. Its output is logged when it fails.
bool Shell(const std::string& cmd) {
  const std::string out = ::testing::TempDir() + "hookstream-tls-test-shell.out";
  const bool ok = std::system((cmd + " >" + out + " 2>&1").c_str()) == 0;
  if (!ok) std::cerr << "(exit != 0) " << cmd << "\n" << ReadFile(out) << "\n";
  return ok;
}

// Certificates in one temp dir: ca.pem, server.{pem,key}, client.{pem,key} signed by ca;
// other-ca.pem and rogue-client.{pem,key} signed by it.
class Certs {
 public:
  Certs() {
    ok_ = MakeCa("ca") && MakeCa("other-ca") &&
          Sign("server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "extendedKeyUsage=serverAuth\n") &&
          Sign("client", "ca", "extendedKeyUsage=clientAuth\n") &&
          Sign("rogue-client", "other-ca", "extendedKeyUsage=clientAuth\n");
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string pem(const std::string& name) const { return ReadFile(path(name)); }

 private:
  bool MakeCa(const std::string& name) {
    return Shell(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                            "-nodes -days 2 -subj /CN=", name, " -keyout ", path(name + ".key"),
                            " -out ", path(name + ".pem"),
                            " -addext basicConstraints=critical,CA:TRUE"
                            " -addext keyUsage=critical,keyCertSign,cRLSign"));
  }
  bool Sign(const std::string& name, const std::string& ca, const std::string& extensions) {
    std::ofstream(path(name + ".ext")) << extensions;
    return Shell(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                            "-subj /CN=", name, " -keyout ", path(name + ".key"), " -out ",
                            path(name + ".csr"))) &&
           Shell(absl::StrCat("openssl x509 -req -days 2 -in ", path(name + ".csr"), " -CA ",
                            path(ca + ".pem"), " -CAkey ", path(ca + ".key"),
                            " -CAcreateserial -out ", path(name + ".pem"), " -extfile ",
                            path(name + ".ext")));
  }

  TempDir dir_;
  bool ok_ = false;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new Certs(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(certs_->ok()) << "openssl could not make certificates"; }

  void Start(bool mtls, ServerOptions o = ServerOptions()) {
    o.tls.cert_file = certs_->path("server.pem");
    o.tls.key_file = certs_->path("server.key");
    if (mtls) o.tls.client_ca_file = certs_->path("ca.pem");
    o.grpc_listen = "127.0.0.1:0";
    o.http_listen = "127.0.0.1:0";
    o.log.data_dir = dir_.path() + "/data";
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  // GetLog over a fresh channel with these credentials.
  grpc::Status Call(const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                             creds, args);
    auto stub = v1::EventStream::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::LogInfo info;
    return stub->GetLog(&ctx, v1::GetLogRequest(), &info);
  }
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                       const std::string& client = "") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = certs_->pem(ca + ".pem");
    if (!client.empty()) {
      o.pem_cert_chain = certs_->pem(client + ".pem");
      o.pem_private_key = certs_->pem(client + ".key");
    }
    return grpc::SslCredentials(o);
  }

  static Certs* certs_;
  TempDir dir_;
  std::unique_ptr<Server> server_;
};

Certs* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, GrpcClientWithTheRightCaConnectsAndOthersDoNot) {
  Start(/*mtls=*/false);
  EXPECT_TRUE(Call(Tls("ca")).ok());
  grpc::Status s = Call(Tls("other-ca"));
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
  s = Call(grpc::InsecureChannelCredentials());
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << "a plaintext client must not get through";
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheClientCa) {
  Start(/*mtls=*/true);
  EXPECT_NE(Call(Tls("ca")).error_code(), grpc::OK) << "no client certificate";
  EXPECT_NE(Call(Tls("ca", "rogue-client")).error_code(), grpc::OK)
      << "a client certificate from another CA";
  EXPECT_TRUE(Call(Tls("ca", "client")).ok());
}

TEST_F(TlsTest, HttpsHealthzAndMetrics) {
  Start(/*mtls=*/false);
  const std::string base = absl::StrCat("https://127.0.0.1:", server_->http_port());
  HttpClient trusting;
  trusting.set_ca_file(certs_->path("ca.pem"));
  HttpResult r = trusting.Get(base + "/healthz");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  EXPECT_EQ(trusting.Get(base + "/metrics").status, 200);
  HttpClient wrong_ca;
  wrong_ca.set_ca_file(certs_->path("other-ca.pem"));
  r = wrong_ca.Get(base + "/healthz");
  EXPECT_EQ(r.status, 0) << "the certificate must not verify against another CA";
  HttpClient plain;
  r = plain.Get(absl::StrCat("http://127.0.0.1:", server_->http_port(), "/healthz"));
  EXPECT_NE(r.status, 200);
}

// The CLI over mTLS with a bearer token: what an operator types.
TEST_F(TlsTest, CliConnectsWithTlsClientCertificateAndToken) {
  constexpr char kToken[] = "cli-test-token-0123456789";
  ServerOptions o;
  api::TokenSpec t;
  t.name = "cli";
  t.secret = kToken;
  t.rights = api::kRightPublish | api::kRightAdmin;
  o.api.auth.tokens.push_back(t);
  Start(/*mtls=*/true, o);
  // The refused calls end at their deadline (the client retries the connection until then), so
  // it is short; the accepted one returns as soon as it is stored, so it gets room for the mTLS
  // handshake on a loaded machine (under TSan, 2 s was not always enough).
  const std::string base = absl::StrCat(HOOKSTREAM_CLI_PATH, " --timeout=2s --server=127.0.0.1:",
                                        server_->grpc_port());
  const std::string patient = absl::StrCat(HOOKSTREAM_CLI_PATH,
                                           " --timeout=60s --server=127.0.0.1:",
                                           server_->grpc_port());
  const std::string tls = absl::StrCat(" --tls_ca=", certs_->path("ca.pem"), " --tls_cert=",
                                       certs_->path("client.pem"), " --tls_key=",
                                       certs_->path("client.key"));
  const std::string publish = " publish --stream=a/b --type=t --data=x";
  EXPECT_TRUE(Shell(absl::StrCat(patient, tls, " --auth_token=", kToken, publish)));
  EXPECT_FALSE(Shell(absl::StrCat(base, tls, publish))) << "no token";
  EXPECT_FALSE(Shell(absl::StrCat(base, " --auth_token=", kToken, publish))) << "plaintext";
  EXPECT_FALSE(Shell(absl::StrCat(base, " --tls_ca=", certs_->path("ca.pem"), " --auth_token=",
                                kToken, publish)))
      << "no client certificate";
  EXPECT_EQ(server_->log()->head().value(), 1u);
}

TEST_F(TlsTest, UnreadableCertificateFailsTheStartNamingTheKey) {
  ServerOptions o;
  o.tls.cert_file = certs_->path("missing.pem");
  o.tls.key_file = certs_->path("server.key");
  o.grpc_listen = "127.0.0.1:0";
  o.log.data_dir = dir_.path() + "/data2";
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("tls.cert_file"));
  o.tls.cert_file = certs_->path("server.ext");  // Exists, but no PEM.
  s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("no PEM"));
}

}  // namespace
}  // namespace hookstream
