// proxy/common/metrics: registering families, the exposition, the proxy's own families.
#include "proxy/common/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

namespace sg::proxy {

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
    static const prometheus::Histogram::BucketBoundaries bounds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};
    return bounds;
}

void counter::advance_to(double total) const {
    if (c_ == nullptr) return;
    const double behind = total - c_->Value();
    if (behind > 0) c_->Increment(behind);
}

counter_family& add_counter_family(prometheus::Registry& reg, const std::string& name,
                                   const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(reg);
}

gauge_family& add_gauge_family(prometheus::Registry& reg, const std::string& name,
                               const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(reg);
}

histogram_family& add_histogram_family(prometheus::Registry& reg, const std::string& name,
                                       const std::string& help) {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(reg);
}

counter series(counter_family& f, const prometheus::Labels& labels) {
    return counter(f.Add(labels));
}

gauge series(gauge_family& f, const prometheus::Labels& labels) { return gauge(f.Add(labels)); }

histogram series(histogram_family& f, const prometheus::Labels& labels) {
    return histogram(f.Add(labels, latency_buckets()));
}

counter add_counter(prometheus::Registry& reg, const std::string& name, const std::string& help,
                    const prometheus::Labels& labels) {
    return series(add_counter_family(reg, name, help), labels);
}

gauge add_gauge(prometheus::Registry& reg, const std::string& name, const std::string& help,
                const prometheus::Labels& labels) {
    return series(add_gauge_family(reg, name, help), labels);
}

