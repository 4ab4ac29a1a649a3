// A small HTTP/1.1 server for hookstream's HTTP listener (ZLMediaKit hooks, /healthz, /readyz,
// /metrics), optionally over TLS, on GNU libmicrohttpd: its epoll thread pool parses requests, keeps connections alive
// and enforces idle timeouts; this class adds routing, a body-size limit and asynchronous
// replies (a handler may answer from any thread, later: the connection is suspended meanwhile).
//
// Threads: handlers run on libmicrohttpd's pool threads and must not block; they hand their
// Responder to whoever will answer. Start/BeginDrain/Drain/destructor from one controlling thread.
// Lifetime: the server must outlive every handler call; Drain() answers what is still unanswered
// at its deadline with 503, so no request outlives it.
#ifndef HOOKSTREAM_SERVER_HTTP_HTTP_SERVER_H_
#define HOOKSTREAM_SERVER_HTTP_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hookstream::http {

struct Request {
  std::string method;
  std::string path;  // Without the query string, as sent (not percent-decoded).
  std::vector<std::pair<std::string, std::string>> query;    // Decoded, in order.
  std::vector<std::pair<std::string, std::string>> headers;  // As received.
  std::string body;

  // The first query argument / header (case-insensitive) named `name`; nullptr when absent.
  const std::string* QueryArg(absl::string_view name) const;
  const std::string* Header(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  bool close_connection = false;  // Adds "Connection: close".
  // Further headers, e.g. Retry-After or Location.
  std::vector<std::pair<std::string, std::string>> headers;
};

// A JSON body {"code": code, "msg": msg} with the given HTTP status: the shape of every error
// this listener sends (ZLMediaKit reads `code` and `msg`).
Response JsonError(int status, int code, absl::string_view msg);

namespace internal {
struct PendingRequest;
}

// The right to answer one request, exactly once. Movable, thread-safe; Send may be called from
// any thread, also before the handler returns. A second Send is ignored (returns false). A
// Responder dropped without Send answers 500, so no request is left hanging.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<internal::PendingRequest> pending);
  Responder(Responder&&) = default;
  Responder& operator=(Responder&& other);
  ~Responder();

  // True when this call answered the request.
  bool Send(Response response) const;
  bool valid() const { return pending_ != nullptr; }

 private:
  std::shared_ptr<internal::PendingRequest> pending_;
};

using Handler = std::function<void(Request request, Responder responder)>;

struct HttpServerOptions {
  // host:port; port 0 picks a free one (see port()).
  std::string listen = "127.0.0.1:7080";
  // Largest request body; a larger one is answered 413 without being read to the end.
  size_t max_body_bytes = 1 << 20;
  // A connection idle this long is closed, also mid-request (libmicrohttpd counts whole seconds).
  absl::Duration idle_timeout = absl::Seconds(30);
  size_t max_connections = 1024;
  int threads = 2;
  // /readyz answers 200 {"status":"ready"} while this returns "" (or is unset) and the server is
  // not draining; otherwise 503 {"status":"not_ready","reason":...}. Called on pool threads.
  std::function<std::string()> not_ready;
  // PEM certificate chain and private key: both set serves HTTPS (libmicrohttpd on GnuTLS).
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

class HttpServer {
 public:
  struct Route {
    std::string prefix;  // Matches paths equal to it, or starting with it when it ends in '/'.
    Handler handler;
  };

  // Starts listening. Routes are matched in order; unmatched paths get 404. /healthz (liveness)
  // is built in: 200 {"status":"ok"} while serving, 503 {"status":"draining"} after
  // BeginDrain(); so is /readyz (readiness, see HttpServerOptions::not_ready).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           std::vector<Route> routes);
  ~HttpServer();

  int port() const { return port_; }

  // Stops accepting connections; requests that arrive on open connections get 503 with
  // "Connection: close". Idempotent.
  void BeginDrain();
  // BeginDrain, then waits until every request that reached a handler was answered (answering
  // what is left at `deadline` with 503), then closes every connection and stops. Idempotent.
  void Drain(absl::Time deadline);

  // Requests handed to handlers and not yet answered.
  size_t InFlight() const;

  class Impl;  // Implementation detail (libmicrohttpd glue).

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl, int port);

  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace hookstream::http

#endif  // HOOKSTREAM_SERVER_HTTP_HTTP_SERVER_H_
