// proxy/common/metrics: what shadowgate publishes, in one prometheus-cpp registry owned by main.
// Each module registers its families in it at construction and keeps handles on the series it
// counts into, so that counting never looks a series up by its labels; /metrics is the registry's
// exposition (exposition()), nothing formats the text by hand. Values that only exist at scrape
// time (queue depths, lags) are gauges a module sets in its refresh, which /metrics calls first.
// Label values are bounded by construction (endpoint names, fixed reason lists), never raw paths
// or user ids.
#pragma once

#include "adapters/v1/routes.hpp"
#include "proxy/common/task_failure.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace sg::proxy {

// 1..5 for a status code's class, 0 for anything outside 100..599 (the client went away before
// an answer): the index of shadowgate_requests_total's `code` label.
inline std::size_t status_class(unsigned status) {
    return status >= 100 && status <= 599 ? status / 100 : 0;
}

// The latency buckets (seconds) of every shadowgate histogram.
const prometheus::Histogram::BucketBoundaries& latency_buckets();

// Handles on one series of a registered family. They keep the interface of the std::atomic
// counters they replaced (fetch_add, load; the memory order is accepted and ignored, the
// library's values are atomic) so that the code that counts reads the same. A handle made by
// default is bound to no series and counts nothing: the slot of an array that no series
// publishes (an endpoint that is never compared, a target that is not configured).
class counter {
public:
    counter() = default;
    explicit counter(prometheus::Counter& c) : c_(&c) {}
    void fetch_add(std::uint64_t n, std::memory_order = std::memory_order_relaxed) const {
        if (c_ != nullptr) c_->Increment(static_cast<double>(n));
    }
    [[nodiscard]] std::uint64_t load(std::memory_order = std::memory_order_relaxed) const {
        return c_ != nullptr ? static_cast<std::uint64_t>(c_->Value()) : 0;
    }
    // For a total kept elsewhere (a lower layer's atomic, a sum of nanoseconds): moves the
    // counter up to `total` at scrape time. One writer only (the admin thread's refresh).
    void advance_to(double total) const;

private:
    prometheus::Counter* c_ = nullptr;
};

class gauge {
public:
    gauge() = default;
    explicit gauge(prometheus::Gauge& g) : g_(&g) {}
    void fetch_add(std::int64_t n, std::memory_order = std::memory_order_relaxed) const {
        if (g_ != nullptr) g_->Increment(static_cast<double>(n));
    }
    void fetch_sub(std::int64_t n, std::memory_order = std::memory_order_relaxed) const {
        if (g_ != nullptr) g_->Decrement(static_cast<double>(n));
    }
    [[nodiscard]] std::int64_t load(std::memory_order = std::memory_order_relaxed) const {
        return g_ != nullptr ? static_cast<std::int64_t>(g_->Value()) : 0;
    }
    void set(double v) const {
        if (g_ != nullptr) g_->Set(v);
    }

private:
    prometheus::Gauge* g_ = nullptr;
};

class histogram {
public:
    histogram() = default;
    explicit histogram(prometheus::Histogram& h) : h_(&h) {}
    void observe(double seconds) const {
        if (h_ != nullptr) h_->Observe(seconds);
    }

private:
    prometheus::Histogram* h_ = nullptr;
};

using counter_family = prometheus::Family<prometheus::Counter>;
using gauge_family = prometheus::Family<prometheus::Gauge>;
using histogram_family = prometheus::Family<prometheus::Histogram>;

// Registers a family (registering the same name again returns the same family).
// Throws std::invalid_argument for a name that is not valid or already has another type.
counter_family& add_counter_family(prometheus::Registry& reg, const std::string& name,
                                   const std::string& help);
gauge_family& add_gauge_family(prometheus::Registry& reg, const std::string& name,
                               const std::string& help);
histogram_family& add_histogram_family(prometheus::Registry& reg, const std::string& name,
                                       const std::string& help);

