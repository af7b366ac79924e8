// comparator/gate: see the header.
#include "comparator/gate.hpp"

#include "adapters/v1/routes.hpp"
#include "comparator/compare.hpp"

#include <fmt/format.h>

#include <cmath>

namespace sg::comparator::gate {

namespace {

std::string percent(double x) { return fmt::format("{:.3g}%", x * 100); }

criterion crit(std::string name, std::string endpoint, std::string measured,
               std::string threshold) {
    criterion c;
    c.name = std::move(name);
    c.endpoint = std::move(endpoint);
    c.measured = std::move(measured);
    c.threshold = std::move(threshold);
    return c;
}

std::string hours(double ms) { return fmt::format("{:.1f} h", ms / 3'600'000.0); }

}  // namespace

std::uint64_t counts::get(const std::string& r) const {
    const auto it = by_result.find(r);
    return it == by_result.end() ? 0 : it->second;
}

std::uint64_t counts::discrepancies() const {
    std::uint64_t n = 0;
    for (const auto r : comparator::all_results()) {
        if (comparator::is_discrepancy(r)) n += get(std::string(comparator::name(r)));
    }
    return n;
}

std::uint64_t counts::compared() const { return get("match") + get("lagging") + discrepancies(); }

double normal_quantile(double p) {
    // Bisection on the normal CDF, 0.5 * erfc(-z / sqrt 2): exact enough for a threshold.
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; ++i) {
        const double mid = (lo + hi) / 2;
        if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return (lo + hi) / 2;
}

double wilson_upper(std::uint64_t k, std::uint64_t n, double confidence) {
    if (n == 0) return 1.0;
    const double z = normal_quantile(confidence);
    const double nn = static_cast<double>(n);
    const double p = static_cast<double>(k) / nn;
    const double z2 = z * z;
    const double centre = p + z2 / (2 * nn);
    const double spread = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    return std::min(1.0, (centre + spread) / (1 + z2 / nn));
}

namespace {

// The soak: the shadow stage held long enough.
criterion shadow_held_criterion(const criteria& cfg, const evidence& ev) {
    criterion c = crit("shadow_held", "", "", fmt::format(">= {} h", cfg.min_shadow_hours));
    if (!ev.shadow_since_ms) {
        c.measured = "not in the shadow stage";
    } else {
        const double held = static_cast<double>(ev.now_ms - *ev.shadow_since_ms);
        c.measured = hours(held);
        c.pass = held >= static_cast<double>(cfg.min_shadow_hours) * 3'600'000.0;
    }
    return c;
}

// The endpoints the gate judges: those configured, else every block read.
std::vector<std::string> gated_endpoints(const criteria& cfg) {
    std::vector<std::string> endpoints = cfg.endpoints;
    if (endpoints.empty()) {
        for (const auto ep : v1::all_endpoints()) {
            if (v1::is_block_read(ep)) endpoints.emplace_back(v1::name(ep));
        }
    }
    return endpoints;
}

// An endpoint is covered by enough compared reads; one never compared is uncovered, not clean.
criterion coverage_criterion(const criteria& cfg, const std::string& name, const counts& n) {
    const auto compared = n.compared();
    criterion cov = crit("coverage", name, fmt::format("{} compared", compared),
                         fmt::format(">= {} compared", cfg.min_compared));
    cov.pass = compared > 0 && static_cast<std::int64_t>(compared) >= cfg.min_compared;
    if (compared == 0) cov.status = "uncovered";
    return cov;
}

// An endpoint's discrepancy rate has an upper bound within the threshold.
criterion rate_criterion(const criteria& cfg, const std::string& name, const counts& n) {
    const auto compared = n.compared();
    const auto bad = n.discrepancies();
    criterion rate = crit("discrepancy_rate", name, "",
                          fmt::format("upper bound <= {} at {} confidence",
                                      percent(cfg.max_discrepancy_rate), percent(cfg.confidence)));
    if (compared == 0) {
        rate.measured = "no compared reads";
        rate.status = "uncovered";
    } else {
        const double upper = wilson_upper(bad, compared, cfg.confidence);
        rate.measured = fmt::format(
            "{}/{} = {} (upper bound {})", bad, compared,
            percent(static_cast<double>(bad) / static_cast<double>(compared)), percent(upper));
        rate.pass = upper <= cfg.max_discrepancy_rate;
    }
    return rate;
}

// The mirror keeps up.
criterion mirror_lag_criterion(const criteria& cfg, const evidence& ev) {
    criterion lag =
        crit("mirror_lag", "", "",
             fmt::format("<= {} s", static_cast<double>(cfg.max_mirror_lag.count()) / 1000));
    if (!ev.mirror_running) {
        lag.measured = "the mirror is not running";
    } else {
        lag.measured = fmt::format("{:.3g} s", ev.mirror_lag_seconds);
        lag.pass = ev.mirror_lag_seconds * 1000 <= static_cast<double>(cfg.max_mirror_lag.count());
    }
    return lag;
}

// Nobody is parked (and the mirror runs: without it nobody can be).
criterion parked_criterion(const criteria& cfg, const evidence& ev) {
    criterion parked = crit("parked_users", "", fmt::format("{}", ev.parked_users),
                            fmt::format("<= {}", cfg.max_parked_users));
    parked.pass =
        ev.mirror_running && static_cast<std::int64_t>(ev.parked_users) <= cfg.max_parked_users;
    if (!ev.mirror_running) parked.measured = "the mirror is not running";
    return parked;
}

// The last full reconcile: clean and recent.
criterion reconcile_criterion(const criteria& cfg, const evidence& ev) {
    criterion rec = crit("reconcile", "", "",
                         fmt::format("clean, younger than {} h", cfg.reconcile_max_age_hours));
    if (cfg.reconcile_max_age_hours == 0) {
        rec.measured = ev.last_reconcile ? (ev.last_reconcile->clean ? "clean" : "drift") : "none";
        rec.threshold = "not required";
        rec.pass = true;
        rec.status = "not_required";
    } else if (!ev.last_reconcile) {
        rec.measured = "no reconcile recorded";
    } else {
        const auto& r = *ev.last_reconcile;
        const double age = static_cast<double>(ev.now_ms - r.finished_ms);
        rec.measured = fmt::format("{}, {} drifted of {} users, {} unrepresentable, {} ago",
                                   r.clean ? "clean" : "drift", r.drifted_users, r.users,
                                   r.unrepresentable, hours(age));
        rec.pass = r.clean && age <= static_cast<double>(cfg.reconcile_max_age_hours) * 3'600'000.0;
    }
    return rec;
}

}  // namespace

verdict evaluate(const criteria& cfg, const evidence& ev) {
    verdict out;
    auto add = [&out](criterion c) {
        if (c.status.empty()) c.status = c.pass ? "pass" : "fail";
        out.criteria.push_back(std::move(c));
    };
    add(shadow_held_criterion(cfg, ev));
    const counts none;
    for (const auto& name : gated_endpoints(cfg)) {
        const auto it = ev.endpoints.find(name);
        const counts& n = it == ev.endpoints.end() ? none : it->second;
        add(coverage_criterion(cfg, name, n));
        add(rate_criterion(cfg, name, n));
    }
    add(mirror_lag_criterion(cfg, ev));
    add(parked_criterion(cfg, ev));
    add(reconcile_criterion(cfg, ev));
    out.go = std::all_of(out.criteria.begin(), out.criteria.end(),
                         [](const criterion& c) { return c.pass; });
    return out;
}

}  // namespace sg::comparator::gate
