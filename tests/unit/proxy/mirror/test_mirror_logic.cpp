// tests/unit/proxy/mirror/test_mirror_logic: the mirror's pure decisions: triggers from v1 answers,
// back-off, the circuit breaker, the dirty set, and which commits are new since a watermark.
#include "proxy/mirror/mirror_logic.hpp"

#include <catch2/catch.hpp>

#include <set>

namespace ml = sg::proxy::mirror_logic;
using namespace std::chrono_literals;
using sg::v1::classify;

namespace {

const std::string sha_a(40, 'a');

ml::time_point t(int ms) { return ml::time_point{} + std::chrono::milliseconds(ms); }

sg::v1::commit make_commit(std::string sha, std::vector<std::string> parents, std::int64_t seq) {
    sg::v1::commit c;
    c.sha = std::move(sha);
    c.parents = std::move(parents);
    c.seq = seq;
    return c;
}

std::vector<std::string> shas(const ml::history_plan& p) {
    std::vector<std::string> out;
    for (const auto* c : p.new_commits) out.push_back(c->sha);
    return out;
}

}  // namespace

TEST_CASE("trigger_of: 2xx answers to write endpoints name a user and a commit", "[mirror]") {
    const std::string put_body = R"({"commit_sha":")" + sha_a + R"(","label":"student"})";
    auto put = ml::trigger_of(classify("PUT", "/users/u1/blocks/student"), 200, put_body);
    REQUIRE(put);
    CHECK(put->user_id == "u1");
    CHECK(put->commit_sha == sha_a);

    auto enc = ml::trigger_of(classify("PUT", "/users/caf%C3%A9/blocks/student"), 200, put_body);
    REQUIRE(enc);
    CHECK(enc->user_id == "caf\xc3\xa9");  // percent-decoded, as v1 sees it

    auto init = ml::trigger_of(classify("POST", "/users/init"), 200,
                               R"({"user_id":"new-user","created":true,"blocks_initialized":[]})");
    REQUIRE(init);
    CHECK(init->user_id == "new-user");
    CHECK_FALSE(init->commit_sha);

    auto reject = ml::trigger_of(classify("POST", "/users/u2/blocks/s/diffs/d1/reject"), 200,
                                 R"({"status":"rejected","diff_id":"d1"})");
    REQUIRE(reject);
    CHECK(reject->user_id == "u2");
    CHECK_FALSE(reject->commit_sha);

    auto approve = ml::trigger_of(classify("POST", "/users/u3/blocks/s/diffs/d1/approve"), 201,
                                  R"({"diff_id":"d1","commit_sha":"not-hex"})");
    REQUIRE(approve);
    CHECK_FALSE(approve->commit_sha);  // only a full hex sha is taken

    auto restore = ml::trigger_of(classify("POST", "/users/u4/blocks/s/restore"), 200, "garbage");
    REQUIRE(restore);  // an unreadable body still names the user from the path
    CHECK(restore->user_id == "u4");

    // Not triggers.
    CHECK_FALSE(ml::trigger_of(classify("GET", "/users/u1/blocks/student"), 200, "{}"));
    CHECK_FALSE(ml::trigger_of(classify("PUT", "/users/u1/blocks/student"), 404, put_body));
    CHECK_FALSE(ml::trigger_of(classify("PUT", "/users/u1/blocks/student"), 422, "{}"));
    CHECK_FALSE(ml::trigger_of(classify("PUT", "/users/u1/blocks/student"), 500, put_body));
    CHECK_FALSE(ml::trigger_of(classify("PUT", "/users/../blocks/student"), 200, put_body));
    CHECK_FALSE(ml::trigger_of(classify("POST", "/users/init"), 200, R"({"created":true})"));
    CHECK_FALSE(ml::trigger_of(classify("POST", "/users/init"), 200, R"({"user_id":"../etc"})"));
    CHECK_FALSE(ml::trigger_of(classify("POST", "/users/init"), 200, R"({"user_id":42})"));
    CHECK_FALSE(ml::trigger_of(classify("DELETE", "/users/u1/blocks/student"), 200, "{}"));
}

TEST_CASE("backoff doubles, caps and jitters", "[mirror]") {
    CHECK(ml::backoff(1, 250ms, 30s, 0.5) == 250ms);
    CHECK(ml::backoff(2, 250ms, 30s, 0.5) == 500ms);
    CHECK(ml::backoff(5, 250ms, 30s, 0.5) == 4000ms);
    CHECK(ml::backoff(30, 250ms, 30s, 0.5) == 30s);
    CHECK(ml::backoff(1000, 250ms, 30s, 0.99) == 30s);  // never above the cap
    CHECK(ml::backoff(1, 250ms, 30s, 0.0) == 125ms);    // 50%
    CHECK(ml::backoff(1, 250ms, 30s, 0.999) == 374ms);  // just under 150%
    CHECK(ml::backoff(0, 250ms, 30s, 0.5) == 250ms);
    CHECK(ml::backoff(1, 1ms, 30s, 0.0) == 1ms);  // at least 1 ms
    std::set<std::int64_t> spread;
    for (int i = 0; i < 10; ++i) spread.insert(ml::backoff(3, 250ms, 30s, i / 10.0).count());
    CHECK(spread.size() == 10);
}

