// tests/unit/comparator/test_comparator: the JSON diff, its rules, the classification of a
// comparison and the discrepancy record; properties (reflexive, symmetric, independent of key order
// and whitespace) over random documents.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "comparator/compare.hpp"
#include "comparator/json_diff.hpp"
#include "comparator/mapping.hpp"
#include "comparator/record.hpp"

namespace cmp = sg::comparator;
using cmp::change;
using cmp::json;
using cmp::result;

namespace {

cmp::path_pattern pat(const char* s) {
    auto p = cmp::parse_pattern(s);
    REQUIRE(p);
    return *p;
}

std::vector<std::string> paths(const cmp::diff_result& r) {
    std::vector<std::string> out;
    for (const auto& d : r.differences) out.push_back(d.path);
    return out;
}

// A random document: nested objects and arrays of strings, numbers, bools and nulls.
json random_json(std::mt19937& rng, int depth) {
    const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const int kind = depth <= 0 ? pick(5) : pick(7);
    switch (kind) {
        case 0: return json(nullptr);
        case 1: return json(pick(2) == 0);
        case 2: return json(pick(1000) - 500);
        case 3: return json(pick(1000) / 8.0);
        case 4: {
            const std::vector<std::string> words = {"a", "student", "b/c", "t~x", "", "ü", "{"};
            return json(words[static_cast<std::size_t>(pick(static_cast<int>(words.size())))]);
        }
        case 5: {
            json a = json::array();
            for (int i = pick(4); i > 0; --i) a.push_back(random_json(rng, depth - 1));
            return a;
        }
        default: {
            json o = json::object();
            for (int i = pick(4); i > 0; --i) {
                o["k" + std::to_string(pick(6))] = random_json(rng, depth - 1);
            }
            return o;
        }
    }
}

// Mutates one random place of a document.
void mutate(json& v, std::mt19937& rng) {
    if (v.is_object() && !v.empty() && rng() % 3 != 0) {
        auto it = v.begin();
        std::advance(it, static_cast<long>(rng() % v.size()));
        if (rng() % 4 == 0) {
            v.erase(it);
        } else {
            mutate(it.value(), rng);
        }
        return;
    }
    if (v.is_array() && !v.empty() && rng() % 3 != 0) {
        mutate(v[rng() % v.size()], rng);
        return;
    }
    if (v.is_object()) {
        v["new" + std::to_string(rng() % 3)] = 1;
    } else if (v.is_array()) {
        v.push_back("added");
    } else {
        v = v.is_string() ? json(42) : json("changed");
    }
}

// The document as text with shuffled object keys and random whitespace.
std::string shuffled_text(const json& v, std::mt19937& rng) {
    const std::string ws[] = {"", " ", "\n", "\t ", "\r\n  "};
    auto sp = [&] { return ws[rng() % 5]; };
    if (v.is_object()) {
        std::vector<std::string> keys;
        for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
        std::shuffle(keys.begin(), keys.end(), rng);
        std::string out = "{" + sp();
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (i > 0) out += "," + sp();
            out += json(keys[i]).dump() + sp() + ":" + sp() + shuffled_text(v.at(keys[i]), rng);
        }
        return out + sp() + "}";
    }
    if (v.is_array()) {
        std::string out = "[" + sp();
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i > 0) out += sp() + "," + sp();
            out += shuffled_text(v[i], rng);
        }
        return out + sp() + "]";
    }
    return v.dump();
}

}  // namespace

TEST_CASE("comparator: values, objects, arrays, paths", "[comparator]") {
    const cmp::rules none;
    CHECK(cmp::diff(json::parse(R"({"a":1,"b":[1,2]})"), json::parse(R"({"b":[1,2],"a":1})"), none)
              .empty());
    const auto r = cmp::diff(json::parse(R"({"a":1,"b":[1,2],"c":"x","d/e":{"f~":true}})"),
                             json::parse(R"({"a":2,"b":[1],"e":null,"d/e":{"f~":false}})"), none);
    REQUIRE(r.differences.size() == 5);
    CHECK(paths(r) == std::vector<std::string>{"/a", "/b/1", "/c", "/d~1e/f~0", "/e"});
    CHECK(r.differences[0].what == change::changed);
    CHECK(*r.differences[0].v1 == 1);
    CHECK(*r.differences[0].v2 == 2);
    CHECK(r.differences[1].what == change::missing_in_v2);
    CHECK_FALSE(r.differences[1].v2.has_value());
    CHECK(r.differences[2].what == change::missing_in_v2);
    CHECK(r.differences[4].what == change::extra_in_v2);
    CHECK(r.differences[4].v2->is_null());
    CHECK_FALSE(r.differences[4].v1.has_value());
    CHECK(r.differences[1].general_path == "/b/*");

    // Types differ: a change at that path, nothing below it.
    const auto t = cmp::diff(json::parse(R"({"a":{"x":1}})"), json::parse(R"({"a":[1]})"), none);
    CHECK(paths(t) == std::vector<std::string>{"/a"});
    // Numbers compare as numbers: 1 and 1.0 are equal, 1 and 2 are not, big unsigned exact.
    CHECK(cmp::diff(json::parse("[1, 2.5, 18446744073709551615]"),
                    json::parse("[1.0, 2.5, 18446744073709551615]"), none)
              .empty());
    CHECK_FALSE(
        cmp::diff(json::parse("[-1]"), json::parse("[18446744073709551615]"), none).empty());
    CHECK_FALSE(
        cmp::diff(json::parse("[9007199254740993]"), json::parse("[9007199254740992]"), none)
            .empty());
}

