// adapters/v1/routes: the v1 route table (v1-contract.md §1) as a pure function. It tells which v1
// endpoint a request is for, whether it writes, and the identifiers in its path, so that metrics
// label by endpoint (never by raw path) and later stages know what to mirror and compare.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace sg::v1 {

enum class endpoint {
    user_init,        // POST /users/init
    user_exists,      // GET  /users/{u}/exists
    list_blocks,      // GET  /users/{u}/blocks
    diff_counts,      // GET  /users/{u}/blocks/diffs/counts
    get_block,        // GET  /users/{u}/blocks/{label}
    put_block,        // PUT  /users/{u}/blocks/{label}
    block_history,    // GET  /users/{u}/blocks/{label}/history
    get_version,      // GET  /users/{u}/blocks/{label}/versions/{sha}
    restore_version,  // POST /users/{u}/blocks/{label}/restore
    list_diffs,       // GET  /users/{u}/blocks/{label}/diffs
    approve_diff,     // POST /users/{u}/blocks/{label}/diffs/{id}/approve
    reject_diff,      // POST /users/{u}/blocks/{label}/diffs/{id}/reject
    passthrough,      // anything else: forwarded untouched, never mirrored or compared
};

inline constexpr std::size_t endpoint_count = static_cast<std::size_t>(endpoint::passthrough) + 1;

// Stable snake_case name used as a metric label value ("get_block", ..., "passthrough").
std::string_view name(endpoint e);

// All endpoints in enum order, for iterating metric series.
const std::array<endpoint, endpoint_count>& all_endpoints();

// The read endpoints of the block API: the ones v2 answers, the shadow compares and the gate
// requires coverage of.
bool is_block_read(endpoint e);

struct route {
    endpoint ep = endpoint::passthrough;
    bool write = false;  // v1 changes storage when it answers 2xx
    // Identifiers from the path, percent-decoded. Empty when the endpoint has none.
    std::string user_id;
    std::string label;
    std::string sha;
    std::string diff_id;
    // Set when the path has the shape of a block route but an identifier in it is unsafe to use
    // as a file name ("..", "/", "\", NUL, a leading ".", bad percent-encoding, too long); `ep` is
    // then the endpoint the shape matched and `hostile_reason` says what was wrong. Also set for a
    // path under /users/ that names no route (empty segments, a trailing slash) when one of its
    // segments could climb out of a directory ("..", ".", "/", "\", NUL); `ep` is passthrough.
    std::optional<std::string> hostile_reason;
};

// Classifies a request by method and request-target (origin-form, query allowed, e.g.
// "/users/u1/blocks/student/history?limit=2"). Pure, never throws. The query is ignored for
// classification. Methods are case-sensitive as in HTTP; a known path with a method v1 does not
// route (e.g. DELETE on a block) is `passthrough`.
route classify(std::string_view method, std::string_view target);

// Why `s` is unsafe as a user id, label or diff id (which v1 joins to its data dir unchecked), or
// nullptr: it must be 1..255 bytes of valid UTF-8, with no "/", "\", NUL or other control
// character, not starting with ".", and without "..".
const char* identifier_problem(std::string_view s);

// Why `s` is unsafe as a revision v1 hands to git (a version's sha, restore's commit_sha), or
// nullptr. git accepts abbreviations and other revision syntax; only what could escape a path or
// truncate a C string is refused.
const char* revision_problem(std::string_view s);

// identifier_problem(s) == nullptr.
bool is_safe_identifier(std::string_view s);

// Decodes %XX escapes (not "+"); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace sg::v1
