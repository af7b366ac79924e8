// tests/unit/comparator/test_gate: the cutover gate's criteria, each passing and failing: the soak,
// coverage per endpoint (uncovered is not clean), the discrepancy rate judged by its confidence
// bound (the small-sample case), mirror lag, parked users and the last reconcile.
#include <catch2/catch.hpp>

#include "comparator/gate.hpp"

#include <algorithm>

namespace gl = sg::comparator::gate;

namespace {

constexpr std::int64_t hour_ms = 3'600'000;
constexpr std::int64_t now = 1'800'000'000'000;

const char* const reads[] = {"user_exists",   "list_blocks", "diff_counts", "get_block",
                             "block_history", "get_version", "list_diffs"};

gl::criteria cfg() {
    gl::criteria c;
    c.min_compared = 1000;
    c.max_discrepancy_rate = 0.001;
    c.confidence = 0.95;
    c.max_mirror_lag = std::chrono::milliseconds(5000);
    c.max_parked_users = 0;
    c.reconcile_max_age_hours = 24;
    c.min_shadow_hours = 168;
    return c;
}

// Evidence on which every criterion passes.
gl::evidence passing() {
    gl::evidence ev;
    ev.now_ms = now;
    ev.shadow_since_ms = now - 8 * 24 * hour_ms;
    for (const char* ep : reads) ev.endpoints[ep].by_result = {{"match", 20000}, {"lagging", 50}};
    ev.mirror_running = true;
    ev.mirror_lag_seconds = 0.2;
    ev.parked_users = 0;
    ev.last_reconcile = gl::reconcile_record{now - 2 * hour_ms, true, 300, 0};
    return ev;
}

const gl::criterion& find(const gl::verdict& v, const std::string& name,
                          const std::string& endpoint = "") {
    const auto it = std::find_if(v.criteria.begin(), v.criteria.end(), [&](const auto& c) {
        return c.name == name && c.endpoint == endpoint;
    });
    REQUIRE(it != v.criteria.end());
    return *it;
}

// Only `name` (of `endpoint`) fails; the verdict is NO-GO.
void only_fails(const gl::verdict& v, const std::string& name, const std::string& endpoint = "") {
    CHECK_FALSE(v.go);
    for (const auto& c : v.criteria) {
        INFO(c.name << " " << c.endpoint << ": " << c.measured << " vs " << c.threshold);
        CHECK(c.pass == !(c.name == name && c.endpoint == endpoint));
    }
}

}  // namespace

TEST_CASE("gate: GO when every criterion passes, with every criterion listed", "[gate]") {
    const auto v = gl::evaluate(cfg(), passing());
    CHECK(v.go);
    // the soak, 2 per endpoint, lag, parked, reconcile
    CHECK(v.criteria.size() == 1 + 2 * 7 + 3);
    for (const auto& c : v.criteria) {
        CHECK(c.pass);
        CHECK(c.status == "pass");
        CHECK_FALSE(c.measured.empty());
        CHECK_FALSE(c.threshold.empty());
    }
    CHECK(find(v, "discrepancy_rate", "get_block").measured.find("0/20050") == 0);
}

TEST_CASE("gate: the shadow stage must be held long enough", "[gate]") {
    auto ev = passing();
    ev.shadow_since_ms = now - 167 * hour_ms;
    only_fails(gl::evaluate(cfg(), ev), "shadow_held");
    ev.shadow_since_ms.reset();
    const auto v = gl::evaluate(cfg(), ev);
    only_fails(v, "shadow_held");
    CHECK(find(v, "shadow_held").measured == "not in the shadow stage");
}

TEST_CASE("gate: an endpoint never compared is uncovered, not clean", "[gate]") {
    auto ev = passing();
    ev.endpoints.erase("get_version");
    const auto v = gl::evaluate(cfg(), ev);
    CHECK_FALSE(v.go);
    CHECK(find(v, "coverage", "get_version").status == "uncovered");
    CHECK(find(v, "discrepancy_rate", "get_version").status == "uncovered");
    CHECK_FALSE(find(v, "discrepancy_rate", "get_version").pass);
    CHECK(find(v, "coverage", "get_block").pass);
    // Skipped and failed comparisons do not cover an endpoint.
    ev.endpoints["get_version"].by_result = {{"skipped", 50000}, {"v2_error", 10}};
    CHECK(find(gl::evaluate(cfg(), ev), "coverage", "get_version").status == "uncovered");
    // Only the configured endpoints count.
    auto c = cfg();
    c.endpoints = {"get_block", "list_blocks"};
    const auto some = gl::evaluate(c, ev);
    CHECK(some.go);
    CHECK(some.criteria.size() == 1 + 2 * 2 + 3);
}

