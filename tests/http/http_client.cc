#include "tests/http/http_client.h"

#include <curl/curl.h>

#include <cstring>
#include <mutex>

namespace hookstream::testing {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct Upload {
  const std::string* body;
  size_t offset = 0;
};

size_t Feed(char* buf, size_t size, size_t n, void* in) {
  auto* u = static_cast<Upload*>(in);
  const size_t left = u->body->size() - u->offset;
  const size_t take = std::min(left, size * n);
  std::memcpy(buf, u->body->data() + u->offset, take);
  u->offset += take;
  return take;
}

}  // namespace

HttpClient::HttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResult HttpClient::Post(const std::string& url, const std::string& body,
                            const std::vector<std::string>& headers, bool chunked) {
  return Perform(url, &body, headers, chunked);
}

HttpResult HttpClient::Get(const std::string& url) { return Perform(url, nullptr, {}, false); }

HttpResult HttpClient::Perform(const std::string& url, const std::string* body,
                               const std::vector<std::string>& headers, bool chunked) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  HttpResult r;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  // No "Expect: 100-continue" round trip (ZLMediaKit sends none either).
  list = curl_slist_append(list, "Expect:");
  Upload upload{body};
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (chunked) {
      list = curl_slist_append(list, "Transfer-Encoding: chunked");
      curl_easy_setopt(c, CURLOPT_READFUNCTION, &Feed);
      curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    } else {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    r.error = error[0] != 0 ? error : curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.new_connections);
  }
  curl_slist_free_all(list);
  return r;
}

std::string LocalUrl(int port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

}  // namespace hookstream::testing
