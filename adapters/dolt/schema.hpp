// adapters/dolt/schema: the versioned migrations that create and evolve the v2 tables
// (shared/dolt-schema.md), applied by the binary itself. Each migration is a list of statements
// that MariaDB 10.11 and Dolt both accept; applied versions are rows of `schema_migrations`.
#pragma once

#include "adapters/dolt/connection.hpp"

#include <span>
#include <string_view>
#include <vector>

namespace sg::dolt {

struct migration {
    int version;            // 1, 2, ...: applied in order, never renumbered
    std::string_view name;  // what it does, stored with the version
    std::vector<std::string_view> statements;
    // Data migrations (DML only) that must not run twice (a renumbering flipped twice undoes
    // itself): run in one transaction that first inserts the version row, so an interrupted one
    // rolls back whole and a racing process waits and then skips it.
    bool transactional = false;
    // Code run after the statements, for what SQL alone cannot do portably (columns added only
    // when missing, values computed by shadowgate's own rules). Must be safe to run again.
    result<void> (*step)(connection&) = nullptr;
};

// Every migration this binary knows, in version order. Never edit one that has shipped: add a
// new one.
std::span<const migration> migrations();

// Applies the migrations not yet recorded in `schema_migrations` (creating that table first),
// in order, and returns the versions it applied (empty when the schema was current).
// Idempotent: statements are written so that a migration interrupted half-way can run again
// (CREATE TABLE IF NOT EXISTS; DDL commits implicitly on both servers, so a migration is not
// atomic), and the version row is inserted with INSERT IGNORE, so two processes racing end with
// one row. Calls from threads of one process are serialized. Must not be called inside an open
// transaction. On Dolt the new tables are in the working set only: the caller makes the Dolt
// commit (dolt_commit with stage_new_tables).
result<std::vector<int>> migrate(connection& conn);

// Versions recorded in schema_migrations, ascending (empty when the table does not exist yet).
result<std::vector<int>> applied_migrations(connection& conn);

}  // namespace sg::dolt
