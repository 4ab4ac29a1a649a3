#include "server/http/http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/common/logging.h"

namespace hookstream::http {

const std::string* Request::QueryArg(absl::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

const std::string* Request::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

Response JsonError(int status, int code, absl::string_view msg) {
  Response r;
  r.status = status;
  nlohmann::json body = {{"code", code}, {"msg", std::string(msg)}};
  r.body = body.dump();
  return r;
}

namespace internal {

// One request, from its headers to its completion. Shared by the connection (through
// libmicrohttpd's per-request pointer) and the Responder.
struct PendingRequest {
  explicit PendingRequest(HttpServer::Impl* s, MHD_Connection* c) : server(s), conn(c) {}

  HttpServer::Impl* const server;
  MHD_Connection* const conn;  // Valid until `completed`.

  // Written only by the pool thread that owns the connection, before dispatch.
  Request request;
  bool too_large = false;
  bool dispatched = false;
  bool reply_queued = false;

  absl::Mutex mu;
  bool answered ABSL_GUARDED_BY(mu) = false;
  bool suspended ABSL_GUARDED_BY(mu) = false;
  bool completed ABSL_GUARDED_BY(mu) = false;
  std::optional<Response> response ABSL_GUARDED_BY(mu);
};

}  // namespace internal

using internal::PendingRequest;

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, std::vector<Route> routes)
      : options_(options), routes_(std::move(routes)) {}

  ~Impl() {
    if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
    if (quiesced_fd_ >= 0) close(quiesced_fd_);
  }

  absl::StatusOr<int> Start();
  void BeginDrain();
  void Drain(absl::Time deadline);
  size_t InFlight() const {
    absl::MutexLock l(&mu_);
    return in_flight_.size();
  }

  // Called by Send (with p->mu held): the request no longer needs an answer.
  void Answered(PendingRequest* p) {
    absl::MutexLock l(&mu_);
    in_flight_.erase(p);
  }
  // The answer of a dispatched request was sent (or its connection is gone).
  void Completed() {
    absl::MutexLock l(&mu_);
    --open_;
  }

 private:
  static MHD_Result OnAccess(void* cls, MHD_Connection* conn, const char* url, const char* method,
                             const char* version, const char* upload_data, size_t* upload_data_size,
                             void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* conn, void** con_cls,
                          MHD_RequestTerminationCode toe);
  static void OnLog(void* cls, const char* fmt, va_list ap);

  MHD_Result Access(MHD_Connection* conn, const char* url, const char* method,
                    const char* upload_data, size_t* upload_data_size, void** con_cls);
  void Dispatch(const std::shared_ptr<PendingRequest>& p);
  bool draining() const {
    absl::MutexLock l(&mu_);
    return draining_;
  }

  const HttpServerOptions options_;
  const std::vector<Route> routes_;
  MHD_Daemon* daemon_ = nullptr;
  int quiesced_fd_ = -1;

  mutable absl::Mutex mu_;  // After PendingRequest::mu in lock order.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Dispatched, not yet answered.
  absl::flat_hash_map<PendingRequest*, std::shared_ptr<PendingRequest>> in_flight_
      ABSL_GUARDED_BY(mu_);
  // Dispatched and not yet completed (answered requests whose answer is still being written
  // count): the drain waits for these.
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

MHD_Result QueueResponse(MHD_Connection* conn, const Response& r) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) return MHD_NO;
  if (!r.content_type.empty()) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  }
  if (r.close_connection) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  for (const auto& [name, value] : r.headers) {
    MHD_add_response_header(resp, name.c_str(), value.c_str());
  }
  const MHD_Result ret = MHD_queue_response(conn, static_cast<unsigned int>(r.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result CollectPair(void* cls, MHD_ValueKind kind, const char* key, const char* value) {
  auto* out = static_cast<std::vector<std::pair<std::string, std::string>>*>(cls);
  out->emplace_back(key == nullptr ? "" : key, value == nullptr ? "" : value);
  return MHD_YES;
}

// "host:port" or "[v6]:port" -> sockaddr.
absl::Status ResolveListen(const std::string& listen, sockaddr_storage* addr, bool* ipv6) {
  std::string host;
  std::string port;
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_listen \"", listen, "\": expected host:port or [v6]:port"));
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_listen \"", listen, "\": expected host:port"));
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen \"", listen, "\": bad port \"", port, "\""));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen \"", listen, "\": cannot resolve host: ", gai_strerror(rc)));
  }
  std::memcpy(addr, res->ai_addr, res->ai_addrlen);
  *ipv6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  return absl::OkStatus();
}

}  // namespace

void HttpServer::Impl::OnLog(void* cls, const char* fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(buf);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  HS_EVENT(WARNING, "http.server").Field("message", line);
}

