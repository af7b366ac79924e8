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

void sort_unique(std::vector<std::string>& users) {
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
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
            if (change.users) {
                c.selects = routing::cohort::kind::users;
                c.users = *change.users;
                sort_unique(c.users);
            } else {
                c.selects = routing::cohort::kind::percent;
                c.basis_points = *change.basis_points;
            }
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
            if (change.users) {
                reselected.selects = routing::cohort::kind::users;
                reselected.users = *change.users;
                sort_unique(reselected.users);
                reselected.basis_points = 0;
            } else if (change.basis_points) {
                reselected.selects = routing::cohort::kind::percent;
                reselected.basis_points = *change.basis_points;
                reselected.users.clear();
            }
            if (reselected.selects != it->selects || reselected.users != it->users ||
                reselected.basis_points != it->basis_points) {
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
