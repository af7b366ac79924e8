// tests/unit/comparator/test_report: the report from its sources: counts and bounds per endpoint,
// the endpoint and time filters, the rate over time, samples side by side with the differing values
// marked, and escaping (bodies are other people's text: never markup in the page, never a broken
// Markdown table).
#include <catch2/catch.hpp>

#include <sstream>

#include "comparator/report.hpp"

namespace rp = sg::comparator::report;
using nlohmann::json;

namespace {

constexpr std::int64_t t0 = 1'800'000'000'000;

rp::sources sample_sources() {
    rp::sources in;
    in.now_ms = t0 + 7'200'000;
    in.gate = json::parse(R"({
      "verdict": "NO-GO", "stage": "shadow",
      "criteria": [
        {"criterion": "shadow_held", "endpoint": "", "measured": "2.0 h", "threshold": ">= 168 h",
         "pass": false, "status": "fail"},
        {"criterion": "coverage", "endpoint": "get_block", "measured": "30 compared",
         "threshold": ">= 20 compared", "pass": true, "status": "pass"},
        {"criterion": "coverage", "endpoint": "list_diffs", "measured": "0 compared",
         "threshold": ">= 20 compared", "pass": false, "status": "uncovered"}],
      "evidence": {"target": "dolt", "history_bucket_ms": 3600000,
        "counts": {"get_block": {"match": 27, "lagging": 1, "mismatch": 2, "skipped": 5},
                   "list_diffs": {"skipped": 3}},
        "history": [
          {"t_ms": 1800000000000, "endpoints": {"get_block": [20, 0]}},
          {"t_ms": 1800003600000, "endpoints": {"get_block": [10, 2], "list_blocks": [4, 0]}}]}
    })");
    in.discrepancies = json::parse(R"([
      {"time_ms": 1800003700000, "request_id": "r2", "endpoint": "get_block", "user": "u<1>",
       "target": "/users/u1/blocks/student", "v2_source": "dolt", "result": "mismatch",
       "differences": [{"path": "/content", "change": "mismatch", "v1": "hi | there",
                        "v2": "<script>alert(1)</script>"}],
       "v1": {"status": 200, "body": {"label": "student", "content": "hi | there"}},
       "v2": {"status": 200, "body": {"label": "student", "content": "<script>alert(1)</script>"}}},
      {"time_ms": 1800000100000, "request_id": "r1", "endpoint": "list_blocks", "user": "u2",
       "target": "/users/u2/blocks", "v2_source": "dolt", "result": "extra_in_v2",
       "differences": [{"path": "/ghost", "change": "extra_in_v2", "v2": {"label": "ghost"}}],
       "v1": {"status": 200, "body": []}, "v2": {"status": 200, "body": [{"label": "ghost"}]}}
    ])");
    in.differing_paths = json::parse(R"([
      {"endpoint": "get_block", "target": "dolt", "path": "/content", "count": 2},
      {"endpoint": "get_block", "target": "v2_http", "path": "/body", "count": 9},
      {"endpoint": "list_blocks", "target": "dolt", "path": "/*", "count": 1}])");
    in.mirror = json::parse(R"({"lag_seconds": 0.5, "dirty_users": 1, "parked_users": 2,
                                "circuit": {"state": "closed"}})");
    return in;
}

const json& row(const json& report, const std::string& ep) {
    for (const auto& e : report["endpoints"]) {
        if (e["endpoint"] == ep) return e;
    }
    FAIL("no row for " << ep);
    throw;
}

}  // namespace

TEST_CASE("report: counts, rates and bounds per endpoint; uncovered stays uncovered", "[report]") {
    const auto r = rp::build(sample_sources(), {});
    CHECK(r["verdict"] == "NO-GO");
    const auto& gb = row(r, "get_block");
    CHECK(gb["compared"] == 30);
    CHECK(gb["discrepancies"] == 2);
    CHECK(gb["rate"].get<double>() == Approx(2.0 / 30));
    CHECK(gb["rate_upper_bound"].get<double>() > 2.0 / 30);
    CHECK(gb["skipped"] == 5);
    const auto& ld = row(r, "list_diffs");
    CHECK(ld["covered"] == false);
    CHECK(ld["compared"] == 0);
    // the gate's target only: v2_http's paths are not dolt's
    REQUIRE(r["top_paths"].size() == 2);
    CHECK(r["top_paths"][0]["path"] == "/content");
    CHECK(r["mirror"]["parked_users"] == 2);
    CHECK(r["mirror"]["circuit"] == "closed");
    REQUIRE(r["rate_over_time"].size() == 2);
    CHECK(r["rate_over_time"][1]["compared"] == 14);
    CHECK(r["rate_over_time"][1]["discrepancies"] == 2);
    CHECK(r["samples"].size() == 2);
}

