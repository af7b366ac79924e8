// proxy/common/metrics: histogram bookkeeping and the Prometheus text rendering.
#include "proxy/common/metrics.hpp"

#include "proxy/common/task_failure.hpp"

#include <fmt/format.h>

namespace sg::proxy {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
}  // namespace

void metric_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void histogram::observe(double seconds) {
    std::size_t i = 0;
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    buckets_[i].fetch_add(1, relaxed);
    count_.fetch_add(1, relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), relaxed);
}

void histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
    std::uint64_t cumulative = 0;
    const std::string_view sep = labels.empty() ? "" : ",";
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        cumulative += buckets_[i].load(relaxed);
        fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels,
                       sep, bounds[i], cumulative);
    }
    cumulative += buckets_[bounds.size()].load(relaxed);
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep,
                   cumulative);
    fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n", name, labels,
                   static_cast<double>(sum_ns_.load(relaxed)) / 1e9);
    fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", name, labels,
                   count_.load(relaxed));
}

std::string_view name(reject_reason r) {
    switch (r) {
        case reject_reason::bad_request: return "bad_request";
        case reject_reason::header_too_large: return "header_too_large";
        case reject_reason::body_too_large: return "body_too_large";
        case reject_reason::request_timeout: return "request_timeout";
        case reject_reason::hostile_path: return "hostile_path";
        case reject_reason::max_connections: return "max_connections";
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

void metrics::count_request(v1::endpoint ep, unsigned status, double seconds) {
    auto i = static_cast<std::size_t>(ep);
    requests[i][status_class(status)].fetch_add(1, relaxed);
    request_seconds[i].observe(seconds);
}

std::string metrics::render(std::string_view upstream) const {
    std::string out;
    out.reserve(32 * 1024);
    static constexpr std::array<std::string_view, 6> classes{"none", "1xx", "2xx",
                                                             "3xx",  "4xx", "5xx"};

    metric_header(out, "shadowgate_requests_total", "counter",
                  "Client requests answered, by v1 endpoint and status class.");
    for (auto ep : v1::all_endpoints()) {
        for (std::size_t c = 0; c < classes.size(); ++c) {
            fmt::format_to(std::back_inserter(out),
                           "shadowgate_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n",
                           v1::name(ep), classes[c],
                           requests[static_cast<std::size_t>(ep)][c].load(relaxed));
        }
    }
    metric_header(out, "shadowgate_request_duration_seconds", "histogram",
                  "Client-visible latency from request received to response written, by endpoint.");
    for (auto ep : v1::all_endpoints()) {
        request_seconds[static_cast<std::size_t>(ep)].render(
            out, "shadowgate_request_duration_seconds",
            fmt::format("endpoint=\"{}\"", v1::name(ep)));
    }
    metric_header(
        out, "shadowgate_upstream_duration_seconds", "histogram",
        "Upstream round trip from request sent to response read, by upstream and endpoint.");
    for (auto ep : v1::all_endpoints()) {
        upstream_seconds[static_cast<std::size_t>(ep)].render(
            out, "shadowgate_upstream_duration_seconds",
            fmt::format("upstream=\"{}\",endpoint=\"{}\"", upstream, v1::name(ep)));
    }
    metric_header(out, "shadowgate_rejected_requests_total", "counter",
                  "Requests shadowgate answered itself, by reason.");
    for (std::size_t i = 0; i < rejected.size(); ++i) {
        fmt::format_to(std::back_inserter(out),
                       "shadowgate_rejected_requests_total{{reason=\"{}\"}} {}\n",
                       name(static_cast<reject_reason>(i)), rejected[i].load(relaxed));
    }
    metric_header(out, "shadowgate_upstream_errors_total", "counter",
                  "Failures talking to an upstream, by kind.");
    for (std::size_t i = 0; i < upstream_errors.size(); ++i) {
        fmt::format_to(std::back_inserter(out),
                       "shadowgate_upstream_errors_total{{upstream=\"{}\",kind=\"{}\"}} {}\n",
                       upstream, name(static_cast<upstream_error>(i)),
                       upstream_errors[i].load(relaxed));
    }
    auto counter = [&](std::string_view n, std::string_view help, std::uint64_t v) {
        metric_header(out, n, "counter", help);
        fmt::format_to(std::back_inserter(out), "{}{{upstream=\"{}\"}} {}\n", n, upstream, v);
    };
    counter("shadowgate_upstream_retries_total",
            "Requests resent once on a fresh connection after a pooled one proved dead: any "
            "request whose write failed (it never reached v1 whole), an idempotent one that got "
            "no byte back.",
            upstream_retries.load(relaxed));
    counter("shadowgate_upstream_connects_total", "New connections opened to the upstream.",
            upstream_connects.load(relaxed));
    counter("shadowgate_upstream_reuses_total", "Requests sent on a pooled keep-alive connection.",
            upstream_reuses.load(relaxed));
    metric_header(out, "shadowgate_upstream_dropped_total", "counter",
                  "Upstream connections closed instead of reused, by reason: stale (the peer had "
                  "closed it), idle (idle past v1.idle_keepalive), 5xx (its answer was a 5xx).");
    for (const auto& [reason, v] :
         {std::pair<std::string_view, std::uint64_t>{"stale", upstream_dropped_stale.load(relaxed)},
          {"idle", upstream_dropped_idle.load(relaxed)},
          {"5xx", upstream_dropped_5xx.load(relaxed)}}) {
        fmt::format_to(std::back_inserter(out),
                       "shadowgate_upstream_dropped_total{{upstream=\"{}\",reason=\"{}\"}} {}\n",
                       upstream, reason, v);
    }
    auto plain = [&](std::string_view n, std::string_view type, std::string_view help, auto v) {
        metric_header(out, n, type, help);
        fmt::format_to(std::back_inserter(out), "{} {}\n", n, v);
    };
    plain("shadowgate_client_write_errors_total", "counter",
          "Responses that could not be written because the client went away.",
          client_write_errors.load(relaxed));
    plain("shadowgate_client_read_aborts_total", "counter",
          "Requests the client abandoned before sending them completely.",
          client_read_aborts.load(relaxed));
    metric_header(out, "shadowgate_client_idle_closes_total", "counter",
                  "Client connections closed for sending nothing: a new one past "
                  "proxy.limits.first_byte_timeout_ms (first_byte), a keep-alive one past "
                  "idle_timeout_ms (between_requests).");
    for (const auto& [wait, v] : {std::pair<std::string_view, std::uint64_t>{
                                      "first_byte", client_timeouts_first_byte.load(relaxed)},
                                  {"between_requests", client_timeouts_idle.load(relaxed)}}) {
        fmt::format_to(std::back_inserter(out),
                       "shadowgate_client_idle_closes_total{{wait=\"{}\"}} {}\n", wait, v);
    }
    plain("shadowgate_accepted_connections_total", "counter", "Client connections accepted.",
          accepted_connections.load(relaxed));
    plain("shadowgate_accept_errors_total", "counter", "Failed accept() calls.",
          accept_errors.load(relaxed));
    plain("shadowgate_open_connections", "gauge", "Client connections open now.",
          open_client_connections.load(relaxed));
    metric_header(out, "shadowgate_upstream_open_connections", "gauge",
                  "Connections to the upstream open now (in use or pooled).");
    fmt::format_to(std::back_inserter(out),
                   "shadowgate_upstream_open_connections{{upstream=\"{}\"}} {}\n", upstream,
                   open_upstream_connections.load(relaxed));
    plain("shadowgate_in_flight_requests", "gauge", "Requests being handled now.",
          in_flight_requests.load(relaxed));
    process_task_failures().render(out);  // every background task's end
    return out;
}

}  // namespace sg::proxy