absl::StatusOr<int> HttpServer::Impl::Start() {
  sockaddr_storage addr{};
  bool ipv6 = false;
  if (absl::Status s = ResolveListen(options_.listen, &addr, &ipv6); !s.ok()) return s;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                       MHD_USE_ERROR_LOG;
  if (ipv6) flags |= MHD_USE_IPv6;
  const bool tls = !options_.tls_cert_pem.empty() || !options_.tls_key_pem.empty();
  if (tls) {
    if (options_.tls_cert_pem.empty() || options_.tls_key_pem.empty()) {
      return absl::InvalidArgumentError("HTTPS needs both a certificate and a private key");
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      return absl::FailedPreconditionError("this libmicrohttpd was built without TLS support");
    }
    flags |= MHD_USE_TLS;
  }
  const unsigned int timeout_s =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.idle_timeout)));
  daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &Impl::OnAccess, this,                                      //
      MHD_OPTION_EXTERNAL_LOGGER, &Impl::OnLog, this,                                         //
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr),                               //
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned int>(std::max(1, options_.threads)),  //
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(options_.max_connections),       //
      MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,                                               //
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::OnCompleted, this,                                  //
      // Without TLS these two are skipped: MHD_OPTION_END ends the list early.
      tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, options_.tls_cert_pem.c_str(),        //
      MHD_OPTION_HTTPS_MEM_KEY, options_.tls_key_pem.c_str(),                                 //
      MHD_OPTION_END);
  if (daemon_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve HTTP", tls ? "S" : "", " on ", options_.listen,
        tls ? " (address in use, or a certificate/key that GnuTLS cannot load?)"
            : " (address in use?)"));
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  return info == nullptr ? 0 : static_cast<int>(info->port);
}

MHD_Result HttpServer::Impl::OnAccess(void* cls, MHD_Connection* conn, const char* url,
                                      const char* method, const char* version,
                                      const char* upload_data, size_t* upload_data_size,
                                      void** con_cls) {
  return static_cast<Impl*>(cls)->Access(conn, url, method, upload_data, upload_data_size, con_cls);
}

void HttpServer::Impl::OnCompleted(void* cls, MHD_Connection* conn, void** con_cls,
                                   MHD_RequestTerminationCode toe) {
  auto* holder = static_cast<std::shared_ptr<PendingRequest>*>(*con_cls);
  if (holder == nullptr) return;
  *con_cls = nullptr;
  PendingRequest* p = holder->get();
  {
    absl::MutexLock l(&p->mu);
    p->completed = true;
    if (p->dispatched && !p->answered) {
      // The connection went away before the answer (libmicrohttpd stopping): nobody to tell.
      p->answered = true;
      p->server->Answered(p);
    }
  }
  if (p->dispatched) p->server->Completed();
  delete holder;
}