TEST_CASE("report: endpoint and time filters", "[report]") {
    rp::filter f;
    f.endpoint = "get_block";
    auto r = rp::build(sample_sources(), f);
    CHECK(r["endpoints"].size() == 1);
    CHECK(r["samples"].size() == 1);
    CHECK(r["samples"][0]["request_id"] == "r2");
    CHECK(r["criteria"].size() == 2);                 // the general one and get_block's
    CHECK(r["rate_over_time"][1]["compared"] == 10);  // list_blocks' 4 left out

    rp::filter later;
    later.from_ms = t0 + 3'600'000;
    r = rp::build(sample_sources(), later);
    CHECK(r["rate_over_time"].size() == 1);
    CHECK(r["samples"].size() == 1);
    CHECK(r["recorded_discrepancies_in_range"] == 1);
    CHECK(r["filter"]["from"] == "2027-01-15T09:00:00Z");

    rp::filter none;
    none.to_ms = t0 - 1;
    r = rp::build(sample_sources(), none);
    CHECK(r["rate_over_time"].empty());
    CHECK(r["samples"].empty());
}

TEST_CASE("report: HTML is self-contained, escaped, and marks the differing values", "[report]") {
    const auto html = rp::to_html(rp::build(sample_sources(), {}));
    CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>"));
    CHECK_THAT(html, Catch::Contains("id=\"verdict\">NO-GO</span>"));
    CHECK_THAT(html, Catch::Contains("<svg class=\"chart\""));
    CHECK_THAT(html, Catch::Contains("0 (uncovered)"));
    // Bodies are data: no script from them, escaped as text, and the differing value marked.
    CHECK_THAT(html, !Catch::Contains("<script>"));
    CHECK_THAT(html,
               Catch::Contains("<mark>&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</mark>"));
    CHECK_THAT(html, Catch::Contains("u&lt;1&gt;"));
    // No external asset: no src= or href= at all.
    CHECK_THAT(html, !Catch::Contains("src=") && !Catch::Contains("href="));
    // The unmarked part of the body is there too, side by side.
    CHECK_THAT(html, Catch::Contains("class=\"sbs\""));
    CHECK_THAT(html, Catch::Contains("&quot;label&quot;: &quot;student&quot;"));
}

TEST_CASE("report: Markdown tables survive pipes and newlines", "[report]") {
    const auto md = rp::to_markdown(rp::build(sample_sources(), {}));
    CHECK_THAT(md, Catch::StartsWith("# shadowgate report: NO-GO"));
    CHECK_THAT(md, Catch::Contains("hi \\| there"));
    CHECK_THAT(md, Catch::Contains("**uncovered**"));
    CHECK_THAT(md, Catch::Contains("| get_block | 30 |"));
    CHECK_THAT(md, Catch::Contains("lag 0.5 s, dirty users 1, parked users 2, circuit closed"));
}

TEST_CASE("report: Markdown shows a client's text as text, never as markup", "[report]") {
    // Regression: block text, user ids, request ids and body keys are a client's; in the
    // Markdown report none may become a tag, a link, emphasis, a broken code span or a broken row.
    auto in = sample_sources();
    in.discrepancies = json::parse(R"([
      {"time_ms": 1800003700000, "request_id": "id`|<b>x</b>", "endpoint": "get_block",
       "user": "u*1*", "target": "/users/u/blocks/<img src=x onerror=alert(1)>",
       "v2_source": "dolt", "result": "mismatch",
       "differences": [{"path": "/a`b|c", "change": "mismatch",
                        "v1": "<img src=x onerror=alert(1)>\n[link](http://evil) **bold**",
                        "v2": "``x`` | `"}],
       "v1": {"status": 200, "body": {}}, "v2": {"status": 200, "body": {}}}])");
    const auto md = rp::to_markdown(rp::build(in, {}));
    INFO(md);
    // The values are in code spans: no entity needed, nothing outside the fence.
    CHECK_THAT(md, Catch::Contains("`/users/u/blocks/<img src=x onerror=alert(1)>`"));
    CHECK_THAT(md, Catch::Contains("| ``/a`b\\|c`` | mismatch | "
                                   "`<img src=x onerror=alert(1)> [link](http://evil) **bold**` | "
                                   "``` ``x`` \\| ` ``` |"));
    CHECK_THAT(md, Catch::Contains("user `u*1*`, request ``id`|<b>x</b>``,"));
    // Every row of that table has exactly its five unescaped pipes.
    std::size_t rows = 0;
    std::istringstream lines(md);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("| ``/a")) continue;
        ++rows;
        std::size_t pipes = 0;
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '|' && (i == 0 || line[i - 1] != '\\')) ++pipes;
        }
        CHECK(pipes == 5);
    }
    CHECK(rows == 1);
    // Plain text escapes markup too.
    auto gate = sample_sources();
    gate.gate["criteria"][0]["measured"] = "<b>2</b> *h* [x](y) a|b `c`";
    const auto md2 = rp::to_markdown(rp::build(gate, {}));
    CHECK_THAT(md2, Catch::Contains("&lt;b&gt;2&lt;/b&gt; \\*h\\* \\[x\\](y) a\\|b \\`c\\`"));
    CHECK_THAT(md2, Catch::Contains("| get_block |"));
}

