// tests/unit/proxy/mirror/test_schedule: the mirror worker's state machine, driven by an injected
// clock: which user comes next and when the worker sleeps until, what each pass outcome does
// (done, back-off, circuit, park), and what a capture scan's findings change.
#include "proxy/mirror/schedule.hpp"

#include <catch2/catch.hpp>

namespace ml = sg::proxy::mirror_logic;
using namespace std::chrono_literals;

namespace {

ml::time_point t(int ms) { return ml::time_point{} + std::chrono::milliseconds(ms); }
const std::chrono::system_clock::time_point wall{};

ml::schedule_policy policy() {
    ml::schedule_policy p;
    p.breaker_threshold = 2;
    p.breaker_cooldown = 1000ms;
    p.retry_initial = 100ms;
    p.retry_max = 10'000ms;
    p.parked_retry = 60'000ms;
    p.lag_samples = 3;
    return p;
}

ml::pass_outcome outcome(ml::pass_result r, std::string error = "", std::string head = "",
                         std::string fingerprint = "") {
    return {r, std::move(error), std::move(head), std::move(fingerprint)};
}

}  // namespace

TEST_CASE("schedule: nothing dirty sleeps a second at most; the oldest user goes first",
          "[mirror][schedule]") {
    ml::schedule s(policy());
    auto idle = s.next(t(0), std::nullopt);
    CHECK_FALSE(idle.user);
    CHECK(idle.wake_at == t(1000));
    // the interval commit policy wakes it sooner
    CHECK(s.next(t(0), t(300)).wake_at == t(300));

    s.dirty.mark("late", t(20));
    s.dirty.mark("early", t(10));
    auto first = s.next(t(30), std::nullopt);
    REQUIRE(first.user);
    CHECK(*first.user == "early");
    CHECK(first.since == t(10));
    CHECK(s.in_pass());
    CHECK_FALSE(s.idle());

    s.finish("early", first.since, outcome(ml::pass_result::applied), t(40), wall, 0.5);
    CHECK_FALSE(s.in_pass());
    REQUIRE(s.lags().size() == 1);
    CHECK(s.lags().back() == Approx(0.030));
    CHECK_FALSE(s.dirty.contains("early"));
    auto second = s.next(t(40), std::nullopt);
    REQUIRE(second.user);
    CHECK(*second.user == "late");
}

TEST_CASE("schedule: a retryable failure backs off and counts an attempt", "[mirror][schedule]") {
    ml::schedule s(policy());
    s.dirty.mark("u", t(0));
    auto step = s.next(t(0), std::nullopt);
    auto f =
        s.finish("u", step.since, outcome(ml::pass_result::retry, "deadlock"), t(5), wall, 0.5);
    CHECK(f.retry_counted);
    CHECK(f.attempt == 1);
    CHECK(f.wait == 100ms);  // jitter 0.5: the middle of 50%..150% of retry_initial
    CHECK_FALSE(f.circuit_opened);
    CHECK_FALSE(f.forget_session);
    CHECK(s.dirty.entries().at("u").last_error == "deadlock");
    // not due before its back-off ends: the worker sleeps until then
    auto waiting = s.next(t(50), std::nullopt);
    CHECK_FALSE(waiting.user);
    CHECK(waiting.wake_at == t(105));
    auto again = s.next(t(105), std::nullopt);
    REQUIRE(again.user);
    auto f2 =
        s.finish("u", again.since, outcome(ml::pass_result::retry, "deadlock"), t(110), wall, 0.5);
    CHECK(f2.attempt == 2);
    CHECK(f2.wait == 200ms);
    // success ends it, and the lag runs from the first change
    auto third = s.next(t(310), std::nullopt);
    REQUIRE(third.user);
    s.finish("u", third.since, outcome(ml::pass_result::applied), t(320), wall, 0.5);
    CHECK(s.dirty.size() == 0);
    CHECK(s.lags().back() == Approx(0.320));
}

TEST_CASE("schedule: an unreachable Dolt opens the circuit and the worker waits it out",
          "[mirror][schedule]") {
    ml::schedule s(policy());
    s.dirty.mark("u", t(0));
    auto a = s.next(t(0), std::nullopt);
    auto f1 = s.finish("u", a.since, outcome(ml::pass_result::unreachable, "gone"), t(1), wall, 0);
    CHECK(f1.retry_counted);
    CHECK(f1.reset_schema);
    CHECK_FALSE(f1.circuit_opened);                  // one failure of the two it takes
    CHECK(s.dirty.entries().at("u").attempts == 0);  // not the user's fault
    auto b = s.next(t(2), std::nullopt);             // due again at once
    REQUIRE(b.user);
    auto f2 = s.finish("u", b.since, outcome(ml::pass_result::unreachable, "gone"), t(3), wall, 0);
    CHECK(f2.circuit_opened);
    CHECK(s.circuit.current() == ml::breaker::state::open);
    // the user is due, but the circuit is open: sleep until it may half-open
    auto blocked = s.next(t(10), std::nullopt);
    CHECK_FALSE(blocked.user);
    CHECK(blocked.wake_at == t(1003));
    auto probe = s.next(t(1003), std::nullopt);
    REQUIRE(probe.user);
    s.finish("u", probe.since, outcome(ml::pass_result::applied), t(1004), wall, 0);
    CHECK(s.circuit.current() == ml::breaker::state::closed);
    CHECK(s.dirty.size() == 0);
}

