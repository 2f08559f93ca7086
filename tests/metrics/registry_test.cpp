#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace vmp3::metrics {
namespace {

TEST(MetricsTest, RendersCountersWithSortedEscapedLabels) {
  Registry registry;
  CounterFamily& requests = registry.AddCounter("vmp3_http_requests_total", "HTTP requests.");
  requests.WithLabels({"route", "/v1/jobs/{id}"}, {"status", "200"}).Inc();
  requests.WithLabels({"status", "200"}, {"route", "/v1/jobs/{id}"}).Inc(2);  // same child
  requests.WithLabels({"route", "a\\b\"c\nd"}, {"status", "500"}).Inc();
  EXPECT_EQ(registry.Render(),
            "# HELP vmp3_http_requests_total HTTP requests.\n"
            "# TYPE vmp3_http_requests_total counter\n"
            "vmp3_http_requests_total{route=\"/v1/jobs/{id}\",status=\"200\"} 3\n"
            "vmp3_http_requests_total{route=\"a\\\\b\\\"c\\nd\",status=\"500\"} 1\n");
}

TEST(MetricsTest, WithLabelsReturnsAStableChild) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("c", "h");
  Counter& a = family.WithLabels({"x", "1"}, {"y", "2"});
  for (int i = 0; i < 100; ++i) family.WithLabels({"z", std::to_string(i)});  // grow the map
  Counter& b = family.WithLabels({"y", "2"}, {"x", "1"});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &family.WithLabels({"x", "1"}));
  EXPECT_EQ(&family.WithLabels(), &family.WithLabels());
}

TEST(MetricsTest, UnlabelledMetricAndHelpEscaping) {
  Registry registry;
  registry.AddCounter("c_total", "line one\nback\\slash \"quoted\"").WithLabels().Inc(0.5);
  EXPECT_EQ(registry.Render(),
            "# HELP c_total line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE c_total counter\n"
            "c_total 0.5\n");
}

TEST(MetricsTest, CounterIgnoresNegativeAndNan) {
  Counter c;
  c.Inc(3);
  c.Inc(-1);
  c.Inc(std::nan(""));
  EXPECT_EQ(c.Value(), 3);
}

TEST(MetricsTest, Gauges) {
  Registry registry;
  Gauge& g = registry.AddGauge("vmp3_inflight", "In flight.").WithLabels();
  g.Set(5);
  g.Inc();
  g.Dec(3);
  EXPECT_EQ(g.Value(), 3);
  g.Set(-0.25);
  EXPECT_EQ(registry.Render(),
            "# HELP vmp3_inflight In flight.\n"
            "# TYPE vmp3_inflight gauge\n"
            "vmp3_inflight -0.25\n");
}

TEST(MetricsTest, CallbackGaugesAreEvaluatedAtRenderTime) {
  Registry registry;
  double depth = 1;
  registry.AddCallbackGauge("vmp3_queue_depth", "Jobs waiting.", [&] { return depth; },
                            {{"queue", "convert"}});
  registry.AddCallbackGauge("vmp3_queue_depth", "ignored", [] { return 7.0; },
                            {{"queue", "notify"}});
  EXPECT_NE(registry.Render().find("vmp3_queue_depth{queue=\"convert\"} 1\n"), std::string::npos);
  depth = 42;
  const std::string text = registry.Render();
  EXPECT_EQ(text,
            "# HELP vmp3_queue_depth Jobs waiting.\n"
            "# TYPE vmp3_queue_depth gauge\n"
            "vmp3_queue_depth{queue=\"convert\"} 42\n"
            "vmp3_queue_depth{queue=\"notify\"} 7\n");
  // Replacing a callback.
  registry.AddCallbackGauge("vmp3_queue_depth", "", [] { return 9.0; }, {{"queue", "notify"}});
  EXPECT_NE(registry.Render().find("vmp3_queue_depth{queue=\"notify\"} 9\n"), std::string::npos);
}

