// proxy/mirror/pass_plan: what one forward pass does once it has read a user's state from v1 and
// its watermark from Dolt: which v1 commits are new, whether they are applied one at a time or in
// one step, and which Dolt commits (or, on a server that is not Dolt, commit records) follow.
// Pure: the mirror's worker reads, then plans here, then applies and commits what the plan says.
#pragma once

#include "adapters/v1/model.hpp"
#include "config/config.hpp"
#include "proxy/mirror/mirror_logic.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy::mirror_logic {

// A user whose watermark is this many commits behind is applied in one step (one Dolt commit)
// instead of commit by commit: a user that was never backfilled must not take minutes.
inline constexpr std::size_t max_replayed_commits = 100;

struct pass_plan {
    history_plan history;  // points into the state it was made from
    std::string old_head;  // the watermark's commit ("" when the user was never mirrored)
    // Each new v1 commit becomes a Dolt commit (or record) of its own, with its author, date and
    // message: per_v1_commit, a known watermark, no rewrite, not too far behind.
    bool per_commit = false;
    // ... and is applied on its own first, so the Dolt commit holds exactly that v1 commit's
    // change (Dolt only, and only when there is more than one: one is the final state).
    bool replay = false;
};

// `watermark_commit` is nullopt when Dolt has no watermark for the user.
pass_plan plan_pass(const v1::user_state& state, std::optional<std::string_view> watermark_commit,
                    config::mirror_commit mode, bool is_dolt);

// One Dolt commit to make (or record) for a user.
struct commit_step {
    std::string message;
    std::string author;
    std::int64_t time = 0;  // seconds since the epoch
    std::string v1_commit;  // the v1 commit it stands for ("": none, pending diffs only)
};

// The Dolt commit that stands for one v1 commit: its message, author and time.
commit_step commit_for(const v1::commit& c);

// The commits that follow a single apply of the whole state (none after a replay, which commits
// after each step, and none in the interval or off policies). `diffs_changed` is how many
// pending diffs the apply changed; `now` dates commits that stand for no v1 commit.
std::vector<commit_step> commits_after_apply(const pass_plan& plan, const v1::user_state& state,
                                             std::string_view user, config::mirror_commit mode,
                                             std::size_t diffs_changed, std::int64_t now);

}  // namespace sg::proxy::mirror_logic
