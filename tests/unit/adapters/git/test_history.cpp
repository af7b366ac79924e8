// tests/unit/adapters/git/test_history: git's orderings over hand-built commit graphs, v1's author
// footer, pathspec wildcards and pending-diff loading, as pure functions (test_git_reader checks
// the same against the git CLI on real repositories).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "adapters/git/history.hpp"
#include "adapters/git/pending_diffs.hpp"

using sg::git::graph_node;

namespace {

using order = std::vector<std::uint32_t>;

}  // namespace

TEST_CASE("rev_list_order: newest committer time first, FIFO among equal times", "[git]") {
    SECTION("a chain where every commit has the same second") {
        const std::vector<graph_node> g = {{{1}, 5}, {{2}, 5}, {{3}, 5}, {{}, 5}};
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 1, 2, 3});
    }
    SECTION("a merge: the newer branch is walked first, ties go to the first parent") {
        // 0 = merge(1, 2); 1 -> 3; 2 -> 4; 3, 4 -> 5
        std::vector<graph_node> g = {{{1, 2}, 10}, {{3}, 8}, {{4}, 9}, {{5}, 7}, {{5}, 7}, {{}, 1}};
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 2, 1, 4, 3, 5});
        g[2].time = 8;  // same second as 1: the first parent's side goes first
        g[4].time = 7;
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 1, 2, 3, 4, 5});
    }
    SECTION("clock skew: a parent newer than its child is still printed after it") {
        const std::vector<graph_node> g = {{{1}, 5}, {{2}, 50}, {{}, 1}};
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 1, 2});
    }
    SECTION("date order, not topological order") {
        // 0 = merge(1, 2); 1 (t=3) -> 3 (t=9); 2 (t=4) -> 3. The parent 3 is queued when 2 is
        // taken and, being newer than 1, is printed before 1, its own child.
        const std::vector<graph_node> g = {{{1, 2}, 10}, {{3}, 3}, {{3}, 4}, {{}, 9}};
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 2, 3, 1});
    }
    SECTION("negative dates sort as git's unsigned timestamps (newest)") {
        const std::vector<graph_node> g = {{{1, 2}, 10}, {{}, 5}, {{}, -1}};
        CHECK(sg::git::rev_list_order(g, 0) == order{0, 2, 1});
    }
}

TEST_CASE("path_limited_order: git's default history simplification", "[git]") {
    SECTION("non-merges: only commits that change the path; the root if the path is in it") {
        const std::vector<graph_node> g = {{{1}, 4}, {{2}, 3}, {{3}, 2}, {{}, 1}};
        const std::vector<std::string> s = {"b", "a", "a", "a"};
        CHECK(sg::git::path_limited_order(g, 0, s) == order{0, 3});
        const std::vector<std::string> absent_at_root = {"b", "a", "a", ""};
        CHECK(sg::git::path_limited_order(g, 0, absent_at_root) == order{0, 2});
    }
    SECTION("deletion and re-creation are both changes") {
        const std::vector<graph_node> g = {{{1}, 4}, {{2}, 3}, {{3}, 2}, {{}, 1}};
        const std::vector<std::string> s = {"a2", "", "a", ""};
        CHECK(sg::git::path_limited_order(g, 0, s) == order{0, 1, 2});
    }
    SECTION("a merge equal to its second parent hides the first parent's line") {
        // 0 = merge(1, 2), same as 2 for the path; 1 changed the path but is not walked.
        const std::vector<graph_node> g = {{{1, 2}, 9}, {{3}, 8}, {{3}, 7}, {{}, 1}};
        const std::vector<std::string> s = {"side", "main", "side", "base"};
        CHECK(sg::git::path_limited_order(g, 0, s) == order{2, 3});
    }
    SECTION("a merge equal to both parents follows the first only") {
        const std::vector<graph_node> g = {{{1, 2}, 9}, {{3}, 8}, {{3}, 7}, {{}, 1}};
        const std::vector<std::string> s = {"x", "x", "x", "base"};
        CHECK(sg::git::path_limited_order(g, 0, s) == order{1, 3});
    }
    SECTION("a merge that differs from every parent is shown and follows all") {
        const std::vector<graph_node> g = {{{1, 2}, 9}, {{3}, 8}, {{3}, 7}, {{}, 1}};
        const std::vector<std::string> s = {"merged", "main", "side", "base"};
        CHECK(sg::git::path_limited_order(g, 0, s) == order{0, 1, 2, 3});
    }
    SECTION("a path that is absent at the tip and in its history gives nothing") {
        const std::vector<graph_node> g = {{{1}, 2}, {{}, 1}};
        const std::vector<std::string> s = {"", ""};
        CHECK(sg::git::path_limited_order(g, 0, s).empty());
    }
}

