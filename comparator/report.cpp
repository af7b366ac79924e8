// comparator/report: see the header. The JSON document and its Markdown form; the HTML page is
// in report_html.cpp.
#include "comparator/report.hpp"

#include "adapters/v1/utf8.hpp"
#include "comparator/compare.hpp"
#include "comparator/gate.hpp"
#include "comparator/json_diff.hpp"
#include "comparator/report_internal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace sg::comparator::report {

namespace detail {

std::string iso(std::int64_t ms) {
    const auto tp = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    const auto days = std::chrono::floor<std::chrono::days>(tp);
    const std::chrono::year_month_day ymd(days);
    const std::chrono::hh_mm_ss hms(std::chrono::floor<std::chrono::seconds>(tp - days));
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

std::string percent(double x) { return fmt::format("{:.3g}%", x * 100); }

std::string compact(const nlohmann::json& v, std::size_t max) {
    std::string s = v.is_string()
                        ? v.get<std::string>()
                        : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (s.size() > max) s = s.substr(0, max) + "...";
    return s;
}

}  // namespace detail

namespace {

using json = nlohmann::json;
using detail::compact;
using detail::iso;
using detail::percent;
using detail::results;

bool in_range(std::int64_t t, const filter& f) {
    return (!f.from_ms || t >= *f.from_ms) && (!f.to_ms || t < *f.to_ms);
}

// Markdown text (table cells and lines): bytes shown as they are. HTML's specials become
// entities (no tag, no entity of theirs is markup); what opens inline markup (backslash, code,
// emphasis, links, strikethrough, a table's pipe, a heading's closing #) is backslash-escaped,
// except an underscore inside a word, which GFM never reads as emphasis (get_block stays
// readable); line ends become spaces (a row or a heading stays one line). Text a client chose
// (paths, ids, bodies) goes in code spans instead (md_code).
std::string md_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto word = [&](std::size_t i) {
        return i < s.size() && std::isalnum(static_cast<unsigned char>(s[i]));
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '\n':
            case '\r': out += ' '; break;
            case '_':
                if (!(i > 0 && word(i - 1) && word(i + 1))) out += '\\';
                out += c;
                break;
            case '\\':
            case '`':
            case '*':
            case '[':
            case ']':
            case '|':
            case '~':
            case '#':
            case '!':
                out += '\\';
                out += c;
                break;
            default: out += c;
        }
    }
    return out;
}

// A Markdown code span of s: nothing in it is markup (not even entities), so only its fence
// needs care: one backtick longer than the longest run inside, a space inside it where s starts
// or ends with a backtick. Line ends become spaces; in a table cell a pipe is written `\|`
// (GFM unescapes it inside code spans in tables; elsewhere it would show).
std::string md_code(std::string_view s, bool in_table) {
    std::size_t longest = 0, run = 0;
    for (const char c : s) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(longest + 1, '`');
    const bool pad = !s.empty() && (s.front() == '`' || s.back() == '`');
    std::string out = fence + (pad ? " " : "");
    for (const char c : s) {
        if (c == '\n' || c == '\r')
            out += ' ';
        else if (c == '|' && in_table)
            out += "\\|";
        else
            out += c;
    }
    return out + (pad ? " " : "") + fence;
}

// The gate's criteria; with an endpoint in the filter, those of other endpoints are left out.
json criteria_in(const json& gate, const filter& f) {
    json criteria = json::array();
    const json all_criteria = gate.value("criteria", json::array());
    for (const auto& c : all_criteria) {
        if (!f.endpoint.empty() && !c.value("endpoint", "").empty() &&
            c.value("endpoint", "") != f.endpoint) {
            continue;
        }
        criteria.push_back(c);
    }
    return criteria;
}

// Per endpoint, everything since the evidence began.
json endpoint_rows(const json& evidence, const filter& f, double confidence) {
    json endpoints = json::array();
    const json counts = evidence.value("counts", json::object());
    for (const auto& [ep, row] : counts.items()) {
        if (!f.endpoint.empty() && ep != f.endpoint) continue;
        json e = {{"endpoint", ep}};
        gate::counts c;
        for (const char* r : results) {
            const auto n = row.value(r, std::uint64_t{0});
            e[r] = n;
            c.by_result[r] = n;
        }
        e["compared"] = c.compared();
        e["discrepancies"] = c.discrepancies();
        e["rate"] = c.compared()
                        ? static_cast<double>(c.discrepancies()) / static_cast<double>(c.compared())
                        : 0.0;
        e["rate_upper_bound"] = gate::wilson_upper(c.discrepancies(), c.compared(), confidence);
        e["covered"] = c.compared() > 0;
        endpoints.push_back(std::move(e));
    }
    return endpoints;
}

