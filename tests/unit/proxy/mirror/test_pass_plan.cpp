// tests/unit/proxy/mirror/test_pass_plan: the plan step of the mirror's forward pass: commit by
// commit or in one step, replayed or recorded, and the Dolt commits that follow an apply.
#include "proxy/mirror/pass_plan.hpp"

#include <catch2/catch.hpp>

namespace ml = sg::proxy::mirror_logic;
using mode = sg::config::mirror_commit;

namespace {

sg::v1::commit make_commit(std::string sha, std::vector<std::string> parents, std::int64_t seq,
                           std::int64_t time) {
    sg::v1::commit c;
    c.sha = std::move(sha);
    c.parents = std::move(parents);
    c.seq = seq;
    c.message = "edit " + c.sha;
    c.author = "agent:" + c.sha;
    c.commit_time = time;
    return c;
}

// c0 <- c1 <- c2 <- c3 (HEAD)
sg::v1::user_state chain() {
    sg::v1::user_state s;
    s.commits = {make_commit("c3", {"c2"}, 0, 1300), make_commit("c2", {"c1"}, 1, 1200),
                 make_commit("c1", {"c0"}, 2, 1100), make_commit("c0", {}, 3, 1000)};
    s.head = "c3";
    return s;
}

std::vector<std::string> v1_commits(const std::vector<ml::commit_step>& steps) {
    std::vector<std::string> out;
    for (const auto& s : steps) out.push_back(s.v1_commit);
    return out;
}

}  // namespace

TEST_CASE("plan_pass: per_v1_commit on Dolt replays a short way behind", "[mirror][plan]") {
    const auto s = chain();
    const auto p = ml::plan_pass(s, std::string_view("c1"), mode::per_v1_commit, true);
    CHECK(p.old_head == "c1");
    CHECK(p.per_commit);
    CHECK(p.replay);  // two new commits, each its own apply and Dolt commit
    CHECK(p.history.new_commits.size() == 2);
    // a replay commits as it goes: nothing after the apply
    CHECK(ml::commits_after_apply(p, s, "u", mode::per_v1_commit, 0, 99).empty());

    // one new commit is the final state itself: no replay, its commit after the apply
    const auto one = ml::plan_pass(s, std::string_view("c2"), mode::per_v1_commit, true);
    CHECK(one.per_commit);
    CHECK_FALSE(one.replay);
    const auto steps = ml::commits_after_apply(one, s, "u", mode::per_v1_commit, 0, 99);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].v1_commit == "c3");
    CHECK(steps[0].author == "agent:c3");
    CHECK(steps[0].message == "edit c3");
    CHECK(steps[0].time == 1300);
}

TEST_CASE("plan_pass: not Dolt records every new commit after one apply", "[mirror][plan]") {
    const auto s = chain();
    const auto p = ml::plan_pass(s, std::string_view("c0"), mode::per_v1_commit, false);
    CHECK(p.per_commit);
    CHECK_FALSE(p.replay);
    CHECK(v1_commits(ml::commits_after_apply(p, s, "u", mode::per_v1_commit, 0, 99)) ==
          std::vector<std::string>{"c1", "c2", "c3"});
}

TEST_CASE("plan_pass: a user never mirrored or rewritten is one step", "[mirror][plan]") {
    const auto s = chain();
    const auto fresh = ml::plan_pass(s, std::nullopt, mode::per_v1_commit, true);
    CHECK_FALSE(fresh.per_commit);
    CHECK_FALSE(fresh.replay);
    auto steps = ml::commits_after_apply(fresh, s, "u1", mode::per_v1_commit, 0, 99);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].message == "mirror u1: 4 v1 commits up to c3");
    CHECK(steps[0].author == "shadowgate");
    CHECK(steps[0].time == 1300);  // dated like v1's HEAD
    CHECK(steps[0].v1_commit == "c3");

    const auto rewritten = ml::plan_pass(s, std::string_view("gone"), mode::per_v1_commit, true);
    CHECK(rewritten.history.rewritten);
    CHECK_FALSE(rewritten.per_commit);
    steps = ml::commits_after_apply(rewritten, s, "u1", mode::per_v1_commit, 0, 99);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].message ==
          "mirror u1: re-import after a v1 history rewrite (gone is not an ancestor of c3)");
}

TEST_CASE("plan_pass: far behind is one step, not a replay", "[mirror][plan]") {
    sg::v1::user_state s;
    const std::size_t n = ml::max_replayed_commits + 2;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = n - 1 - i;  // newest first
        s.commits.push_back(make_commit("c" + std::to_string(k),
                                        k == 0
                                            ? std::vector<std::string>{}
                                            : std::vector<std::string>{"c" + std::to_string(k - 1)},
                                        static_cast<std::int64_t>(i), 1000));
    }
    s.head = s.commits.front().sha;
    const auto p = ml::plan_pass(s, std::string_view("c0"), mode::per_v1_commit, true);
    CHECK(p.history.new_commits.size() == n - 1);
    CHECK_FALSE(p.per_commit);
    CHECK_FALSE(p.replay);
    CHECK(ml::commits_after_apply(p, s, "u", mode::per_v1_commit, 0, 7).size() == 1);
}

TEST_CASE("commits_after_apply: pending diffs alone get their own commit", "[mirror][plan]") {
    const auto s = chain();
    const auto p = ml::plan_pass(s, std::string_view("c3"), mode::per_v1_commit, true);
    CHECK(p.history.new_commits.empty());
    CHECK(ml::commits_after_apply(p, s, "u", mode::per_v1_commit, 0, 7).empty());
    const auto steps = ml::commits_after_apply(p, s, "u", mode::per_v1_commit, 2, 7);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].message == "mirror u: pending diffs (2 changed)");
    CHECK(steps[0].v1_commit.empty());
    CHECK(steps[0].time == 7);
}

TEST_CASE("commits_after_apply: the interval and off policies commit nothing per pass",
          "[mirror][plan]") {
    const auto s = chain();
    for (auto m : {mode::interval, mode::off}) {
        const auto p = ml::plan_pass(s, std::string_view("c1"), m, true);
        CHECK_FALSE(p.per_commit);
        CHECK_FALSE(p.replay);
        CHECK(ml::commits_after_apply(p, s, "u", m, 3, 7).empty());
    }
}
