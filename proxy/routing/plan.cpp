// proxy/routing/plan: cohort selection, the sticky hash, and the plan's own consistency rules.
#include "proxy/routing/plan.hpp"

#include "adapters/v1/routes.hpp"

#include <algorithm>
#include <set>

namespace sg::routing {

std::uint32_t bucket_of(std::string_view user_id) {
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a offset basis
    for (const char c : user_id) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;  // FNV prime
    }
    return static_cast<std::uint32_t>(h % bucket_count);
}

bool cohort::selects_user(std::string_view user_id) const {
    if (user_id.empty()) return false;
    if (selects == kind::percent) return bucket_of(user_id) < basis_points;
    return std::binary_search(users.begin(), users.end(), user_id);
}

bool freeze_window::freezes(std::string_view cohort_name, wall_clock::time_point now) const {
    if (now >= until) return false;
    return cohorts.empty() ||
           std::find(cohorts.begin(), cohorts.end(), cohort_name) != cohorts.end();
}

plan plan::of(config::stage s, std::uint64_t version) {
    plan p;
    p.version = version;
    p.default_stage = s;
    return p;
}

const cohort* cohort_of(const plan& p, std::string_view user_id) {
    if (user_id.empty()) return nullptr;
    for (const auto& c : p.cohorts) {
        if (c.selects_user(user_id)) return &c;
    }
    return nullptr;
}

std::string_view cohort_name_of(const plan& p, std::string_view user_id) {
    const cohort* c = cohort_of(p, user_id);
    return c == nullptr ? default_cohort : std::string_view(c->name);
}

config::stage stage_of(const plan& p, std::string_view user_id) {
    const cohort* c = cohort_of(p, user_id);
    return c == nullptr ? p.default_stage : c->stage;
}

std::vector<config::stage> stages_in(const plan& p) {
    std::set<config::stage> seen{p.default_stage};
    for (const auto& c : p.cohorts) seen.insert(c.stage);
    return {seen.begin(), seen.end()};
}

std::vector<std::string> plan_problems(const plan& p) {
    std::vector<std::string> problems;
    std::set<std::string, std::less<>> names;
    for (std::size_t i = 0; i < p.cohorts.size(); ++i) {
        const auto& c = p.cohorts[i];
        const std::string at = "$.cohorts[" + std::to_string(i) + "]";
        if (c.name.empty() || c.name == default_cohort) {
            problems.push_back(at + ".name: must be a non-empty name other than \"default\"");
        } else if (!names.insert(c.name).second) {
            problems.push_back(at + ".name: \"" + c.name + "\" names two cohorts");
        } else if (const char* why = v1::identifier_problem(c.name)) {
            problems.push_back(at + ".name: " + why);
        }
        if (c.selects == cohort::kind::percent) {
            if (c.basis_points > bucket_count) {
                problems.push_back(at + ".percent: must be between 0 and 100");
            }
            continue;
        }
        if (c.users.empty()) problems.push_back(at + ".users: must name at least one user");
        if (!std::is_sorted(c.users.begin(), c.users.end()) ||
            std::adjacent_find(c.users.begin(), c.users.end()) != c.users.end()) {
            problems.push_back(at + ".users: must be sorted and without duplicates");
        }
        for (std::size_t u = 0; u < c.users.size(); ++u) {
            if (const char* why = v1::identifier_problem(c.users[u])) {
                problems.push_back(at + ".users[" + std::to_string(u) + "]: " + why);
            }
        }
    }
    if (p.freeze) {
        for (std::size_t i = 0; i < p.freeze->cohorts.size(); ++i) {
            const auto& n = p.freeze->cohorts[i];
            if (n != default_cohort && !names.contains(n)) {
                problems.push_back("$.freeze.cohorts[" + std::to_string(i) + "]: no cohort \"" + n +
                                   "\" in the plan");
            }
        }
    }
    return problems;
}

}  // namespace sg::routing
