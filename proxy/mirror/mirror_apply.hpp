// proxy/mirror/mirror_apply: bringing one user's rows in Dolt up to v1, one v1 commit at a time, so
// that each v1 commit can become its own Dolt commit (mirror.dolt_commit = per_v1_commit on Dolt).
// Blocking (libgit2 and Connector/C): the mirror's worker thread runs it.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/model.hpp"

#include <functional>
#include <optional>
#include <span>
#include <string>

namespace sg::proxy {

struct step_failure {
    enum class source { git, dolt } from = source::dolt;
    git::error_kind git_kind = git::error_kind::io;  // when from == git
    dolt::error dolt_error;                          // when from == dolt
    std::string message;
};

// Applies `steps` (new v1 commits, oldest first, the last one v1's HEAD) one by one: for each but
// the last, the user as v1 had it right after that commit (read with libgit2; pending diffs left
// as Dolt has them, since git does not version them), each in its own transaction that moves the
// watermark to that commit; then `head_rows` (v1's HEAD, today's pending diffs included).
// `after_each(commit, stats)` runs after each step committed (the caller makes the Dolt commit
// there). On failure the steps before stay applied (the watermark says how far it got) and the
// failure is returned.
std::optional<step_failure> apply_one_by_one(
    dolt::connection& conn, const git::storage_reader& reader, const dolt::user_rows& head_rows,
    std::span<const v1::commit* const> steps, const dolt::write_options& wopts,
    const std::function<void(const v1::commit&, const dolt::apply_stats&)>& after_each);

}  // namespace sg::proxy
