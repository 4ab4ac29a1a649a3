// The Redis Streams driver (hiredis). Its fastest correct durable mode: one key per stream,
// XADD pipelined `batch` commands deep per connection, the server on appendonly yes with
// appendfsync everysec (an acknowledged XADD can be lost for up to a second on a crash);
// readers XREAD across every key of the prefix with COUNT `read_count` per key, blocking 100 ms
// at a time when there is nothing new. Redis keeps no order across keys.
#include <hiredis/hiredis.h>
#include <poll.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/hsbench/driver.h"

namespace hsbench {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

absl::StatusOr<Context> Connect(const std::string& address) {
  std::vector<std::string> hp = absl::StrSplit(address, ':');
  int port = 0;
  if (hp.size() != 2 || !absl::SimpleAtoi(hp[1], &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad redis address ", address));
  }
  Context c(redisConnect(hp[0].c_str(), port));
  if (c == nullptr || c->err) {
    return absl::UnavailableError(absl::StrCat("redis connect: ", c ? c->errstr : "no memory"));
  }
  return c;
}

absl::Status Check(redisContext* c, redisReply* r, absl::string_view what) {
  if (r == nullptr) return absl::UnavailableError(absl::StrCat(what, ": ", c->errstr));
  if (r->type == REDIS_REPLY_ERROR) return absl::InternalError(absl::StrCat(what, ": ", r->str));
  return absl::OkStatus();
}

std::string Key(const std::string& prefix, int k) { return absl::StrCat(prefix, ":s", k); }

class RedisPublisher : public Publisher {
 public:
  absl::Status Open(const DriverOptions& options, const std::string& prefix) {
    batch_ = options.batch;
    for (int k = 0; k < options.streams; ++k) keys_.push_back(Key(prefix, k));
    absl::StatusOr<Context> c = Connect(options.address);
    if (!c.ok()) return c.status();
    c_ = *std::move(c);
    return absl::OkStatus();
  }

  absl::Status Send(int stream_index, absl::string_view payload) override {
    const std::string& key = keys_[stream_index];
    const char* argv[] = {"XADD", key.data(), "*", "d", payload.data()};
    const size_t lens[] = {4, key.size(), 1, 1, payload.size()};
    if (redisAppendCommandArgv(c_.get(), 5, argv, lens) != REDIS_OK) {
      return absl::UnavailableError(c_->errstr);
    }
    if (++queued_ >= batch_) return Finish();
    return absl::OkStatus();
  }

  // Writes out what is queued, then takes whatever replies have already arrived.
  absl::Status Kick() override {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(c_.get(), &done) != REDIS_OK) return absl::UnavailableError(c_->errstr);
    }
    pollfd p{c_->fd, POLLIN, 0};
    while (queued_ > 0) {
      void* r = nullptr;
      if (redisGetReplyFromReader(c_.get(), &r) != REDIS_OK) {
        return absl::UnavailableError(c_->errstr);
      }
      if (r == nullptr) {
        if (poll(&p, 1, 0) <= 0) break;
        if (redisBufferRead(c_.get()) != REDIS_OK) return absl::UnavailableError(c_->errstr);
        continue;
      }
      Reply reply(static_cast<redisReply*>(r));
      --queued_;
      if (absl::Status s = Check(c_.get(), reply.get(), "XADD"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    for (; queued_ > 0; --queued_) {
      void* r = nullptr;
      if (redisGetReply(c_.get(), &r) != REDIS_OK) return absl::UnavailableError(c_->errstr);
      Reply reply(static_cast<redisReply*>(r));
      if (absl::Status s = Check(c_.get(), reply.get(), "XADD"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  Context c_;
  std::vector<std::string> keys_;
  int batch_ = 1;
  int queued_ = 0;  // commands sent or buffered whose replies are not read yet
};

// XREAD over every key of a prefix on a thread of its own.
class RedisSubscription : public Subscription {
 public:
  absl::Status Open(const DriverOptions& options, const std::string& prefix, bool from_beginning,
                    EventSink sink) {
    absl::StatusOr<Context> c = Connect(options.address);
    if (!c.ok()) return c.status();
    c_ = *std::move(c);
    sink_ = std::move(sink);
    // "From now": every id from this millisecond on (the keys of a live prefix are fresh).
    const std::string start =
        from_beginning ? "0-0" : absl::StrCat(absl::ToUnixMillis(absl::Now()) - 1, "-0");
    args_ = {"XREAD", "COUNT", absl::StrCat(options.read_count), "BLOCK", "100", "STREAMS"};
    first_key_ = args_.size();
    for (int k = 0; k < options.streams; ++k) args_.push_back(Key(prefix, k));
    for (int k = 0; k < options.streams; ++k) args_.push_back(start);
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }
  ~RedisSubscription() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    const size_t streams = (args_.size() - first_key_) / 2;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    while (!stop_) {
      argv.clear();
      lens.clear();
      for (const std::string& a : args_) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      Reply reply(static_cast<redisReply*>(
          redisCommandArgv(c_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) return;
      if (reply->type != REDIS_REPLY_ARRAY) continue;  // nil: nothing new within BLOCK
      for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* key_entries = reply->element[i];
        const absl::string_view key(key_entries->element[0]->str, key_entries->element[0]->len);
        const redisReply* entries = key_entries->element[1];
        for (size_t j = 0; j < entries->elements; ++j) {
          const redisReply* entry = entries->element[j];
          const redisReply* fields = entry->element[1];
          sink_(absl::string_view(fields->element[1]->str, fields->element[1]->len));
        }
        if (entries->elements > 0) {
          const redisReply* last = entries->element[entries->elements - 1]->element[0];
          // Keys are "<prefix>:s<k>": the index k says which id slot to advance.
          size_t k = 0;
          (void)absl::SimpleAtoi(key.substr(key.rfind(":s") + 2), &k);
          args_[first_key_ + streams + k].assign(last->str, last->len);
        }
      }
    }
  }

  Context c_;
  EventSink sink_;
  std::vector<std::string> args_;
  size_t first_key_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Blocking XREADs need a connection each: `per_connection` does not apply to Redis.
class RedisIdleSet : public Subscription {
 public:
  absl::Status Open(const DriverOptions& options, int count) {
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<Context> c = Connect(options.address);
      if (!c.ok()) return c.status();
      const std::string key = absl::StrCat("idle:", i);
      redisAppendCommand(c->get(), "XREAD BLOCK 0 STREAMS %s $", key.c_str());
      int done = 0;
      while (!done) {
        if (redisBufferWrite(c->get(), &done) != REDIS_OK) return absl::UnavailableError("write");
      }
      conns_.push_back(*std::move(c));
    }
    // Established once the server counts them all as blocked clients.
    absl::StatusOr<Context> probe = Connect(options.address);
    if (!probe.ok()) return probe.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (true) {
      Reply r(static_cast<redisReply*>(redisCommand(probe->get(), "INFO clients")));
      if (absl::Status s = Check(probe->get(), r.get(), "INFO"); !s.ok()) return s;
      const absl::string_view info(r->str, r->len);
      const size_t at = info.find("blocked_clients:");
      int blocked = 0;
      if (at != absl::string_view::npos) {
        const absl::string_view rest = info.substr(at + 16);
        (void)absl::SimpleAtoi(rest.substr(0, rest.find('\r')), &blocked);
      }
      if (blocked >= count) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(blocked, " of ", count, " blocked"));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

 private:
  std::vector<Context> conns_;
};

class RedisDriver : public Driver {
 public:
  explicit RedisDriver(const DriverOptions& options) : options_(options) {}

  absl::StatusOr<std::unique_ptr<Publisher>> NewPublisher(const std::string& prefix) override {
    auto p = std::make_unique<RedisPublisher>();
    if (absl::Status s = p->Open(options_, prefix); !s.ok()) return s;
    return p;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& prefix,
                                                          bool from_beginning,
                                                          EventSink sink) override {
    auto sub = std::make_unique<RedisSubscription>();
    if (absl::Status s = sub->Open(options_, prefix, from_beginning, std::move(sink)); !s.ok()) {
      return s;
    }
    return sub;
  }

  absl::StatusOr<std::unique_ptr<Subscription>> HoldIdle(int count, int per_connection) override {
    if (per_connection != 1) {
      return absl::UnimplementedError("Redis: a blocking XREAD needs a connection of its own");
    }
    auto set = std::make_unique<RedisIdleSet>();
    if (absl::Status s = set->Open(options_, count); !s.ok()) return s;
    return set;
  }

 private:
  const DriverOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> NewRedisDriver(const DriverOptions& options) {
  return std::make_unique<RedisDriver>(options);
}

}  // namespace hsbench
