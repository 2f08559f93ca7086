#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/text.hpp"

namespace vmp3::metrics {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  if (IsAsciiAlpha(c) || c == '_') return true;
  if (c == ':') return allow_colon;
  return !first && IsAsciiDigit(c);
}

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: the same without ':'.
std::string SanitizeName(std::string_view name, bool allow_colon) {
  std::string out(name);
  if (out.empty()) return "_";
  for (size_t i = 0; i < out.size(); ++i) {
    if (!IsNameChar(out[i], i == 0, allow_colon)) out[i] = '_';
  }
  return out;
}

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
    out.append(buffer, end);
  }
}

void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

// `{a="x",b="y"}`, with an optional extra label last (the histogram's `le`); nothing when empty.
void AppendLabels(std::string& out, const LabelSet& labels, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out.push_back('{');
  bool first = true;
  auto append = [&](std::string_view name, std::string_view value) {
    if (!first) out.push_back(',');
    first = false;
    out.append(name);
    out += "=\"";
    AppendEscaped(out, value, /*escape_quote=*/true);
    out.push_back('"');
  };
  for (const auto& [name, value] : labels) append(name, value);
  if (!extra_name.empty()) append(extra_name, extra_value);
  out.push_back('}');
}

void AppendHeader(std::string& out, const Family& family) {
  out += "# HELP ";
  out += family.name();
  out.push_back(' ');
  AppendEscaped(out, family.help(), /*escape_quote=*/false);
  out += "\n# TYPE ";
  out += family.name();
  out.push_back(' ');
  out += family.type();
  out.push_back('\n');
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const LabelSet& labels, double value) {
  out.append(name);
  out.append(suffix);
  AppendLabels(out, labels);
  out.push_back(' ');
  AppendDouble(out, value);
  out.push_back('\n');
}

std::vector<double> NormalizeBounds(std::vector<double> bounds) {
  std::erase_if(bounds, [](double b) { return !std::isfinite(b); });
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

}  // namespace

void Counter::Inc(double amount) {
  if (!(amount >= 0)) return;  // also false for NaN
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot snapshot;
  snapshot.cumulative.reserve(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> bounds;
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

LabelSet Family::MakeLabelSet(std::span<const Label> labels) {
  LabelSet set;
  set.reserve(labels.size());
  for (const Label& label : labels) {
    set.emplace_back(SanitizeName(label.name, /*allow_colon=*/false), std::string(label.value));
  }
  std::stable_sort(set.begin(), set.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return set;
}

void CounterFamily::Render(std::string& out) const {
  AppendHeader(out, *this);
  for (const auto& [labels, counter] : Children()) {
    AppendSample(out, name(), "", labels, counter->Value());
  }
}

void GaugeFamily::SetCallback(std::span<const Label> labels, std::function<double()> fn) {
  LabelSet key = MakeLabelSet(labels);
  auto callback = std::make_shared<const std::function<double()>>(std::move(fn));
  std::lock_guard lock(mu_);
  callbacks_[std::move(key)] = std::move(callback);
}

void GaugeFamily::Render(std::string& out) const {
  std::map<LabelSet, double> values;
  for (const auto& [labels, gauge] : Children()) values[labels] = gauge->Value();
  std::vector<std::pair<LabelSet, std::shared_ptr<const std::function<double()>>>> callbacks;
  {
    std::lock_guard lock(mu_);
    callbacks.assign(callbacks_.begin(), callbacks_.end());
  }
  for (const auto& [labels, fn] : callbacks) values[labels] = (*fn)();  // a callback wins
  AppendHeader(out, *this);
  for (const auto& [labels, value] : values) AppendSample(out, name(), "", labels, value);
}

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<double> bounds)
    : MetricFamily(std::move(name), std::move(help)), bounds_(NormalizeBounds(std::move(bounds))) {}

void HistogramFamily::Render(std::string& out) const {
  AppendHeader(out, *this);
  std::string le;
  for (const auto& [labels, histogram] : Children()) {
    const Histogram::Snapshot snapshot = histogram->Snap();
    for (size_t i = 0; i < snapshot.cumulative.size(); ++i) {
      le.clear();
      if (i < bounds_.size()) {
        AppendDouble(le, bounds_[i]);
      } else {
        le = "+Inf";
      }
      out += name();
      out += "_bucket";
      AppendLabels(out, labels, "le", le);
      out.push_back(' ');
      out += std::to_string(snapshot.cumulative[i]);
      out.push_back('\n');
    }
    AppendSample(out, name(), "_sum", labels, snapshot.sum);
    AppendSample(out, name(), "_count", labels, static_cast<double>(snapshot.count));
  }
}

Registry::Registry() = default;
Registry::~Registry() = default;

template <typename F, typename... Args>
F& Registry::Add(std::string_view name, std::string_view help, Args&&... args) {
  std::string clean = SanitizeName(name, /*allow_colon=*/true);
  std::lock_guard lock(mu_);
  auto it = families_.find(clean);
  if (it != families_.end()) {
    if (auto* family = dynamic_cast<F*>(it->second.get())) return *family;
    std::fprintf(stderr, "vmp3: metric '%s' registered twice with different types\n",
                 clean.c_str());
    std::abort();
  }
  auto family = std::make_unique<F>(clean, std::string(help), std::forward<Args>(args)...);
  F& ref = *family;
  families_.emplace(std::move(clean), std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(std::string_view name, std::string_view help) {
  return Add<CounterFamily>(name, help);
}

GaugeFamily& Registry::AddGauge(std::string_view name, std::string_view help) {
  return Add<GaugeFamily>(name, help);
}

HistogramFamily& Registry::AddHistogram(std::string_view name, std::string_view help,
                                        std::vector<double> bounds) {
  return Add<HistogramFamily>(name, help, std::move(bounds));
}

void Registry::AddCallbackGauge(std::string_view name, std::string_view help,
                                std::function<double()> fn, std::initializer_list<Label> labels) {
  AddGauge(name, help)
      .SetCallback(std::span<const Label>(labels.begin(), labels.size()), std::move(fn));
}

void Registry::AddCollector(std::function<void()> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();
  std::vector<const Family*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::string out;
  for (const Family* family : families) family->Render(out);
  return out;
}

}  // namespace vmp3::metrics
