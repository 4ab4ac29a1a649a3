#include "server/webhook/curl_multi.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace hookstream::webhook {
namespace {

constexpr size_t kMaxErrorBody = 200;

// Keeps the start of a response body for error messages; discards the rest.
size_t OnBody(char* data, size_t size, size_t n, void* userp) {
  std::string* keep = static_cast<std::string*>(userp);
  const size_t len = size * n;
  if (keep->size() < kMaxErrorBody) {
    keep->append(data, std::min(len, kMaxErrorBody - keep->size()));
  }
  return len;
}

std::string Printable(absl::string_view s) {
  std::string out;
  for (char c : s) out.push_back(absl::ascii_isprint(c) ? c : ' ');
  return std::string(absl::StripAsciiWhitespace(out));
}

}  // namespace

struct CurlMulti::Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  std::string response_start;
  char error[CURL_ERROR_SIZE] = {0};
  absl::Duration timeout;
  void* tag = nullptr;

  ~Transfer() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

absl::StatusOr<std::unique_ptr<CurlMulti>> CurlMulti::Create(size_t max_connections) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CurlMulti> m(new CurlMulti());
  m->multi_ = curl_multi_init();
  if (m->multi_ == nullptr) return absl::ResourceExhaustedError("curl_multi_init failed");
  curl_multi_setopt(m->multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(max_connections));
  return m;
}

CurlMulti::~CurlMulti() {
  // Transfers still running are abandoned: their events were not marked done, so they are
  // sent again (that is "at most what was in flight").
  for (Transfer* t : running_) {
    curl_multi_remove_handle(multi_, t->easy);
    delete t;
  }
  free_.clear();
  curl_multi_cleanup(multi_);
}

void CurlMulti::Start(HttpRequest request, absl::Duration timeout, void* tag) {
  std::unique_ptr<Transfer> t;
  if (!free_.empty()) {
    t = std::move(free_.back());
    free_.pop_back();
    curl_easy_reset(t->easy);
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
  } else {
    t = std::make_unique<Transfer>();
    t->easy = curl_easy_init();
  }
  t->request = std::move(request);
  t->response_start.clear();
  t->error[0] = 0;
  t->timeout = timeout;
  t->tag = tag;
  for (const std::string& h : t->request.headers)
    t->headers = curl_slist_append(t->headers, h.c_str());
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "hookstream-webhook/0.1");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->response_start);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_multi_add_handle(multi_, e);
  running_.insert(t.get());
  t.release();  // Owned by the multi handle until Finish.
}

void CurlMulti::Finish(Transfer* t, int curl_code, std::vector<Completion>* done) {
  std::unique_ptr<Transfer> owned(t);
  curl_multi_remove_handle(multi_, t->easy);
  running_.erase(t);
  Completion c{t->tag, {}};
  AttemptResult& r = c.result;
  const CURLcode code = static_cast<CURLcode>(curl_code);
  if (code != CURLE_OK) {
    r.kind = AttemptResult::Kind::kFailed;
    if (code == CURLE_OPERATION_TIMEDOUT) {
      r.error = absl::StrCat("timed out after ", absl::FormatDuration(t->timeout));
    } else {
      r.error = t->error[0] != 0 ? std::string(t->error) : curl_easy_strerror(code);
    }
  } else {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      r.kind = AttemptResult::Kind::kDelivered;
    } else if (status == 410) {
      r.kind = AttemptResult::Kind::kGone;
      r.error = absl::StrCat("HTTP 410 Gone from ", t->request.url);
    } else {
      r.kind = AttemptResult::Kind::kFailed;
      r.error = absl::StrCat("HTTP ", status);
      if (status >= 300 && status < 400) {
        char* location = nullptr;
        curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location);
        absl::StrAppend(&r.error, ": redirect to ", location != nullptr ? location : "(none)",
                        " not followed");
      } else if (!t->response_start.empty()) {
        absl::StrAppend(&r.error, ": ", Printable(t->response_start));
      }
      if (status == 429 || status == 503) {
        curl_off_t seconds = 0;  // libcurl parses both delta-seconds and HTTP-date forms.
        if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &seconds) == CURLE_OK && seconds > 0) {
          r.retry_after = absl::Seconds(std::min<curl_off_t>(seconds, 24 * 3600));
          absl::StrAppend(&r.error, " (Retry-After ", seconds, "s)");
        }
      }
    }
  }
  done->push_back(std::move(c));
  t->request = HttpRequest();
  free_.push_back(std::move(owned));
  if (free_.size() > 256) free_.erase(free_.begin());
}

void CurlMulti::Perform(std::vector<Completion>* done) {
  int running = 0;
  curl_multi_perform(multi_, &running);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    Finish(t, msg->data.result, done);
  }
}

void CurlMulti::Poll(absl::Duration timeout) {
  const int ms = static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))), 0, 60'000));
  curl_multi_poll(multi_, nullptr, 0, ms, nullptr);
}

void CurlMulti::Wakeup() { curl_multi_wakeup(multi_); }

}  // namespace hookstream::webhook
