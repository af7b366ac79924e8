// tests/unit/proxy/shadow/test_shadow_logic: the shadow comparer's pure decisions: per-endpoint
// rules, sampling, the bounded path tally, the v2 mapping, the comparisons budget and the CPU
// reading.
#include <catch2/catch.hpp>

#include "proxy/shadow/shadow_logic.hpp"

#include <chrono>

namespace sl = sg::proxy::shadow_logic;
using sg::v1::endpoint;

TEST_CASE("shadow rules: v1's keys, then the config's", "[shadow]") {
    sg::config::shadow_config cfg;
    auto r = sl::rules_for(cfg, endpoint::list_blocks, 0);
    REQUIRE(r.body.keyed.size() == 1);
    CHECK(r.body.keyed[0].field == "label");
    CHECK(sl::rules_for(cfg, endpoint::list_diffs, 0).body.keyed[0].field == "id");
    CHECK(sl::rules_for(cfg, endpoint::get_block, 0).body.keyed.empty());

    cfg.endpoints["list_blocks"].array_keys = {{"", "name"}};
    cfg.endpoints["list_blocks"].ignore = {"/*/pending_diffs"};
    cfg.endpoints["list_blocks"].status_only = true;
    r = sl::rules_for(cfg, endpoint::list_blocks, 60);
    REQUIRE(r.body.keyed.size() == 1);
    CHECK(r.body.keyed[0].field == "name");  // replaces the built-in key of that array
    CHECK(r.body.ignore.size() == 1);
    CHECK(r.body.status_only);
}

TEST_CASE("shadow sampling: per endpoint rates and always-compared users", "[shadow]") {
    sg::config::shadow_config cfg;
    cfg.sample_rate = 0.5;
    cfg.endpoints["get_block"].sample_rate = 0.0;
    cfg.always_users = {"debug-me"};
    const sl::sampler s(cfg);
    CHECK(s.take(endpoint::list_blocks, "u", 0.49));
    CHECK_FALSE(s.take(endpoint::list_blocks, "u", 0.5));
    CHECK_FALSE(s.take(endpoint::get_block, "u", 0.0));
    CHECK(s.take(endpoint::get_block, "debug-me", 0.99));
    CHECK_FALSE(s.take(endpoint::put_block, "debug-me", 0.0));  // writes are never compared
    CHECK(s.rate(endpoint::get_block) == 0.0);
}

TEST_CASE("shadow path tally: bounded per endpoint, most frequent first", "[shadow]") {
    sl::path_tally t(2);
    t.add(endpoint::get_block, "/content");
    t.add(endpoint::get_block, "/body");
    t.add(endpoint::get_block, "/body");
    t.add(endpoint::get_block, "/metadata/x");  // a third path: counted as (other)
    t.add(endpoint::list_blocks, "/*/label");
    const auto rows = t.rows();
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].path == "/*/label");  // list_blocks comes first in endpoint order
    CHECK(rows[1].path == "/body");
    CHECK(rows[1].count == 2);
    CHECK((rows[2].path == "(other)" || rows[3].path == "(other)"));
}

TEST_CASE("shadow v2 mapping: steps per endpoint, bodies in v1's shape", "[shadow]") {
    sg::config::shadow_config cfg;
    cfg.v2_http.endpoints["get_block"] = {{false, "/block/name", "/label"}, {true, "/block", ""}};
    const auto steps = sl::mapping_for(cfg, endpoint::get_block);
    REQUIRE(steps.size() == 2);
    CHECK(sl::mapping_for(cfg, endpoint::list_blocks).empty());
    CHECK(sl::map_body(R"({"block": {"name": "s"}, "x": 1})", steps) == R"({"label":"s","x":1})");
    CHECK(sl::map_body("not json", steps) == "not json");
    CHECK(sl::map_body(R"({"a" : 1})", {}) == R"({"a" : 1})");  // no steps: untouched
}

TEST_CASE("shadow budget: a token bucket of one second's worth", "[shadow]") {
    using namespace std::chrono_literals;
    const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
    sl::token_bucket unlimited(0);
    for (int i = 0; i < 1000; ++i) REQUIRE(unlimited.take(t0));

    sl::token_bucket b(4);
    int taken = 0;
    for (int i = 0; i < 10; ++i) taken += b.take(t0) ? 1 : 0;
    CHECK(taken == 4);  // the burst
    CHECK_FALSE(b.take(t0 + 100ms));
    CHECK(b.take(t0 + 250ms));  // 4/s: one more after a quarter second
    CHECK_FALSE(b.take(t0 + 260ms));
    taken = 0;
    for (int i = 0; i < 10; ++i) taken += b.take(t0 + 60s) ? 1 : 0;
    CHECK(taken == 4);  // a long pause refills at most one second's worth

    sl::token_bucket slow(0.5);  // below 1/s: a burst of one
    CHECK(slow.take(t0));
    CHECK_FALSE(slow.take(t0 + 1s));
    CHECK(slow.take(t0 + 2s));
}

TEST_CASE("shadow CPU reading: /proc/stat's cpu line and the idle share", "[shadow]") {
    const auto a = sl::parse_proc_stat("cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4\n");
    REQUIRE(a);
    CHECK(a->idle == 840);
    CHECK(a->total == 1000);  // guest times are already in user time
    const auto b = sl::parse_proc_stat("cpu  200 5 100 850 40 3 2 0 9 0");
    REQUIRE(b);
    CHECK(sl::idle_share(*a, *b) == Approx(50.0 / 200.0));
    CHECK(sl::idle_share(*a, *a) == 1.0);                     // no time passed
    CHECK(sl::parse_proc_stat("cpu  1 2 3 4")->total == 10);  // old kernels: four fields
    CHECK_FALSE(sl::parse_proc_stat("cpu0 1 2 3 4 5"));
    CHECK_FALSE(sl::parse_proc_stat("cpu  1 2 x"));
    CHECK_FALSE(sl::parse_proc_stat("cpu  1 2"));
    CHECK_FALSE(sl::parse_proc_stat(""));
}

TEST_CASE("shadow CPU reading: a thread's run time, run-queue wait and slices", "[shadow]") {
    const auto t = sl::parse_schedstat("259848 1200 7\n");
    REQUIRE(t);
    CHECK(t->run == 259848u);
    CHECK(t->delay == 1200u);
    CHECK(t->slices == 7u);
    CHECK(sl::parse_schedstat("18446744073709551615 5 9")->run == 18446744073709551615u);
    CHECK_FALSE(sl::parse_schedstat("259848 1200"));
    CHECK_FALSE(sl::parse_schedstat("a b c"));
    CHECK_FALSE(sl::parse_schedstat(""));
}

TEST_CASE("shadow CPU reading: the wait per timeslice between two readings", "[shadow]") {
    const sl::sched_times a{1000, 50'000, 10};
    CHECK(sl::wait_per_run_us(a, {9000, 350'000, 110}) == Approx(3.0));  // 300 µs over 100 runs
    CHECK(sl::wait_per_run_us(a, {9000, 50'000, 20}) == 0.0);            // ran without waiting
    CHECK(sl::wait_per_run_us(a, a) == 0.0);                             // did not run
    CHECK(sl::wait_per_run_us(a, {0, 0, 5}) == 0.0);                     // other threads
    CHECK(sl::wait_per_run_us(a, {9000, 40'000, 20}) == 0.0);
}