MHD_Result HttpServer::Impl::Access(MHD_Connection* conn, const char* url, const char* method,
                                    const char* upload_data, size_t* upload_data_size,
                                    void** con_cls) {
  auto* holder = static_cast<std::shared_ptr<PendingRequest>*>(*con_cls);
  if (holder == nullptr) {
    // Headers are in: set the request up, refuse an announced oversized body at once.
    auto p = std::make_shared<PendingRequest>(this, conn);
    p->request.method = method;
    p->request.path = url;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectPair, &p->request.headers);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, &CollectPair, &p->request.query);
    *con_cls = new std::shared_ptr<PendingRequest>(p);
    const std::string* length = p->request.Header("Content-Length");
    uint64_t n = 0;
    if (length != nullptr && absl::SimpleAtoi(*length, &n) && n > options_.max_body_bytes) {
      p->too_large = true;
      p->reply_queued = true;
      return QueueResponse(
          conn, JsonError(413, 413,
                          absl::StrCat("request body of ", n, " bytes is larger than the limit of ",
                                       options_.max_body_bytes, " bytes (http.max_body_bytes)")));
    }
    return MHD_YES;
  }
  PendingRequest* p = holder->get();
  if (*upload_data_size != 0) {
    if (!p->too_large) {
      if (p->request.body.size() + *upload_data_size > options_.max_body_bytes) {
        p->too_large = true;
        p->request.body.clear();
        p->request.body.shrink_to_fit();
      } else {
        p->request.body.append(upload_data, *upload_data_size);
      }
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (p->reply_queued) return MHD_YES;
  if (p->too_large) {
    p->reply_queued = true;
    Response r = JsonError(413, 413,
                           absl::StrCat("request body is larger than the limit of ",
                                        options_.max_body_bytes, " bytes (http.max_body_bytes)"));
    r.close_connection = true;
    return QueueResponse(conn, r);
  }
  if (!p->dispatched) {
    Dispatch(*holder);
  }
  // Answered already (inline, or from another thread since): send it; else wait suspended until
  // Send resumes the connection, which calls us again.
  absl::MutexLock l(&p->mu);
  if (p->response.has_value()) {
    p->reply_queued = true;
    return QueueResponse(conn, *p->response);
  }
  if (!p->suspended) {
    p->suspended = true;
    MHD_suspend_connection(conn);
  }
  return MHD_YES;
}

void HttpServer::Impl::Dispatch(const std::shared_ptr<PendingRequest>& p) {
  p->dispatched = true;
  {
    absl::MutexLock l(&mu_);
    in_flight_.emplace(p.get(), p);
    ++open_;
  }
  Responder responder(p);
  const std::string& path = p->request.path;
  if (path == "/healthz") {
    Response r;
    const bool serving = !draining();
    r.status = serving ? 200 : 503;
    r.body = serving ? R"({"status":"ok"})" : R"({"status":"draining"})";
    responder.Send(std::move(r));
    return;
  }
  if (path == "/readyz") {
    std::string reason = draining() ? "draining" : "";
    if (reason.empty() && options_.not_ready) reason = options_.not_ready();
    Response r;
    r.status = reason.empty() ? 200 : 503;
    r.body = reason.empty() ? R"({"status":"ready"})"
                            : nlohmann::json{{"status", "not_ready"}, {"reason", reason}}.dump();
    responder.Send(std::move(r));
    return;
  }
  if (draining()) {
    Response r = JsonError(503, 503, "hookstream is draining; retry on another instance");
    r.close_connection = true;
    responder.Send(std::move(r));
    return;
  }
  for (const Route& route : routes_) {
    const bool match = absl::EndsWith(route.prefix, "/") ? absl::StartsWith(path, route.prefix)
                                                         : path == route.prefix;
    if (match) {
      route.handler(std::move(p->request), std::move(responder));
      return;
    }
  }
  responder.Send(JsonError(404, 404, absl::StrCat("no such path: ", path)));
}

void HttpServer::Impl::BeginDrain() {
  absl::MutexLock l(&mu_);
  if (draining_ || daemon_ == nullptr) return;
  draining_ = true;
  quiesced_fd_ = MHD_quiesce_daemon(daemon_);
}

void HttpServer::Impl::Drain(absl::Time deadline) {
  BeginDrain();
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_ == 0; };
    mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }
  // Whatever is left gets a 503 now: a suspended connection must be resumed before the stop.
  std::vector<std::shared_ptr<PendingRequest>> left;
  {
    absl::MutexLock l(&mu_);
    for (auto& [ptr, p] : in_flight_) left.push_back(p);
  }
  for (auto& p : left) {
    Response r = JsonError(503, 503, "hookstream is shutting down; retry");
    r.close_connection = true;
    Responder(p).Send(std::move(r));
  }
  if (!left.empty()) {
    HS_EVENT(WARNING, "http.drain_deadline").Field("answered_503", left.size());
  }
  {
    // Let the last answers be written before the stop closes their connections.
    absl::MutexLock l(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_ == 0; };
    mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(1));
  }
  MHD_Daemon* d = daemon_;
  daemon_ = nullptr;
  if (d != nullptr) MHD_stop_daemon(d);
  if (quiesced_fd_ >= 0) {
    close(quiesced_fd_);
    quiesced_fd_ = -1;
  }
}

Responder::Responder(std::shared_ptr<internal::PendingRequest> pending)
    : pending_(std::move(pending)) {}

Responder& Responder::operator=(Responder&& other) {
  if (this != &other) {
    if (pending_ != nullptr) Send(JsonError(500, 500, "internal error: request not answered"));
    pending_ = std::move(other.pending_);
  }
  return *this;
}

Responder::~Responder() {
  if (pending_ != nullptr) Send(JsonError(500, 500, "internal error: request not answered"));
}

bool Responder::Send(Response response) const {
  if (pending_ == nullptr) return false;
  PendingRequest* p = pending_.get();
  absl::MutexLock l(&p->mu);
  if (p->answered) return false;
  p->answered = true;
  p->response = std::move(response);
  p->server->Answered(p);
  if (p->suspended && !p->completed) {
    p->suspended = false;
    MHD_resume_connection(p->conn);
  }
  return true;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              std::vector<Route> routes) {
  auto impl = std::make_unique<Impl>(options, std::move(routes));
  absl::StatusOr<int> port = impl->Start();
  if (!port.ok()) return port.status();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), *port));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpServer::~HttpServer() { Drain(absl::Now() + absl::Seconds(1)); }

void HttpServer::BeginDrain() { impl_->BeginDrain(); }
void HttpServer::Drain(absl::Time deadline) { impl_->Drain(deadline); }
size_t HttpServer::InFlight() const { return impl_->InFlight(); }

}  // namespace hookstream::http
