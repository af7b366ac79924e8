// adapters/v1/render: v1's answers to its read endpoints (v1-contract.md §1 #2-5, #7, #8, #10),
// rendered from a `user_state` byte for byte as v1 (FastAPI 0.92, pydantic 1.10, GitPython, PyYAML)
// writes them: same key order, same JSON spelling, same status codes and error bodies, including
// v1's quirks (text-mode newlines in GET block, echoed abbreviated shas, null old/new_value, the
// 500s v1 raises on odd frontmatter or diff files). This is what lets the proxy answer from Dolt
// and compare with v1. Pure: no I/O, no clock, no environment (the time zone is a parameter).
//
// Known differences from v1 that are not closed:
//  - Pending diffs that share one created_at keep the model's order (by id); v1 keeps directory
//    order, which the filesystem decides.
//  - Revisions: hex prefixes (4+ digits) are resolved among commits only; git also counts trees and
//    blobs, so a prefix that is unique among commits but not among all objects gives 200 here and
//    404 in v1. "HEAD" and ~N/^N walks are supported; branch and tag names, reflog (@{n}) and
//    other rev syntax give 404 here (v1 may resolve them).
//  - A diff file that Python's json accepts but nlohmann does not (NaN/Infinity literals, lone
//    surrogate escapes) is skipped here; numbers beyond 64 bits lose precision when a diff field
//    is coerced to str.
//  - Commit messages are decoded as UTF-8 (GitPython honours a commit's "encoding" header).
//  - Where Python's recursion limit ends deep metadata depends on v1's stack (see yaml_json.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/v1/model.hpp"

namespace sg::v1 {

// The v1 server's time zone, which history timestamps are printed in (Python's
// datetime.fromtimestamp). Either a fixed UTC offset or whatever localtime_r says for the process.
struct time_zone {
    enum class kind : std::uint8_t { fixed_offset, process_local };
    kind k = kind::fixed_offset;
    int offset_minutes = 0;

    static time_zone utc() { return {}; }
    static time_zone fixed(int offset_minutes) { return {kind::fixed_offset, offset_minutes}; }
    static time_zone local() { return {kind::process_local, 0}; }

    // datetime.fromtimestamp(epoch_seconds).isoformat() in this zone ("2026-11-22T04:12:26"), or
    // nullopt where Python raises (a year outside 1..9999).
    std::optional<std::string> naive_iso(std::int64_t epoch_seconds) const;
};

// One HTTP answer as v1 sends it.
struct rendered {
    unsigned status = 200;
    std::string content_type;  // "application/json", or "text/plain; charset=utf-8" for a 500
    std::string body;
};

inline constexpr std::string_view json_content_type = "application/json";
inline constexpr std::string_view plain_text_content_type = "text/plain; charset=utf-8";

// Identifiers are the percent-decoded bytes of the path segment; like uvicorn, invalid UTF-8 in
// them is read as U+FFFD before use.

// FastAPI's answer to an unhandled exception: 500, "Internal Server Error", text/plain.
rendered render_internal_error();

// 404 {"detail":"User {user_id} not found"}: every block route for a user without a repository.
rendered render_unknown_user(std::string_view user_id);

// GET /users/{u}/exists: {"exists":true|false}.
rendered render_exists(bool exists);

// GET /users/{u}/blocks: [{"label","pending_diffs"}] in label order (v1's is directory order:
// callers compare it as a set keyed by label). 500 where v1's pending-diff scan raises.
rendered render_list_blocks(const user_state& state);

// GET /users/{u}/blocks/diffs/counts: {label: pending count}, labels in the order of their newest
// pending diff, as v1 builds the dict.
rendered render_diff_counts(const user_state& state);

// GET /users/{u}/blocks/{label}: the block at HEAD as v1 reads its working-tree file (text mode:
// "\r\n" and "\r" read as "\n"): {"label","content","body","metadata","pending_diffs"}; 404
// {"detail":"Block {label} not found"}; 500 where v1 raises (not UTF-8, frontmatter YAML that
// loads to a non-mapping pydantic cannot dict(), bad dates, NaN, ...).
rendered render_get_block(const user_state& state, std::string_view label);

// The 422 v1 answers for a history `limit` it cannot take (not an integer as Python's int() reads
// it, or more than 100), or nullopt when the value is fine. FastAPI validates the query before the
// endpoint runs, so this comes before the unknown-user 404. `raw_limit` is the value as Starlette
// decodes it (percent-decoded, "+" as space; the last of repeated parameters); nullopt if absent.
std::optional<rendered> check_history_limit(std::optional<std::string_view> raw_limit);

// GET /users/{u}/blocks/{label}/history[?limit=N]: [{"sha","message","author","timestamp",
// "is_current"}], newest first (the model's `ordinal`), at most `limit` (default 20; 0 gives [],
// a negative value is handed to git's --max-count as v1 does: usually no limit); [] when the block
// does not exist at HEAD. message = first line, author = the version's `author` (the "Author: "
// footer, or "unknown"), timestamp = commit time in `tz` without fraction, is_current as the
// version says or else the first entry. Answers the 422 itself too.
rendered render_history(const user_state& state, std::string_view label,
                        std::optional<std::string_view> raw_limit,
                        const time_zone& tz = time_zone::utc());

// GET /users/{u}/blocks/{label}/versions/{sha}: memory-blocks/{label}.md in the commit `sha`
// names (a full sha, a unique prefix of 4+ hex digits of any commit, "HEAD", with optional ~N/^N),
// untouched bytes: {"content","body","metadata","sha"} with `sha` echoing the given string; 404
// {"detail":"Version not found"} when it names no commit, the file is absent there, or the blob is
// not UTF-8; 500 where v1's frontmatter parse or JSON encoding raises.
rendered render_get_version(const user_state& state, std::string_view label, std::string_view sha);

// GET /users/{u}/blocks/{label}/diffs: the block's pending diffs, newest created_at first,
// [{"id","block","field","operation","reasoning","confidence","created_at","agent_id",
// "old_value","new_value"}] with old_value/new_value always null (a v1 quirk).
rendered render_list_diffs(const user_state& state, std::string_view label);

// Whether `rev` is a revision the plan's columns can answer: a full sha or a prefix of 4+ hex
// digits, or "HEAD", followed by any of ~N, ^N, ^{commit}, ^{}. v1 hands its version segment to
// git, which also resolves branch and tag names, reflog entries ("HEAD@{0}", "@{1}") and ":/text"
// searches; v2 keeps commits, not refs or reflogs, so those reads are not comparable.
bool answerable_revision(std::string_view rev);

// The commit GitPython's repo.commit(rev) picks in `state` (index into state.commits), if any.
std::optional<std::size_t> resolve_commit(const user_state& state, std::string_view rev);

// The exact bytes of memory-blocks/{label}.md in commit `state.commits[commit_index]`, or nullopt
// when the file is absent there (never created yet, or deleted).
std::optional<std::string_view> block_source_at(const user_state& state, std::string_view label,
                                                std::size_t commit_index);

}  // namespace sg::v1