TEST_CASE("comparator: rules", "[comparator]") {
    SECTION("ignored paths, with wildcards, and everything below them") {
        cmp::rules r;
        r.ignore.push_back(pat("/*/etag"));
        r.ignore.push_back(pat("/meta"));
        CHECK(cmp::diff(json::parse(R"({"meta":{"x":1},"a":{"etag":"1","v":1}})"),
                        json::parse(R"({"meta":{"x":2},"a":{"etag":"2","v":1}})"), r)
                  .empty());
        CHECK(paths(cmp::diff(json::parse(R"({"a":{"etag":"1","v":1}})"),
                              json::parse(R"({"a":{"etag":"2","v":2}})"), r)) ==
              std::vector<std::string>{"/a/v"});
    }
    SECTION("arrays as sets keyed by a field") {
        cmp::rules r;
        r.keyed.push_back({pat(""), "label"});
        const auto v1 = json::parse(
            R"([{"label":"student","pending_diffs":1},{"label":"journey","pending_diffs":0},
                {"label":"goals","pending_diffs":0}])");
        auto same = json::parse(
            R"([{"label":"goals","pending_diffs":0},{"pending_diffs":1,"label":"student"},
                {"label":"journey","pending_diffs":0}])");
        CHECK(cmp::diff(v1, same, r).empty());
        CHECK_FALSE(cmp::diff(v1, same, cmp::rules{}).empty());  // in order, they differ
        auto other = json::parse(
            R"([{"label":"student","pending_diffs":2},{"label":"journey","pending_diffs":0},
                {"label":"extra","pending_diffs":0}])");
        const auto d = cmp::diff(v1, other, r);
        CHECK(paths(d) == std::vector<std::string>{"/student/pending_diffs", "/goals", "/extra"});
        CHECK(d.differences[1].what == change::missing_in_v2);
        CHECK(d.differences[2].what == change::extra_in_v2);
        CHECK(d.differences[0].general_path == "/*/pending_diffs");
        // Elements without the key, or whose key repeats, compare by position among the rest.
        const auto odd1 = json::parse(R"([{"label":"a"},{"x":1},{"label":"d"},{"label":"d"}])");
        const auto odd2 = json::parse(R"([{"x":1},{"label":"d"},{"label":"a"},{"label":"d"}])");
        CHECK(cmp::diff(odd1, odd2, r).empty());
    }
    SECTION("timestamps: formats, zones, precision") {
        cmp::rules r;
        r.timestamps.push_back({pat("/*/timestamp"), 1000, 60});  // naive = UTC+1
        const auto a = json::parse(R"([{"timestamp":"2026-11-22T05:12:26"}])");
        CHECK(cmp::diff(a, json::parse(R"([{"timestamp":"2026-11-22T04:12:26Z"}])"), r).empty());
        CHECK(cmp::diff(a, json::parse(R"([{"timestamp":"2026-11-22 04:12:26.999+00:00"}])"), r)
                  .empty());
        CHECK(
            cmp::diff(a, json::parse(R"([{"timestamp":"2026-11-22T06:12:26+0100"}])"), r).size() ==
            1);
        CHECK(cmp::diff(a, json::parse(R"([{"timestamp":"2026-11-22T04:12:27Z"}])"), r).size() ==
              1);
        // Not a timestamp on one side: compared as strings.
        CHECK(cmp::diff(a, json::parse(R"([{"timestamp":"yesterday"}])"), r).size() == 1);
        // Exact precision keeps microseconds apart.
        cmp::rules exact;
        exact.timestamps.push_back({pat("/t"), 0, 0});
        CHECK(cmp::diff(json::parse(R"({"t":"2026-01-01T00:00:00.000001"})"),
                        json::parse(R"({"t":"2026-01-01T00:00:00"})"), exact)
                  .size() == 1);
        CHECK(cmp::diff(json::parse(R"({"t":"2026-01-01T00:00:00.500"})"),
                        json::parse(R"({"t":"2026-01-01T00:00:00.5Z"})"), exact)
                  .empty());
    }
    SECTION("numeric tolerance") {
        cmp::rules r;
        r.numeric_tolerance = 0.01;
        CHECK(cmp::diff(json::parse("[1.0, 2]"), json::parse("[1.005, 2.01]"), r).empty());
        CHECK(cmp::diff(json::parse("[1.0]"), json::parse("[1.02]"), r).size() == 1);
    }
    SECTION("at most max_differences, and says so") {
        json a = json::array(), b = json::array();
        for (int i = 0; i < 50; ++i) {
            a.push_back(i);
            b.push_back(i + 1);
        }
        const auto d = cmp::diff(a, b, cmp::rules{}, 10);
        CHECK(d.differences.size() == 10);
        CHECK(d.truncated);
    }
}

