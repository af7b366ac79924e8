// adapters/dolt/store: writes one user's rows of the v2 tables (adapters/dolt/rows.hpp, derived
// from v1's state) and reads them back: every column, or for an answer only the plan's columns
// (rebuilt into a v1 state by rows.hpp). Writing replaces a user's rows, in one transaction per
// batch together with the user's watermark, with multi-row INSERTs sized to the server's
// max_allowed_packet; the bulk import and the mirror both use it.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/read_parts.hpp"
#include "adapters/dolt/rows.hpp"
#include "adapters/v1/model.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt {

// The max_allowed_packet a server needs for the largest row written for a block of `block_bytes`:
// its text is in a block_versions row twice (`content` and the audit `source`), with its metadata
// as JSON and the short columns, which 1 MiB covers unless the frontmatter's JSON is far larger
// than its YAML; plus the statement's own headroom.
std::uint64_t packet_needed_for_block(std::uint64_t block_bytes);

// What to do when the server's max_allowed_packet is below `needed`, in one sentence.
std::string packet_remedy(std::uint64_t needed);

struct write_options {
    // Upper bound of one INSERT statement. 0: 4 MiB, and never more than the server's
    // max_allowed_packet less headroom, which is also the hard limit for a single row.
    std::size_t max_statement_bytes = 0;
    // Rows per prepared INSERT (also capped by 65,535 placeholders per statement).
    std::size_t max_rows_per_statement = 256;
    // The clock for mirror_watermarks.applied_at (tests pin it).
    std::function<std::chrono::system_clock::time_point()> now;
};

struct write_stats {
    std::size_t users = 0;       // distinct users written
    std::size_t rows = 0;        // rows inserted, all tables
    std::size_t statements = 0;  // statements sent, transaction control included
    std::size_t bytes = 0;       // SQL text and bound values sent
};

// Makes the tables hold exactly `users` (rows from derive_rows) for each user given (users,
// commits, blocks, block_versions, pending_diffs, mirror_watermarks): their old rows are deleted
// and the new ones inserted, all in one transaction that commits before this returns. Users not in
// the span are untouched. Idempotent: writing the same states again leaves every row as it was,
// including applied_at, which only moves when (head, diffs_fingerprint) changes. A user id given
// twice: the last state wins. On any error the transaction is rolled back and nothing changed
// (retry retryable errors with with_retry). Must not be called inside an open transaction. On Dolt
// the caller then makes the Dolt commit (dolt_commit.hpp) according to its policy.
result<write_stats> write_users(connection& conn, std::span<const user_rows> users,
                                const write_options& opts = {});

struct apply_options {
    // Leave the user's pending_diffs rows and the watermark's diffs_fingerprint as they are in
    // the database: for the intermediate states of a per-commit mirror (pending diffs are not
    // versioned in git, so only the state at HEAD has the real ones).
    bool keep_diffs = false;
    // What the caller last applied for this user (its own earlier `desired`), to compare with
    // instead of reading the user's rows: used only while the watermark still names its head and
    // diffs fingerprint (read in the same transaction), otherwise the rows are read as usual.
    // Rows changed behind the mirror's back without moving the watermark are then not seen
    // (reconcile finds those; callers forget `known` for a repair).
    const user_rows* known = nullptr;
};

struct apply_stats {
    bool existed = false;           // the user had rows before
    std::size_t rows_inserted = 0;  // rows written (changed rows count here and in deleted)
    std::size_t rows_deleted = 0;   // rows removed
    std::size_t commits_added = 0;  // commits rows that are new (not just rewritten)
    std::size_t diffs_changed = 0;  // pending_diffs rows added, changed or removed
    bool watermark_moved = false;   // (v1_commit, diffs_fingerprint) changed
    std::string previous_head;      // the watermark's v1_commit before ("" when none)
    bool used_known = false;        // compared with apply_options::known, rows not read
    write_stats writes;             // statements and bytes sent
    bool changed() const { return rows_inserted + rows_deleted > 0; }
};

// Makes the tables hold exactly `desired` for its user, like write_users, but by changing only
// the rows that differ from what is there (read first, in the same transaction; every column
// compared, metadata as JSON values): a new v1 commit
// adds its rows and flips one is_current, and applying the same state again changes nothing at
// all. One transaction, the watermark included, committed before this returns; rolled back on
// any error. Must not be called inside an open transaction.
result<apply_stats> apply_user(connection& conn, const user_rows& desired,
                               const write_options& opts = {}, const apply_options& aopts = {});

// Every row of user_id, every column (audit copies included), as write_users was given them
// (unrepresentable left empty); nullopt when the user was never written. Reads in one
// transaction so the parts are consistent (unless the caller already has one open, which is then
// used). For checks (reconcile, verify) and repairs, never for answers.
result<std::optional<user_rows>> read_user(connection& conn, std::string_view user_id);

// read_user for many users at once (one statement per table for all of them, in one transaction):
// the rows of those that exist, by user id.
result<std::map<std::string, user_rows, std::less<>>> read_users(
    connection& conn, std::span<const std::string> user_ids);

// Every user id in the tables, ascending by byte value.
result<std::vector<std::string>> list_users(connection& conn);

struct watermark {
    std::string user_id;
    std::string v1_commit;          // the head of the state last applied
    std::string diffs_fingerprint;  // the pending_diffs/ fingerprint of that state
    std::string applied_at;         // UTC, "YYYY-MM-DD HH:MM:SS.ffffff"
};

// The watermark of user_id, nullopt when the user was never written.
result<std::optional<watermark>> read_watermark(connection& conn, std::string_view user_id);

// A user's watermark and the asked parts of its state (nullopt state: no such user), read by one
// statement, so that the state is exactly the one the watermark names (a single statement reads
// every table from one snapshot; no transaction is opened). The state is built from the plan's
// columns alone (rebuild_state; audit copies are never read here): what the v2 side answers from.
struct snapshot {
    std::optional<watermark> mark;
    std::optional<v1::user_state> state;
};
result<snapshot> read_snapshot(connection& conn, std::string_view user_id, const read_parts& parts);

}  // namespace sg::dolt