// The 20 paths that differ most often, of the filter's endpoint and the evidence's target.
json top_paths(const json& differing_paths, const filter& f, const std::string& target) {
    json paths = json::array();
    for (const auto& p : differing_paths) {
        if (!f.endpoint.empty() && p.value("endpoint", "") != f.endpoint) continue;
        if (!target.empty() && p.value("target", "") != target) continue;
        paths.push_back(p);
    }
    std::stable_sort(paths.begin(), paths.end(), [](const json& a, const json& b) {
        return a.value("count", 0) > b.value("count", 0);
    });
    if (paths.size() > 20) paths.erase(paths.begin() + 20, paths.end());
    return paths;
}

// The rate over time, from the evidence's buckets, in the range.
json rate_over_time(const json& evidence, const filter& f) {
    json series = json::array();
    const json history = evidence.value("history", json::array());
    for (const auto& b : history) {
        const auto t = b.at("t_ms").get<std::int64_t>();
        const auto width = evidence.value("history_bucket_ms", std::int64_t{3'600'000});
        if (f.from_ms && t + width <= *f.from_ms) continue;
        if (f.to_ms && t >= *f.to_ms) continue;
        std::uint64_t compared = 0, bad = 0;
        for (const auto& [ep, cell] : b.at("endpoints").items()) {
            if (!f.endpoint.empty() && ep != f.endpoint) continue;
            compared += cell.at(0).get<std::uint64_t>();
            bad += cell.at(1).get<std::uint64_t>();
        }
        if (compared == 0 && bad == 0) continue;
        series.push_back(
            {{"t_ms", t},
             {"time", iso(t)},
             {"compared", compared},
             {"discrepancies", bad},
             {"rate", compared ? static_cast<double>(bad) / static_cast<double>(compared) : 0.0}});
    }
    return series;
}

// The recorded discrepancies in the filter (samples, the first in.max_samples of them) and how
// many there are (recorded_discrepancies_in_range).
void add_samples(const sources& in, const filter& f, json& out) {
    json samples = json::array();
    std::size_t matching = 0;
    for (const auto& r : in.discrepancies) {
        if (!f.endpoint.empty() && r.value("endpoint", "") != f.endpoint) continue;
        if (!in_range(r.value("time_ms", std::int64_t{0}), f)) continue;
        ++matching;
        if (samples.size() < in.max_samples) {
            json s = r;
            s["time"] = iso(r.value("time_ms", std::int64_t{0}));
            samples.push_back(std::move(s));
        }
    }
    out["samples"] = std::move(samples);
    out["recorded_discrepancies_in_range"] = matching;
}

// The mirror's health, null when there is no mirror.
json mirror_summary(const json& mirror) {
    if (!mirror.is_object()) return nullptr;
    return {
        {"lag_seconds", mirror.value("lag_seconds", 0.0)},
        {"dirty_users", mirror.value("dirty_users", 0)},
        {"parked_users", mirror.value("parked_users", 0)},
        {"circuit", mirror.value("circuit", json::object()).value("state", std::string("unknown"))},
        {"recent_lag_seconds", mirror.value("recent_lag_seconds", json::object())}};
}

// The title, the report's scope and the gate's criteria.
void md_head(const json& r, std::string& out) {
    out += fmt::format("# shadowgate report: {}\n\n", md_text(r.value("verdict", "NO-GO")));
    out += fmt::format("Generated {} (stage {}, target {})", md_text(r.value("generated_at", "")),
                       md_text(r.value("stage", "")), md_text(r.value("target", "")));
    const json& f = r["filter"];
    if (!f.value("endpoint", "").empty()) {
        out += fmt::format(", endpoint {}", md_text(f["endpoint"].get<std::string>()));
    }
    if (!f["from"].is_null())
        out += fmt::format(", from {}", md_text(f["from"].get<std::string>()));
    if (!f["to"].is_null()) out += fmt::format(", to {}", md_text(f["to"].get<std::string>()));
    out +=
        ".\n\n## Gate\n\n| | criterion | endpoint | measured | threshold "
        "|\n|---|---|---|---|---|\n";
    for (const auto& c : r["criteria"]) {
        out +=
            fmt::format("| {} | {} | {} | {} | {} |\n",
                        c.value("pass", false)
                            ? "ok"
                            : (c.value("status", "") == "uncovered" ? "**uncovered**" : "**FAIL**"),
                        md_text(c.value("criterion", "")), md_text(c.value("endpoint", "")),
                        md_text(c.value("measured", "")), md_text(c.value("threshold", "")));
    }
}

