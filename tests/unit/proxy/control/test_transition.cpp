// tests/unit/proxy/control/test_transition: stage changes on a plan: forward one stage at a time,
// back at any time, per cohort, with the moves each change causes; and the plan's stored JSON.
#include "proxy/control/plan_json.hpp"
#include "proxy/control/transition.hpp"

#include <catch2/catch.hpp>

// REQUIRE(r) on a result prints its failure (or "ok") instead of needing operator<< for T.
namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, sg::proxy::failure>> {
    static std::string convert(const boost::system::result<T, sg::proxy::failure>& r) {
        return r ? std::string("ok") : "failure: " + r.error().what;
    }
};
}  // namespace Catch

using sg::config::stage;
using sg::control::apply_change;
using sg::control::move;
using sg::control::stage_change;
using sg::routing::plan;

namespace {

stage_change to(stage s, std::string cohort = "") {
    stage_change c;
    c.to = s;
    c.cohort = std::move(cohort);
    return c;
}

}  // namespace

TEST_CASE("the default moves forward one stage at a time and back at any time") {
    const plan off = plan::of(stage::off);
    auto r = apply_change(off, to(stage::dualwrite));
    REQUIRE(r);
    CHECK(r->next.default_stage == stage::dualwrite);
    CHECK(r->moves == std::vector<move>{{stage::off, stage::dualwrite}});
    CHECK(r->cohort == "default");

    auto skipped = apply_change(off, to(stage::shadow));
    REQUIRE_FALSE(skipped);
    CHECK(skipped.error().what ==
          "off -> shadow skips dualwrite: a cohort moves forward one stage at a time");
    // --force passes a gate, never a skipped stage.
    auto forced = to(stage::shadow);
    forced.force = true;
    forced.reason = "in a hurry";
    CHECK_FALSE(apply_change(off, forced));

    auto back = apply_change(plan::of(stage::shadow), to(stage::off));
    REQUIRE(back);
    CHECK(back->moves == std::vector<move>{{stage::shadow, stage::off}});

    auto same = apply_change(plan::of(stage::shadow), to(stage::shadow));
    REQUIRE(same);
    CHECK(same->moves.empty());
    CHECK(same->next == plan::of(stage::shadow));
}

TEST_CASE("a cohort of users or a percentage moves its users only") {
    const plan base = plan::of(stage::dualwrite);
    auto pilot = to(stage::shadow, "pilot");
    pilot.users = std::vector<std::string>{"bob", "alice", "bob"};
    auto r = apply_change(base, pilot);
    REQUIRE(r);
    REQUIRE(r->next.cohorts.size() == 1);
    CHECK(r->next.cohorts[0].users == std::vector<std::string>{"alice", "bob"});
    CHECK(r->next.default_stage == stage::dualwrite);
    CHECK(r->moves == std::vector<move>{{stage::dualwrite, stage::shadow}});
    CHECK(sg::routing::stage_of(r->next, "alice") == stage::shadow);
    CHECK(sg::routing::stage_of(r->next, "carol") == stage::dualwrite);

    // A percentage cohort goes after the users cohort, which keeps precedence.
    auto canary = to(stage::shadow, "canary");
    canary.basis_points = 1'000;
    auto r2 = apply_change(r->next, canary);
    REQUIRE(r2);
    REQUIRE(r2->next.cohorts.size() == 2);
    CHECK(r2->next.cohorts[1].name == "canary");
    // A new users cohort goes before every percentage cohort.
    auto vip = to(stage::off, "vip");
    vip.users = std::vector<std::string>{"zed"};
    auto r3 = apply_change(r2->next, vip);
    REQUIRE(r3);
    CHECK(r3->next.cohorts[1].name == "vip");
    CHECK(r3->next.cohorts[2].name == "canary");
    // Its users came from canary (shadow) or the default (dualwrite).
    CHECK(r3->moves.size() == 2);

    // Growing the percentage takes users from the default: dualwrite -> shadow, legal.
    auto grow = to(stage::shadow, "canary");
    grow.basis_points = 5'000;
    auto r4 = apply_change(r2->next, grow);
    REQUIRE(r4);
    CHECK(r4->next.cohorts[1].basis_points == 5'000);

    // Removing a cohort hands its users back to the default.
    stage_change drop = to(stage::off, "pilot");
    drop.remove = true;
    auto r5 = apply_change(r2->next, drop);
    REQUIRE(r5);
    CHECK(r5->next.cohorts.size() == 1);
    CHECK(r5->moves == std::vector<move>{{stage::shadow, stage::dualwrite}});
}

TEST_CASE("a change that would skip a stage for some users is refused") {
    plan p = plan::of(stage::off);
    auto pilot = to(stage::dualwrite, "pilot");
    pilot.users = std::vector<std::string>{"alice"};
    auto r = apply_change(p, pilot);
    REQUIRE(r);
    // pilot -> shadow is one step for pilot's users...
    REQUIRE(apply_change(r->next, to(stage::shadow, "pilot")));
    // ...but widening it to everyone would move the default's users off -> shadow.
    auto widen = to(stage::shadow, "pilot");
    widen.basis_points = 10'000;
    auto refused = apply_change(r->next, widen);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().what.find("off -> shadow skips dualwrite") != std::string::npos);
}

