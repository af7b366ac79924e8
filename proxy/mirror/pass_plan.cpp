// proxy/mirror/pass_plan: see the header.
#include "proxy/mirror/pass_plan.hpp"

#include <fmt/format.h>

namespace sg::proxy::mirror_logic {

namespace {

std::string short_sha(std::string_view s) { return std::string(s.substr(0, 12)); }

}  // namespace

pass_plan plan_pass(const v1::user_state& state, std::optional<std::string_view> watermark_commit,
                    config::mirror_commit mode, bool is_dolt) {
    pass_plan p;
    p.old_head = watermark_commit ? std::string(*watermark_commit) : std::string();
    p.history = plan_history(state, p.old_head);
    p.per_commit = mode == config::mirror_commit::per_v1_commit && !p.history.rewritten &&
                   watermark_commit.has_value() &&
                   p.history.new_commits.size() <= max_replayed_commits;
    p.replay = p.per_commit && is_dolt && p.history.new_commits.size() > 1;
    return p;
}

commit_step commit_for(const v1::commit& c) { return {c.message, c.author, c.commit_time, c.sha}; }

std::vector<commit_step> commits_after_apply(const pass_plan& plan, const v1::user_state& state,
                                             std::string_view user, config::mirror_commit mode,
                                             std::size_t diffs_changed, std::int64_t now) {
    std::vector<commit_step> out;
    if (mode != config::mirror_commit::per_v1_commit || plan.replay) return out;
    const auto& fresh = plan.history.new_commits;
    if (plan.per_commit && !fresh.empty()) {
        for (const v1::commit* c : fresh) out.push_back(commit_for(*c));
    } else if (!fresh.empty()) {
        // One step for many commits: dated like v1's HEAD, authored by shadowgate.
        commit_step s;
        s.author = "shadowgate";
        s.time = state.commits.empty() ? now : state.commits.front().commit_time;
        s.message = plan.history.rewritten
                        ? fmt::format(
                              "mirror {}: re-import after a v1 history rewrite ({} is not an "
                              "ancestor of {})",
                              user, short_sha(plan.old_head), short_sha(state.head))
                        : fmt::format("mirror {}: {} v1 commits up to {}", user, fresh.size(),
                                      short_sha(state.head));
        s.v1_commit = state.head;
        out.push_back(std::move(s));
    } else if (diffs_changed > 0) {
        // git does not version pending diffs: the Dolt commit stands for no v1 commit.
        out.push_back({fmt::format("mirror {}: pending diffs ({} changed)", user, diffs_changed),
                       "shadowgate", now, ""});
    }
    return out;
}

}  // namespace sg::proxy::mirror_logic
