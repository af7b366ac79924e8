// proxy/shadow/shadow: shadow reads (stage `shadow`). After v1's answer to a read has gone to the
// client, the same question is put to Dolt: its tables rendered as v1 would answer
// (adapters/v1/v2_render), compared with v1's answer by the comparator under the endpoint's rules.
//
// The proxy only calls wants() (sampling, a few arithmetic operations) and offer() (a mutex and
// a deque push); everything else runs on this module's worker threads, each with its own Dolt
// session: a bounded queue (full: the comparison is skipped and counted), a deadline per
// comparison, a circuit breaker when Dolt is unreachable (comparisons then end as v2_error at
// once). The client's answer never waits for any of it.
//
// No false alarms from replication lag: a comparison is trusted only when Dolt's watermark for the
// user equals v1's storage (HEAD and pending_diffs/ fingerprint) at that moment. When it does not,
// or when the answers differ, the worker asks the mirror to look at the user, waits for the two to
// be in step (up to shadow.settle_timeout), then reads both sides again (v1 over HTTP, Dolt) with
// the storage unchanged around the reads: equal answers count as `lagging`, different ones are a
// discrepancy, recorded every time a read shows it. Neither the wait for the mirror nor the v1
// re-read holds a worker: a settling comparison is handed back and resumed when it is due.
#pragma once

#include "adapters/v1/routes.hpp"
#include "config/config.hpp"
#include "proxy/mirror/mirror.hpp"
#include "proxy/net/http_fetch.hpp"
#include "proxy/routing/sinks.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace sg::proxy {

// A read's answer from v1, as the session hands it over.
using shadow_job = routing::read_answer;

class shadow : public routing::read_sink {
public:
    // `mir` is the stage's mirror (asked to look at users found out of step). Registers
    // shadowgate_compare_* in `reg`, which outlives the comparer.
    shadow(const config::config& cfg, mirror* mir, prometheus::Registry& reg);
    ~shadow() override;
    shadow(const shadow&) = delete;
    shadow& operator=(const shadow&) = delete;

    void start();
    void stop();  // queued comparisons are dropped (counted as skipped: stopping)
    // Started and not stopped: the stage compares reads.
    bool active() const;

    // Whether the answer to this request should be compared (a GET of a compared read endpoint,
    // sampled, and the machine not busy: then it counts the skip). Cheap; safe from any thread.
    bool wants(const v1::route& route, std::string_view method) const override;
    // Queues a comparison; never blocks on Dolt.
    void offer(shadow_job job) override;

    // Sets the series that are read from the comparer's state (queue, CPU guard, differing
    // paths); /metrics calls it before the exposition.
    void refresh_metrics() const;
    // GET /admin/discrepancies: the newest first, at most `limit`, of one endpoint or all ("").
    std::string discrepancies_json(std::string_view endpoint, std::size_t limit) const;
    // GET /admin/shadow: queue, workers, counts by endpoint and result.
    std::string status_json() const;
    // The differing field paths counted so far: [{endpoint, target, path, count}], most frequent
    // first per endpoint.
    std::string differing_paths_json() const;
    // Results so far of one target: endpoint -> result -> count (compared endpoints only; empty
    // when the target is not configured).
    std::map<std::string, std::map<std::string, std::uint64_t>> counts(
        config::compare_target target) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sg::proxy
