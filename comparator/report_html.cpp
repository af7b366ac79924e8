// comparator/report_html: the report as a self-contained HTML page (report.hpp, to_html).
#include "comparator/report.hpp"

#include "adapters/v1/utf8.hpp"
#include "comparator/compare.hpp"
#include "comparator/json_diff.hpp"
#include "comparator/report_internal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

namespace sg::comparator::report {

namespace {

using json = nlohmann::json;
using detail::compact;
using detail::iso;
using detail::percent;
using detail::results;

// Whether the result named `n` is a discrepancy (comparator::is_discrepancy).
bool is_discrepancy(std::string_view n) {
    for (const auto r : comparator::all_results()) {
        if (comparator::name(r) == n) return comparator::is_discrepancy(r);
    }
    return false;
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

// The page up to the gate: the document head and its inline style, the verdict, the scope.
void html_head(const json& r, std::string& out) {
    const bool go = r.value("verdict", "") == "GO";
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
}

void html_gate(const json& r, std::string& out) {
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
}

void html_endpoints(const json& r, std::string& out) {
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
}

void html_top_paths(const json& r, std::string& out) {
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
}

// One sample discrepancy: its differences, then both bodies side by side with the differing
// values marked.
void html_sample(const json& s, std::string& out) {
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
        out += fmt::format("<div><h4>{} (status {}{})</h4><pre class=\"{}\">{}</pre></div>", side,
                           body.value("status", 0),
                           std::string(side) == "v2" ? ", " + html_escape(s.value("v2_source", ""))
                                                     : std::string(),
                           side, text);
    }
    out += "</div></section>\n";
}

void html_mirror(const json& r, std::string& out) {
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
}

void html_stages(const json& r, std::string& out) {
    out += "<h2>Stages</h2>\n";
    if (r["plan"].is_null()) {
        out += "<p class=\"muted\">No control plane.</p>\n";
        return;
    }
    const json& p = r["plan"];
    out += fmt::format("<table id=\"plan\"><tr><th>cohort</th><th>users</th><th>stage</th></tr>");
    for (const auto& c : p["cohorts"]) {
        const std::string who =
            c.contains("percent")
                ? fmt::format("{}% by a sticky hash", c["percent"].get<double>())
                : fmt::format("{} listed", c.value("users", json::array()).size());
        out +=
            fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        html_escape(c.value("name", "")), who, html_escape(c.value("stage", "")));
    }
    out += fmt::format(
        "<tr><td>default</td><td>everyone else</td><td>{}</td></tr></table>\n<p class=\"muted\">"
        "plan version {}</p>\n",
        html_escape(p.value("default", "")), p.value("version", 0));
    if (r["stage_changes"].empty()) return;
    out +=
        "<table id=\"stage-changes\"><tr><th>when</th><th>version</th><th>change</th>"
        "<th>cohort</th><th>who</th><th>why</th><th>gate</th></tr>";
    for (const auto& h : r["stage_changes"]) {
        const std::string what = h.value("event", "") == "stage"
                                     ? html_escape(h.value("from", "")) + " &rarr; " +
                                           html_escape(h.value("to", "")) +
                                           (h.value("forced", false) ? " (forced)" : "")
                                     : html_escape(h.value("event", ""));
        const json& g = h.contains("gate") ? h["gate"] : json();
        out += fmt::format(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></"
            "tr>",
            html_escape(h.value("at", "")), h.value("version", 0), what,
            html_escape(h.value("cohort", "")), html_escape(h.value("who", "")),
            html_escape(h.value("why", "")),
            g.is_object() && g.contains("go") ? (g["go"].get<bool>() ? "GO" : "NO-GO") : "");
    }
    out += "</table>\n";
}

}  // namespace

std::string to_html(const json& r) {
    std::string out;
    html_head(r, out);
    html_gate(r, out);
    html_endpoints(r, out);
    out += "<h2>Discrepancy rate over time</h2>\n" + svg_chart(r["rate_over_time"]) + "\n";
    html_top_paths(r, out);
    out += fmt::format(
        "<h2>Sample discrepancies</h2><p class=\"muted\">{} shown of {} recorded "
        "in range; the differing values are highlighted.</p>\n",
        r["samples"].size(), r.value("recorded_discrepancies_in_range", 0));
    for (const auto& s : r["samples"]) html_sample(s, out);
    html_mirror(r, out);
    html_stages(r, out);
    out += "</body></html>\n";
    return out;
}

}  // namespace sg::comparator::report
