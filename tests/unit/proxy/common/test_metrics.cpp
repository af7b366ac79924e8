// tests/unit/proxy/common/test_metrics: the proxy's families in a registry, the handles that count
// into them, and the exposition's text.
#include <catch2/catch.hpp>

#include <prometheus/registry.h>

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"

using namespace sg::proxy;

namespace {

using labels = std::map<std::string, std::string>;

struct sample {
    std::string name;
    labels by_name;
    double value = 0;
};

// The sample lines of an exposition, labels parsed by name, so that a check does not depend on
// the order the labels are written in.
std::vector<sample> samples_of(const std::string& text) {
    static const std::regex line_re(R"(([a-z_]+)(?:\{(.*)\})? (\S+))");
    static const std::regex label_re(R"re(([a-z_]+)="((?:[^"\\]|\\.)*)")re");
    std::vector<sample> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find('\n', pos);
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        std::smatch m;
        if (line.empty() || line.starts_with("#") || !std::regex_match(line, m, line_re)) continue;
        sample s{m[1], {}, std::stod(m[3])};
        const std::string body = m[2];
        for (std::sregex_iterator it(body.begin(), body.end(), label_re), last; it != last; ++it) {
            s.by_name[(*it)[1]] = (*it)[2];
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::optional<double> value_of(const std::vector<sample>& all, const std::string& name,
                               const labels& l = {}) {
    for (const auto& s : all) {
        if (s.name == name && s.by_name == l) return s.value;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("histograms are cumulative and the exposition is well formed") {
    prometheus::Registry reg;
    metrics m(reg, "v1");
    m.count_request(sg::v1::endpoint::get_block, 200, 0.0003);
    m.count_request(sg::v1::endpoint::get_block, 404, 0.02);
    m.count_request(sg::v1::endpoint::get_block, 0, 7.0);
    m.count(reject_reason::body_too_large);
    m.count(upstream_error::connect_timeout);
    const std::string text = exposition(reg);
    const auto all = samples_of(text);

    CHECK(value_of(all, "shadowgate_requests_total",
                   {{"endpoint", "get_block"}, {"code", "2xx"}}) == 1);
    CHECK(value_of(all, "shadowgate_requests_total",
                   {{"endpoint", "get_block"}, {"code", "4xx"}}) == 1);
    CHECK(value_of(all, "shadowgate_requests_total",
                   {{"endpoint", "get_block"}, {"code", "none"}}) == 1);
    CHECK(value_of(all, "shadowgate_requests_total",
                   {{"endpoint", "get_version"}, {"code", "2xx"}}) == 0);
    const auto bucket = [&](const char* le) {
        return value_of(all, "shadowgate_request_duration_seconds_bucket",
                        {{"endpoint", "get_block"}, {"le", le}});
    };
    CHECK(bucket("0.00025") == 0);
    CHECK(bucket("0.0005") == 1);
    CHECK(bucket("0.025") == 2);
    CHECK(bucket("5") == 2);
    CHECK(bucket("+Inf") == 3);
    CHECK(value_of(all, "shadowgate_request_duration_seconds_count", {{"endpoint", "get_block"}}) ==
          3);
    CHECK(value_of(all, "shadowgate_request_duration_seconds_sum", {{"endpoint", "get_block"}})
              .value_or(0) == Approx(7.0203));
    CHECK(value_of(all, "shadowgate_rejected_requests_total", {{"reason", "body_too_large"}}) == 1);
    CHECK(value_of(all, "shadowgate_upstream_errors_total",
                   {{"upstream", "v1"}, {"kind", "connect_timeout"}}) == 1);
    CHECK(value_of(all, "shadowgate_upstream_duration_seconds_count",
                   {{"upstream", "v1"}, {"endpoint", "get_block"}}) == 0);
    CHECK(value_of(all, "shadowgate_client_idle_closes_total", {{"wait", "between_requests"}}) ==
          0);
    CHECK(value_of(all, "shadowgate_open_connections") == 0);

    // Every sample line is "name{labels} value" or "name value"; every metric has one HELP and
    // one TYPE.
    const std::regex sample_re(R"([a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-0-9.e+]+)");
    std::set<std::string> typed, helped;
    std::size_t pos = 0;
    int samples = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.starts_with("# TYPE ")) {
            CHECK(typed.insert(line.substr(7, line.find(' ', 7) - 7)).second);
            continue;
        }
        if (line.starts_with("# HELP ")) {
            CHECK(helped.insert(line.substr(7, line.find(' ', 7) - 7)).second);
            continue;
        }
        INFO(line);
        CHECK(std::regex_match(line, sample_re));
        std::string metric = line.substr(0, line.find_first_of("{ "));
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            if (metric.ends_with(suffix) && !typed.count(metric)) {
                metric.resize(metric.size() - std::string(suffix).size());
            }
        }
        CHECK(typed.count(metric) == 1);
        ++samples;
    }
    CHECK(typed == helped);
    CHECK(samples > 100);
    CHECK(typed.count("shadowgate_task_failures_total") == 1);
}

TEST_CASE("the exposition lists series in the same order every time, labels by name") {
    prometheus::Registry reg;
    auto& f = add_counter_family(reg, "t_total", "A test family.");
    for (const char* v : {"c", "a", "b"}) series(f, {{"z", "1"}, {"k", v}}).fetch_add(2);
    const std::string text = exposition(reg);
    CHECK(text ==
          "# HELP t_total A test family.\n"
          "# TYPE t_total counter\n"
          "t_total{k=\"a\",z=\"1\"} 2\n"
          "t_total{k=\"b\",z=\"1\"} 2\n"
          "t_total{k=\"c\",z=\"1\"} 2\n");
    CHECK(exposition(reg) == text);
}

TEST_CASE("a family without a series is not exposed; label values are escaped") {
    prometheus::Registry reg;
    add_gauge_family(reg, "t_empty", "Nothing yet.");
    auto& f = add_counter_family(reg, "t_paths_total", "Paths.");
    series(f, {{"path", "a\"b\\c\nd"}}).fetch_add(1);
    const std::string text = exposition(reg);
    CHECK(text.find("t_empty") == std::string::npos);
    CHECK(text.find("t_paths_total{path=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
}

TEST_CASE("handles: counted, advanced to a total, a default one counts nothing") {
    prometheus::Registry reg;
    counter c = add_counter(reg, "t_total", "Test.");
    c.fetch_add(3);
    c.fetch_add(0);
    CHECK(c.load() == 3);
    c.advance_to(10.5);
    CHECK(c.load() == 10);
    c.advance_to(4);  // a counter never goes down
    CHECK(c.load() == 10);
    gauge g = add_gauge(reg, "t_gauge", "Test.");
    g.fetch_add(5);
    g.fetch_sub(7);
    CHECK(g.load() == -2);
    g.set(0.25);
    CHECK(value_of(samples_of(exposition(reg)), "t_gauge") == 0.25);

    counter unbound;
    unbound.fetch_add(1);
    unbound.advance_to(5);
    CHECK(unbound.load() == 0);
    gauge unbound_gauge;
    unbound_gauge.fetch_add(1);
    CHECK(unbound_gauge.load() == 0);
    histogram unbound_histogram;
    unbound_histogram.observe(1.0);
}

TEST_CASE("a second registration of a family returns the first") {
    prometheus::Registry reg;
    auto& a = add_counter_family(reg, "t_total", "Test.");
    auto& b = add_counter_family(reg, "t_total", "Test.");
    CHECK(&a == &b);
    CHECK_THROWS_AS(add_gauge_family(reg, "t_total", "Test."), std::invalid_argument);
}

TEST_CASE("refresh publishes the process's task failures") {
    prometheus::Registry reg;
    metrics m(reg, "v1");
    auto& counted = process_task_failures().by_kind[static_cast<std::size_t>(task_kind::sweep)];
    const auto before = counted.load();
    counted.fetch_add(2);
    m.refresh();
    const auto all = samples_of(exposition(reg));
    CHECK(value_of(all, "shadowgate_task_failures_total", {{"task", "sweep"}}) ==
          static_cast<double>(before + 2));
    CHECK(value_of(all, "shadowgate_task_failures_total", {{"task", "reconcile_job"}}).has_value());
    counted.fetch_sub(2);  // the process's counts are shared with the other tests
}
