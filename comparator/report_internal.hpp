// comparator/report_internal: what the two files behind report.hpp share: report.cpp (the JSON
// document and the Markdown) and report_html.cpp (the HTML page). Only they include it.
#pragma once

#include "comparator/compare.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

namespace sg::comparator::report::detail {

// The result columns, in reading order (agreement first); every one of comparator::result.
inline constexpr const char* results[] = {
    "match",    "lagging",    "mismatch", "missing_in_v2", "extra_in_v2", "status_mismatch",
    "v2_error", "v2_timeout", "v1_error", "revision_form", "skipped"};
static_assert(std::size(results) == comparator::result_count);

// Unix milliseconds as "2026-11-22T10:00:00Z" (UTC).
std::string iso(std::int64_t ms);

// A fraction as a percentage, three significant digits ("1.25%").
std::string percent(double x);

// A value for a table cell: a string as it is, anything else as one-line JSON; cut after `max`
// bytes, with "..." after the cut.
std::string compact(const nlohmann::json& v, std::size_t max = 120);

}  // namespace sg::comparator::report::detail
