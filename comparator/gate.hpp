// comparator/gate: the cutover gate's verdict from the evidence, free of I/O: every criterion
// with its measured value, its threshold and pass/fail, and GO only when all pass.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sg::comparator::gate {

// The thresholds the verdict applies (config's gate section carries them, with its defaults).
struct criteria {
    std::vector<std::string> endpoints;  // read endpoints that must be covered ([]: all seven)
    std::int64_t min_compared = 1000;    // compared reads per endpoint at least
    // Discrepancies / compared reads per endpoint at most, judged by the upper bound of its
    // Wilson interval at `confidence` (12 clean reads do not prove a rate of 0).
    double max_discrepancy_rate = 0.001;
    double confidence = 0.95;
    std::chrono::milliseconds max_mirror_lag{5'000};  // the oldest unapplied write at most
    std::int64_t max_parked_users = 0;
    std::int64_t reconcile_max_age_hours = 24;  // the last reconcile clean and younger (0: off)
    std::int64_t min_shadow_hours = 168;        // the shadow stage held this long (7 days)
};

// Comparison results of one endpoint (shadowgate_compare_total of the gate's target).
struct counts {
    std::map<std::string, std::uint64_t> by_result;  // "match", "lagging", "mismatch", ...
    std::uint64_t get(const std::string& r) const;
    // Reads whose answers were compared: match, lagging and the four discrepancy classes.
    std::uint64_t compared() const;
    // mismatch + missing_in_v2 + extra_in_v2 + status_mismatch.
    std::uint64_t discrepancies() const;
};

struct reconcile_record {
    std::int64_t finished_ms = 0;  // Unix time
    bool clean = false;
    std::uint64_t users = 0;
    std::uint64_t drifted_users = 0;
    std::uint64_t unrepresentable = 0;  // v1 texts the plan's columns cannot give back
};

// What the gate knows: persisted (survives restarts) and live.
struct evidence {
    std::map<std::string, counts> endpoints;      // by endpoint name
    std::optional<std::int64_t> shadow_since_ms;  // when the shadow stage began (Unix ms)
    std::optional<reconcile_record> last_reconcile;
    // Live: the mirror.
    bool mirror_running = false;
    double mirror_lag_seconds = 0;
    std::uint64_t parked_users = 0;
    std::int64_t now_ms = 0;
};

struct criterion {
    std::string name;       // "shadow_held", "coverage", "discrepancy_rate", "mirror_lag", ...
    std::string endpoint;   // for the per-endpoint ones, else ""
    std::string measured;   // human-readable, e.g. "3/12000 = 0.025% (upper bound 0.061%)"
    std::string threshold;  // e.g. "<= 0.1% at 95% confidence"
    bool pass = false;
    std::string status;  // "pass", "fail", "uncovered", "not_required"
};

struct verdict {
    bool go = false;
    std::vector<criterion> criteria;
};

// The upper end of the Wilson score interval for k successes in n trials at one-sided
// confidence `confidence` (0.95: z = 1.645). 1 when n is 0.
double wilson_upper(std::uint64_t k, std::uint64_t n, double confidence);

// The standard normal quantile (the z with P(Z <= z) = p), for p in (0, 1).
double normal_quantile(double p);

verdict evaluate(const criteria& cfg, const evidence& ev);

}  // namespace sg::comparator::gate
