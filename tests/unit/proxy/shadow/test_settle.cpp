// tests/unit/proxy/shadow/test_settle: settle-and-reread as a state machine, driven by an
// injected clock: the first look, asking the mirror and polling, the re-read judged only when
// neither side moved, the back-off when they did, the held-back re-read, and the deadline.
#include "proxy/shadow/settle.hpp"

#include <catch2/catch.hpp>

namespace sl = sg::proxy::shadow_logic;
using namespace std::chrono_literals;
using act = sl::settle_action;

namespace {

sl::settle_clock::time_point t(int ms) {
    return sl::settle_clock::time_point{} + std::chrono::milliseconds(ms);
}

}  // namespace

TEST_CASE("settle: in step means equal tokens that could be read", "[shadow][settle]") {
    CHECK(sl::in_step("h|f", "h|f"));
    CHECK_FALSE(sl::in_step("h|f", "h0|f"));
    CHECK_FALSE(sl::in_step("unreadable", "unreadable"));
    CHECK(sl::in_step("absent", "absent"));  // a user neither side has
}

TEST_CASE("settle: Dolt behind -> ask the mirror, poll, look, then re-read", "[shadow][settle]") {
    auto s = sl::first_look(t(0), 1000ms, "h2|f", "h1|f");
    CHECK_FALSE(s.in_step);
    CHECK(s.until == t(1000));
    CHECK(s.attempts == 1);
    REQUIRE(sl::next_action(s, t(0)) == act::ask_mirror);
    sl::asked_mirror(s, t(0));
    CHECK(s.due == t(20));  // one poll interval
    REQUIRE(sl::next_action(s, t(20)) == act::look);
    sl::looked(s, "h2|f", "h1|f");  // not yet
    CHECK_FALSE(s.in_step);
    REQUIRE(sl::next_action(s, t(20)) == act::ask_mirror);  // asks again, polls again
    sl::asked_mirror(s, t(20));
    REQUIRE(sl::next_action(s, t(40)) == act::look);
    sl::looked(s, "h2|f", "h2|f");  // the mirror caught up
    CHECK(s.in_step);
    REQUIRE(sl::next_action(s, t(40)) == act::reread);
    sl::reread_started(s);
    CHECK(s.attempts == 2);
    CHECK(sl::after_reread(s, "h2|f", "h2|f", t(45)) == sl::reread_verdict::compare);
}

TEST_CASE("settle: in step at the first look goes straight to the re-read", "[shadow][settle]") {
    // (the answers differed although Dolt was in step: v1 may have served an older state)
    auto s = sl::first_look(t(0), 1000ms, "h|f", "h|f");
    CHECK(s.in_step);
    CHECK(sl::next_action(s, t(0)) == act::reread);
}

TEST_CASE("settle: storage moving around the re-read backs off, doubling", "[shadow][settle]") {
    auto s = sl::first_look(t(0), 10'000ms, "h1|f", "h1|f");
    std::vector<std::chrono::milliseconds> waits;
    int now = 0;
    for (int i = 0; i < 6; ++i) {
        REQUIRE(sl::next_action(s, t(now)) == act::reread);
        sl::reread_started(s);
        REQUIRE(sl::after_reread(s, "h" + std::to_string(i + 2) + "|f", s.token, t(now)) ==
                sl::reread_verdict::moved);
        CHECK_FALSE(s.in_step);
        waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(s.due - t(now)));
        now += static_cast<int>(waits.back().count());
        REQUIRE(sl::next_action(s, t(now)) == act::look);  // polled: look, no new mirror ask
        sl::looked(s, "h" + std::to_string(i + 2) + "|f", "h" + std::to_string(i + 2) + "|f");
    }
    CHECK(waits == std::vector<std::chrono::milliseconds>{40ms, 80ms, 160ms, 320ms, 320ms, 320ms});
    CHECK(s.attempts == 7);
}

TEST_CASE("settle: Dolt moving around the re-read is not compared either", "[shadow][settle]") {
    auto s = sl::first_look(t(0), 1000ms, "h|f", "h|f");
    sl::reread_started(s);
    CHECK(sl::after_reread(s, "h|f", "h2|f", t(5)) == sl::reread_verdict::moved);
    CHECK(s.due == t(45));
}

TEST_CASE("settle: a held-back re-read polls again", "[shadow][settle]") {
    auto s = sl::first_look(t(0), 1000ms, "h|f", "h|f");
    sl::reread_held_back(s, t(3));
    CHECK_FALSE(s.in_step);
    CHECK(s.polled);
    CHECK(s.due == t(23));
    CHECK(s.attempts == 1);  // nothing was read
    CHECK(sl::next_action(s, t(23)) == act::look);
}

TEST_CASE("settle: the deadline gives up whatever the state", "[shadow][settle]") {
    auto behind = sl::first_look(t(0), 100ms, "h2|f", "h1|f");
    CHECK(sl::next_action(behind, t(99)) == act::ask_mirror);
    CHECK(sl::next_action(behind, t(100)) == act::give_up);
    auto inside = sl::first_look(t(0), 100ms, "h|f", "h|f");
    CHECK(sl::next_action(inside, t(100)) == act::give_up);
    // an unreadable storage never counts as in step: it waits, then gives up
    auto unreadable = sl::first_look(t(0), 100ms, "unreadable", "unreadable");
    CHECK(sl::next_action(unreadable, t(0)) == act::ask_mirror);
    CHECK(sl::next_action(unreadable, t(150)) == act::give_up);
}
