#include "bench/hsbench/workloads.h"

#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hsbench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Payload: send time (steady clock, ns) and event number, then filler up to `size` bytes.
std::string NewPayload(int size) { return std::string(std::max(size, 16), 'x'); }
void Stamp(std::string& payload, int64_t number) {
  const int64_t now = NowNanos();
  std::memcpy(payload.data(), &now, 8);
  std::memcpy(payload.data() + 8, &number, 8);
}
bool ReadStamp(absl::string_view payload, int64_t* sent, int64_t* number) {
  if (payload.size() < 16) return false;
  std::memcpy(sent, payload.data(), 8);
  std::memcpy(number, payload.data() + 8, 8);
  return true;
}

// Waits until `done()` or the deadline; false on timeout.
template <typename F>
bool WaitFor(F done, double seconds) {
  const auto start = Clock::now();
  while (!done()) {
    if (Seconds(start) > seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i] / 1000.0;
}

}  // namespace

absl::Status RunPublish(Driver& driver, const WorkloadOptions& o) {
  std::vector<std::unique_ptr<Publisher>> publishers;
  for (int c = 0; c < o.connections; ++c) {
    absl::StatusOr<std::unique_ptr<Publisher>> p = driver.NewPublisher(o.prefix);
    if (!p.ok()) return p.status();
    publishers.push_back(*std::move(p));
  }
  std::atomic<int64_t> next{0};
  std::mutex mu;
  absl::Status failure;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& p : publishers) {
    threads.emplace_back([&, p = p.get()] {
      std::string payload = NewPayload(o.size);
      absl::Status s;
      // Chunks of 1,000 events: each publisher sends runs of consecutive streams.
      for (int64_t first = next.fetch_add(1000); s.ok() && first < o.events;
           first = next.fetch_add(1000)) {
        for (int64_t i = first; s.ok() && i < std::min(o.events, first + 1000); ++i) {
          Stamp(payload, i);
          s = p->Send(static_cast<int>(i % o.streams), payload);
        }
      }
      if (s.ok()) s = p->Finish();
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        failure = s;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = Seconds(start);
  if (!failure.ok()) return failure;
  std::cout << std::fixed << std::setprecision(3) << "workload=publish events=" << o.events
            << " size=" << o.size << " connections=" << o.connections << " seconds=" << secs
            << " events_per_sec=" << static_cast<int64_t>(o.events / secs) << std::endl;
  return absl::OkStatus();
}

absl::Status RunLive(Driver& driver, const WorkloadOptions& o) {
  const int64_t total = static_cast<int64_t>(o.rate * o.seconds);
  const int64_t warmup = total / 10;
  struct Receiver {
    std::vector<int64_t> latencies;  // ns; written by the subscription's thread only
    std::atomic<int64_t> received{0};
  };
  std::vector<std::unique_ptr<Receiver>> receivers;
  std::vector<std::unique_ptr<Subscription>> subs;
  for (int i = 0; i < o.subscribers; ++i) {
    receivers.push_back(std::make_unique<Receiver>());
    Receiver* r = receivers.back().get();
    r->latencies.reserve(total);
    absl::StatusOr<std::unique_ptr<Subscription>> sub =
        driver.Subscribe(o.prefix, /*from_beginning=*/false, [r, warmup](absl::string_view p) {
          const int64_t now = NowNanos();
          int64_t sent = 0, number = 0;
          if (ReadStamp(p, &sent, &number) && number >= warmup) r->latencies.push_back(now - sent);
          r->received.fetch_add(1, std::memory_order_release);
        });
    if (!sub.ok()) return sub.status();
    subs.push_back(*std::move(sub));
  }
  absl::StatusOr<std::unique_ptr<Publisher>> publisher = driver.NewPublisher(o.prefix);
  if (!publisher.ok()) return publisher.status();

  // Paced publishing: every event due by now is sent (stamped as it goes out), then the
  // publisher sleeps until the next one is due. A 1 µs timer slack keeps those sleeps short.
  prctl(PR_SET_TIMERSLACK, 1UL);
  std::string payload = NewPayload(o.size);
  const auto start = Clock::now();
  int64_t sent = 0;
  while (sent < total) {
    const int64_t due = std::min(total, static_cast<int64_t>(Seconds(start) * o.rate) + 1);
    for (; sent < due; ++sent) {
      Stamp(payload, sent);
      if (absl::Status s = (*publisher)->Send(static_cast<int>(sent % o.streams), payload);
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = (*publisher)->Kick(); !s.ok()) return s;
    const auto next = start + std::chrono::duration<double>((sent) / o.rate);
    std::this_thread::sleep_until(next);
  }
  const double send_secs = Seconds(start);
  if (absl::Status s = (*publisher)->Finish(); !s.ok()) return s;
  auto all_received = [&] {
    for (auto& r : receivers) {
      if (r->received.load(std::memory_order_acquire) < total) return false;
    }
    return true;
  };
  const bool complete = WaitFor(all_received, 30);
  subs.clear();  // Ends the subscriptions: their threads no longer touch the receivers.
  int64_t least = total;
  std::vector<int64_t> all;
  for (auto& r : receivers) {
    least = std::min<int64_t>(least, r->received.load());
    all.insert(all.end(), r->latencies.begin(), r->latencies.end());
  }
  std::cout << std::fixed << std::setprecision(1)
            << "workload=live rate=" << static_cast<int64_t>(o.rate)
            << " subscribers=" << o.subscribers << " events=" << total
            << " achieved_rate=" << static_cast<int64_t>(total / send_secs)
            << " p50_us=" << Percentile(all, 0.5) << " p99_us=" << Percentile(all, 0.99)
            << " p999_us=" << Percentile(all, 0.999) << " min_received=" << least << std::endl;
  if (!complete) {
    return absl::DataLossError(absl::StrCat("a subscriber received only ", least, " of ", total));
  }
  return absl::OkStatus();
}

absl::Status RunCatchUp(Driver& driver, const WorkloadOptions& o) {
  std::atomic<int64_t> received{0};
  const auto start = Clock::now();
  absl::StatusOr<std::unique_ptr<Subscription>> sub = driver.Subscribe(
      o.prefix, /*from_beginning=*/true,
      [&](absl::string_view) { received.fetch_add(1, std::memory_order_relaxed); });
  if (!sub.ok()) return sub.status();
  const bool complete = WaitFor([&] { return received.load() >= o.events; }, 300);
  const double secs = Seconds(start);
  sub->reset();
  if (!complete) {
    return absl::DataLossError(absl::StrCat("caught up ", received.load(), " of ", o.events));
  }
  std::cout << std::fixed << std::setprecision(3) << "workload=catchup events=" << o.events
            << " seconds=" << secs << " events_per_sec=" << static_cast<int64_t>(o.events / secs)
            << std::endl;
  return absl::OkStatus();
}

absl::Status RunIdle(Driver& driver, const WorkloadOptions& o) {
  const auto start = Clock::now();
  absl::StatusOr<std::unique_ptr<Subscription>> set = driver.HoldIdle(o.count, o.per_connection);
  if (!set.ok()) return set.status();
  std::cout << "ready workload=idle count=" << o.count << " per_connection=" << o.per_connection
            << " setup_seconds=" << Seconds(start) << std::endl;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.hold_seconds));
  return absl::OkStatus();
}

}  // namespace hsbench
