#include "metrics.hpp"

#include <cmath>
#include <cstdio>

namespace scimsync::daemon {

namespace {

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::string label_text(const metric_labels& labels, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
    if (labels.empty() && extra_name.empty()) return "";
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k + "=\"" + escape_label_value(v) + "\"";
    }
    if (!extra_name.empty()) {
        if (!first) out += ',';
        out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
    }
    return out + "}";
}

const char* type_name(metrics::kind k) {
    switch (k) {
        case metrics::kind::counter:
            return "counter";
        case metrics::kind::gauge:
            return "gauge";
        case metrics::kind::histogram:
            return "histogram";
    }
    return "untyped";
}

void render_histogram(std::string& out, const std::string& name, const metric_labels& labels,
                      const histogram_values& h) {
    for (std::size_t i = 0; i < h.bounds.size(); ++i)
        out += name + "_bucket" + label_text(labels, "le", number(h.bounds[i])) + " " +
               std::to_string(h.cumulative[i]) + "\n";
    out += name + "_bucket" + label_text(labels, "le", "+Inf") + " " + std::to_string(h.count) +
           "\n";
    out += name + "_sum" + label_text(labels) + " " + number(h.sum) + "\n";
    out += name + "_count" + label_text(labels) + " " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

metrics::family& metrics::at(std::string_view name) {
    auto it = families_.find(name);
    if (it == families_.end()) it = families_.emplace(std::string(name), family{}).first;
    return it->second;
}

void metrics::describe(std::string name, kind k, std::string help) {
    std::lock_guard lk(mu_);
    auto& f = at(name);
    f.type = k;
    f.help = std::move(help);
}

void metrics::increment(std::string_view name, const metric_labels& labels, double by) {
    std::lock_guard lk(mu_);
    at(name).values[labels] += by;
}

void metrics::observe(std::string_view name, const metric_labels& labels, double seconds) {
    std::lock_guard lk(mu_);
    auto& b = at(name).histograms[labels];
    for (std::size_t i = 0; i < latency_buckets.size(); ++i)
        if (seconds <= latency_buckets[i]) ++b.counts[i];
    b.sum += seconds;
    ++b.count;
}

void metrics::add_source(std::string name, value_source source) {
    std::lock_guard lk(mu_);
    at(name).sources.push_back(std::move(source));
}

void metrics::add_histogram_source(std::string name, histogram_source source) {
    std::lock_guard lk(mu_);
    at(name).histogram_sources.push_back(std::move(source));
}

std::string metrics::render() const {
    // Sources are read outside the lock: they may take other modules' locks.
    std::vector<std::pair<std::string, family>> copy;
    {
        std::lock_guard lk(mu_);
        for (const auto& [name, f] : families_) copy.emplace_back(name, f);
    }
    std::string out;
    out.reserve(8192);
    for (auto& [name, f] : copy) {
        if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
        out += "# TYPE " + name + " " + type_name(f.type) + "\n";
        for (const auto& source : f.sources)
            for (const auto& [labels, v] : source()) f.values[labels] = v;
        for (const auto& [labels, v] : f.values)
            out += name + label_text(labels) + " " + number(v) + "\n";
        for (const auto& [labels, b] : f.histograms) {
            histogram_values h;
            h.bounds.assign(latency_buckets.begin(), latency_buckets.end());
            h.cumulative.assign(b.counts.begin(), b.counts.end());
            h.sum = b.sum;
            h.count = b.count;
            render_histogram(out, name, labels, h);
        }
        for (const auto& source : f.histogram_sources) render_histogram(out, name, {}, source());
    }
    return out;
}

}  // namespace scimsync::daemon
