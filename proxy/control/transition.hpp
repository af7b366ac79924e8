// proxy/control/transition: how an operator's stage change turns one plan into the next, and
// which changes are legal (design.md §1): a cohort moves forward one stage at a time (no stage is
// skipped) and back to any earlier stage at any time. Pure.
#pragma once

#include "proxy/common/result.hpp"
#include "proxy/routing/plan.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sg::control {

// What `stage set` asks for.
struct stage_change {
    config::stage to = config::stage::off;
    // The cohort changed; empty or "default": the plan's default (the rest).
    std::string cohort;
    // A new selector for the cohort (at most one); neither: the cohort keeps its own (it must
    // exist then).
    std::optional<std::vector<std::string>> users;
    std::optional<std::uint32_t> basis_points;
    bool remove = false;  // drop the cohort: its users follow the cohorts after it or the default
    bool force = false;   // past a gate that does not say GO (a reason is required)
    std::string reason;
    std::string who;
};

// A stage some users leave for another.
struct move {
    config::stage from;
    config::stage to;
    bool operator==(const move&) const = default;
};

struct change_outcome {
    routing::plan next;       // version not yet set: the store counts it
    std::vector<move> moves;  // every distinct (from, to) the change causes, from != to
    std::string cohort;       // the cohort changed ("default" for the rest)
};

// Why moving users from `from` to `to` is refused, or nullopt when it is allowed: forward by one
// stage, or back by any number. The same stage is no move.
std::optional<std::string> move_problem(config::stage from, config::stage to);

// The plan after `change`, with the moves it causes, or the reason it is refused (an unknown
// cohort, two selectors, a skipped stage, a forced change without a reason, a plan that
// plan_problems() refuses). New cohorts of users go before every percentage cohort, new
// percentage cohorts last, so explicit users keep precedence. The freeze window is kept.
proxy::result<change_outcome> apply_change(const routing::plan& before, const stage_change& change);

}  // namespace sg::control
