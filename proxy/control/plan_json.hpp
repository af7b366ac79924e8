// proxy/control/plan_json: the plan as the JSON text stored in the control table and shown by the
// admin API. Reading checks every field and names each problem by its JSON path; what it returns
// has passed routing::plan_problems(). Pure.
//
//   {"default": "shadow",
//    "cohorts": [{"name": "pilot", "stage": "shadow", "users": ["alice", "bob"]},
//                {"name": "canary", "stage": "dualwrite", "percent": 10}],
//    "freeze": {"until_ms": 1765180800000, "cohorts": ["pilot"], "reason": "cutover"}}
#pragma once

#include "proxy/common/result.hpp"
#include "proxy/routing/plan.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace sg::control {

// Without the version (the table keeps it in a column of its own).
nlohmann::json to_json(const routing::plan& p);
// The plan in `text` (its version left 0), or every problem found, one per line, by JSON path.
proxy::result<routing::plan> plan_from_json(std::string_view text);

// A percentage as given by an operator ("10", "2.5"; at most two decimals) in basis points, or a
// failure that says why (outside 0..100, not a number, too precise).
proxy::result<std::uint32_t> parse_percent(std::string_view text);
// Why `v` is not a percentage of a cohort ("must be between 0 and 100", "has at most two
// decimals"), or nullopt.
std::optional<std::string> percent_problem(double v);
// Basis points as a percentage for people: 1000 -> "10", 250 -> "2.5".
std::string percent_text(std::uint32_t basis_points);

}  // namespace sg::control
