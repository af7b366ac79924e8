// proxy/common/metrics: the counters and histograms shadowgate publishes, as lock-free atomics
// updated on the request path and rendered on demand in the Prometheus text format. Label values
// are bounded by construction (endpoint names, fixed reason lists), never raw paths or user ids.
#pragma once

#include "adapters/v1/routes.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace sg::proxy {

// 1..5 for a status code's class, 0 for anything outside 100..599 (the client went away before
// an answer): the index of shadowgate_requests_total's `code` label.
inline std::size_t status_class(unsigned status) {
    return status >= 100 && status <= 599 ? status / 100 : 0;
}

// Appends the "# HELP" and "# TYPE" lines of one metric family.
void metric_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help);

// Appends a whole single-sample family: header, then "<name><labels> <value>".
template <class V>
void metric_line(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help, const V& value, std::string_view labels = "") {
    metric_header(out, name, type, help);
    out += name;
    out += labels;
    out += ' ';
    if constexpr (std::is_convertible_v<const V&, std::string_view>) {
        out += std::string_view(value);
    } else {
        out += std::to_string(value);
    }
    out += '\n';
}

// A cumulative histogram with fixed latency buckets (seconds).
class histogram {
public:
    static constexpr std::array<double, 14> bounds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};
    void observe(double seconds);
    // Appends "<name>_bucket{labels,le=..} n" ... "_sum" and "_count" lines.
    void render(std::string& out, std::string_view name, std::string_view labels) const;

private:
    std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets_{};  // last one is +Inf
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

// Why shadowgate answered a request itself instead of forwarding v1's answer.
enum class reject_reason {
    bad_request,       // unparseable request -> 400
    header_too_large,  // -> 431
    body_too_large,    // -> 413
    request_timeout,   // request not complete in time -> 408
    hostile_path,      // unsafe user id or label -> 400
    max_connections,   // connection closed at accept
    count_
};

// What went wrong talking to an upstream.
enum class upstream_error {
    connect_refused,   // -> 502
    connect_timeout,   // -> 504
    response_timeout,  // -> 504
    connection_lost,   // reset or closed mid-exchange -> 502
    bad_response,      // unparseable or oversized answer -> 502
    count_
};

std::string_view name(reject_reason r);
std::string_view name(upstream_error e);

struct metrics {
    // requests by endpoint and status class (index 0: no status, the client went away)
    std::array<std::array<std::atomic<std::uint64_t>, 6>, v1::endpoint_count> requests{};
    std::array<histogram, v1::endpoint_count> request_seconds{};   // client-visible, per endpoint
    std::array<histogram, v1::endpoint_count> upstream_seconds{};  // v1 round trip, per endpoint
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(reject_reason::count_)>
        rejected{};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(upstream_error::count_)>
        upstream_errors{};
    std::atomic<std::uint64_t> upstream_retries{0};   // idempotent request resent once
    std::atomic<std::uint64_t> upstream_connects{0};  // new connections opened to v1
    std::atomic<std::uint64_t> upstream_reuses{0};    // requests sent on a pooled connection
    // Upstream connections closed instead of pooled or reused: the probe found the peer had
    // closed it (stale), it sat idle past v1.idle_keepalive (idle), its answer was a 5xx (a
    // failing server may close without saying so: uvicorn after an unhandled exception).
    std::atomic<std::uint64_t> upstream_dropped_stale{0};
    std::atomic<std::uint64_t> upstream_dropped_idle{0};
    std::atomic<std::uint64_t> upstream_dropped_5xx{0};
    std::atomic<std::uint64_t> client_write_errors{0};  // client gone before the answer was sent
    std::atomic<std::uint64_t> client_read_aborts{0};   // client gone in the middle of a request
    // Client connections closed for sending nothing: a new one past first_byte_timeout, a
    // keep-alive one past idle_timeout.
    std::atomic<std::uint64_t> client_timeouts_first_byte{0};
    std::atomic<std::uint64_t> client_timeouts_idle{0};
    std::atomic<std::uint64_t> accepted_connections{0};
    std::atomic<std::uint64_t> accept_errors{0};
    std::atomic<std::int64_t> open_client_connections{0};
    std::atomic<std::int64_t> open_upstream_connections{0};
    std::atomic<std::int64_t> in_flight_requests{0};

    void count_request(v1::endpoint ep, unsigned status, double seconds);
    void count(reject_reason r) { rejected[static_cast<std::size_t>(r)].fetch_add(1, relaxed); }
    void count(upstream_error e) {
        upstream_errors[static_cast<std::size_t>(e)].fetch_add(1, relaxed);
    }

    // The whole exposition, "# HELP"/"# TYPE" lines included. `upstream` names the v1 upstream
    // in labels.
    std::string render(std::string_view upstream) const;

    static constexpr auto relaxed = std::memory_order_relaxed;
};

}  // namespace sg::proxy
