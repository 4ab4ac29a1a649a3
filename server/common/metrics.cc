#include "server/common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hookstream::metrics {
namespace {

void AtomicAdd(std::atomic<double>& a, double d) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + d, std::memory_order_relaxed)) {
  }
}

bool ValidName(absl::string_view name, bool colon_ok) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = absl::ascii_isalpha(c) || c == '_' || (colon_ok && c == ':') ||
                    (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

// Registration errors are bugs in hookstream, not input: fail loudly and at once.
void Require(bool ok, absl::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "metrics: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integral values (most counters and gauges) print as integers.
  if (v == std::floor(v) && std::fabs(v) < 9.0e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  // The shortest of these that reads back as the same double: 0.1 prints as "0.1".
  for (int precision : {15, 16, 17}) {
    std::string s = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(s.c_str(), nullptr) == v) return s;
  }
  return absl::StrFormat("%.17g", v);
}

void EscapeInto(absl::string_view s, bool quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// `name`{labels[, extra]} as it appears on a sample line.
std::string SampleName(absl::string_view name, const Labels& labels,
                       const std::pair<std::string, std::string>* extra = nullptr) {
  std::string out(name);
  if (labels.empty() && extra == nullptr) return out;
  out.push_back('{');
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& l) {
    if (!first) out.push_back(',');
    first = false;
    out.append(l.first);
    out.append("=\"");
    EscapeInto(l.second, /*quote=*/true, &out);
    out.push_back('"');
  };
  for (const auto& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  out.push_back('}');
  return out;
}

std::string LabelsKey(const Labels& labels) {
  std::string key;
  for (const auto& [k, v] : labels) absl::StrAppend(&key, k.size(), ":", k, v.size(), ":", v);
  return key;
}

void CheckLabels(const Labels& labels) {
  for (const auto& [k, v] : labels) {
    Require(ValidName(k, /*colon_ok=*/false) && k != "le", absl::StrCat("bad label name ", k));
  }
}

absl::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// One family's lines as they will be printed.
struct Rendered {
  Type type;
  std::string help;
  std::string samples;
};

class RenderSink final : public Sink {
 public:
  explicit RenderSink(std::map<std::string, Rendered, std::less<>>* out) : out_(out) {}

  void Counter(absl::string_view name, absl::string_view help, const Labels& labels,
               double value) override {
    if (Rendered* r = Family(name, help, Type::kCounter)) AddLine(r, name, labels, value);
  }
  void Gauge(absl::string_view name, absl::string_view help, const Labels& labels,
             double value) override {
    if (Rendered* r = Family(name, help, Type::kGauge)) AddLine(r, name, labels, value);
  }
  void Histogram(absl::string_view name, absl::string_view help, const Labels& labels,
                 const HistogramSnapshot& h) override {
    Rendered* r = Family(name, help, Type::kHistogram);
    if (r == nullptr) return;
    uint64_t cumulative = 0;
    const std::string bucket = absl::StrCat(name, "_bucket");
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const std::pair<std::string, std::string> le(
          "le", i < h.bounds.size() ? FormatValue(h.bounds[i]) : "+Inf");
      absl::StrAppend(&r->samples, SampleName(bucket, labels, &le), " ", cumulative, "\n");
    }
    absl::StrAppend(&r->samples, SampleName(absl::StrCat(name, "_sum"), labels), " ",
                    FormatValue(h.sum), "\n");
    absl::StrAppend(&r->samples, SampleName(absl::StrCat(name, "_count"), labels), " ",
                    cumulative, "\n");
  }

 private:
  // The family `name`, created on first use; nullptr (the sample is dropped) when a collector
  // emits a name already used with another type or an invalid name.
  Rendered* Family(absl::string_view name, absl::string_view help, Type type) {
    if (!ValidName(name, /*colon_ok=*/true)) return nullptr;
    auto it = out_->find(name);
    if (it == out_->end()) {
      it = out_->emplace(std::string(name), Rendered{type, std::string(help), ""}).first;
    }
    return it->second.type == type ? &it->second : nullptr;
  }
  static void AddLine(Rendered* r, absl::string_view name, const Labels& labels, double value) {
    absl::StrAppend(&r->samples, SampleName(name, labels), " ", FormatValue(value), "\n");
  }

  std::map<std::string, Rendered, std::less<>>* out_;
};

}  // namespace

