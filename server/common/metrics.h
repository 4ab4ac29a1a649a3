// Prometheus metrics in the text exposition format (version 0.0.4), without a client library
// (Debian ships none for C++).
//
// Two ways to feed the registry:
//  - Owned metrics, for hot paths: Counter, Gauge and fixed-bucket Histogram are lock-free
//    atomics. Get*() finds or creates one by name and labels under the registry's lock; callers
//    keep the returned reference (valid as long as the registry) and update it without locks.
//  - Collectors, for values that already live elsewhere (log size, subscriber lag, webhook
//    backlogs): a function called at scrape time that emits samples through a Sink.
// Samples of one name from both sources are rendered as one family; the first registration of a
// name fixes its type and help.
//
// Thread-safety: everything is thread-safe. Collectors run on the scraping thread, one scrape at
// a time, and must not call back into the registry.
#ifndef HOOKSTREAM_SERVER_COMMON_METRICS_H_
#define HOOKSTREAM_SERVER_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hookstream::metrics {

// Label name/value pairs, e.g. {{"hook", "on_publish"}}. Order is kept as given.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { kCounter, kGauge, kHistogram };

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Bucket counts as of one moment: counts[i] observations <= bounds[i] (not cumulative), and
// counts.back() those above every bound.
struct HistogramSnapshot {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // bounds.size() + 1 entries.
  double sum = 0;
};

class Histogram {
 public:
  // `bounds`: upper bounds, strictly increasing; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }
  HistogramSnapshot Snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Upper bounds for latencies in seconds: 100us .. 10s.
std::vector<double> LatencyBuckets();

// Where collectors emit their samples.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Counter(absl::string_view name, absl::string_view help, const Labels& labels,
                       double value) = 0;
  virtual void Gauge(absl::string_view name, absl::string_view help, const Labels& labels,
                     double value) = 0;
  virtual void Histogram(absl::string_view name, absl::string_view help, const Labels& labels,
                         const HistogramSnapshot& h) = 0;
};

class Registry {
 public:
  using Collector = std::function<void(Sink&)>;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Finds or creates the metric `name`{labels}. Names and label names must be valid Prometheus
  // names, and a name keeps the type it was first registered with (programming errors: they
  // abort). Counters should end in "_total", durations be in seconds.
  metrics::Counter& GetCounter(absl::string_view name, absl::string_view help,
                               const Labels& labels = {});
  metrics::Gauge& GetGauge(absl::string_view name, absl::string_view help,
                           const Labels& labels = {});
  // `bounds` are used when the metric is created; later calls get the existing one.
  metrics::Histogram& GetHistogram(absl::string_view name, absl::string_view help,
                                   std::vector<double> bounds, const Labels& labels = {});

  // Adds a collector, called at every scrape until removed. Returns its id for RemoveCollector.
  int AddCollector(Collector collector);
  // After it returns, the collector is not running and will not run again.
  void RemoveCollector(int id);

  // The whole exposition text, families sorted by name.
  std::string Render() const;

 private:
  struct Family;
  Family& FamilyLocked(absl::string_view name, absl::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lock order: scrape_mu_ -> mu_. scrape_mu_ serialises scrapes against RemoveCollector, so
  // that a removed collector's captures may be destroyed right after.
  mutable absl::Mutex scrape_mu_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  std::map<int, Collector> collectors_ ABSL_GUARDED_BY(scrape_mu_);
  int next_collector_id_ ABSL_GUARDED_BY(scrape_mu_) = 1;
};

// The text-format content type for HTTP replies.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace hookstream::metrics

#endif  // HOOKSTREAM_SERVER_COMMON_METRICS_H_
