// adapters/dolt/rows: one user's rows of the v2 tables as plain values, derived from v1's state
// (what the mirror writes and what reconcile expects) and turned back into a v1 state (what the
// Dolt side answers from). Pure: no I/O.
//
// The split between the plan's columns and shadowgate's own: an answer is built from the plan's
// columns only (blocks.content/metadata/metadata_keys/frontmatter/blank_lines, the same for
// block_versions plus author, message, created_at, created_tz_offset, is_current, ordinal,
// deleted; every pending_diffs column but raw_json and the *_text copies; commits; users).
// `source`, `full_message`, `raw_json`, `created_at_text`, `reviewed_at_text` are audit copies of
// v1's bytes: written, compared by reconcile, never read to answer.
#pragma once

#include "adapters/v1/columns.hpp"
#include "adapters/v1/model.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sg::dolt {

struct block_row {
    std::string label;
    v1::text_columns text;                  // of the file as v1's GET block reads it
    std::optional<std::string> updated_at;  // DATETIME(6), UTC: the time of v1_commit
    std::string v1_commit;                  // the newest commit that touched the file
    std::string source;                     // audit: the file's bytes
    bool operator==(const block_row&) const = default;
};

struct version_row {
    std::string id;  // the commit sha
    std::string label;
    v1::text_columns text;        // of the blob as v1's GET version reads it (line ends kept)
    std::string author;           // what v1's history shows: the "Author:" footer, or "unknown"
    std::string message;          // what v1's history shows: the message's first line
    std::int64_t created_at = 0;  // committer time, seconds since the epoch (DATETIME, UTC)
    int created_tz_offset = 0;    // the commit's own zone, minutes east of UTC
    bool is_current = false;      // the newest version of the block
    std::int64_t ordinal = 0;     // position in the block's history, 0 = the oldest (stored so:
                                  // new history only adds rows)
    bool deleted = false;         // the commit removed the file (text columns empty)
    std::string full_message;     // audit: the commit message's bytes
    std::string source;           // audit: the blob's bytes
    bool operator==(const version_row&) const = default;
};

struct diff_row {
    v1::pending_diff fields;                 // raw_json and created_at/reviewed_at: audit text
    std::optional<std::string> created_at;   // DATETIME(6) of fields.created_at, NULL when not
    std::optional<std::string> reviewed_at;  // a naive isoformat() time
    bool operator==(const diff_row&) const = default;
};

// What the columns cannot give back exactly, and why.
struct unrepresentable_item {
    std::string item;  // "block", "version", "diff"
    std::string key;   // label, "label@sha", diff id
    std::string reason;
    bool operator==(const unrepresentable_item&) const = default;
};

struct user_rows {
    std::string user_id;
    std::string head;
    std::string diffs_fingerprint;
    std::vector<v1::commit> commits;    // seq counted from the oldest (0 = the root), as
                                        // stored; listed by seq descending
    std::vector<block_row> blocks;      // by label
    std::vector<version_row> versions;  // by label, then ordinal descending
    std::vector<diff_row> diffs;        // by id
    std::vector<unrepresentable_item> unrepresentable;  // filled by derive_rows only
};

// The rows the v2 tables should hold for `state`. Rows of `reuse` (an earlier derivation for the
// same user) whose v1 bytes are unchanged are copied instead of derived again: versions never
// change, so a mirror pass costs what is new.
user_rows derive_rows(const v1::user_state& state, const user_rows* reuse = nullptr);

// Puts the rows in the order user_rows lists them (labels and ids by their bytes), whatever order
// they were read in.
void sort_rows(user_rows& rows);

// The v1 state the rows stand for, built from the plan's columns alone (audit copies unused):
// block and version texts joined from their columns (a text the columns cannot make is left
// empty), versions' message and author as history shows them, diffs from their fields with times
// printed from the DATETIME(6) columns. What the Dolt side renders v1's answers from.
v1::user_state rebuild_state(const user_rows& rows);

// The v1 state the audit copies hold (the bytes v1 had when the rows were written: sources, full
// messages, diff files): what a schema migration derives the plan's columns from again. Rows read
// without their audit copies give empty texts.
v1::user_state audit_state(const user_rows& rows);

// One difference between the rows v1's state gives and the rows the tables hold.
struct row_drift {
    enum class kind { missing, extra, different };
    kind what = kind::different;
    std::string item;    // "user", "commit", "block", "version", "diff"
    std::string key;     // "" for the user, sha, label, "label@sha", diff id
    std::string column;  // for `different`: the column
    std::string v1;      // its value from v1 (shortened when long)
    std::string v2;      // its value in the tables
    bool operator==(const row_drift&) const = default;
};
std::string_view name(row_drift::kind k);  // "missing", "extra", "different"
std::string to_string(const row_drift& d);

// Every difference, column by column, in a stable order (user, commits, blocks, versions, diffs;
// by key within each). metadata is compared as JSON values (Dolt normalizes the text).
std::vector<row_drift> diff_rows(const user_rows& expected, const user_rows& actual);

// Whether two rows hold the same values (JSON metadata compared as values): what decides whether
// the mirror rewrites a row.
bool same_row(const block_row& a, const block_row& b);
bool same_row(const version_row& a, const version_row& b);
bool same_row(const diff_row& a, const diff_row& b);

}  // namespace sg::dolt
