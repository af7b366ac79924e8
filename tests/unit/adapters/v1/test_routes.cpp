// tests/unit/adapters/v1/test_routes: the v1 route table, as one table of requests and what they
// must map to.
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "adapters/v1/request_ids.hpp"
#include "adapters/v1/routes.hpp"
#include "adapters/v1/utf8.hpp"

using sg::v1::classify;
using sg::v1::endpoint;

namespace {

struct route_case {
    std::string method;
    std::string target;
    endpoint ep;
    bool write;
    std::string user_id;
    std::string label;
    std::string sha;
    std::string diff_id;
    bool hostile;
};

const std::string long_id(100 * 1024, 'a');

const std::vector<route_case> route_cases = {
    // Every endpoint.
    {"POST", "/users/init", endpoint::user_init, true, "", "", "", "", false},
    {"GET", "/users/u1/exists", endpoint::user_exists, false, "u1", "", "", "", false},
    {"GET", "/users/u1/blocks", endpoint::list_blocks, false, "u1", "", "", "", false},
    {"GET", "/users/u1/blocks/diffs/counts", endpoint::diff_counts, false, "u1", "", "", "", false},
    {"GET", "/users/u1/blocks/student", endpoint::get_block, false, "u1", "student", "", "", false},
    {"PUT", "/users/u1/blocks/student", endpoint::put_block, true, "u1", "student", "", "", false},
    {"GET", "/users/u1/blocks/student/history", endpoint::block_history, false, "u1", "student", "",
     "", false},
    {"GET", "/users/u1/blocks/student/versions/0123456789abcdef0123456789abcdef01234567",
     endpoint::get_version, false, "u1", "student", "0123456789abcdef0123456789abcdef01234567", "",
     false},
    {"POST", "/users/u1/blocks/student/restore", endpoint::restore_version, true, "u1", "student",
     "", "", false},
    {"GET", "/users/u1/blocks/student/diffs", endpoint::list_diffs, false, "u1", "student", "", "",
     false},
    {"POST", "/users/u1/blocks/student/diffs/d-42/approve", endpoint::approve_diff, true, "u1",
     "student", "", "d-42", false},
    {"POST", "/users/u1/blocks/student/diffs/d-42/reject", endpoint::reject_diff, true, "u1",
     "student", "", "d-42", false},

    // Query strings are ignored, even ones with slashes and escapes.
    {"GET", "/users/u1/blocks/student/history?limit=2", endpoint::block_history, false, "u1",
     "student", "", "", false},
    {"POST", "/users/u1/blocks/student/diffs/d1/reject?reason=a/b%2F..", endpoint::reject_diff,
     true, "u1", "student", "", "d1", false},
    {"GET", "/users/u1/blocks?", endpoint::list_blocks, false, "u1", "", "", "", false},
    {"POST", "/users/init?x=1", endpoint::user_init, true, "", "", "", "", false},

    // Abbreviated and odd-but-harmless shas are kept as given.
    {"GET", "/users/u1/blocks/student/versions/abc1234", endpoint::get_version, false, "u1",
     "student", "abc1234", "", false},
    {"GET", "/users/u1/blocks/student/versions/HEAD~1", endpoint::get_version, false, "u1",
     "student", "HEAD~1", "", false},

    // diffs/counts takes precedence; a block labelled "diffs" is still a block.
    {"GET", "/users/u1/blocks/diffs", endpoint::get_block, false, "u1", "diffs", "", "", false},
    {"PUT", "/users/u1/blocks/diffs", endpoint::put_block, true, "u1", "diffs", "", "", false},
    {"GET", "/users/u1/blocks/diffs/diffs", endpoint::list_diffs, false, "u1", "diffs", "", "",
     false},
    {"GET", "/users/u1/blocks/counts/history", endpoint::block_history, false, "u1", "counts", "",
     "", false},
    {"PUT", "/users/u1/blocks/diffs/counts", endpoint::passthrough, false, "", "", "", "", false},

    // "init" is an ordinary user id everywhere except POST /users/init.
    {"GET", "/users/init/exists", endpoint::user_exists, false, "init", "", "", "", false},
    {"GET", "/users/init/blocks", endpoint::list_blocks, false, "init", "", "", "", false},
    {"GET", "/users/init", endpoint::passthrough, false, "", "", "", "", false},

    // Percent-decoding of identifiers (either case of hex digits; "+" stays "+").
    {"GET", "/users/u%201/blocks/st%c3%a9", endpoint::get_block, false, "u 1", "st\xc3\xa9", "", "",
     false},
    {"GET", "/users/a+b/exists", endpoint::user_exists, false, "a+b", "", "", "", false},

    // Hostile identifiers keep the matched endpoint.
    {"GET", "/users/../blocks", endpoint::list_blocks, false, "..", "", "", "", true},
    {"GET", "/users/%2e%2e/blocks", endpoint::list_blocks, false, "..", "", "", "", true},
    {"GET", "/users/%2E%2E/exists", endpoint::user_exists, false, "..", "", "", "", true},
    {"GET", "/users/a%2Fb/blocks", endpoint::list_blocks, false, "a/b", "", "", "", true},
    {"GET", "/users/a%2fb/blocks", endpoint::list_blocks, false, "a/b", "", "", "", true},
    {"PUT", "/users/u1/blocks/a%5Cb", endpoint::put_block, true, "u1", "a\\b", "", "", true},
    {"PUT", "/users/u1/blocks/a\\b", endpoint::put_block, true, "u1", "a\\b", "", "", true},
    {"GET", "/users/u1/blocks/a%00b", endpoint::get_block, false, "u1", std::string("a\0b", 3), "",
     "", true},
    {"GET", "/users/u1/blocks/a%0Ab", endpoint::get_block, false, "u1", "a\nb", "", "", true},
    {"GET", "/users/.git/blocks", endpoint::list_blocks, false, ".git", "", "", "", true},
    {"GET", "/users/u1/blocks/.hidden", endpoint::get_block, false, "u1", ".hidden", "", "", true},
    {"GET", "/users/u1/blocks/a..b", endpoint::get_block, false, "u1", "a..b", "", "", true},
    {"POST", "/users/u1/blocks/student/diffs/..%2F..%2Fx/approve", endpoint::approve_diff, true,
     "u1", "student", "", "../../x", true},
    {"GET", "/users/u1/blocks/student/versions/..", endpoint::get_version, false, "u1", "student",
     "..", "", true},
    {"GET", "/users/u1/blocks/student/versions/a%2Fb", endpoint::get_version, false, "u1",
     "student", "a/b", "", true},
    {"GET", "/users/u1/blocks/student/versions/a%00", endpoint::get_version, false, "u1", "student",
     std::string("a\0", 2), "", true},
    {"GET", "/users/" + long_id + "/blocks", endpoint::list_blocks, false, long_id, "", "", "",
     true},

    // Malformed percent escapes: hostile, identifier left empty.
    {"GET", "/users/a%2/exists", endpoint::user_exists, false, "", "", "", "", true},
    {"GET", "/users/a%zz/exists", endpoint::user_exists, false, "", "", "", "", true},
    {"GET", "/users/u1/blocks/%", endpoint::get_block, false, "u1", "", "", "", true},
    {"GET", "/users/u1/blocks/%g0", endpoint::get_block, false, "u1", "", "", "", true},

    // Empty segments, trailing slashes, extra segments: not v1 routes.
    {"GET", "/users//blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/u1/blocks/", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/u1//blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "//users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"POST", "/users/init/", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/u1/blocks/student/history/x", endpoint::passthrough, false, "", "", "", "",
     false},
    {"POST", "/users/u1/blocks/student/diffs/d1/approve/now", endpoint::passthrough, false, "", "",
     "", "", false},
    {"GET", "/users/u1/blocks/student/versions", endpoint::passthrough, false, "", "", "", "",
     false},
    {"GET", "/users/u1/blocks/student/unknown", endpoint::passthrough, false, "", "", "", "",
     false},
    {"POST", "/users/u1/blocks/student/diffs/d1/merge", endpoint::passthrough, false, "", "", "",
     "", false},
    {"GET", "/users", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/health", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/docs?x=/users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/Users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/u1/%62locks", endpoint::passthrough, false, "", "", "", "", false},

    // Wrong methods on known paths (methods are case-sensitive).
    {"DELETE", "/users/u1/blocks/student", endpoint::passthrough, false, "", "", "", "", false},
    {"POST", "/users/u1/blocks/student", endpoint::passthrough, false, "", "", "", "", false},
    {"get", "/users/u1/blocks/student", endpoint::passthrough, false, "", "", "", "", false},
    {"HEAD", "/users/u1/exists", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/init", endpoint::passthrough, false, "", "", "", "", false},
    {"PUT", "/users/init", endpoint::passthrough, false, "", "", "", "", false},
    {"POST", "/users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "/users/u1/blocks/student/restore", endpoint::passthrough, false, "", "", "", "",
     false},
    {"POST", "/users/u1/blocks/student/history", endpoint::passthrough, false, "", "", "", "",
     false},
    {"GET", "/users/u1/blocks/student/diffs/d1/approve", endpoint::passthrough, false, "", "", "",
     "", false},
    {"PUT", "/users/u1/blocks/student/versions/abc", endpoint::passthrough, false, "", "", "", "",
     false},

    // Not origin-form.
    {"GET", "", endpoint::passthrough, false, "", "", "", "", false},
    {"OPTIONS", "*", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "http://v1:8000/users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
    {"CONNECT", "v1:8000", endpoint::passthrough, false, "", "", "", "", false},
    {"GET", "users/u1/blocks", endpoint::passthrough, false, "", "", "", "", false},
};

}  // namespace

TEST_CASE("classify maps every request in the table", "[routes]") {
    for (const auto& c : route_cases) {
        INFO(c.method << " " << c.target.substr(0, 120));
        const auto r = classify(c.method, c.target);
        CHECK(sg::v1::name(r.ep) == sg::v1::name(c.ep));
        CHECK(r.write == c.write);
        CHECK(r.user_id == c.user_id);
        CHECK(r.label == c.label);
        CHECK(r.sha == c.sha);
        CHECK(r.diff_id == c.diff_id);
        CHECK(r.hostile_reason.has_value() == c.hostile);
        if (r.hostile_reason) CHECK_FALSE(r.hostile_reason->empty());
    }
}

TEST_CASE("hostile reasons name the identifier and the problem", "[routes]") {
    CHECK(classify("GET", "/users/%2e%2e/blocks").hostile_reason == "user id contains \"..\"");
    CHECK(classify("GET", "/users/a%2Fb/blocks").hostile_reason == "user id contains \"/\"");
    CHECK(classify("GET", "/users/u/blocks/.x").hostile_reason == "label starts with \".\"");
    CHECK(classify("GET", "/users/u/blocks/a%00").hostile_reason == "label contains NUL");
    CHECK(classify("GET", "/users/u/blocks/a%zz").hostile_reason ==
          "label has malformed percent-encoding");
    CHECK(classify("GET", "/users/%FF/blocks").hostile_reason == "user id is not valid UTF-8");
    CHECK(classify("PUT", "/users/u/blocks/a%ed%a0%80").hostile_reason ==
          "label is not valid UTF-8");
    // A path under /users/ that names no route is still refused a segment that climbs.
    CHECK(classify("GET", "/users/u/blocks/%2e%2e/").hostile_reason ==
          "path segment contains \"..\"");
    CHECK(classify("PUT", "/users/../blocks/x/").hostile_reason == "path segment contains \"..\"");
    CHECK(classify("GET", "/users//./blocks").hostile_reason == "path segment is \".\"");
    CHECK(classify("GET", "/users/u//blocks/a%2Fb").hostile_reason ==
          "path segment contains \"/\", \"\\\" or NUL");
    CHECK(classify("GET", "/users/u/blocks/x/y/z/w/v/%zz").hostile_reason ==
          "path segment has malformed percent-encoding");
    for (const char* fine : {"/users/u/blocks/", "/users//blocks", "/users/u//blocks/student",
                             "/users/init/", "/usersx/..", "/other/../x"}) {
        const auto r = classify("GET", fine);
        INFO(fine);
        CHECK(r.ep == endpoint::passthrough);
        CHECK_FALSE(r.hostile_reason);
    }
    // The first unsafe identifier in the path is the one reported.
    CHECK(classify("GET", "/users/.u/blocks/..").hostile_reason == "user id starts with \".\"");
}

TEST_CASE("very long targets are classified quickly", "[routes]") {
    std::string many_segments;
    for (int i = 0; i < 50'000; ++i) many_segments += "/a";
    const std::string long_label = "/users/u1/blocks/" + std::string(100 * 1024, '%') + "?q";
    const std::string long_query = "/users/u1/blocks?" + std::string(100 * 1024, '/');
    const std::string escaped = "/users/u1/blocks/" + std::string(100 * 1024 / 3, 'x') + "%41";

    // Linear work on 100 KB; a quadratic scan would take minutes and meet ctest's timeout (speed
    // itself belongs to benchmarks, not to assertions).
    for (int i = 0; i < 20; ++i) {
        CHECK(classify("GET", many_segments).ep == endpoint::passthrough);
        CHECK(classify("GET", "/users/u1/blocks" + many_segments).ep == endpoint::passthrough);
        CHECK(classify("GET", long_label).hostile_reason.has_value());
        CHECK(classify("GET", long_query).ep == endpoint::list_blocks);
        CHECK(classify("PUT", escaped).hostile_reason == "label is longer than 255 bytes");
    }
}

TEST_CASE("endpoint names are stable, unique and cover every endpoint", "[routes]") {
    const auto& all = sg::v1::all_endpoints();
    REQUIRE(all.size() == sg::v1::endpoint_count);
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < all.size(); ++i) {
        CHECK(static_cast<std::size_t>(all[i]) == i);
        CHECK(seen.insert(sg::v1::name(all[i])).second);
    }
    // Metric label values: renaming one breaks dashboards, so the whole list is pinned here.
    const std::vector<std::string_view> expected = {
        "user_init",    "user_exists",   "list_blocks", "diff_counts",     "get_block",
        "put_block",    "block_history", "get_version", "restore_version", "list_diffs",
        "approve_diff", "reject_diff",   "passthrough",
    };
    REQUIRE(expected.size() == all.size());
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(sg::v1::name(all[i]) == expected[i]);
    // Every endpoint but passthrough is reachable from some request in the table.
    std::set<endpoint> reached;
    for (const auto& c : route_cases) reached.insert(classify(c.method, c.target).ep);
    CHECK(reached.size() == sg::v1::endpoint_count);
}

TEST_CASE("is_safe_identifier", "[routes]") {
    struct id_case {
        std::string id;
        bool safe;
    };
    const std::vector<id_case> cases = {
        {"student", true},
        {"u-1_2.md", true},
        {"a.b", true},
        {"st\xc3\xa9", true},
        {"a b", true},
        {std::string(255, 'x'), true},
        {std::string(256, 'x'), false},
        {"", false},
        {".", false},
        {"..", false},
        {".git", false},
        {"a..b", false},
        {"a/b", false},
        {"a\\b", false},
        {std::string("a\0b", 3), false},
        {"a\tb", false},
        {"a\x7f", false},
        {"\xff", false},             // not UTF-8
        {"a\xc3", false},            // a truncated sequence
        {"\xc0\xaf", false},         // an overlong "/"
        {"\xed\xa0\x80", false},     // a lone surrogate (WTF-8)
        {"\xf0\x9f\x98\x80", true},  // an emoji is fine
    };
    for (const auto& c : cases) {
        INFO("id of " << c.id.size() << " bytes: " << c.id.substr(0, 20));
        CHECK(sg::v1::is_safe_identifier(c.id) == c.safe);
    }
}

TEST_CASE("percent_decode", "[routes]") {
    using sg::v1::percent_decode;
    CHECK(percent_decode("") == "");
    CHECK(percent_decode("plain") == "plain");
    CHECK(percent_decode("a+b") == "a+b");
    CHECK(percent_decode("%41%62%2f%2F") == "Ab//");
    CHECK(percent_decode("%e2%82%ac") == "\xe2\x82\xac");
    CHECK(percent_decode("%00") == std::string("\0", 1));
    CHECK(percent_decode("%25%32%30") == "%20");  // decoded once, not twice
    CHECK_FALSE(percent_decode("%").has_value());
    CHECK_FALSE(percent_decode("%4").has_value());
    CHECK_FALSE(percent_decode("abc%4").has_value());
    CHECK_FALSE(percent_decode("%G1").has_value());
    CHECK_FALSE(percent_decode("%1g").has_value());
    CHECK_FALSE(percent_decode("%%41").has_value());
}

TEST_CASE("body_problem checks the ids a write carries in its JSON body", "[routes]") {
    using sg::v1::body_problem;
    const auto init = endpoint::user_init;
    CHECK_FALSE(body_problem(init, R"({"user_id": "user-000"})"));
    CHECK_FALSE(body_problem(init, R"({"user_id": "st\u00e9", "name": "x"})"));
    CHECK(body_problem(init, R"({"user_id": "../escaped"})") ==
          "user_id in the body contains \"..\"");
    CHECK(body_problem(init, R"({"user_id": "a\u0001b"})") ==
          "user_id in the body contains a control character");
    CHECK(body_problem(init, R"({"user_id": "a\nb"})") ==
          "user_id in the body contains a control character");
    CHECK(body_problem(init, R"({"user_id": "a\u0000"})") == "user_id in the body contains NUL");
    CHECK(body_problem(init, R"({"user_id": ".git"})") == "user_id in the body starts with \".\"");
    CHECK(body_problem(init, R"({"user_id": ""})") == "user_id in the body is empty");
    // Python's json reads these; shadowgate cannot read them as v1 does, so they never pass.
    CHECK(body_problem(init, R"({"user_id": "\ud800"})"));         // lone surrogate
    CHECK(body_problem(init, "{\"user_id\": \"\xff\"}"));          // raw invalid UTF-8
    CHECK(body_problem(init, "{\"user_id\": \"\xed\xa0\x80\"}"));  // surrogatepass bytes
    CHECK(body_problem(init, R"({"user_id": "ok", "x": NaN})"));
    CHECK(body_problem(init, R"({"user_id": "ok", "x": 1e999})"));    // out_of_range, not a throw
    CHECK(body_problem(init, std::string("{\0\"\0u\0s\0e\0r", 10)));  // UTF-16
    CHECK(body_problem(init, R"({"user_id": "ok", "user_id": "../x"})") ==
          "body has \"user_id\" more than once");
    // No id in it: v1 answers 422, nothing to guard.
    CHECK_FALSE(body_problem(init, ""));
    CHECK_FALSE(body_problem(init, "  \n"));
    CHECK_FALSE(body_problem(init, R"(["../x"])"));
    CHECK_FALSE(body_problem(init, R"({"name": "../x"})"));
    CHECK_FALSE(body_problem(init, R"({"user_id": 42})"));        // pydantic 1 makes it "42"
    CHECK_FALSE(body_problem(init, R"({"user_id": ["../x"]})"));  // 422
    // A nested "user_id" is not the model's field.
    CHECK_FALSE(body_problem(init, R"({"name": {"user_id": "../x"}})"));
    // restore's commit_sha follows the revision rules (git syntax allowed, paths not).
    const auto restore = endpoint::restore_version;
    CHECK_FALSE(body_problem(restore, R"({"commit_sha": "HEAD~1"})"));
    CHECK(body_problem(restore, R"({"commit_sha": "../../x"})") ==
          "commit_sha in the body contains \"..\"");
    // Other endpoints carry no id in their body.
    CHECK_FALSE(body_problem(endpoint::put_block, R"({"content": "../x", "user_id": "../x"})"));
}

TEST_CASE("escaped prints an id on one line, every byte visible", "[routes]") {
    using sg::v1::escaped;
    CHECK(escaped("student") == "student");
    CHECK(escaped("st\xc3\xa9 \xf0\x9f\x98\x80") == "st\xc3\xa9 \xf0\x9f\x98\x80");
    CHECK(escaped("a\nb\tc\r") == "a\\nb\\tc\\r");
    CHECK(escaped("a\x01"
                  "b\x7f") == "a\\x01b\\x7f");
    CHECK(escaped(std::string("a\0b", 3)) == "a\\x00b");
    CHECK(escaped("q\"x\\y") == "q\\\"x\\\\y");
    CHECK(escaped("\xff\xfe") == "\\xff\\xfe");
    CHECK(escaped("\xed\xa0\x80") == "\\xed\\xa0\\x80");
    CHECK(escaped("\xc2\x85") == "\\x85");  // C1 control NEL
    CHECK(escaped("a\xe2\x80\xae"
                  "b") ==
          "a\\u202e"
          "b");                                   // right-to-left override
    CHECK(escaped("\xe2\x80\xa8") == "\\u2028");  // line separator
}