TEST_CASE("comparator: timestamps parse as points in time", "[comparator]") {
    CHECK(cmp::parse_timestamp("1970-01-01T00:00:00Z", 0) == 0);
    CHECK(cmp::parse_timestamp("1970-01-01", 0) == 0);
    CHECK(cmp::parse_timestamp("1970-01-01T01:00", 60) == 0);
    CHECK(cmp::parse_timestamp("2000-03-01T00:00:00.25-01:30", 0) ==
          (951868800LL + 5400) * 1000000 + 250000);
    CHECK(cmp::parse_timestamp("1969-12-31T23:59:59.5Z", 0) == -500000);
    CHECK(cmp::parse_timestamp("2024-02-29", 0).has_value());  // a leap day
    for (const char* bad :
         {"", "2026-13-01", "2026-02-29", "2026-04-31", "2026-11-22T25:00", "2026-11-22T04:12:26+",
          "2026", "2026-11-22T04:12:26.Z", "2026-11-22T04:12:26 junk", "x026-11-22"}) {
        INFO(bad);
        CHECK_FALSE(cmp::parse_timestamp(bad, 0).has_value());
    }
}

TEST_CASE("comparator: properties over random documents", "[comparator]") {
    std::mt19937 rng(20261122);
    cmp::rules keyed;
    keyed.keyed.push_back({pat("/*"), "k1"});
    for (int i = 0; i < 400; ++i) {
        const json a = random_json(rng, 4);
        json b = a;
        for (int m = static_cast<int>(rng() % 3); m >= 0; --m) mutate(b, rng);
        for (const cmp::rules* r :
             {static_cast<const cmp::rules*>(&keyed), static_cast<const cmp::rules*>(nullptr)}) {
            const cmp::rules rules = r ? *r : cmp::rules{};
            // reflexive
            CHECK(cmp::diff(a, a, rules).empty());
            // independent of key order and whitespace
            const json a2 = json::parse(shuffled_text(a, rng));
            const json b2 = json::parse(shuffled_text(b, rng));
            const auto ab = cmp::diff(a, b, rules);
            CHECK(paths(cmp::diff(a2, b2, rules)) == paths(ab));
            CHECK(cmp::diff(a, a2, rules).empty());
            // symmetric: the same places, missing and extra swapped, values swapped
            const auto ba = cmp::diff(b, a, rules);
            auto sorted = [](std::vector<std::string> v) {
                std::sort(v.begin(), v.end());
                return v;
            };
            REQUIRE(sorted(paths(ab)) == sorted(paths(ba)));
            for (const auto& d : ab.differences) {
                const auto it =
                    std::find_if(ba.differences.begin(), ba.differences.end(),
                                 [&](const cmp::difference& x) { return x.path == d.path; });
                REQUIRE(it != ba.differences.end());
                const change mirrored = d.what == change::missing_in_v2 ? change::extra_in_v2
                                        : d.what == change::extra_in_v2 ? change::missing_in_v2
                                                                        : change::changed;
                CHECK(it->what == mirrored);
                CHECK(it->v1 == d.v2);
                CHECK(it->v2 == d.v1);
            }
            // a mutation is always seen unless it changed nothing
            CHECK(ab.empty() == (a == b || cmp::diff(a, b, rules).empty()));
            if (a != b && !r) CHECK_FALSE(ab.empty());
        }
    }
}

