// tests/unit/adapters/v1/test_state_diff: every kind of difference between two user states is
// reported once, with the right item, key and kind; equal states give nothing.
#include <catch2/catch.hpp>

#include "adapters/v1/state_diff.hpp"

using namespace sg::v1;

namespace {

user_state sample() {
    user_state s;
    s.user_id = "u1";
    s.head = "b2";
    s.diffs_fingerprint = "fp";
    s.commits = {{"b2", {"a1"}, "Edit\n\nAuthor: user", "user", 200, 0, 0},
                 {"a1", {}, "Initialize user storage", "unknown", 100, 0, 1}};
    s.blocks = {{"student", "---\nblock: student\n---\n\nhi", "b2"}};
    s.versions = {{"b2", "student", "---\nblock: student\n---\n\nhi", false, "Edit\n\nAuthor: user",
                   "user", 200, 0, 0, std::nullopt}};
    pending_diff d;
    d.id = "d1";
    d.raw_json = "{}";
    d.block_label = "student";
    d.operation = "append";
    d.status = "pending";
    d.created_at = "2026-01-01T00:00:00";
    s.diffs = {d};
    return s;
}

std::vector<std::string> strings(const std::vector<drift>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(to_string(d));
    return out;
}

}  // namespace

TEST_CASE("equal states have no drift") { CHECK(diff_states(sample(), sample()).empty()); }

TEST_CASE("each planted difference is reported with its kind, item and key") {
    struct plant {
        const char* name;
        void (*mutate)(user_state&);
        std::vector<std::string> expected;
    };
    const std::vector<plant> plants = {
        {"head",
         [](user_state& s) { s.head = "zz"; },
         {"different user: head (v1 \"b2\", v2 \"zz\")"}},
        {"missing block", [](user_state& s) { s.blocks.clear(); }, {"missing block student"}},
        {"extra block",
         [](user_state& s) {
             s.blocks.push_back({"journey", "x", "b2"});
         },
         {"extra block journey"}},
        {"changed source",
         [](user_state& s) { s.versions[0].source = "---\nblock: student\n---\n\nHI"; },
         {"different version student@b2: source (v1 26 bytes, v2 26 bytes)"}},
        {"reordered versions",
         [](user_state& s) { s.versions[0].ordinal = 3; },
         {"different version student@b2: ordinal (v1 0, v2 3)"}},
        {"missing version",
         [](user_state& s) { s.versions.clear(); },
         {"missing version student@b2"}},
        {"diff status",
         [](user_state& s) { s.diffs[0].status = "approved"; },
         {"different diff d1: status (v1 \"pending\", v2 \"approved\")"}},
        {"diff null field",
         [](user_state& s) { s.diffs[0].field = "body"; },
         {"different diff d1: field (v1 null, v2 \"body\")"}},
        {"commit parents",
         [](user_state& s) {
             s.commits[0].parents = {"a1", "c3"};
         },
         {"different commit b2: parents (v1 \"a1\", v2 \"a1 c3\")"}},
        {"extra diff",
         [](user_state& s) {
             s.diffs.push_back(s.diffs[0]);
             s.diffs.back().id = "d2";
         },
         {"extra diff d2"}},
    };
    for (const auto& p : plants) {
        INFO(p.name);
        user_state actual = sample();
        p.mutate(actual);
        CHECK(strings(diff_states(sample(), actual)) == p.expected);
    }
}
