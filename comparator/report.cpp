// comparator/report: see the header.
#include "comparator/report.hpp"

#include "adapters/v1/utf8.hpp"
#include "comparator/compare.hpp"
#include "comparator/gate.hpp"
#include "comparator/json_diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

namespace sg::comparator::report {

namespace {

using json = nlohmann::json;

// The result columns, in reading order (agreement first); every one of comparator::result.
constexpr const char* results[] = {"match",       "lagging",         "mismatch", "missing_in_v2",
                                   "extra_in_v2", "status_mismatch", "v2_error", "v2_timeout",
                                   "v1_error",    "revision_form",   "skipped"};
static_assert(std::size(results) == comparator::result_count);

// Whether the result named `n` is a discrepancy (comparator::is_discrepancy).
bool is_discrepancy(std::string_view n) {
    for (const auto r : comparator::all_results()) {
        if (comparator::name(r) == n) return comparator::is_discrepancy(r);
    }
    return false;
}

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

bool in_range(std::int64_t t, const filter& f) {
    return (!f.from_ms || t >= *f.from_ms) && (!f.to_ms || t < *f.to_ms);
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
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

std::string compact(const json& v, std::size_t max = 120) {
    std::string s = v.is_string() ? v.get<std::string>()
                                  : v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > max) s = s.substr(0, max) + "...";
    return s;
}

// Pretty-printed JSON as HTML, values at `marked` JSON Pointers wrapped in <mark>.
void pretty_html(const json& v, const std::string& path, const std::set<std::string>& marked,
                 int indent, std::string& out) {
    const bool mark = marked.count(path) != 0;
    if (mark) out += "<mark>";
    const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
    if (v.is_object() && !v.empty()) {
        out += "{\n";
        std::size_t i = 0;
        for (const auto& [k, child] : v.items()) {
            out += pad + html_escape(json(k).dump(-1, ' ', false, json::error_handler_t::replace)) +
                   ": ";
            pretty_html(child, path + "/" + comparator::escape_segment(k), marked, indent + 2, out);
            out += ++i < v.size() ? ",\n" : "\n";
        }
        out += std::string(static_cast<std::size_t>(indent), ' ') + "}";
    } else if (v.is_array() && !v.empty()) {
        out += "[\n";
        for (std::size_t i = 0; i < v.size(); ++i) {
            out += pad;
            pretty_html(v[i], path + "/" + std::to_string(i), marked, indent + 2, out);
            out += i + 1 < v.size() ? ",\n" : "\n";
        }
        out += std::string(static_cast<std::size_t>(indent), ' ') + "]";
    } else {
        out += html_escape(v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (mark) out += "</mark>";
}

// The rate over time as an inline SVG line chart (no script, no external asset).
std::string svg_chart(const json& points) {
    constexpr int w = 720, h = 200, left = 48, bottom = 24, top = 10, right = 10;
    if (points.empty()) {
        return "<p class=\"muted\">No compared reads in this range.</p>";
    }
    const auto t0 = points.front().at("t_ms").get<std::int64_t>();
    const auto t1 = std::max<std::int64_t>(points.back().at("t_ms").get<std::int64_t>(), t0 + 1);
    double ymax = 0.001;
    for (const auto& p : points) ymax = std::max(ymax, p.at("rate").get<double>());
    ymax *= 1.15;
    auto x = [&](std::int64_t t) {
        return left +
               static_cast<double>(t - t0) / static_cast<double>(t1 - t0) * (w - left - right);
    };
    auto y = [&](double r) { return top + (1 - r / ymax) * (h - top - bottom); };
    std::string line;
    std::string dots;
    for (const auto& p : points) {
        const double px = points.size() == 1 ? left + (w - left - right) / 2.0
                                             : x(p.at("t_ms").get<std::int64_t>());
        const double py = y(p.at("rate").get<double>());
        line += fmt::format("{:.1f},{:.1f} ", px, py);
        dots += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"><title>{}: {} of {} ({})</title></circle>",
            px, py, iso(p.at("t_ms").get<std::int64_t>()),
            p.at("discrepancies").get<std::uint64_t>(), p.at("compared").get<std::uint64_t>(),
            percent(p.at("rate").get<double>()));
    }
    return fmt::format(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" "
        "aria-label=\"discrepancy rate over time\">"
        "<line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/>"
        "<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" class=\"axis\"/>"
        "<text x=\"4\" y=\"{ty}\">{ymax}</text><text x=\"4\" y=\"{b}\">0%</text>"
        "<text x=\"{l}\" y=\"{h}\">{from}</text>"
        "<text x=\"{r}\" y=\"{h}\" text-anchor=\"end\">{to}</text>"
        "<polyline points=\"{line}\" class=\"rate\"/>{dots}</svg>",
        fmt::arg("w", w), fmt::arg("h", h - 2), fmt::arg("l", left), fmt::arg("r", w - right),
        fmt::arg("b", h - bottom), fmt::arg("t", top), fmt::arg("ty", top + 10),
        fmt::arg("ymax", percent(ymax)), fmt::arg("from", iso(t0)), fmt::arg("to", iso(t1)),
        fmt::arg("line", line), fmt::arg("dots", dots));
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
    json criteria = json::array();
    const json all_criteria = in.gate.value("criteria", json::array());
    for (const auto& c : all_criteria) {
        if (!f.endpoint.empty() && !c.value("endpoint", "").empty() &&
            c.value("endpoint", "") != f.endpoint) {
            continue;
        }
        criteria.push_back(c);
    }
    out["criteria"] = std::move(criteria);
    const json evidence = in.gate.value("evidence", json::object());
    out["target"] = evidence.value("target", "");

    // Per endpoint, everything since the evidence began.
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
        e["rate_upper_bound"] = gate::wilson_upper(c.discrepancies(), c.compared(), in.confidence);
        e["covered"] = c.compared() > 0;
        endpoints.push_back(std::move(e));
    }
    out["endpoints"] = std::move(endpoints);
    out["confidence"] = in.confidence;

    json paths = json::array();
    for (const auto& p : in.differing_paths) {
        if (!f.endpoint.empty() && p.value("endpoint", "") != f.endpoint) continue;
        if (!out["target"].get<std::string>().empty() &&
            p.value("target", "") != out["target"].get<std::string>()) {
            continue;
        }
        paths.push_back(p);
    }
    std::stable_sort(paths.begin(), paths.end(), [](const json& a, const json& b) {
        return a.value("count", 0) > b.value("count", 0);
    });
    if (paths.size() > 20) paths.erase(paths.begin() + 20, paths.end());
    out["top_paths"] = std::move(paths);

    // The rate over time, from the evidence's buckets, in the range.
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
    out["rate_over_time"] = std::move(series);

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

    if (in.mirror.is_object()) {
        out["mirror"] = {
            {"lag_seconds", in.mirror.value("lag_seconds", 0.0)},
            {"dirty_users", in.mirror.value("dirty_users", 0)},
            {"parked_users", in.mirror.value("parked_users", 0)},
            {"circuit",
             in.mirror.value("circuit", json::object()).value("state", std::string("unknown"))},
            {"recent_lag_seconds", in.mirror.value("recent_lag_seconds", json::object())}};
    } else {
        out["mirror"] = nullptr;
    }
    return out;
}

std::string to_markdown(const json& r) {
    std::string out;
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
    out += "## Mirror\n\n";
    if (r["mirror"].is_null())
        out += "Not running (stage off).\n";
    else {
        const json& m = r["mirror"];
        out += fmt::format("lag {:.3g} s, dirty users {}, parked users {}, circuit {}\n",
                           m.value("lag_seconds", 0.0), m.value("dirty_users", 0),
                           m.value("parked_users", 0), m.value("circuit", ""));
    }
    return out;
}

std::string to_html(const json& r) {
    const bool go = r.value("verdict", "") == "GO";
    std::string out;
    out +=
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>shadowgate report: " +
        html_escape(r.value("verdict", "")) +
        "</title><style>"
        "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}"
        "h1{margin:0 0 4px}.verdict{display:inline-block;padding:4px 14px;border-radius:4px;"
        "color:#fff;font-weight:bold}.go{background:#1b7f3b}.nogo{background:#b3261e}"
        "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        "td.num{text-align:right}.fail{color:#b3261e;font-weight:bold}.ok{color:#1b7f3b}"
        ".uncovered{color:#a15c00;font-weight:bold}.muted{color:#777}"
        ".sbs{display:flex;gap:12px}.sbs>div{flex:1;min-width:0}"
        "pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;overflow:auto;"
        "white-space:pre-wrap;word-break:break-all}mark{background:#ffe08a}"
        ".chart .axis{stroke:#999}.chart .rate{fill:none;stroke:#b3261e;stroke-width:2}"
        ".chart circle{fill:#b3261e}.chart text{font-size:11px;fill:#555}"
        "</style></head><body>\n";
    out += fmt::format(
        "<h1>shadowgate report <span class=\"verdict {}\" id=\"verdict\">{}"
        "</span></h1>\n",
        go ? "go" : "nogo", html_escape(r.value("verdict", "")));
    std::string scope =
        fmt::format("Generated {} — stage {}, target {}", r.value("generated_at", ""),
                    r.value("stage", ""), r.value("target", ""));
    const json& f = r["filter"];
    if (!f.value("endpoint", "").empty()) scope += ", endpoint " + f["endpoint"].get<std::string>();
    if (!f["from"].is_null()) scope += ", from " + f["from"].get<std::string>();
    if (!f["to"].is_null()) scope += ", to " + f["to"].get<std::string>();
    out += "<p class=\"muted\">" + html_escape(scope) + "</p>\n";

    out +=
        "<h2>Gate</h2><table id=\"criteria\"><tr><th></th><th>criterion</th><th>endpoint</th>"
        "<th>measured</th><th>threshold</th></tr>\n";
    for (const auto& c : r["criteria"]) {
        const bool pass = c.value("pass", false);
        const bool uncovered = c.value("status", "") == "uncovered";
        out += fmt::format(
            "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>\n",
            pass        ? "ok"
            : uncovered ? "uncovered"
                        : "fail",
            pass        ? "ok"
            : uncovered ? "uncovered"
                        : "FAIL",
            html_escape(c.value("criterion", "")), html_escape(c.value("endpoint", "")),
            html_escape(c.value("measured", "")), html_escape(c.value("threshold", "")));
    }
    out += "</table>\n";

    out += fmt::format(
        "<h2>Endpoints</h2><p class=\"muted\">Since the evidence began. Rate "
        "bound: Wilson upper bound at {} confidence.</p><table id=\"endpoints\">"
        "<tr><th>endpoint</th><th>compared</th>",
        percent(r.value("confidence", 0.95)));
    for (const char* k : results) out += fmt::format("<th>{}</th>", k);
    out += "<th>rate</th><th>bound</th></tr>\n";
    for (const auto& e : r["endpoints"]) {
        const bool covered = e["covered"].get<bool>();
        out += fmt::format(
            "<tr><td>{}</td><td class=\"num{}\">{}</td>",
            html_escape(e["endpoint"].get<std::string>()), covered ? "" : " uncovered",
            covered ? std::to_string(e["compared"].get<std::uint64_t>()) : "0 (uncovered)");
        for (const char* k : results) {
            const bool bad = is_discrepancy(k);
            const auto n = e.value(k, std::uint64_t{0});
            out += fmt::format("<td class=\"num{}\">{}</td>", bad && n ? " fail" : "", n);
        }
        out += fmt::format("<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                           percent(e["rate"].get<double>()),
                           covered ? percent(e["rate_upper_bound"].get<double>()) : "-");
    }
    out += "</table>\n";

    out += "<h2>Discrepancy rate over time</h2>\n" + svg_chart(r["rate_over_time"]) + "\n";

    out += "<h2>Top differing paths</h2>\n";
    if (r["top_paths"].empty()) {
        out += "<p class=\"muted\">None.</p>\n";
    } else {
        out += "<table id=\"paths\"><tr><th>endpoint</th><th>path</th><th>count</th></tr>\n";
        for (const auto& p : r["top_paths"]) {
            out += fmt::format(
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>"
                "</tr>\n",
                html_escape(p.value("endpoint", "")), html_escape(p.value("path", "")),
                p.value("count", 0));
        }
        out += "</table>\n";
    }

    out += fmt::format(
        "<h2>Sample discrepancies</h2><p class=\"muted\">{} shown of {} recorded "
        "in range; the differing values are highlighted.</p>\n",
        r["samples"].size(), r.value("recorded_discrepancies_in_range", 0));
    for (const auto& s : r["samples"]) {
        std::set<std::string> marked;
        out += fmt::format(
            "<section class=\"sample\"><h3>{} — {} <span class=\"muted\">{} · "
            "user {} · request {} · {}</span></h3>\n",
            html_escape(s.value("endpoint", "")), html_escape(s.value("result", "")),
            html_escape(s.value("time", "")), html_escape(v1::escaped(s.value("user", ""))),
            html_escape(s.value("request_id", "")), html_escape(s.value("target", "")));
        out +=
            "<table class=\"differences\"><tr><th>path</th><th>change</th><th>v1</th>"
            "<th>v2</th></tr>\n";
        for (const auto& d : s.value("differences", json::array())) {
            marked.insert(d.value("path", ""));
            out += fmt::format(
                "<tr><td><code>{}</code></td><td>{}</td><td><mark>{}</mark></td>"
                "<td><mark>{}</mark></td></tr>\n",
                html_escape(d.value("path", "")), html_escape(d.value("change", "")),
                d.contains("v1") ? html_escape(compact(d["v1"])) : "",
                d.contains("v2") ? html_escape(compact(d["v2"])) : "");
        }
        out += "</table><div class=\"sbs\">";
        for (const char* side : {"v1", "v2"}) {
            const json& body = s.value(side, json::object());
            std::string text;
            pretty_html(body.value("body", json()), "", marked, 0, text);
            out +=
                fmt::format("<div><h4>{} (status {}{})</h4><pre class=\"{}\">{}</pre></div>", side,
                            body.value("status", 0),
                            std::string(side) == "v2" ? ", " + html_escape(s.value("v2_source", ""))
                                                      : std::string(),
                            side, text);
        }
        out += "</div></section>\n";
    }

    out += "<h2>Mirror</h2>\n";
    if (r["mirror"].is_null()) {
        out += "<p class=\"muted\">Not running (stage off).</p>\n";
    } else {
        const json& m = r["mirror"];
        out += fmt::format(
            "<table id=\"mirror\"><tr><th>lag</th><td>{:.3g} s</td></tr><tr><th>"
            "dirty users</th><td>{}</td></tr><tr><th>parked users</th><td>{}</td>"
            "</tr><tr><th>circuit</th><td>{}</td></tr></table>\n",
            m.value("lag_seconds", 0.0), m.value("dirty_users", 0), m.value("parked_users", 0),
            html_escape(m.value("circuit", "")));
    }
    out += "</body></html>\n";
    return out;
}

}  // namespace sg::comparator::report