TEST_CASE("comparator: classification of whole answers", "[comparator]") {
    cmp::endpoint_rules r;
    r.body.keyed.push_back({pat(""), "label"});
    auto cls = [&](unsigned s1, const char* b1, unsigned s2, const char* b2) {
        return cmp::compare({s1, b1}, {s2, b2}, r).what;
    };
    CHECK(cls(200, R"([{"label":"a"}])", 200, R"([ {"label" : "a"} ])") == result::match);
    CHECK(cls(200, R"([{"label":"a","n":1}])", 200, R"([{"label":"a","n":2}])") ==
          result::mismatch);
    CHECK(cls(200, R"([{"label":"a"},{"label":"b"}])", 200, R"([{"label":"a"}])") ==
          result::missing_in_v2);
    CHECK(cls(200, R"([{"label":"a"}])", 200, R"([{"label":"a"},{"label":"x"}])") ==
          result::extra_in_v2);
    CHECK(cls(200, R"([{"label":"a"}])", 200, R"([{"label":"x"}])") == result::mismatch);
    CHECK(cls(200, "{}", 404, R"({"detail":"x"})") == result::missing_in_v2);
    CHECK(cls(404, R"({"detail":"x"})", 200, "{}") == result::extra_in_v2);
    CHECK(cls(200, "{}", 500, "boom") == result::status_mismatch);
    CHECK(cls(422, R"({"detail":[1]})", 422, R"({"detail":[2]})") == result::match);
    // v1 failing is never evidence about v2: whatever v2 answers.
    CHECK(cls(500, "Internal Server Error", 404, R"({"detail":"x"})") == result::v1_error);
    CHECK(cls(500, "Internal Server Error", 500, "Internal Server Error") == result::v1_error);
    CHECK(cls(502, R"({"error":"upstream_error"})", 200, "{}") == result::v1_error);
    CHECK_FALSE(cmp::is_discrepancy(result::v1_error));
    CHECK(cmp::name(result::v1_error) == "v1_error");
    CHECK_FALSE(cmp::is_discrepancy(result::revision_form));
    CHECK(cmp::name(result::revision_form) == "revision_form");
    // Bodies that are not JSON on both sides compare byte for byte.
    const auto text = cmp::compare({409, "conflict"}, {409, "boom"}, r);
    CHECK(text.what == result::mismatch);
    REQUIRE(text.body.differences.size() == 1);
    CHECK(text.body.differences[0].path.empty());
    CHECK(cmp::is_discrepancy(result::status_mismatch));
    CHECK_FALSE(cmp::is_discrepancy(result::lagging));
    CHECK_FALSE(cmp::is_discrepancy(result::v2_error));
    CHECK(cmp::name(result::missing_in_v2) == "missing_in_v2");
}

TEST_CASE("comparator: discrepancy records, redacted", "[comparator]") {
    cmp::endpoint_rules r;
    cmp::discrepancy d;
    d.time_ms = 1795320000123;
    d.request_id = "rid";
    d.endpoint = "get_block";
    d.user = "alice";
    d.target = "/users/alice/blocks/student";
    d.v2_source = "dolt";
    d.v1_status = 200;
    d.v1_body = R"({"label":"student","content":"secret text","pending_diffs":1})";
    d.v2_status = 200;
    d.v2_body = R"({"label":"student","content":"other text","pending_diffs":1})";
    const auto c = cmp::compare({d.v1_status, d.v1_body}, {d.v2_status, d.v2_body}, r);
    d.what = c.what;
    d.diff = c.body;
    const json plain = cmp::to_json(d);
    CHECK(plain["result"] == "mismatch");
    CHECK(plain["differences"][0]["path"] == "/content");
    CHECK(plain["differences"][0]["v1"] == "secret text");
    CHECK(plain["v1"]["body"]["content"] == "secret text");
    CHECK(plain["v2"]["status"] == 200);

    cmp::redaction red;
    red.fields = {"content"};
    const json hidden = cmp::to_json(d, red);
    CHECK(hidden["differences"][0]["v1"] == "[redacted 11 bytes]");
    CHECK(hidden["v1"]["body"]["content"] == "[redacted 11 bytes]");
    CHECK(hidden["v1"]["body"]["label"] == "student");
    CHECK(hidden.dump().find("secret") == std::string::npos);
    cmp::redaction all;
    all.all_strings = true;
    const json none_left = cmp::to_json(d, all);
    CHECK(none_left["v1"]["body"]["label"] == "[redacted 7 bytes]");
    CHECK(none_left["v1"]["body"]["pending_diffs"] == 1);
    CHECK(none_left.dump().find("secret") == std::string::npos);
}

