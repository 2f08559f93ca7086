// A small Prometheus registry: counters, gauges and fixed-bucket histograms grouped in families
// by label set, rendered in the text exposition format 0.0.4.
//
//   Registry registry;
//   CounterFamily& requests = registry.AddCounter("vmp3_http_requests_total", "HTTP requests.");
//   Counter& ok = requests.WithLabels({"route", "/v1/jobs/{id}"}, {"status", "200"});
//   ok.Inc();                      // hot path: one atomic add, no lock, no lookup
//   registry.AddCallbackGauge("vmp3_queue_depth", "Jobs waiting.", [&] { return queue.Depth(); });
//   std::string body = registry.Render();  // serve with Registry::kContentType
//
// Ownership: families live as long as the registry and children as long as their family;
// references returned by Add* and WithLabels stay valid until the registry is destroyed, so hot
// paths look a child up once and keep the reference.
// Threading: everything is thread-safe. Updates are lock-free atomics; creating a child takes the
// family's mutex; Render takes the mutexes only to copy the lists of children and never holds one
// while it calls a callback.
// Names: metric and label names are made valid by replacing characters Prometheus does not allow
// with '_'. Label order does not matter ({a,b} and {b,a} are the same child).
// Registering a name twice returns the existing family when the type matches; a type mismatch is
// a programming error and aborts the process with a message.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmp3::metrics {

struct Label {
  std::string_view name;
  std::string_view value;
};

class Counter {
 public:
  // Negative and NaN amounts are ignored: a counter only goes up.
  void Inc(double amount = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds`: the upper bounds (inclusive, as Prometheus `le`) of the finite buckets, sorted
  // ascending without duplicates; the +Inf bucket is implicit.
  explicit Histogram(std::vector<double> bounds);
  // NaN is ignored.
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per finite bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // Concurrent observations may land partly in a snapshot; count always equals the +Inf bucket.
  Snapshot Snap() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// Bucket bounds for request latencies in seconds (5 ms .. 10 s, like the Prometheus clients).
std::vector<double> DefaultLatencyBuckets();
// `count` bounds start, start*factor, ... (start > 0, factor > 1).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// The label set of a child, sorted by name.
using LabelSet = std::vector<std::pair<std::string, std::string>>;

class Family {
 public:
  virtual ~Family() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  virtual std::string_view type() const = 0;
  // Appends HELP, TYPE and the samples.
  virtual void Render(std::string& out) const = 0;

 protected:
  Family(std::string name, std::string help) : name_(std::move(name)), help_(std::move(help)) {}
  static LabelSet MakeLabelSet(std::span<const Label> labels);

 private:
  std::string name_;
  std::string help_;
};

// The children of one metric, one per label set, created on first use.
template <typename T>
class MetricFamily : public Family {
 public:
  T& WithLabels() { return WithLabelSpan({}); }
  T& WithLabels(const Label& a) { return WithLabelSpan(std::span<const Label>(&a, 1)); }
  T& WithLabels(const Label& a, const Label& b) {
    const Label labels[] = {a, b};
    return WithLabelSpan(labels);
  }
  T& WithLabels(const Label& a, const Label& b, const Label& c) {
    const Label labels[] = {a, b, c};
    return WithLabelSpan(labels);
  }
  T& WithLabels(const Label& a, const Label& b, const Label& c, const Label& d) {
    const Label labels[] = {a, b, c, d};
    return WithLabelSpan(labels);
  }
  T& WithLabelSpan(std::span<const Label> labels) {
    LabelSet key = MakeLabelSet(labels);
    std::lock_guard lock(mu_);
    auto it = children_.find(key);
    if (it == children_.end()) it = children_.emplace(std::move(key), NewChild()).first;
    return *it->second;
  }

 protected:
  using Family::Family;
  virtual std::unique_ptr<T> NewChild() const = 0;
  // A copy of the child list, taken under the mutex; the pointers stay valid.
  std::vector<std::pair<LabelSet, const T*>> Children() const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<LabelSet, const T*>> out;
    out.reserve(children_.size());
    for (const auto& [labels, child] : children_) out.emplace_back(labels, child.get());
    return out;
  }

  mutable std::mutex mu_;

 private:
  std::map<LabelSet, std::unique_ptr<T>> children_;
};

class CounterFamily final : public MetricFamily<Counter> {
 public:
  CounterFamily(std::string name, std::string help)
      : MetricFamily(std::move(name), std::move(help)) {}
  std::string_view type() const override { return "counter"; }
  void Render(std::string& out) const override;

 private:
  std::unique_ptr<Counter> NewChild() const override { return std::make_unique<Counter>(); }
};

class GaugeFamily final : public MetricFamily<Gauge> {
 public:
  GaugeFamily(std::string name, std::string help)
      : MetricFamily(std::move(name), std::move(help)) {}
  std::string_view type() const override { return "gauge"; }
  void Render(std::string& out) const override;

  // Makes the child with these labels report fn() at render time instead of a stored value,
  // replacing any earlier callback for the same labels. fn runs on the rendering thread, must be
  // thread-safe and must stay callable until the registry is destroyed.
  void SetCallback(std::span<const Label> labels, std::function<double()> fn);

 private:
  std::unique_ptr<Gauge> NewChild() const override { return std::make_unique<Gauge>(); }
  std::map<LabelSet, std::shared_ptr<const std::function<double()>>> callbacks_;  // under mu_
};

class HistogramFamily final : public MetricFamily<Histogram> {
 public:
  // `bounds` is sorted and de-duplicated; non-finite values are dropped (+Inf is implicit).
  HistogramFamily(std::string name, std::string help, std::vector<double> bounds);
  std::string_view type() const override { return "histogram"; }
  void Render(std::string& out) const override;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::unique_ptr<Histogram> NewChild() const override {
    return std::make_unique<Histogram>(bounds_);
  }
  std::vector<double> bounds_;
};

class Registry {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily& AddCounter(std::string_view name, std::string_view help);
  GaugeFamily& AddGauge(std::string_view name, std::string_view help);
  // When the family exists already its bounds are kept.
  HistogramFamily& AddHistogram(std::string_view name, std::string_view help,
                                std::vector<double> bounds);
  // A gauge whose value is fn() at render time (queue depth, open connections). See
  // GaugeFamily::SetCallback for the rules on fn.
  void AddCallbackGauge(std::string_view name, std::string_view help, std::function<double()> fn,
                        std::initializer_list<Label> labels = {});

  // Runs `collect` at the start of every Render, before any family is rendered: for values
  // that one call computes for several metrics (e.g. jobs per status from one backend query),
  // set into ordinary gauges. Runs on the rendering thread, without the registry's lock.
  void AddCollector(std::function<void()> collect);

  // All families, sorted by name, in the text exposition format 0.0.4.
  std::string Render() const;

 private:
  template <typename F, typename... Args>
  F& Add(std::string_view name, std::string_view help, Args&&... args);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
  std::vector<std::function<void()>> collectors_;
};

}  // namespace vmp3::metrics