TEST_CASE("bad changes are refused with a reason") {
    const plan base = plan::of(stage::dualwrite);
    CHECK(apply_change(base, to(stage::shadow, "ghost")).error().what ==
          "no cohort \"ghost\": a new cohort needs users or a percentage");
    auto both = to(stage::shadow, "x");
    both.users = std::vector<std::string>{"a"};
    both.basis_points = 10;
    CHECK_FALSE(apply_change(base, both));
    auto unforced = to(stage::shadow);
    unforced.force = true;
    CHECK(apply_change(base, unforced).error().what == "a forced change needs a reason");
    auto hostile = to(stage::shadow, "x");
    hostile.users = std::vector<std::string>{"../etc"};
    auto h = apply_change(base, hostile);
    REQUIRE_FALSE(h);
    CHECK(h.error().what.find("$.cohorts[0].users[0]") != std::string::npos);
    stage_change rm = to(stage::off, "default");
    rm.remove = true;
    CHECK_FALSE(apply_change(base, rm));
}

TEST_CASE("percentages as operators type them") {
    CHECK(sg::control::parse_percent("10").value() == 1'000);
    CHECK(sg::control::parse_percent("2.5").value() == 250);
    CHECK(sg::control::parse_percent("0.01").value() == 1);
    CHECK(sg::control::parse_percent("100").value() == 10'000);
    CHECK(sg::control::parse_percent("0").value() == 0);
    CHECK_FALSE(sg::control::parse_percent("100.5"));
    CHECK_FALSE(sg::control::parse_percent("-1"));
    CHECK_FALSE(sg::control::parse_percent("1.234"));
    CHECK_FALSE(sg::control::parse_percent("ten"));
    CHECK_FALSE(sg::control::parse_percent(""));
    CHECK_FALSE(sg::control::parse_percent("nan"));
    CHECK(sg::control::percent_text(1'000) == "10");
    CHECK(sg::control::percent_text(250) == "2.5");
    CHECK(sg::control::percent_text(1) == "0.01");
    CHECK(sg::control::percent_text(1'005) == "10.05");
}

TEST_CASE("a plan survives its stored JSON, and bad JSON is named by path") {
    plan p = plan::of(stage::dualwrite);
    sg::routing::cohort a;
    a.name = "pilot";
    a.stage = stage::shadow;
    a.users = {"alice", "bob"};
    sg::routing::cohort b;
    b.name = "canary";
    b.stage = stage::off;
    b.selects = sg::routing::cohort::kind::percent;
    b.basis_points = 250;
    p.cohorts = {a, b};
    sg::routing::freeze_window f;
    f.until = sg::routing::wall_clock::time_point(std::chrono::milliseconds(1'765'180'800'123));
    f.cohorts = {"pilot"};
    f.reason = "cutover";
    p.freeze = f;
    const auto text = sg::control::to_json(p).dump();
    auto back = sg::control::plan_from_json(text);
    REQUIRE(back);
    CHECK(*back == p);

    const auto problems = [](const char* text) {
        auto r = sg::control::plan_from_json(text);
        REQUIRE_FALSE(r);
        return r.error().what;
    };
    CHECK(problems("nope") == "$: not JSON");
    CHECK(problems(R"({"default": "live"})") ==
          "$.default: \"live\" is not one of off, dualwrite, shadow");
    CHECK(problems(R"({"default": "off", "extra": 1})") == "$.extra: unknown key");
    CHECK(problems(R"({"default": "off", "cohorts": [{"name": "a", "stage": "off"}]})") ==
          "$.cohorts[0]: expected exactly one of \"users\" and \"percent\"");
    CHECK(
        problems(
            R"({"default": "off", "cohorts": [{"name": "a", "stage": "off", "percent": 101}]})") ==
        "$.cohorts[0].percent: must be between 0 and 100");
    CHECK(problems(
              R"({"default": "off", "cohorts": [{"name": "a", "stage": "off", "users": []}]})") ==
          "$.cohorts[0].users: must name at least one user");
    CHECK(problems(R"({"default": "off", "freeze": {"cohorts": []}})") ==
          "$.freeze.until_ms: expected an integer (milliseconds since the epoch)");
}