// ---- mapping: a v2 answer of another shape into v1's -----------------------------------------

namespace {

using sg::comparator::map_step;

map_step move(std::string from, std::string to) {
    return {map_step::op::move, std::move(from), std::move(to)};
}
map_step drop(std::string from) { return {map_step::op::drop, std::move(from), ""}; }

nlohmann::json mapped(const char* doc, const std::vector<map_step>& steps) {
    auto j = nlohmann::json::parse(doc);
    sg::comparator::apply_mapping(j, steps);
    return j;
}

}  // namespace

TEST_CASE("mapping: moves, drops, elements under *", "[comparator]") {
    using nlohmann::json;
    // Renames and moves between levels, creating parents.
    CHECK(mapped(R"({"block": {"name": "s", "text": "c"}, "pending": 2})",
                 {move("/block/name", "/label"), move("/block/text", "/content"),
                  move("/pending", "/pending_diffs"), drop("/block")}) ==
          json::parse(R"({"label": "s", "content": "c", "pending_diffs": 2})"));
    CHECK(mapped(R"({"a": 1})", {move("/a", "/x/y/z")}) ==
          json::parse(R"({"x": {"y": {"z": 1}}})"));
    // Every element of an array, then the array becomes the document.
    CHECK(
        mapped(R"({"items": [{"name": "a", "pending": 1}, {"name": "b", "pending": 0}],
                     "count": 2})",
               {move("/items/*/name", "/items/*/label"),
                move("/items/*/pending", "/items/*/pending_diffs"), move("/items", "")}) ==
        json::parse(R"([{"label": "a", "pending_diffs": 1}, {"label": "b", "pending_diffs": 0}])"));
    // An element replaced by one of its fields; * over object members; nested *.
    CHECK(mapped(R"([{"v": {"id": 1}}, {"v": {"id": 2}}])", {move("/*/v", "/*")}) ==
          json::parse(R"([{"id": 1}, {"id": 2}])"));
    CHECK(mapped(R"({"m": {"a": {"old": 1}, "b": {"old": 2}}})", {move("/m/*/old", "/m/*/new")}) ==
          json::parse(R"({"m": {"a": {"new": 1}, "b": {"new": 2}}})"));
    CHECK(mapped(R"([{"xs": [{"k": 1}]}, {"xs": []}])", {move("/*/xs/*/k", "/*/xs/*/key")}) ==
          json::parse(R"([{"xs": [{"key": 1}]}, {"xs": []}])"));
    CHECK(mapped(R"([{"a": 1, "b": 2}])", {drop("/*/b")}) == json::parse(R"([{"a": 1}])"));
    // Array positions; "~1" escapes.
    CHECK(mapped(R"({"l": [1, 2, 3]})", {move("/l/0", "/first")}) ==
          json::parse(R"({"l": [2, 3], "first": 1})"));
    CHECK(mapped(R"({"a/b": 1})", {move("/a~1b", "/c")}) == json::parse(R"({"c": 1})"));
    // Absent sources change nothing; a destination under a scalar leaves the value where it was.
    CHECK(mapped(R"({"a": 1})", {move("/nope", "/b"), drop("/gone"), move("/x/*/y", "/x/*/z")}) ==
          json::parse(R"({"a": 1})"));
    CHECK(mapped(R"({"a": 1, "s": "text"})", {move("/a", "/s/inner")}) ==
          json::parse(R"({"a": 1, "s": "text"})"));
    // Steps that fail check_step are skipped.
    CHECK(mapped(R"({"a": 1})", {move("a", "/b")}) == json::parse(R"({"a": 1})"));
}

TEST_CASE("mapping: check_step names what is wrong", "[comparator]") {
    using sg::comparator::check_step;
    CHECK(check_step(move("/a", "/b")).empty());
    CHECK(check_step(move("/items/*/a", "/items/*/b")).empty());
    CHECK(check_step(move("/items", "")).empty());
    CHECK(check_step(drop("/a/*/b")).empty());
    CHECK_THAT(check_step(move("a", "/b")), Catch::Contains("not a JSON Pointer"));
    CHECK_THAT(check_step(move("/a", "b")), Catch::Contains("not a JSON Pointer"));
    CHECK_THAT(check_step(move("/items/*/a", "/other/*/a")), Catch::Contains("same up to"));
    CHECK_THAT(check_step(move("/items/*/a", "/a")), Catch::Contains("same up to"));
    CHECK_THAT(check_step(move("/a", "/items/*/a")), Catch::Contains("same up to"));
    CHECK_THAT(check_step(drop("")), Catch::Contains("whole document"));
}