void md_endpoints(const json& r, std::string& out) {
    out += fmt::format(
        "\n## Endpoints\n\nSince the evidence began; rate bound: Wilson upper bound at {} "
        "confidence.\n\n| endpoint | compared | match | lagging | mismatch | missing_in_v2 | "
        "extra_in_v2 | status_mismatch | v2_error | v2_timeout | v1_error | revision_form | "
        "skipped | "
        "rate | bound |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        percent(r.value("confidence", 0.95)));
    for (const auto& e : r["endpoints"]) {
        out += fmt::format("| {} | {} |", md_text(e["endpoint"].get<std::string>()),
                           e["covered"].get<bool>()
                               ? std::to_string(e["compared"].get<std::uint64_t>())
                               : "0 (uncovered)");
        for (const char* k : results) out += fmt::format(" {} |", e.value(k, std::uint64_t{0}));
        out += fmt::format(
            " {} | {} |\n", percent(e["rate"].get<double>()),
            e["covered"].get<bool>() ? percent(e["rate_upper_bound"].get<double>()) : "-");
    }
}

void md_top_paths(const json& r, std::string& out) {
    out += "\n## Top differing paths\n\n";
    if (r["top_paths"].empty())
        out += "None.\n";
    else {
        out += "| endpoint | path | count |\n|---|---|---|\n";
        for (const auto& p : r["top_paths"]) {
            out += fmt::format("| {} | {} | {} |\n", md_text(p.value("endpoint", "")),
                               md_code(p.value("path", ""), true), p.value("count", 0));
        }
    }
}

void md_rate_over_time(const json& r, std::string& out) {
    out += "\n## Discrepancy rate over time\n\n";
    if (r["rate_over_time"].empty())
        out += "No compared reads in this range.\n";
    else {
        out += "| from | compared | discrepancies | rate |\n|---|---|---|---|\n";
        for (const auto& p : r["rate_over_time"]) {
            out += fmt::format("| {} | {} | {} | {} |\n", p["time"].get<std::string>(),
                               p["compared"].get<std::uint64_t>(),
                               p["discrepancies"].get<std::uint64_t>(),
                               percent(p["rate"].get<double>()));
        }
    }
}

void md_samples(const json& r, std::string& out) {
    out += fmt::format("\n## Sample discrepancies ({} shown of {} recorded in range)\n\n",
                       r["samples"].size(), r.value("recorded_discrepancies_in_range", 0));
    for (const auto& s : r["samples"]) {
        out += fmt::format("### {} {} — {} ({})\n\n", md_text(s.value("endpoint", "")),
                           md_code(s.value("target", ""), false), md_text(s.value("result", "")),
                           md_text(s.value("time", "")));
        out += fmt::format("user {}, request {}, v1 status {}, v2 status {} ({})\n\n",
                           md_code(v1::escaped(s.value("user", "")), false),
                           md_code(s.value("request_id", ""), false), s["v1"].value("status", 0),
                           s["v2"].value("status", 0), md_text(s.value("v2_source", "")));
        out += "| path | change | v1 | v2 |\n|---|---|---|---|\n";
        for (const auto& d : s.value("differences", json::array())) {
            out += fmt::format("| {} | {} | {} | {} |\n", md_code(d.value("path", ""), true),
                               md_text(d.value("change", "")),
                               d.contains("v1") ? md_code(compact(d["v1"]), true) : "",
                               d.contains("v2") ? md_code(compact(d["v2"]), true) : "");
        }
        out += "\n";
    }
}

void md_mirror(const json& r, std::string& out) {
    out += "## Mirror\n\n";
    if (r["mirror"].is_null())
        out += "Not running (stage off).\n";
    else {
        const json& m = r["mirror"];
        out += fmt::format("lag {:.3g} s, dirty users {}, parked users {}, circuit {}\n",
                           m.value("lag_seconds", 0.0), m.value("dirty_users", 0),
                           m.value("parked_users", 0), m.value("circuit", ""));
    }
}

// The plan in force and its recent changes, as the report shows them; nulls without a control
// plane.
void add_stages(const json& control, json& out) {
    if (!control.is_object() || !control.contains("plan")) {
        out["plan"] = nullptr;
        out["stage_changes"] = json::array();
        return;
    }
    json plan = control["plan"];
    plan["version"] = control.value("version", 0);
    if (control.contains("freeze")) plan["freeze_state"] = control["freeze"];
    out["plan"] = std::move(plan);
    out["stage_changes"] = control.value("recent_changes", json::array());
}

std::string cohort_selector(const json& c) {
    if (c.contains("percent")) return fmt::format("{}% of users", c["percent"].get<double>());
    return fmt::format("{} users", c.value("users", json::array()).size());
}

void md_stages(const json& r, std::string& out) {
    out += "## Stages\n\n";
    if (r["plan"].is_null()) {
        out += "No control plane.\n\n";
        return;
    }
    const json& p = r["plan"];
    out += fmt::format("Plan version {}: everyone else `{}`", p.value("version", 0),
                       p.value("default", ""));
    for (const auto& c : p["cohorts"]) {
        out += fmt::format("; cohort {} ({}) `{}`", md_code(c.value("name", ""), false),
                           cohort_selector(c), c.value("stage", ""));
    }
    out += ".\n\n";
    if (r["stage_changes"].empty()) return;
    out +=
        "| when | version | change | cohort | who | why | gate |\n|---|---|---|---|---|---|---|\n";
    for (const auto& h : r["stage_changes"]) {
        const std::string what = h.value("event", "") == "stage"
                                     ? h.value("from", "") + " -> " + h.value("to", "") +
                                           (h.value("forced", false) ? " (forced)" : "")
                                     : h.value("event", "");
        const json& g = h.contains("gate") ? h["gate"] : json();
        out += fmt::format(
            "| {} | {} | {} | {} | {} | {} | {} |\n", h.value("at", ""), h.value("version", 0),
            what, md_code(h.value("cohort", ""), true), md_code(h.value("who", ""), true),
            md_code(h.value("why", ""), true),
            g.is_object() && g.contains("go") ? (g["go"].get<bool>() ? "GO" : "NO-GO") : "");
    }
    out += "\n";
}

}  // namespace