TEST_CASE("schedule: a permanent failure parks the user with the state that failed",
          "[mirror][schedule]") {
    ml::schedule s(policy());
    s.dirty.mark("u", t(0));
    auto a = s.next(t(0), std::nullopt);
    auto f = s.finish("u", a.since, outcome(ml::pass_result::parked, "bad yaml", "h1", "f1"), t(5),
                      wall, 0);
    CHECK(f.forget_session);
    CHECK(f.reset_schema);
    CHECK_FALSE(f.retry_counted);
    CHECK(s.dirty.size() == 0);
    REQUIRE(s.dirty.is_parked("u"));
    CHECK(s.dirty.parked().at("u").head == "h1");
    CHECK(s.dirty.parked().at("u").error == "bad yaml");
    CHECK(s.lags().empty());
}

TEST_CASE("schedule: lag samples are bounded", "[mirror][schedule]") {
    ml::schedule s(policy());  // keeps 3
    for (int i = 0; i < 5; ++i) {
        s.dirty.mark("u", t(i * 100));
        auto st = s.next(t(i * 100), std::nullopt);
        REQUIRE(st.user);
        s.finish("u", st.since, outcome(ml::pass_result::unchanged), t(i * 100 + i), wall, 0);
    }
    REQUIRE(s.lags().size() == 3);
    CHECK(s.lags().front() == Approx(0.002));
    CHECK(s.lags().back() == Approx(0.004));
}

TEST_CASE("schedule: a scan marks what changed, releases parked users that settled or went",
          "[mirror][schedule]") {
    ml::schedule s(policy());
    CHECK_FALSE(s.idle());  // not scanned yet
    const std::vector<std::string> listed{"a", "b", "c", "p1", "p2"};
    // parked: p1 (still differs, same state), p2 (repaired: matches again), p3 (deleted)
    for (const char* u : {"p1", "p2", "p3"}) {
        s.dirty.mark(u, t(0));
        auto st = s.next(t(0), std::nullopt);
        s.finish(u, st.since, outcome(ml::pass_result::parked, "bad", "h", "f"), t(0), wall, 0);
    }
    const std::vector<ml::observed> changed{{"a", "ha", "fa"}, {"b", "hb", "fb"}, {"p1", "h", "f"}};
    auto e = s.scanned(listed, changed, t(10));
    CHECK(e.found == 2);  // a and b; p1 stays parked, its storage did not move
    CHECK(e.gone == std::vector<std::string>{"p3"});
    CHECK(e.parked_retries == 0);
    CHECK(e.wake_worker());
    CHECK(s.dirty.is_parked("p1"));
    CHECK_FALSE(s.dirty.is_parked("p2"));
    CHECK_FALSE(s.dirty.is_parked("p3"));
    CHECK(s.scanned_once());

    // p1's storage moves on: the next scan unparks it
    const std::vector<ml::observed> moved{{"p1", "h2", "f"}};
    auto e2 = s.scanned(listed, moved, t(20));
    CHECK(e2.found == 1);
    CHECK_FALSE(s.dirty.is_parked("p1"));
    CHECK(s.dirty.contains("p1"));
}

TEST_CASE("schedule: a parked user is retried after parked_retry whatever the scan sees",
          "[mirror][schedule]") {
    ml::schedule s(policy());
    const std::vector<std::string> listed{"p"};
    s.dirty.mark("p", t(0));
    auto st = s.next(t(0), std::nullopt);
    s.finish("p", st.since, outcome(ml::pass_result::parked, "bad", "h", "f"), t(0), wall, 0);
    const std::vector<ml::observed> same{{"p", "h", "f"}};
    auto early = s.scanned(listed, same, t(60'000));  // older than, not as old as
    CHECK(early.parked_retries == 0);
    CHECK_FALSE(early.wake_worker());
    CHECK(s.dirty.is_parked("p"));
    auto due = s.scanned(listed, same, t(60'001));
    CHECK(due.parked_retries == 1);
    CHECK(due.wake_worker());
    CHECK(s.dirty.contains("p"));
    CHECK_FALSE(s.dirty.is_parked("p"));
}

TEST_CASE("schedule: idle once scanned, nothing dirty and no pass running", "[mirror][schedule]") {
    ml::schedule s(policy());
    const std::vector<std::string> none;
    s.scanned(none, {}, t(0));
    CHECK(s.idle());
    s.dirty.mark("u", t(1));
    CHECK_FALSE(s.idle());
    auto st = s.next(t(1), std::nullopt);
    CHECK_FALSE(s.idle());
    s.finish("u", st.since, outcome(ml::pass_result::applied), t(2), wall, 0);
    CHECK(s.idle());
}