TEST_CASE("author_footer: as v1's _author parses the message", "[git]") {
    struct footer_case {
        std::string message;
        std::string author;
    };
    const std::vector<footer_case> cases = {
        {"Update student block\n\nAuthor: user", "user"},
        {"Update student block\n\nAuthor: user\n", "user"},
        {"Apply agent suggestion: x\n\nAuthor: agent:tutor", "agent:tutor"},
        {"Initialize user storage", "unknown"},
        {"Initialize user storage\n", "unknown"},
        {"", "unknown"},
        {"Edit\n\nAuthor:user", "unknown"},
        {"Edit\n\nauthor: user", "unknown"},
        // The first matching line wins, not the last paragraph.
        {"Author: alice\n\nAuthor: user", "alice"},
        {"Title\nAuthor: bob\nmore\n\nAuthor: user", "bob"},
        // Python's str.strip() of the whole message: leading and trailing whitespace.
        {"  Author: x", "x"},
        {"Edit\n\nAuthor: user  \n\n", "user"},
        {"Edit\n\nAuthor: user\xc2\xa0", "user"},
        {"Edit\n\nAuthor: user\xe3\x80\x80", "user"},
        // A line's own trailing CR and inner spaces are kept.
        {"Edit\n\nAuthor: a b\r\nmore", "a b\r"},
        // Every "Author: " in the line is removed (str.replace).
        {"Edit\n\nAuthor: Author: y", "y"},
        {"Edit\n\nAuthor: x Author: y", "x y"},
        {"Edit\n\nAuthor: ", "unknown"},  // strip() leaves "Author:" without its space
        {"Edit\n\nAuthor: \nmore", ""},
        {"Edit\n\nAuthor: caf\xc3\xa9", "caf\xc3\xa9"},
    };
    for (const auto& c : cases) {
        INFO(c.message);
        CHECK(sg::git::author_footer(c.message) == c.author);
    }
}

TEST_CASE("pathspec_matches: literal paths and git wildcards", "[git]") {
    using sg::git::pathspec_matches;
    CHECK(pathspec_matches("memory-blocks/student.md", "memory-blocks/student.md"));
    CHECK_FALSE(pathspec_matches("memory-blocks/student.md", "memory-blocks/student.mdx"));
    CHECK(pathspec_matches("memory-blocks/st*.md", "memory-blocks/student.md"));
    CHECK(pathspec_matches("memory-blocks/st*.md", "memory-blocks/st*.md"));
    CHECK(pathspec_matches("memory-blocks/*.md", "memory-blocks/sub/x.md"));  // "*" crosses "/"
    CHECK(pathspec_matches("memory-blocks/?x.md", "memory-blocks/ax.md"));
    CHECK(pathspec_matches("memory-blocks/[ab].md", "memory-blocks/b.md"));
    CHECK(pathspec_matches("memory-blocks/[ab].md", "memory-blocks/[ab].md"));
    CHECK_FALSE(pathspec_matches("memory-blocks/[ab].md", "memory-blocks/c.md"));
    CHECK(sg::git::has_glob_chars("a*"));
    CHECK_FALSE(sg::git::has_glob_chars("student_profile-2"));
}

TEST_CASE("parse_pending_diff: loads what v1 loads, skips what v1 cannot", "[git]") {
    const std::string good = R"({
  "id": "d1", "user_id": "u", "agent_id": "tutor", "block_label": "student", "field": null,
  "operation": "append", "current_value": "old", "proposed_value": "new",
  "reasoning": "why", "confidence": "high", "source_query": null, "status": "pending",
  "created_at": "2026-01-13T18:27:03.150665", "reviewed_at": null, "applied_commit": null
})";
    std::vector<sg::git::warning> w;
    SECTION("a complete file") {
        const auto d = sg::git::parse_pending_diff("d1.json", good, "u/", w);
        REQUIRE(d);
        CHECK(w.empty());
        CHECK(d->raw_json == good);
        CHECK(d->id == "d1");
        CHECK(d->agent_id == "tutor");
        CHECK(d->block_label == "student");
        CHECK_FALSE(d->field);
        CHECK(d->operation == "append");
        CHECK(d->current_value == "old");
        CHECK(d->proposed_value == "new");
        CHECK(d->reasoning == "why");
        CHECK(d->confidence == "high");
        CHECK(d->status == "pending");
        CHECK_FALSE(d->source_query);
        CHECK(d->created_at == "2026-01-13T18:27:03.150665");
        CHECK_FALSE(d->reviewed_at);
        CHECK_FALSE(d->applied_commit);
    }
    SECTION("the two fields with defaults may be missing") {
        std::string s = good;
        s.replace(s.find(", \"reviewed_at\": null, \"applied_commit\": null"),
                  std::string(", \"reviewed_at\": null, \"applied_commit\": null").size(), "");
        const auto d = sg::git::parse_pending_diff("d1.json", s, "u/", w);
        REQUIRE(d);
        CHECK(w.empty());
    }
    SECTION("odd fields are kept as text, with a warning each") {
        std::string s = good;
        s.replace(s.find("\"high\""), 6, "7");
        s.replace(s.find("\"status\": \"pending\""), 19, "\"status\": \"weird\"");
        const auto d = sg::git::parse_pending_diff("other.json", s, "u/", w);
        REQUIRE(d);
        CHECK(d->confidence == "7");
        CHECK(d->status == "weird");
        // confidence type, confidence value, status value, id vs file name
        CHECK(w.size() == 4);
        for (const auto& x : w) CHECK(x.kind == sg::git::warning_kind::odd_diff_field);
        CHECK(w[0].subject == "u/pending_diffs/other.json");
    }
    SECTION("files v1 cannot load are skipped with a warning") {
        std::string missing = good;
        missing.replace(missing.find("\"source_query\": null, "), 22, "");
        std::string unknown = good;
        unknown.replace(unknown.find("\"field\""), 7, "\"extra\": 1, \"field\"");
        for (const auto& bad : {std::string("{"), std::string("[]"), std::string("\"x\""),
                                std::string("\xEF\xBB\xBF") + good, missing, unknown,
                                std::string("{\"id\": \"\xff\"}")}) {
            w.clear();
            INFO(bad);
            CHECK_FALSE(sg::git::parse_pending_diff("d1.json", bad, "u/", w));
            REQUIRE(w.size() == 1);
            CHECK(w[0].kind == sg::git::warning_kind::malformed_diff);
        }
    }
}