TEST(MetricsTest, SpecialValues) {
  Registry registry;
  GaugeFamily& g = registry.AddGauge("g", "h");
  g.WithLabels({"v", "a"}).Set(std::numeric_limits<double>::infinity());
  g.WithLabels({"v", "b"}).Set(-std::numeric_limits<double>::infinity());
  g.WithLabels({"v", "c"}).Set(std::nan(""));
  g.WithLabels({"v", "d"}).Set(1e6);
  g.WithLabels({"v", "e"}).Set(0.1);
  g.WithLabels({"v", "f"}).Set(123456789012);
  EXPECT_EQ(registry.Render(),
            "# HELP g h\n# TYPE g gauge\n"
            "g{v=\"a\"} +Inf\n"
            "g{v=\"b\"} -Inf\n"
            "g{v=\"c\"} NaN\n"
            "g{v=\"d\"} 1e+06\n"
            "g{v=\"e\"} 0.1\n"
            "g{v=\"f\"} 123456789012\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndInclusive) {
  Registry registry;
  HistogramFamily& family = registry.AddHistogram("vmp3_request_seconds", "Latency.", {1, 0.5, 2});
  EXPECT_EQ(family.bounds(), (std::vector<double>{0.5, 1, 2}));
  Histogram& h = family.WithLabels({"route", "/x"});
  h.Observe(0.5);  // le is inclusive: the 0.5 bucket
  h.Observe(0.7);
  h.Observe(1);
  h.Observe(3);
  h.Observe(100);
  h.Observe(std::nan(""));  // ignored
  EXPECT_EQ(registry.Render(),
            "# HELP vmp3_request_seconds Latency.\n"
            "# TYPE vmp3_request_seconds histogram\n"
            "vmp3_request_seconds_bucket{route=\"/x\",le=\"0.5\"} 1\n"
            "vmp3_request_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "vmp3_request_seconds_bucket{route=\"/x\",le=\"2\"} 3\n"
            "vmp3_request_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
            "vmp3_request_seconds_sum{route=\"/x\"} 105.2\n"
            "vmp3_request_seconds_count{route=\"/x\"} 5\n");
}

TEST(MetricsTest, HistogramBoundsAreNormalised) {
  Registry registry;
  HistogramFamily& family = registry.AddHistogram(
      "h", "h", {3, 1, 1, std::numeric_limits<double>::infinity(), std::nan(""), 2});
  EXPECT_EQ(family.bounds(), (std::vector<double>{1, 2, 3}));
  family.WithLabels().Observe(2.5);
  EXPECT_EQ(registry.Render(),
            "# HELP h h\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"2\"} 0\n"
            "h_bucket{le=\"3\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 2.5\n"
            "h_count 1\n");
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  std::vector<double> latency = DefaultLatencyBuckets();
  EXPECT_TRUE(std::is_sorted(latency.begin(), latency.end()));
  EXPECT_EQ(latency.front(), 0.005);
  EXPECT_EQ(latency.back(), 10);
}

TEST(MetricsTest, FamiliesRenderSortedByNameAndEmptyFamiliesKeepTheirHeader) {
  Registry registry;
  registry.AddGauge("b", "second");
  registry.AddCounter("a", "first").WithLabels().Inc();
  EXPECT_EQ(registry.Render(),
            "# HELP a first\n# TYPE a counter\na 1\n"
            "# HELP b second\n# TYPE b gauge\n");
}

TEST(MetricsTest, NamesAreSanitised) {
  Registry registry;
  registry.AddCounter("9bad-name.total", "h").WithLabels({"bad-label", "v"}, {"1x", "w"}).Inc();
  EXPECT_EQ(registry.Render(),
            "# HELP _bad_name_total h\n# TYPE _bad_name_total counter\n"
            "_bad_name_total{_x=\"w\",bad_label=\"v\"} 1\n");
}

TEST(MetricsTest, RegisteringTwiceReturnsTheSameFamily) {
  Registry registry;
  CounterFamily& a = registry.AddCounter("c", "first help");
  CounterFamily& b = registry.AddCounter("c", "second help");
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(b.help(), "first help");
}

TEST(MetricsDeathTest, RegisteringTwiceWithAnotherTypeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("c", "h");
        registry.AddGauge("c", "h");
      },
      "registered twice with different types");
}

TEST(MetricsTest, ConcurrentUpdatesCreationAndRendering) {
  Registry registry;
  CounterFamily& counters = registry.AddCounter("c", "h");
  HistogramFamily& histograms = registry.AddHistogram("h", "h", {1, 10});
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        counters.WithLabels({"shared", "yes"}).Inc();
        counters.WithLabels({"thread", std::to_string(t)}, {"i", std::to_string(i % 50)}).Inc();
        histograms.WithLabels().Observe(i % 20);
      }
    });
  }
  std::thread renderer([&] {
    for (int i = 0; i < 50; ++i) {
      std::string text = registry.Render();
      ASSERT_EQ(text.rfind("# HELP c h\n", 0), 0u);
    }
  });
  for (auto& thread : threads) thread.join();
  renderer.join();
  EXPECT_EQ(counters.WithLabels({"shared", "yes"}).Value(), kThreads * kIterations);
  EXPECT_EQ(counters.WithLabels({"thread", "2"}, {"i", "7"}).Value(), kIterations / 50);
  Histogram::Snapshot snapshot = histograms.WithLabels().Snap();
  EXPECT_EQ(snapshot.count, uint64_t{kThreads} * kIterations);
  // Per thread: values 0..19 repeated 1000 times; le=1 holds 0 and 1, le=10 holds 0..10.
  EXPECT_EQ(snapshot.cumulative[0], uint64_t{kThreads} * 2 * (kIterations / 20));
  EXPECT_EQ(snapshot.cumulative[1], uint64_t{kThreads} * 11 * (kIterations / 20));
  EXPECT_EQ(snapshot.sum, double{kThreads} * 190 * (kIterations / 20));
}

}  // namespace
}  // namespace vmp3::metrics