void Gauge::Add(double d) { AtomicAdd(value_, d); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    Require(bounds_[i] < bounds_[i + 1], "histogram bounds must be strictly increasing");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // Bucket i holds v <= bounds_[i]: the first bound not below v.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

struct Registry::Family {
  Type type;
  std::string help;
  // By LabelsKey: the labels as given and the metric (one of the three, per `type`).
  struct Child {
    Labels labels;
    std::unique_ptr<metrics::Counter> counter;
    std::unique_ptr<metrics::Gauge> gauge;
    std::unique_ptr<metrics::Histogram> histogram;
  };
  std::map<std::string, Child> children;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::FamilyLocked(absl::string_view name, absl::string_view help,
                                         Type type) {
  Require(ValidName(name, /*colon_ok=*/true), absl::StrCat("bad metric name ", name));
  auto it = families_.find(name);
  if (it == families_.end()) {
    auto f = std::make_unique<Family>();
    f->type = type;
    f->help = std::string(help);
    it = families_.emplace(std::string(name), std::move(f)).first;
  }
  Require(it->second->type == type, absl::StrCat("metric ", name, " registered with two types"));
  return *it->second;
}

Counter& Registry::GetCounter(absl::string_view name, absl::string_view help,
                              const Labels& labels) {
  CheckLabels(labels);
  absl::MutexLock l(&mu_);
  Family::Child& c = FamilyLocked(name, help, Type::kCounter).children[LabelsKey(labels)];
  if (c.counter == nullptr) {
    c.labels = labels;
    c.counter = std::make_unique<metrics::Counter>();
  }
  return *c.counter;
}

Gauge& Registry::GetGauge(absl::string_view name, absl::string_view help, const Labels& labels) {
  CheckLabels(labels);
  absl::MutexLock l(&mu_);
  Family::Child& c = FamilyLocked(name, help, Type::kGauge).children[LabelsKey(labels)];
  if (c.gauge == nullptr) {
    c.labels = labels;
    c.gauge = std::make_unique<metrics::Gauge>();
  }
  return *c.gauge;
}

Histogram& Registry::GetHistogram(absl::string_view name, absl::string_view help,
                                  std::vector<double> bounds, const Labels& labels) {
  CheckLabels(labels);
  absl::MutexLock l(&mu_);
  Family::Child& c = FamilyLocked(name, help, Type::kHistogram).children[LabelsKey(labels)];
  if (c.histogram == nullptr) {
    c.labels = labels;
    c.histogram = std::make_unique<metrics::Histogram>(std::move(bounds));
  }
  return *c.histogram;
}

int Registry::AddCollector(Collector collector) {
  absl::MutexLock l(&scrape_mu_);
  const int id = next_collector_id_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void Registry::RemoveCollector(int id) {
  absl::MutexLock l(&scrape_mu_);
  collectors_.erase(id);
}

std::string Registry::Render() const {
  absl::MutexLock scrape(&scrape_mu_);
  std::map<std::string, Rendered, std::less<>> families;
  RenderSink sink(&families);
  {
    absl::MutexLock l(&mu_);
    for (const auto& [name, f] : families_) {
      for (const auto& [key, c] : f->children) {
        switch (f->type) {
          case Type::kCounter:
            sink.Counter(name, f->help, c.labels, static_cast<double>(c.counter->value()));
            break;
          case Type::kGauge:
            sink.Gauge(name, f->help, c.labels, c.gauge->value());
            break;
          case Type::kHistogram:
            sink.Histogram(name, f->help, c.labels, c.histogram->Snapshot());
            break;
        }
      }
      // A family without children yet still announces itself (its HELP and TYPE).
      if (f->children.empty()) families.emplace(name, Rendered{f->type, f->help, ""});
    }
  }
  for (const auto& [id, collect] : collectors_) collect(sink);

  std::string out;
  for (const auto& [name, r] : families) {
    absl::StrAppend(&out, "# HELP ", name, " ");
    EscapeInto(r.help, /*quote=*/false, &out);
    absl::StrAppend(&out, "\n# TYPE ", name, " ", TypeName(r.type), "\n", r.samples);
  }
  return out;
}

}  // namespace hookstream::metrics