// The series of `f` with `labels` (made on the first call), as a handle; a histogram's has the
// latency buckets.
[[nodiscard]] counter series(counter_family& f, const prometheus::Labels& labels = {});
[[nodiscard]] gauge series(gauge_family& f, const prometheus::Labels& labels = {});
[[nodiscard]] histogram series(histogram_family& f, const prometheus::Labels& labels = {});

// A family of one series.
[[nodiscard]] counter add_counter(prometheus::Registry& reg, const std::string& name,
                                  const std::string& help, const prometheus::Labels& labels = {});
[[nodiscard]] gauge add_gauge(prometheus::Registry& reg, const std::string& name,
                              const std::string& help, const prometheus::Labels& labels = {});

// The Prometheus text format (version 0.0.4) of every family of `reg` that has a series: the
// families sorted by name, a family's series by their labels, so that two scrapes list them alike.
[[nodiscard]] std::string exposition(const prometheus::Registry& reg);

// Why shadowgate answered a request itself instead of forwarding v1's answer.
enum class reject_reason {
    bad_request,       // unparseable request -> 400
    header_too_large,  // -> 431
    body_too_large,    // -> 413
    request_timeout,   // request not complete in time -> 408
    hostile_path,      // unsafe user id or label -> 400
    max_connections,   // connection closed at accept
    frozen,            // a write inside a freeze window -> 503 + Retry-After
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

// The proxy's own series (listener, sessions, upstream pool) and every background task's end.
struct metrics {
    // Registers the families in `reg`; `upstream` names the v1 upstream in labels.
    metrics(prometheus::Registry& reg, std::string_view upstream);
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    // requests by endpoint and status class (index 0: no status, the client went away)
    std::array<std::array<counter, 6>, v1::endpoint_count> requests{};
    std::array<histogram, v1::endpoint_count> request_seconds{};   // client-visible, per endpoint
    std::array<histogram, v1::endpoint_count> upstream_seconds{};  // v1 round trip, per endpoint
    std::array<counter, static_cast<std::size_t>(reject_reason::count_)> rejected{};
    std::array<counter, static_cast<std::size_t>(upstream_error::count_)> upstream_errors{};
    counter upstream_retries;   // idempotent request resent once
    counter upstream_connects;  // new connections opened to v1
    counter upstream_reuses;    // requests sent on a pooled connection
    // Upstream connections closed instead of pooled or reused: the probe found the peer had
    // closed it (stale), it sat idle past v1.idle_keepalive (idle), its answer was a 5xx (a
    // failing server may close without saying so: uvicorn after an unhandled exception).
    counter upstream_dropped_stale;
    counter upstream_dropped_idle;
    counter upstream_dropped_5xx;
    counter client_write_errors;  // client gone before the answer was sent
    counter client_read_aborts;   // client gone in the middle of a request
    // Client connections closed for sending nothing: a new one past first_byte_timeout, a
    // keep-alive one past idle_timeout.
    counter client_timeouts_first_byte;
    counter client_timeouts_idle;
    counter accepted_connections;
    counter accept_errors;
    gauge open_client_connections;
    gauge open_upstream_connections;
    gauge in_flight_requests;
    // shadowgate_task_failures_total{task}: the counts stay in process_task_failures(), which
    // exists before any registry and outlives them all; refresh() publishes them.
    std::array<counter, task_kind_count> task_failures{};

    void count_request(v1::endpoint ep, unsigned status, double seconds);
    void count(reject_reason r) { rejected[static_cast<std::size_t>(r)].fetch_add(1, relaxed); }
    void count(upstream_error e) {
        upstream_errors[static_cast<std::size_t>(e)].fetch_add(1, relaxed);
    }

    // Brings what is published from elsewhere up to date; /metrics calls it before the
    // exposition.
    void refresh() const;

    static constexpr auto relaxed = std::memory_order_relaxed;
};

}  // namespace sg::proxy
