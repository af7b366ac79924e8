// proxy/mirror/mirror: copies every v1 write into Dolt in the dualwrite and shadow stages, after
// the client has its answer. Two threads of blocking work (the house's bounded pool for libgit2 and
// Connector/C), never on the proxy's event loops:
//
// - the worker takes dirty users one at a time and applies v1's state (libgit2) to Dolt with its
//   own connection (adapters/dolt apply_user: only the rows that differ, in one transaction with
//   the watermark), then makes the Dolt commit(s) of the configured policy;
// - the capture scan compares every user's HEAD and pending_diffs/ fingerprint with the
//   watermarks at start-up and every mirror.scan_interval, which catches writes that bypass the
//   proxy, triggers lost in a crash and everything missed while Dolt was away.
//
// The proxy calls notify() after a write's answer went out: a mutex, a map insert and a
// condition-variable signal, nothing that can wait on Dolt. Memory is bounded by the number of
// users (one dirty entry per user). Failures: Dolt unreachable opens a circuit breaker and the
// users stay dirty; retryable errors back off with jitter; permanent errors (bad data, a corrupt
// repository) park the user, listed in status_json(), until its storage changes or an operator
// retries it.
#pragma once

#include <chrono>

#include "adapters/v1/routes.hpp"
#include "config/config.hpp"
#include "proxy/routing/sinks.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace sg::proxy {

class mirror : public routing::write_sink {
public:
    // Does not start anything: start() does (a mirror that is not started is told of nothing:
    // the router names it for no request). Registers shadowgate_mirror_* and
    // shadowgate_dolt_*packet* in `reg`, which outlives the mirror.
    mirror(const config::config& cfg, prometheus::Registry& reg);
    ~mirror() override;
    mirror(const mirror&) = delete;
    mirror& operator=(const mirror&) = delete;

    // Starts the worker and the scan thread (the first scan runs at once).
    void start();
    // Stops both threads; a pass in progress finishes its transaction first (bounded by
    // dolt.read_timeout). Idempotent. Dirty users not yet applied are found again by the next
    // start's scan.
    void stop();
    // The same, waiting at most `bound`: false when a thread is still inside a database call
    // (a hung Dolt with long timeouts). The threads are then left to the process's exit (they
    // own the engine's state, so the mirror may be destroyed); nothing is lost, since a
    // transaction cut off is rolled back and the next start's scan finds its user again.
    bool stop(std::chrono::milliseconds bound);
    // Started and not asked to stop: the stage mirrors writes.
    bool active() const;

    // A v1 answer to `route` went out: when it is a 2xx write, mark its user dirty. Cheap and
    // non-blocking in practice (one short mutex hold); safe from any thread.
    void written(const v1::route& route, unsigned status, std::string_view body) override;

    // Somebody saw `user`'s storage differ from Dolt (the shadow comparer): mark it dirty so the
    // worker looks, unless it is parked (a parked user waits for a change or an operator).
    // Returns whether the user is dirty now. Cheap; safe from any thread.
    bool look_at(const std::string& user);

    // Sets the series that are read from the mirror's state (dirty users, lag, circuit...);
    // /metrics calls it before the exposition.
    void refresh_metrics() const;
    // GET /admin/mirror: stage, circuit, dirty and parked users, lag.
    std::string status_json(std::size_t max_listed = 100) const;
    // POST /admin/mirror/retry: parked users (one, or all when empty) become dirty again.
    std::size_t retry_parked(const std::string& user);
    // The mirror's health for the cutover gate: the age of the oldest unapplied change, and
    // how many users are parked.
    struct health_info {
        double lag_seconds = 0;
        std::size_t parked = 0;
    };
    health_info health() const;
    // The database's max_allowed_packet (read by each capture scan, 0 until the first) against
    // what the largest block proxy.limits lets through needs (dolt::packet_needed_for_block).
    struct packet_info {
        std::uint64_t server = 0;
        std::uint64_t needed = 0;
        bool known() const { return server != 0; }
        bool fits() const { return server >= needed; }
        std::string remedy() const;  // what to do when it does not fit
    };
    packet_info packet() const;
    // True when a capture scan has completed and nothing is dirty or in flight;
    // for tests and benchmarks.
    bool idle() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;  // shared with the threads: see stop(bound)
};

}  // namespace sg::proxy