TEST_CASE("the circuit breaker opens, half-opens and backs off", "[mirror]") {
    ml::breaker b(3, 1000ms, 4000ms);
    CHECK(b.allow(t(0)));
    b.failure(t(0));
    b.failure(t(10));
    CHECK(b.current() == ml::breaker::state::closed);
    CHECK(b.allow(t(20)));
    b.failure(t(20));  // third in a row
    CHECK(b.current() == ml::breaker::state::open);
    CHECK(b.opens() == 1);
    CHECK_FALSE(b.allow(t(500)));
    CHECK_FALSE(b.allow(t(1019)));
    CHECK(b.allow(t(1020)));  // cooldown over: one probe
    CHECK(b.current() == ml::breaker::state::half_open);
    b.failure(t(1100));  // the probe failed: open twice as long
    CHECK(b.current() == ml::breaker::state::open);
    CHECK(b.open_until() == t(3100));
    CHECK_FALSE(b.allow(t(3000)));
    CHECK(b.allow(t(3100)));
    b.failure(t(3100));
    CHECK(b.open_until() == t(7100));  // 4 s: the cap
    CHECK(b.allow(t(7100)));
    b.failure(t(7100));
    CHECK(b.open_until() == t(11100));  // still capped
    CHECK(b.allow(t(11100)));
    b.success();
    CHECK(b.current() == ml::breaker::state::closed);
    CHECK(b.consecutive_failures() == 0);
    // Reset: three failures again to open, for the initial cooldown.
    b.failure(t(12000));
    b.failure(t(12000));
    CHECK(b.current() == ml::breaker::state::closed);
    b.failure(t(12000));
    CHECK(b.open_until() == t(13000));
    // A success between failures resets the count.
    ml::breaker c(2, 100ms, 100ms);
    c.failure(t(0));
    c.success();
    c.failure(t(1));
    CHECK(c.current() == ml::breaker::state::closed);
}

TEST_CASE("the dirty set coalesces, orders, retries and parks", "[mirror]") {
    ml::dirty_set d;
    CHECK(d.mark("b", t(10), sha_a));
    CHECK(d.mark("a", t(20)));
    CHECK_FALSE(d.mark("b", t(30)));  // coalesced: still one entry, oldest time kept
    CHECK(d.size() == 2);
    CHECK(d.entries().at("b").since == t(10));
    CHECK(d.entries().at("b").commit_sha == sha_a);
    CHECK(d.oldest_age(t(110)) == std::chrono::duration<double>(0.1));

    auto first = d.take(t(40));
    REQUIRE(first);
    CHECK(*first == "b");  // oldest first, not by name
    auto second = d.take(t(40));
    REQUIRE(second);
    CHECK(*second == "a");
    CHECK_FALSE(d.take(t(40)));  // both in flight
    CHECK_FALSE(d.next_due());

    SECTION("done removes; marked while in flight runs again") {
        d.mark("b", t(50));  // a write while b's pass runs
        d.done("b");
        REQUIRE(d.contains("b"));
        CHECK(d.entries().at("b").since == t(50));
        CHECK_FALSE(d.entries().at("b").in_flight);
        d.done("a");
        CHECK_FALSE(d.contains("a"));
        CHECK(d.take(t(60)) == std::optional<std::string>("b"));
        d.done("b");
        CHECK(d.size() == 0);
        CHECK(d.oldest_age(t(1000)) == std::chrono::duration<double>(0));
    }
    SECTION("retry waits, counting attempts only when asked") {
        d.retry("b", t(50), 200ms, "deadlock");
        d.retry("a", t(50), 0ms, "unreachable", /*count_attempt=*/false);
        CHECK(d.entries().at("b").attempts == 1);
        CHECK(d.entries().at("b").last_error == "deadlock");
        CHECK(d.entries().at("a").attempts == 0);
        CHECK(d.next_due() == t(50));
        CHECK(d.take(t(60)) == std::optional<std::string>("a"));
        CHECK_FALSE(d.take(t(249)));
        CHECK(d.next_due() == t(250));
        CHECK(d.take(t(250)) == std::optional<std::string>("b"));
    }
    SECTION("park, then unpark by a change, a trigger or an operator") {
        d.park("b", ml::parked_entry{"data too long", {}, "h1", "f1"});
        CHECK_FALSE(d.contains("b"));
        CHECK(d.is_parked("b"));
        CHECK(d.parked_count() == 1);
        CHECK_FALSE(d.parked_and_changed("b", "h1", "f1"));
        CHECK(d.parked_and_changed("b", "h2", "f1"));
        CHECK(d.parked_and_changed("b", "h1", "f2"));
        CHECK_FALSE(d.parked_and_changed("a", "x", "y"));  // not parked
        CHECK(d.unpark("nobody", t(70)) == 0);
        CHECK(d.unpark("", t(70)) == 1);
        CHECK(d.contains("b"));
        CHECK_FALSE(d.is_parked("b"));
        d.park("b", ml::parked_entry{"again", {}, "h1", "f1"});
        d.mark("b", t(80));  // a new write through the proxy
        CHECK(d.contains("b"));
        CHECK_FALSE(d.is_parked("b"));
        d.park("b", ml::parked_entry{"third", {}, "h1", "f1", t(100)});
        CHECK(d.parked_before(t(100)).empty());
        CHECK(d.parked_before(t(101)) == std::vector<std::string>{"b"});
        CHECK(d.forget_parked("b"));  // storage back in step with Dolt
        CHECK_FALSE(d.is_parked("b"));
        CHECK_FALSE(d.contains("b"));
        CHECK_FALSE(d.forget_parked("b"));
    }
}