std::optional<std::int64_t> parse_time(const std::string& s) {
    if (!s.empty() &&
        std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        if (s.size() > 15) return std::nullopt;
        return std::stoll(s);
    }
    if (auto us = comparator::parse_timestamp(s, 0)) return *us / 1000;
    return std::nullopt;
}

json build(const sources& in, const filter& f) {
    json out;
    out["generated_at"] = iso(in.now_ms);
    json jf = json::object();
    jf["endpoint"] = f.endpoint;
    jf["from"] = f.from_ms ? json(iso(*f.from_ms)) : json(nullptr);
    jf["to"] = f.to_ms ? json(iso(*f.to_ms)) : json(nullptr);
    out["filter"] = std::move(jf);
    out["verdict"] = in.gate.value("verdict", "NO-GO");
    out["stage"] = in.gate.value("stage", "");
    out["criteria"] = criteria_in(in.gate, f);
    const json evidence = in.gate.value("evidence", json::object());
    out["target"] = evidence.value("target", "");
    out["endpoints"] = endpoint_rows(evidence, f, in.confidence);
    out["confidence"] = in.confidence;
    out["top_paths"] = top_paths(in.differing_paths, f, out["target"].get<std::string>());
    out["rate_over_time"] = rate_over_time(evidence, f);
    add_samples(in, f, out);
    out["mirror"] = mirror_summary(in.mirror);
    add_stages(in.control, out);
    return out;
}

std::string to_markdown(const json& r) {
    std::string out;
    md_head(r, out);
    md_endpoints(r, out);
    md_top_paths(r, out);
    md_rate_over_time(r, out);
    md_samples(r, out);
    md_mirror(r, out);
    md_stages(r, out);
    return out;
}

}  // namespace sg::comparator::report
