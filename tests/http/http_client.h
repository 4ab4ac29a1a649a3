// A minimal blocking HTTP/1.1 client for tests, on libcurl. One client is one keep-alive
// connection (reused across calls while the server keeps it open). Not thread-safe: one per
// thread.
#ifndef HOOKSTREAM_TESTS_HTTP_HTTP_CLIENT_H_
#define HOOKSTREAM_TESTS_HTTP_HTTP_CLIENT_H_

#include <string>
#include <utility>
#include <vector>

namespace hookstream::testing {

struct HttpResult {
  long status = 0;  // 0: transport error (see error).
  std::string body;
  std::string error;
  long new_connections = 0;  // Connections opened for this request (0: one was reused).
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `headers` as "Name: value" lines; `chunked` sends the body with chunked encoding.
  HttpResult Post(const std::string& url, const std::string& body,
                  const std::vector<std::string>& headers = {}, bool chunked = false);
  HttpResult Get(const std::string& url);
  // For https:// URLs: trust only the CA certificates in this PEM file.
  void set_ca_file(std::string path) { ca_file_ = std::move(path); }

 private:
  HttpResult Perform(const std::string& url, const std::string* body,
                     const std::vector<std::string>& headers, bool chunked);
  void* curl_;
  std::string ca_file_;
};

// "http://127.0.0.1:<port><path>"
std::string LocalUrl(int port, const std::string& path);

}  // namespace hookstream::testing

#endif  // HOOKSTREAM_TESTS_HTTP_HTTP_CLIENT_H_
