// proxy/jobs/migrate: `shadowgate migrate`, the bulk backfill of v1 storage into Dolt. Reader
// threads read users from git (adapters/git) into a bounded queue; one writer connection writes
// them in batches (adapters/dolt), each batch one transaction together with the users' watermarks.
// A user whose watermark already equals its v1 HEAD and pending_diffs fingerprint is skipped, so an
// interrupted run resumes where it stopped and a re-run writes nothing. Per-user failures are
// recorded and never abort the run.
#pragma once

#include "adapters/dolt/dolt_commit.hpp"
#include "config/config.hpp"

#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sg::proxy {

// migrate.dolt_commit (or --dolt-commit) as the Dolt adapter's policy.
dolt::commit_policy to_commit_policy(config::migrate_commit c);

struct migrate_options {
    std::vector<std::string> users;  // empty: every user in v1_data_dir
    bool dry_run = false;            // read and count, write nothing (no database needed)
    bool verify = false;             // afterwards, re-read every user from Dolt and compare
    std::size_t batch_size = 100;    // users per transaction
    int readers = 2;                 // git reader threads
    dolt::commit_policy commit_policy = dolt::commit_policy::once_per_run;
};

struct migrate_report {
    std::size_t users_seen = 0;       // users considered
    std::size_t users_written = 0;    // written this run (or, dry run, that would be)
    std::size_t users_unchanged = 0;  // already up to date in Dolt: skipped
    std::size_t users_failed = 0;
    // Rows of the users written (or, dry run, that would be), per table.
    std::size_t commits = 0, blocks = 0, versions = 0, diffs = 0;
    std::size_t rows = 0;        // all rows inserted, watermarks included
    std::size_t statements = 0;  // SQL statements sent
    std::size_t dolt_commits = 0;
    std::vector<std::pair<std::string, std::string>> failures;  // user, why
    std::vector<std::pair<std::string, std::string>> warnings;  // user, what was skipped
    std::vector<std::pair<std::string, std::string>> drift;     // user, difference (--verify)
    // user, "block student: why": v1 texts the plan's columns cannot give back exactly (the v2
    // side would answer differently there). Reported; not a failure of the run.
    std::vector<std::pair<std::string, std::string>> unrepresentable;
    // What Dolt holds afterwards for the users considered (the same on a re-run that wrote
    // nothing): users, commits, blocks, versions, diffs. Unset on a dry run.
    std::optional<std::array<std::size_t, 5>> dolt_totals;
    std::size_t users_verified = 0;
    std::string fatal;  // set when the run could not start (storage or database unusable)
    double seconds = 0;
};

// Runs the migration described by `cfg` (v1_data_dir, dolt.*) and `opts`, printing progress to
// `progress_out` (a bar on a terminal, lines otherwise; null for none). Never throws for
// per-user problems; a storage or database that cannot be opened at all sets `fatal`.
migrate_report run_migrate(const config::config& cfg, const migrate_options& opts,
                           std::FILE* progress_out);

// `shadowgate verify`: compares what Dolt holds for every user (or `only`) with v1 storage,
// field by field, writing nothing. Fills users_verified, drift, failures (users v1 storage cannot
// read), users_seen, seconds, fatal.
migrate_report run_verify(const config::config& cfg, const std::vector<std::string>& only);
std::string format_verify_report(const migrate_report& r);

// The final report, for people: totals, rates, failed users, drift.
std::string format_report(const migrate_report& r, const migrate_options& opts);

// 0 when everything was migrated (and verified clean); 1 otherwise.
int exit_code(const migrate_report& r);

}  // namespace sg::proxy