TEST_CASE("plan_history: new commits since the watermark, parents first", "[mirror]") {
    // Linear: c0 <- c1 <- c2 <- c3 (HEAD); rev-list seq 0 = HEAD.
    sg::v1::user_state s;
    s.commits = {make_commit("c3", {"c2"}, 0), make_commit("c2", {"c1"}, 1),
                 make_commit("c1", {"c0"}, 2), make_commit("c0", {}, 3)};
    s.head = "c3";
    CHECK(shas(ml::plan_history(s, "c1")) == std::vector<std::string>{"c2", "c3"});
    CHECK(shas(ml::plan_history(s, "c3")).empty());
    CHECK(shas(ml::plan_history(s, "")) == std::vector<std::string>{"c0", "c1", "c2", "c3"});
    CHECK_FALSE(ml::plan_history(s, "c1").rewritten);

    auto gone = ml::plan_history(s, "zz");  // reset/amend: the watermark is not in history
    CHECK(gone.rewritten);
    CHECK(shas(gone) == std::vector<std::string>{"c0", "c1", "c2", "c3"});

    // A merge: m (HEAD) = merge of a2 (first parent) and b1; b1's side branched at c0. With the
    // watermark at a1, new are a2, b1 and m, parents before children.
    sg::v1::user_state g;
    g.commits = {make_commit("m", {"a2", "b1"}, 0), make_commit("b1", {"c0"}, 1),
                 make_commit("a2", {"a1"}, 2), make_commit("a1", {"c0"}, 3),
                 make_commit("c0", {}, 4)};
    const auto merged = ml::plan_history(g, "a1");
    CHECK_FALSE(merged.rewritten);
    const auto order = shas(merged);
    REQUIRE(order.size() == 3);
    CHECK(order.back() == "m");
    CHECK(std::set<std::string>(order.begin(), order.end()) ==
          std::set<std::string>{"a2", "b1", "m"});
    // The watermark on the side branch: its ancestors (c0) are known, a1 and a2 are new.
    CHECK(shas(ml::plan_history(g, "b1")) == std::vector<std::string>{"a1", "a2", "m"});
}

TEST_CASE("recent_cache keeps the most recently used values within its byte budget", "[mirror]") {
    ml::recent_cache<std::string> c(100);
    c.put("a", "A", 40);
    c.put("b", "B", 40);
    REQUIRE(c.find("a") != nullptr);  // a is now more recent than b
    CHECK(*c.find("a") == "A");
    c.put("c", "C", 40);  // 120 > 100: the least recently used (b) goes
    CHECK(c.find("b") == nullptr);
    CHECK(c.find("a") != nullptr);
    CHECK(c.find("c") != nullptr);
    CHECK(c.size() == 2);
    CHECK(c.bytes() == 80);

    c.put("a", "A2", 10);  // replaced, not added
    CHECK(*c.find("a") == "A2");
    CHECK(c.bytes() == 50);
    c.put("huge", "H", 101);  // over the whole budget: not kept, nothing else dropped
    CHECK(c.find("huge") == nullptr);
    CHECK(c.size() == 2);
    c.put("d", "D", 100);  // exactly the budget: everything else goes
    CHECK(c.size() == 1);
    CHECK(c.bytes() == 100);
    CHECK(c.erase("d"));
    CHECK_FALSE(c.erase("d"));
    CHECK(c.bytes() == 0);

    ml::recent_cache<int> none(0);  // a zero budget keeps nothing
    none.put("x", 1, 1);
    CHECK(none.find("x") == nullptr);
}
