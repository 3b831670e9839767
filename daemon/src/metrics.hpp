#pragma once
// The daemon's metrics in the Prometheus text exposition format (version 0.0.4): counters and
// histograms updated as things happen, and values read when scraped (gauges, and counters and
// histograms that another module keeps). Debian ships no Prometheus client library for C++, and
// the format is small: names, labels, values, one line each.
//
// Thread-safety: every member may be called from any thread.

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scimsync::daemon {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

// Upper bounds (seconds) of the latency buckets: 100 us to 10 s.
inline constexpr std::array<double, 14> latency_buckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10};

// A histogram's state as read at scrape time: cumulative counts per bucket (same length as the
// bounds), the sum and the count.
struct histogram_values {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;
    double sum = 0;
    std::uint64_t count = 0;
};

class metrics {
public:
    enum class kind { counter, gauge, histogram };

    // Declares a family before use: its type and help text.
    void describe(std::string name, kind k, std::string help);

    void increment(std::string_view name, const metric_labels& labels = {}, double by = 1);
    // Into the latency buckets above.
    void observe(std::string_view name, const metric_labels& labels, double seconds);

    // Values read at scrape time: each source returns (labels, value) pairs for one family.
    using value_source = std::function<std::vector<std::pair<metric_labels, double>>()>;
    void add_source(std::string name, value_source source);
    using histogram_source = std::function<histogram_values()>;
    void add_histogram_source(std::string name, histogram_source source);

    // The whole exposition, families in name order.
    std::string render() const;

private:
    struct family {
        kind type = kind::counter;
        std::string help;
        std::map<metric_labels, double> values;
        struct buckets {
            std::array<std::uint64_t, latency_buckets.size()> counts{};
            double sum = 0;
            std::uint64_t count = 0;
        };
        std::map<metric_labels, buckets> histograms;
        std::vector<value_source> sources;
        std::vector<histogram_source> histogram_sources;
    };
    family& at(std::string_view name);  // caller holds mu_

    mutable std::mutex mu_;
    std::map<std::string, family, std::less<>> families_;
};

// Escapes a label value for the exposition format (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

}  // namespace scimsync::daemon
