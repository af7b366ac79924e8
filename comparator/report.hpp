// comparator/report: the discrepancy report people read before cutover, in three formats: JSON
// (machines), Markdown (a ticket) and a self-contained HTML page (no external assets: inline CSS
// and an inline SVG chart). Built from what the service knows: the gate's verdict and evidence
// (counts per endpoint, the rate over time), the recorded discrepancies, the differing field
// paths and the mirror's health. Pure: data in, text out.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace sg::comparator::report {

struct filter {
    std::string endpoint;                 // "" for all
    std::optional<std::int64_t> from_ms;  // Unix ms, inclusive
    std::optional<std::int64_t> to_ms;    // Unix ms, exclusive
};

struct sources {
    nlohmann::json gate;             // GET /admin/gate's document (verdict, criteria, evidence)
    nlohmann::json discrepancies;    // GET /admin/discrepancies' records, newest first
    nlohmann::json differing_paths;  // [{endpoint, target, path, count}]
    nlohmann::json mirror;           // GET /admin/mirror's document, or null (no mirror)
    nlohmann::json control;          // GET /admin/stage's document (plan, recent_changes), or null
    double confidence = 0.95;        // for each endpoint's rate bound
    std::int64_t now_ms = 0;
    std::size_t max_samples = 10;  // discrepancies shown side by side
};

// The report as one JSON document: generated_at, filter, verdict and criteria, endpoints (counts
// by result, discrepancy rate and its bound), top_paths, rate_over_time, samples, mirror, plan
// (the stage of each cohort) and stage_changes (the newest changes, newest first).
nlohmann::json build(const sources& in, const filter& f);

std::string to_markdown(const nlohmann::json& report);
std::string to_html(const nlohmann::json& report);

// "2026-11-22T10:00:00Z" (or any form comparator::parse_timestamp reads, naive as UTC) or Unix
// milliseconds; nullopt when it is neither.
std::optional<std::int64_t> parse_time(const std::string& s);

}  // namespace sg::comparator::report
