// comparator/compare: decides whether v2's answer to a read agrees with v1's, and if not, how:
// status first, then the bodies as JSON under the endpoint's rules (json_diff.hpp). Also the
// result classes every shadow comparison ends in, and their names (metric label values). Pure.
#pragma once

#include "comparator/json_diff.hpp"

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace sg::comparator {

enum class result {
    match,            // same status, bodies equal under the rules
    mismatch,         // same status, bodies differ (values changed, or both missing and extra)
    missing_in_v2,    // v1 has something v2 lacks: only missing parts, or v1 2xx and v2 404
    extra_in_v2,      // v2 has something v1 lacks: only extra parts, or v1 404 and v2 2xx
    status_mismatch,  // other status differences
    v2_error,         // v2 could not answer (Dolt unreachable or failing, v2 service error)
    v2_timeout,       // v2 did not answer within the comparison's deadline
    v1_error,         // v1 answered 5xx: v1 failing, no evidence about v2 (never compared)
    revision_form,    // a version read by a git revision v2 has no columns for (a branch name,
                      // a reflog "@{N}", ":/text"): v1 asks git, v2 cannot (never compared)
    lagging,          // differed at first, agreed once the mirror had settled: not a discrepancy
    skipped,          // not compared (the reason is counted separately)
};

inline constexpr std::size_t result_count = static_cast<std::size_t>(result::skipped) + 1;

std::string_view name(result r);
const std::array<result, result_count>& all_results();

// Whether `r` is a discrepancy (recorded and counted against the gate).
bool is_discrepancy(result r);

struct response {
    unsigned status = 0;
    std::string_view body;
};

struct comparison {
    result what = result::match;
    diff_result body;  // the differences of the bodies (empty for status classes)
};

// Rules plus what applies to whole answers.
struct endpoint_rules {
    rules body;
    // Answers with these statuses (on both sides) compare by status only: v1's 422 bodies depend
    // on its pydantic version (v1-contract.md §1).
    std::vector<unsigned> status_only_codes{422};
};

// v1 answered 5xx (shadowgate's own 502/504 for an unreachable v1 included): v1 failing (a file
// name too long, a bug, a restart) says nothing about v2, so it is never a discrepancy.
inline bool v1_failed(unsigned v1_status) { return v1_status >= 500; }

// Compares v1's answer with v2's (v1_error, whatever v2 says, when v1_failed). Bodies that are JSON
// on both sides are compared structurally; otherwise byte for byte (a difference at "" with both
// texts).
comparison compare(const response& v1, const response& v2, const endpoint_rules& r,
                   std::size_t max_differences = 200);

}  // namespace sg::comparator