TEST_CASE("report: times as ISO 8601 or Unix milliseconds", "[report]") {
    CHECK(rp::parse_time("1800000000000") == 1'800'000'000'000);
    CHECK(rp::parse_time("2027-01-15T09:00:00Z") == 1'800'003'600'000);
    CHECK(rp::parse_time("2027-01-15T10:00:00+01:00") == 1'800'003'600'000);
    CHECK_FALSE(rp::parse_time("yesterday"));
    CHECK_FALSE(rp::parse_time(""));
    CHECK_FALSE(rp::parse_time("99999999999999999999"));
}

TEST_CASE("report: the plan in force and its recent changes, escaped", "[report]") {
    auto in = sample_sources();
    in.control = json::parse(R"({
      "version": 4,
      "plan": {"default": "dualwrite",
               "cohorts": [{"name": "pilot<b>", "stage": "shadow", "users": ["a", "b"]},
                           {"name": "canary", "stage": "shadow", "percent": 2.5}]},
      "recent_changes": [
        {"version": 4, "event": "freeze", "cohort": "all", "from": "", "to": "", "forced": false,
         "who": "ops", "why": "window | 15 min", "gate": {"go": false}, "tag": "",
         "at": "2026-12-08 01:00:02"},
        {"version": 3, "event": "stage", "cohort": "pilot<b>", "from": "dualwrite",
         "to": "shadow", "forced": true, "who": "<i>eve</i>", "why": "hurry", "gate": {"go": false},
         "tag": "shadowgate/shadow/pilot_b_/20261208T010001Z", "at": "2026-12-08 01:00:01"}]
    })");
    const auto doc = rp::build(in, {});
    REQUIRE(doc["plan"]["version"] == 4);
    CHECK(doc["plan"]["default"] == "dualwrite");
    CHECK(doc["plan"]["cohorts"].size() == 2);
    REQUIRE(doc["stage_changes"].size() == 2);
    CHECK(doc["stage_changes"][1]["forced"] == true);

    const auto md = rp::to_markdown(doc);
    CHECK(md.find("## Stages") != std::string::npos);
    CHECK(md.find("Plan version 4: everyone else `dualwrite`") != std::string::npos);
    CHECK(md.find("(2.5% of users) `shadow`") != std::string::npos);
    CHECK(md.find("dualwrite -> shadow (forced)") != std::string::npos);
    CHECK(md.find("`window \\| 15 min`") != std::string::npos);  // a pipe cannot break the table

    const auto html = rp::to_html(doc);
    CHECK(html.find("<table id=\"stage-changes\">") != std::string::npos);
    CHECK(html.find("pilot&lt;b&gt;") != std::string::npos);
    CHECK(html.find("<i>eve</i>") == std::string::npos);
    CHECK(html.find("&lt;i&gt;eve&lt;/i&gt;") != std::string::npos);
    CHECK(html.find("dualwrite &rarr; shadow (forced)") != std::string::npos);
    CHECK(html.rfind("</body></html>") == html.size() - std::string("</body></html>\n").size());

    in.control = nullptr;
    const auto none = rp::build(in, {});
    CHECK(none["plan"].is_null());
    CHECK(rp::to_markdown(none).find("No control plane.") != std::string::npos);
}
