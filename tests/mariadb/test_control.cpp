// tests/mariadb/test_control: the control tables on a real MariaDB: the first plan written once
// under a race, compare-and-set that refuses a stale version and lets exactly one of many racing
// writers win each version, the history recorded with it, and the replicas' rows.
#include "adapters/dolt/control.hpp"
#include "adapters/dolt/schema.hpp"
#include "test_support.hpp"

#include <atomic>
#include <thread>

using namespace sg::dolt;
using sg::dolt::testing::scratch_db;

namespace {

connection migrated(const scratch_db& db) {
    connection conn = db.connect();
    REQUIRE(migrate(conn));
    return conn;
}

}  // namespace

TEST_CASE("the first plan is written once, whoever races for it", "[control]") {
    scratch_db db;
    connection conn = migrated(db);
    auto none = read_plan(conn);
    REQUIRE(none);
    CHECK_FALSE(none->has_value());

    std::vector<std::thread> racers;
    std::atomic<int> failures{0};
    std::vector<std::string> seen(4);
    for (int i = 0; i < 4; ++i) {
        racers.emplace_back([&, i] {
            connection c = db.connect();
            auto r = init_plan(c, "{\"default\": \"off\", \"n\": " + std::to_string(i) + "}",
                               "replica " + std::to_string(i));
            if (!r) {
                ++failures;
                return;
            }
            seen[static_cast<std::size_t>(i)] = r->body;
        });
    }
    for (auto& t : racers) t.join();
    CHECK(failures == 0);
    // Every racer reads back the one plan that won.
    for (const auto& s : seen) CHECK(s == seen[0]);
    auto stored = read_plan(conn);
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    CHECK((*stored)->version == 1);
    CHECK((*stored)->op_token.size() == 36);
    CHECK((*stored)->body == seen[0]);
}

TEST_CASE("compare-and-set: a stale version changes nothing, history goes with the change",
          "[control]") {
    scratch_db db;
    connection conn = migrated(db);
    auto first = init_plan(conn, "{\"default\": \"off\"}", "test");
    REQUIRE(first);

    stage_change_row change;
    change.cohort = "default";
    change.from_stage = "off";
    change.to_stage = "dualwrite";
    change.who = "alice";
    change.why = "start mirroring";
    change.gate_verdict = "{\"verdict\": \"GO\"}";
    change.tag = "shadowgate/dualwrite/default/20261208T013000Z";
    auto next = compare_and_set_plan(conn, 1, "{\"default\": \"dualwrite\"}", "alice",
                                     std::span(&change, 1));
    REQUIRE(next);
    REQUIRE(next->has_value());
    CHECK((*next)->version == 2);
    CHECK((*next)->op_token != first->op_token);
    CHECK((*next)->updated_by == "alice");

    // Someone who still believes version 1 is current loses, and writes no history.
    auto stale =
        compare_and_set_plan(conn, 1, "{\"default\": \"off\"}", "bob", std::span(&change, 1));
    REQUIRE(stale);
    CHECK_FALSE(stale->has_value());
    auto now = read_plan(conn);
    REQUIRE(now);
    CHECK((*now)->body == "{\"default\": \"dualwrite\"}");

    auto history = read_history(conn, 10);
    REQUIRE(history);
    REQUIRE(history->size() == 1);
    const auto& h = history->front();
    CHECK(h.plan_version == 2);
    CHECK(h.event == "stage");
    CHECK(h.cohort == "default");
    CHECK(h.from_stage == "off");
    CHECK(h.to_stage == "dualwrite");
    CHECK_FALSE(h.forced);
    CHECK(h.who == "alice");
    CHECK(h.why == "start mirroring");
    CHECK(h.gate_verdict == "{\"verdict\": \"GO\"}");
    CHECK(h.tag == change.tag);
    CHECK(h.changed_at.size() >= 19);
}

TEST_CASE("of many writers racing from one version, exactly one wins it", "[control]") {
    scratch_db db;
    connection conn = migrated(db);
    REQUIRE(init_plan(conn, "{\"default\": \"off\"}", "test"));
    constexpr int writers = 6;
    constexpr int rounds = 5;
    std::atomic<int> wins{0};
    std::atomic<int> errors{0};
    for (int round = 0; round < rounds; ++round) {
        const std::uint64_t from = 1 + static_cast<std::uint64_t>(round);
        std::atomic<int> round_wins{0};
        std::vector<std::thread> ts;
        for (int w = 0; w < writers; ++w) {
            ts.emplace_back([&, w] {
                connection c = db.connect();
                // Identical bodies on purpose: on Dolt they would merge as "convergent" but for
                // the op_token; on MariaDB the row lock serializes them.
                auto r = with_retry(c, retry_policy{5, std::chrono::milliseconds(10)},
                                    [&](connection& cc) {
                                        return compare_and_set_plan(cc, from, "{\"same\": 1}",
                                                                    "w" + std::to_string(w), {});
                                    });
                if (!r) {
                    ++errors;
                } else if (r->has_value()) {
                    ++round_wins;
                }
            });
        }
        for (auto& t : ts) t.join();
        CHECK(round_wins == 1);
        wins += round_wins.load();
    }
    CHECK(errors == 0);
    CHECK(wins == rounds);
    auto p = read_plan(conn);
    REQUIRE(p);
    CHECK((*p)->version == 1 + rounds);
}

TEST_CASE("each replica keeps one row with the version it applies", "[control]") {
    scratch_db db;
    connection conn = migrated(db);
    REQUIRE(report_replica(conn, "r1", "boot-a", 3));
    REQUIRE(report_replica(conn, "r2", "boot-b", 2));
    REQUIRE(report_replica(conn, "r1", "boot-a", 4));
    auto rows = read_replicas(conn);
    REQUIRE(rows);
    REQUIRE(rows->size() == 2);
    CHECK((*rows)[0].replica_id == "r1");
    CHECK((*rows)[0].applied_version == 4);
    CHECK((*rows)[0].seconds_since_poll < 60);
    CHECK((*rows)[1].replica_id == "r2");
    CHECK((*rows)[1].boot_id == "boot-b");
    // A restart (new boot id) moves started_at; the same boot keeps it.
    const auto started = (*rows)[0].started_at;
    REQUIRE(report_replica(conn, "r1", "boot-a", 5));
    auto again = read_replicas(conn);
    REQUIRE(again);
    CHECK((*again)[0].started_at == started);
}