TEST_CASE("gate: too few compared reads fail coverage", "[gate]") {
    auto c = cfg();
    c.max_discrepancy_rate = 0.01;  // 0/999 is within 1% (upper bound 0.27%)
    auto ev = passing();
    ev.endpoints["list_diffs"].by_result = {{"match", 999}};
    only_fails(gl::evaluate(c, ev), "coverage", "list_diffs");
    ev.endpoints["list_diffs"].by_result = {{"match", 1000}};
    CHECK(gl::evaluate(c, ev).go);
}

TEST_CASE("gate: the discrepancy rate is judged by its confidence bound", "[gate]") {
    auto c = cfg();
    c.min_compared = 1;
    c.max_discrepancy_rate = 0.05;
    auto ev = passing();
    // 12 clean reads are not a rate of 0: the bound is ~18%.
    ev.endpoints["get_block"].by_result = {{"match", 12}};
    auto v = gl::evaluate(c, ev);
    only_fails(v, "discrepancy_rate", "get_block");
    CHECK(find(v, "discrepancy_rate", "get_block").measured.find("0/12") == 0);
    // 12,000 clean reads are.
    ev.endpoints["get_block"].by_result = {{"match", 12000}};
    CHECK(gl::evaluate(c, ev).go);
    // The same observed rate passes or fails with the sample size: 2% of 100 vs of 10,000.
    ev.endpoints["get_block"].by_result = {{"match", 98}, {"mismatch", 2}};
    only_fails(gl::evaluate(c, ev), "discrepancy_rate", "get_block");
    ev.endpoints["get_block"].by_result = {{"match", 9800}, {"mismatch", 100}, {"lagging", 100}};
    CHECK(gl::evaluate(c, ev).go);
    // Every discrepancy class counts; lagging does not.
    ev.endpoints["get_block"].by_result = {
        {"match", 9000}, {"missing_in_v2", 300}, {"extra_in_v2", 300}, {"status_mismatch", 400}};
    only_fails(gl::evaluate(c, ev), "discrepancy_rate", "get_block");
    // The default: one discrepancy in 20,050 reads is too many for 0.1% at 95%? No: the bound
    // is ~0.026%.
    ev = passing();
    ev.endpoints["get_block"].by_result = {{"match", 20000}, {"mismatch", 1}};
    CHECK(gl::evaluate(cfg(), ev).go);
    ev.endpoints["get_block"].by_result = {{"match", 20000}, {"mismatch", 20}};
    only_fails(gl::evaluate(cfg(), ev), "discrepancy_rate", "get_block");
}

TEST_CASE("gate: Wilson bounds and normal quantiles", "[gate]") {
    CHECK(gl::normal_quantile(0.95) == Approx(1.6449).epsilon(1e-4));
    CHECK(gl::normal_quantile(0.975) == Approx(1.95996).epsilon(1e-4));
    CHECK(gl::normal_quantile(0.5) == Approx(0.0).margin(1e-9));
    CHECK(gl::wilson_upper(0, 0, 0.95) == 1.0);
    // z^2 / (n + z^2) for k = 0
    CHECK(gl::wilson_upper(0, 12, 0.95) == Approx(2.7055 / (12 + 2.7055)).epsilon(1e-3));
    CHECK(gl::wilson_upper(0, 12000, 0.95) == Approx(2.7055 / (12000 + 2.7055)).epsilon(1e-3));
    CHECK(gl::wilson_upper(50, 100, 0.95) == Approx(0.5815).epsilon(1e-3));
    CHECK(gl::wilson_upper(100, 100, 0.95) == Approx(1.0));
}

TEST_CASE("gate: the mirror keeps up and nobody is parked", "[gate]") {
    auto ev = passing();
    ev.mirror_lag_seconds = 5.5;
    only_fails(gl::evaluate(cfg(), ev), "mirror_lag");
    ev = passing();
    ev.parked_users = 1;
    only_fails(gl::evaluate(cfg(), ev), "parked_users");
    auto c = cfg();
    c.max_parked_users = 1;
    CHECK(gl::evaluate(c, ev).go);
    ev = passing();
    ev.mirror_running = false;
    const auto v = gl::evaluate(cfg(), ev);
    CHECK_FALSE(v.go);
    CHECK_FALSE(find(v, "mirror_lag").pass);
    CHECK_FALSE(find(v, "parked_users").pass);
}

TEST_CASE("gate: the last reconcile is clean and recent, unless not required", "[gate]") {
    auto ev = passing();
    ev.last_reconcile->clean = false;
    ev.last_reconcile->drifted_users = 3;
    only_fails(gl::evaluate(cfg(), ev), "reconcile");
    ev = passing();
    ev.last_reconcile->finished_ms = now - 25 * hour_ms;
    only_fails(gl::evaluate(cfg(), ev), "reconcile");
    ev.last_reconcile.reset();
    auto v = gl::evaluate(cfg(), ev);
    only_fails(v, "reconcile");
    CHECK(find(v, "reconcile").measured == "no reconcile recorded");
    auto c = cfg();
    c.reconcile_max_age_hours = 0;
    v = gl::evaluate(c, ev);
    CHECK(v.go);
    CHECK(find(v, "reconcile").status == "not_required");
}
