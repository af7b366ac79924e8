// proxy/control/transition: stage changes on a plan and the legality of each move they cause.
#include "proxy/control/transition.hpp"

#include <algorithm>

namespace sg::control {

namespace {

using config::stage;

void add_move(std::vector<move>& moves, stage from, stage to) {
    if (from == to) return;
    const move m{from, to};
    if (std::find(moves.begin(), moves.end(), m) == moves.end()) moves.push_back(m);
}

// The stages of the users a cohort placed before `first` can take from (or hand over to): those
// of the cohorts from `first` on, and the default's.
std::vector<stage> stages_from(const routing::plan& p, std::size_t first) {
    std::vector<stage> out{p.default_stage};
    for (std::size_t i = first; i < p.cohorts.size(); ++i) out.push_back(p.cohorts[i].stage);
    return out;
}

// Gives `c` the selector the change names (users, sorted and unique, or a percentage), if any.
void reselect(routing::cohort& c, const stage_change& change) {
    if (change.users) {
        c.selects = routing::cohort::kind::users;
        c.users = *change.users;
        std::sort(c.users.begin(), c.users.end());
        c.users.erase(std::unique(c.users.begin(), c.users.end()), c.users.end());
        c.basis_points = 0;
    } else if (change.basis_points) {
        c.selects = routing::cohort::kind::percent;
        c.basis_points = *change.basis_points;
        c.users.clear();
    }
}

}  // namespace

std::optional<std::string> move_problem(stage from, stage to) {
    const auto f = static_cast<int>(from);
    const auto t = static_cast<int>(to);
    if (t <= f + 1) return std::nullopt;  // back, the same, or one step forward
    return std::string(config::to_string(from)) + " -> " + std::string(config::to_string(to)) +
           " skips " + std::string(config::to_string(static_cast<stage>(f + 1))) +
           ": a cohort moves forward one stage at a time";
}

proxy::result<change_outcome> apply_change(const routing::plan& before,
                                           const stage_change& change) {
    if (change.users && change.basis_points) {
        return proxy::refuse("give either users or a percentage for a cohort, not both");
    }
    if (change.force && change.reason.empty()) {
        return proxy::refuse("a forced change needs a reason");
    }
    change_outcome out;
    out.next = before;
    const bool is_default = change.cohort.empty() || change.cohort == routing::default_cohort;
    out.cohort = is_default ? std::string(routing::default_cohort) : change.cohort;

    if (is_default) {
        if (change.users || change.basis_points || change.remove) {
            return proxy::refuse("the default cohort has no selector and cannot be removed");
        }
        add_move(out.moves, before.default_stage, change.to);
        out.next.default_stage = change.to;
    } else {
        auto& cohorts = out.next.cohorts;
        auto it = std::find_if(cohorts.begin(), cohorts.end(),
                               [&](const routing::cohort& c) { return c.name == change.cohort; });
        if (change.remove) {
            if (it == cohorts.end()) return proxy::refuse("no cohort \"" + change.cohort + "\"");
            const auto index = static_cast<std::size_t>(it - cohorts.begin());
            for (const stage s : stages_from(before, index + 1)) add_move(out.moves, it->stage, s);
            cohorts.erase(it);
        } else if (it == cohorts.end()) {
            if (!change.users && !change.basis_points) {
                return proxy::refuse("no cohort \"" + change.cohort +
                                     "\": a new cohort needs users or a percentage");
            }
            routing::cohort c;
            c.name = change.cohort;
            c.stage = change.to;
            reselect(c, change);
            const auto first_percent =
                std::find_if(cohorts.begin(), cohorts.end(), [](const routing::cohort& x) {
                    return x.selects == routing::cohort::kind::percent;
                });
            const auto at =
                c.selects == routing::cohort::kind::users ? first_percent : cohorts.end();
            const auto index = static_cast<std::size_t>(at - cohorts.begin());
            // Its users come from whatever cohort after it (or the default) had them.
            for (const stage s : stages_from(before, index)) add_move(out.moves, s, change.to);
            cohorts.insert(at, std::move(c));
        } else {
            const auto index = static_cast<std::size_t>(it - cohorts.begin());
            add_move(out.moves, it->stage, change.to);
            routing::cohort reselected = *it;
            reselect(reselected, change);
            if (reselected != *it) {  // the stage is still the old one: only the selector moved
                // Users join from, and leave to, the cohorts after it and the default.
                for (const stage s : stages_from(before, index + 1)) {
                    add_move(out.moves, s, change.to);
                    add_move(out.moves, it->stage, s);
                }
            }
            reselected.stage = change.to;
            *it = std::move(reselected);
        }
    }

    for (const move& m : out.moves) {
        if (auto why = move_problem(m.from, m.to)) return proxy::refuse(*why);
    }
    if (const auto problems = routing::plan_problems(out.next); !problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        return proxy::refuse("the plan would be invalid: " + all);
    }
    return out;
}

}  // namespace sg::control