std::string exposition(const prometheus::Registry& reg) {
    // The registry keeps a family's series in a hash map and its families grouped by type:
    // sorted, the text is the same from one scrape to the next and a module's families (one
    // prefix) stay together.
    auto families = reg.Collect();
    std::sort(families.begin(), families.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (auto& f : families) {
        std::sort(f.metric.begin(), f.metric.end(),
                  [](const auto& a, const auto& b) { return a.label < b.label; });
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return std::move(out).str();
}

std::string_view name(reject_reason r) {
    switch (r) {
        case reject_reason::bad_request: return "bad_request";
        case reject_reason::header_too_large: return "header_too_large";
        case reject_reason::body_too_large: return "body_too_large";
        case reject_reason::request_timeout: return "request_timeout";
        case reject_reason::hostile_path: return "hostile_path";
        case reject_reason::max_connections: return "max_connections";
        case reject_reason::frozen: return "frozen";
        case reject_reason::count_: break;
    }
    return "unknown";
}

std::string_view name(upstream_error e) {
    switch (e) {
        case upstream_error::connect_refused: return "connect_refused";
        case upstream_error::connect_timeout: return "connect_timeout";
        case upstream_error::response_timeout: return "response_timeout";
        case upstream_error::connection_lost: return "connection_lost";
        case upstream_error::bad_response: return "bad_response";
        case upstream_error::count_: break;
    }
    return "unknown";
}

metrics::metrics(prometheus::Registry& reg, std::string_view upstream_name) {
    const std::string upstream(upstream_name);
    static constexpr std::array<std::string_view, 6> classes{"none", "1xx", "2xx",
                                                             "3xx",  "4xx", "5xx"};
    auto& by_code =
        add_counter_family(reg, "shadowgate_requests_total",
                           "Client requests answered, by v1 endpoint and status class.");
    auto& request_hist = add_histogram_family(
        reg, "shadowgate_request_duration_seconds",
        "Client-visible latency from request received to response written, by endpoint.");
    auto& upstream_hist = add_histogram_family(
        reg, "shadowgate_upstream_duration_seconds",
        "Upstream round trip from request sent to response read, by upstream and endpoint.");
    for (const auto ep : v1::all_endpoints()) {
        const std::string endpoint(v1::name(ep));
        const auto i = static_cast<std::size_t>(ep);
        for (std::size_t c = 0; c < classes.size(); ++c) {
            requests[i][c] =
                series(by_code, {{"endpoint", endpoint}, {"code", std::string(classes[c])}});
        }
        request_seconds[i] = series(request_hist, {{"endpoint", endpoint}});
        upstream_seconds[i] =
            series(upstream_hist, {{"upstream", upstream}, {"endpoint", endpoint}});
    }
    auto& rejects = add_counter_family(reg, "shadowgate_rejected_requests_total",
                                       "Requests shadowgate answered itself, by reason.");
    for (std::size_t i = 0; i < rejected.size(); ++i) {
        rejected[i] =
            series(rejects, {{"reason", std::string(name(static_cast<reject_reason>(i)))}});
    }
    auto& errors = add_counter_family(reg, "shadowgate_upstream_errors_total",
                                      "Failures talking to an upstream, by kind.");
    for (std::size_t i = 0; i < upstream_errors.size(); ++i) {
        upstream_errors[i] = series(
            errors,
            {{"upstream", upstream}, {"kind", std::string(name(static_cast<upstream_error>(i)))}});
    }
    upstream_retries = add_counter(
        reg, "shadowgate_upstream_retries_total",
        "Requests resent once on a fresh connection after a pooled one proved dead: any "
        "request whose write failed (it never reached v1 whole), an idempotent one that got "
        "no byte back.",
        {{"upstream", upstream}});
    upstream_connects =
        add_counter(reg, "shadowgate_upstream_connects_total",
                    "New connections opened to the upstream.", {{"upstream", upstream}});
    upstream_reuses =
        add_counter(reg, "shadowgate_upstream_reuses_total",
                    "Requests sent on a pooled keep-alive connection.", {{"upstream", upstream}});
    auto& dropped = add_counter_family(
        reg, "shadowgate_upstream_dropped_total",
        "Upstream connections closed instead of reused, by reason: stale (the peer had "
        "closed it), idle (idle past v1.idle_keepalive), 5xx (its answer was a 5xx).");
    upstream_dropped_stale = series(dropped, {{"upstream", upstream}, {"reason", "stale"}});
    upstream_dropped_idle = series(dropped, {{"upstream", upstream}, {"reason", "idle"}});
    upstream_dropped_5xx = series(dropped, {{"upstream", upstream}, {"reason", "5xx"}});
    client_write_errors =
        add_counter(reg, "shadowgate_client_write_errors_total",
                    "Responses that could not be written because the client went away.");
    client_read_aborts =
        add_counter(reg, "shadowgate_client_read_aborts_total",
                    "Requests the client abandoned before sending them completely.");
    auto& idle_closes =
        add_counter_family(reg, "shadowgate_client_idle_closes_total",
                           "Client connections closed for sending nothing: a new one past "
                           "proxy.limits.first_byte_timeout_ms (first_byte), a keep-alive one past "
                           "idle_timeout_ms (between_requests).");
    client_timeouts_first_byte = series(idle_closes, {{"wait", "first_byte"}});
    client_timeouts_idle = series(idle_closes, {{"wait", "between_requests"}});
    accepted_connections =
        add_counter(reg, "shadowgate_accepted_connections_total", "Client connections accepted.");
    accept_errors = add_counter(reg, "shadowgate_accept_errors_total", "Failed accept() calls.");
    open_client_connections =
        add_gauge(reg, "shadowgate_open_connections", "Client connections open now.");
    open_upstream_connections = add_gauge(
        reg, "shadowgate_upstream_open_connections",
        "Connections to the upstream open now (in use or pooled).", {{"upstream", upstream}});
    in_flight_requests =
        add_gauge(reg, "shadowgate_in_flight_requests", "Requests being handled now.");
    auto& failures = add_counter_family(
        reg, "shadowgate_task_failures_total",
        "Background tasks that ended with an exception (logged as event=task_failed; an "
        "essential one stops the service).");
    for (std::size_t i = 0; i < task_failures.size(); ++i) {
        task_failures[i] =
            series(failures, {{"task", std::string(name(static_cast<task_kind>(i)))}});
    }
}

void metrics::count_request(v1::endpoint ep, unsigned status, double seconds) {
    auto i = static_cast<std::size_t>(ep);
    requests[i][status_class(status)].fetch_add(1, relaxed);
    request_seconds[i].observe(seconds);
}

void metrics::refresh() const {
    const auto& counted = process_task_failures().by_kind;
    for (std::size_t i = 0; i < task_failures.size(); ++i) {
        task_failures[i].advance_to(static_cast<double>(counted[i].load(relaxed)));
    }
}

}  // namespace sg::proxy
