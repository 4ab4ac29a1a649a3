#include "server/common/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hookstream::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample line `sample` (name with labels, exactly as rendered); -1 if absent.
double Sample(const std::string& text, const std::string& sample) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, sample + " ")) {
      return std::stod(std::string(line.substr(sample.size() + 1)));
    }
  }
  return -1;
}

TEST(MetricsTest, CountersAndGaugesRenderWithHelpTypeAndLabels) {
  Registry r;
  Counter& a = r.GetCounter("hs_requests_total", "Requests.", {{"method", "Publish"}});
  Counter& b = r.GetCounter("hs_requests_total", "Requests.", {{"method", "Subscribe"}});
  a.Increment();
  a.Increment(4);
  b.Increment();
  Gauge& g = r.GetGauge("hs_level", "A level.");
  g.Set(2.5);
  g.Add(-1);
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# HELP hs_requests_total Requests.\n# TYPE hs_requests_total counter\n"));
  EXPECT_EQ(Sample(text, R"(hs_requests_total{method="Publish"})"), 5);
  EXPECT_EQ(Sample(text, R"(hs_requests_total{method="Subscribe"})"), 1);
  EXPECT_THAT(text, HasSubstr("# TYPE hs_level gauge\nhs_level 1.5\n"));
  // One HELP/TYPE per family however many children it has.
  EXPECT_EQ(text.find("# TYPE hs_requests_total"), text.rfind("# TYPE hs_requests_total"));
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameMetric) {
  Registry r;
  Counter& a = r.GetCounter("hs_x_total", "X.", {{"k", "v"}});
  Counter& b = r.GetCounter("hs_x_total", "X.", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.GetCounter("hs_x_total", "X.", {{"k", "w"}}));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  Histogram& h = r.GetHistogram("hs_latency_seconds", "Latency.", {0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0}) h.Observe(v);
  const std::string text = r.Render();
  EXPECT_EQ(Sample(text, R"(hs_latency_seconds_bucket{le="0.1"})"), 2);  // 0.1 is "<= 0.1".
  EXPECT_EQ(Sample(text, R"(hs_latency_seconds_bucket{le="1"})"), 3);
  EXPECT_EQ(Sample(text, R"(hs_latency_seconds_bucket{le="10"})"), 4);
  EXPECT_EQ(Sample(text, R"(hs_latency_seconds_bucket{le="+Inf"})"), 5);
  EXPECT_EQ(Sample(text, "hs_latency_seconds_count"), 5);
  EXPECT_DOUBLE_EQ(Sample(text, "hs_latency_seconds_sum"), 55.65);
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.GetCounter("hs_e_total", "Line one\\two\nthree", {{"v", "a\"b\\c\nd"}}).Increment();
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# HELP hs_e_total Line one\\\\two\\nthree\n"));
  EXPECT_THAT(text, HasSubstr(R"(hs_e_total{v="a\"b\\c\nd"} 1)"));
}

TEST(MetricsTest, CollectorsRunAtScrapeTimeAndMergeIntoFamilies) {
  Registry r;
  r.GetGauge("hs_subscribers", "Subscribers.", {{"state", "live"}}).Set(3);
  int value = 7;
  const int id = r.AddCollector([&value](Sink& out) {
    out.Gauge("hs_subscribers", "Subscribers.", {{"state", "catching_up"}}, value);
    out.Counter("hs_delivered_total", "Delivered.", {}, value * 10);
    HistogramSnapshot h;
    h.bounds = {1, 10};
    h.counts = {1, 0, 2};
    h.sum = 30;
    out.Histogram("hs_lag", "Lag.", {}, h);
  });
  std::string text = r.Render();
  EXPECT_EQ(Sample(text, R"(hs_subscribers{state="live"})"), 3);
  EXPECT_EQ(Sample(text, R"(hs_subscribers{state="catching_up"})"), 7);
  EXPECT_EQ(text.find("# TYPE hs_subscribers"), text.rfind("# TYPE hs_subscribers"));
  EXPECT_EQ(Sample(text, "hs_delivered_total"), 70);
  EXPECT_EQ(Sample(text, R"(hs_lag_bucket{le="10"})"), 1);
  EXPECT_EQ(Sample(text, R"(hs_lag_bucket{le="+Inf"})"), 3);
  value = 8;
  EXPECT_EQ(Sample(r.Render(), "hs_delivered_total"), 80);
  r.RemoveCollector(id);
  EXPECT_THAT(r.Render(), Not(HasSubstr("hs_delivered_total")));
}

TEST(MetricsTest, CollectorSampleOfAnotherTypeIsDropped) {
  Registry r;
  r.GetCounter("hs_c_total", "C.").Increment();
  r.AddCollector([](Sink& out) { out.Gauge("hs_c_total", "C.", {{"x", "y"}}, 5); });
  const std::string text = r.Render();
  EXPECT_EQ(Sample(text, "hs_c_total"), 1);
  EXPECT_THAT(text, Not(HasSubstr("x=\"y\"")));
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.GetCounter("hs_n_total", "N.");
  Histogram& h = r.GetHistogram("hs_h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Increment();
        h.Observe(0.5);
        if (i % 1000 == 0) r.Render();  // Scrapes race with updates.
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = r.Render();
  EXPECT_EQ(Sample(text, "hs_n_total"), 40000);
  EXPECT_EQ(Sample(text, "hs_h_count"), 40000);
  EXPECT_DOUBLE_EQ(Sample(text, "hs_h_sum"), 20000);
}

TEST(MetricsDeathTest, OneNameCannotHaveTwoTypes) {
  Registry r;
  r.GetCounter("hs_dup", "D.");
  EXPECT_DEATH(r.GetGauge("hs_dup", "D."), "two types");
  EXPECT_DEATH(r.GetCounter("bad-name", "B."), "bad metric name");
}

}  // namespace
}  // namespace hookstream::metrics
