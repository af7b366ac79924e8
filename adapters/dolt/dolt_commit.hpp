// adapters/dolt/dolt_commit: Dolt commits of what the mirror wrote, per a configurable policy.
// A Dolt commit (history forever, ~300 writes/s in total) is separate from the SQL transaction:
// it is made after the data transaction committed, never inside an open one (DOLT_COMMIT inside
// a transaction while others write silently reverts their rows). On MariaDB, which has no Dolt
// commits, every call is a no-op that says `not_dolt` and records nothing.
//
// Arguments follow Dolt's rules: `--author` must be "Name <email>" without ')' and with a
// non-empty name and email, the message must not be empty, `--date` is
// YYYY-MM-DDTHH:MM:SSZ. v1's authors ('user', 'system', 'agent:{id}', or anything an agent
// wrote) are mapped to fit; the originals stay in block_versions and commits. Arguments are
// escaped client-side with mysql_real_escape_string, as Dolt's own CLI does.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/rows.hpp"
#include "adapters/v1/model.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt {

enum class commit_policy {
    per_user_import,  // one Dolt commit after each write_users batch (the mirror writes one user)
    once_per_run,     // one Dolt commit at the end of a run (bulk import) or of an interval
    off,              // never: someone else commits, or history is not wanted
};

std::string_view name(commit_policy p);  // "per_user_import", "once_per_run", "off"
std::optional<commit_policy> parse_commit_policy(std::string_view s);

struct dolt_author {
    std::string name;   // never empty, no '(', ')', '<', '>' or control characters
    std::string email;  // never empty, [a-z0-9._+-]+@youlab.local
};

// Maps a v1 author value to an identity Dolt accepts. Pure and deterministic:
// "agent:tutor" -> {"agent:tutor", "agent-tutor@youlab.local"}, "" -> {"unknown", ...}.
dolt_author map_author(std::string_view v1_author);

// "Name <email>"
std::string format_author(const dolt_author& a);

// A UTC instant as Dolt's --date takes it: "2026-01-13T18:27:03Z". Times outside years
// 1000-9999 are clamped to that range.
std::string dolt_date(std::int64_t epoch_seconds);

// A message Dolt accepts: NUL bytes removed, "(no message)" when nothing visible is left.
std::string commit_message(std::string_view message);

struct commit_request {
    std::string message;            // any text: commit_message() makes it acceptable
    std::string author;             // a v1 author value: map_author() makes it acceptable
    std::int64_t time = 0;          // seconds since the epoch (UTC), the --date
    bool stage_new_tables = false;  // -A (new tables too, after a migration) instead of -a
};

// The DOLT_COMMIT arguments, in order:
// '-a' (or '-A'), '--skip-empty', '--author', 'Name <email>', '--date', date, '-m', message.
std::vector<std::string> dolt_commit_args(const commit_request& req);

// Appends `s` as a quoted, escaped SQL string literal.
using quote_fn = std::function<void(std::string& out, std::string_view s)>;

// "CALL DOLT_COMMIT('-a', '--skip-empty', ...)" with every argument quoted by `quote`
// (connection::append_quoted on a live session; append_quoted_offline where there is none).
std::string dolt_commit_sql(const std::vector<std::string>& args, const quote_fn& quote);

enum class commit_outcome {
    committed,          // a new Dolt commit; `hash` names it
    nothing_to_commit,  // --skip-empty: the working set equals HEAD
    not_dolt,           // the server is MariaDB (or another MySQL): nothing recorded
    policy_off,         // the policy did not ask for a commit here
    recorded,           // not Dolt: written to mirror_commit_log instead (commit_or_record)
};

std::string_view name(commit_outcome o);

struct commit_result {
    commit_outcome outcome = commit_outcome::policy_off;
    std::string hash;  // set when committed
};

// Makes a Dolt commit of every changed table now, draining all of CALL's results. Refuses
// (permanent error) inside an open transaction. Conflicts (1213, 40001, "Merge conflict
// detected") come back as retryable errors: retry the data transaction and then this.
result<commit_result> dolt_commit(connection& conn, const commit_request& req);

// The mirror's Dolt commit: dolt_commit() on Dolt; on any other server the commit it would have
// made is recorded in mirror_commit_log (author and date exactly as DOLT_COMMIT would get them,
// plus the user and v1 commit it stands for), so that the commit policy can be checked there
// too. Same rules: never inside an open transaction.
result<commit_result> commit_or_record(connection& conn, const commit_request& req,
                                       std::string_view user_id, std::string_view v1_commit);

// The policy hook the mirror calls after write_users(users) committed. With per_user_import it
// commits once for the batch: for one user the message is
// "mirror {user_id}: {v1 summary} (v1 {head[:12]})", with that HEAD commit's author and time;
// for several, "mirror N users: id, id, ..." by "shadowgate" at `now`. Otherwise policy_off.
result<commit_result> commit_after_import(connection& conn, commit_policy policy,
                                          std::span<const user_rows> users, std::int64_t now);

// The policy hook at the end of a run (or interval): with once_per_run it commits `message` by
// "shadowgate" at `now` (stage_new_tables as given: true after a migration); else policy_off.
result<commit_result> commit_end_of_run(connection& conn, commit_policy policy,
                                        std::string_view message, std::int64_t now,
                                        bool stage_new_tables = false);

}  // namespace sg::dolt
