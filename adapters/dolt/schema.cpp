// adapters/dolt/schema: the migrations and the code that applies them.
//
// Portability notes (MariaDB 10.11 and Dolt both run every statement here):
// - utf8mb4_bin on every table: Dolt's default utf8mb4_0900_bin does not exist on MariaDB.
//   utf8mb4_bin is a PAD SPACE collation on both, so keys differing only by trailing spaces
//   compare equal: v1 accepts "student" and "student " as two blocks. Migration 5 converts
//   every table to a NO PAD binary collation (utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on
//   Dolt), so keys that differ in any byte are different keys; later tables are created with
//   that collation (convert them in their migration, as 5 does).
// - JSON is a real type on Dolt (it normalizes the text) and LONGTEXT with a json_valid CHECK on
//   MariaDB (verbatim): read it as a value, never compare it as text. Exact bytes live in the
//   LONGTEXT `source` / `raw_json` columns.
// - ENGINE=InnoDB is ignored by Dolt and keeps MariaDB transactional whatever its default engine.
// - Primary keys of three VARCHAR(255) utf8mb4 columns take 3060 bytes: under InnoDB's 3072.
#include "adapters/dolt/schema.hpp"

#include "adapters/dolt/rows.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/dolt/values.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>

namespace sg::dolt {

namespace {

// Whether a query whose one value is a count counts anything.
result<bool> counts_any(connection& conn, const std::string& count_sql) {
    auto rs = conn.query(count_sql);
    if (!rs) return rs.error();
    return !rs->data.empty() && rs->data[0][0] && *rs->data[0][0] != "0";
}

result<bool> has_column(connection& conn, std::string_view table, std::string_view column) {
    std::string sql =
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = ";
    conn.append_quoted(sql, table);
    sql += " AND column_name = ";
    conn.append_quoted(sql, column);
    return counts_any(conn, sql);
}

// Whether `table` itself, or any of its text columns, has a collation other than `collation`.
result<bool> collated_otherwise(connection& conn, std::string_view table,
                                std::string_view collation) {
    std::string sql =
        "SELECT (SELECT COUNT(*) FROM information_schema.columns WHERE table_schema ="
        " DATABASE() AND table_name = ";
    conn.append_quoted(sql, table);
    sql += " AND collation_name IS NOT NULL AND collation_name <> ";
    conn.append_quoted(sql, collation);
    sql +=
        ") + (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema ="
        " DATABASE() AND table_name = ";
    conn.append_quoted(sql, table);
    sql += " AND table_collation <> ";
    conn.append_quoted(sql, collation);
    sql += ")";
    return counts_any(conn, sql);
}

// Migration 4: the text columns that let v1's texts be rebuilt from the plan's columns
// (adapters/v1/columns.hpp says what each holds), then every user's rows computed again from
// the audit copies of v1's bytes, user by user (each in its own transaction; only the rows that
// change are written). Columns are added only when missing (ADD COLUMN IF NOT EXISTS is
// MariaDB's alone), so an interrupted run can run again.
result<void> text_columns_step(connection& conn) {
    struct added {
        std::string_view column, type;
    };
    constexpr added columns[] = {{"metadata_keys", "LONGTEXT"},
                                 {"frontmatter", "BOOLEAN NOT NULL DEFAULT FALSE"},
                                 {"blank_lines", "BIGINT NOT NULL DEFAULT 0"}};
    for (std::string_view table : {"blocks", "block_versions"}) {
        for (const auto& c : columns) {
            auto has = has_column(conn, table, c.column);
            if (!has) return has.error();
            if (*has) continue;
            const std::string sql = "ALTER TABLE " + std::string(table) + " ADD COLUMN " +
                                    std::string(c.column) + " " + std::string(c.type);
            if (auto r = conn.execute(sql); !r) return r.error();
        }
    }
    // The whole first line of a commit message: v1's history shows it uncut.
    if (auto r = conn.execute("ALTER TABLE block_versions MODIFY message LONGTEXT"); !r) {
        return r.error();
    }
    auto users = list_users(conn);
    if (!users) return users.error();
    for (const auto& id : *users) {
        auto rows = read_user(conn, id);
        if (!rows) return rows.error();
        if (!*rows) continue;
        auto applied = apply_user(conn, derive_rows(audit_state(**rows)));
        if (!applied) return applied.error();
    }
    return {};
}

// Migration 5: every text compares byte for byte (NO PAD): under PAD SPACE "u" and "u " were one
// key, and the mirror parked a user that had both (Duplicate entry). Whole tables are converted,
// not only the keys: a database of one collation lets the v2 service compare and join any two
// columns (NO PAD beside PAD SPACE is an "Illegal mix of collations"). A table already converted
// is left alone, so an interrupted run can run again. MariaDB converts a table by copying it;
// Dolt's CONVERT TO is untested here (no Dolt binary on these machines).
result<void> no_pad_step(connection& conn) {
    auto dolt = conn.is_dolt();
    if (!dolt) return dolt.error();
    const std::string collation = *dolt ? "utf8mb4_0900_bin" : "utf8mb4_nopad_bin";
    for (std::string_view table : {"users", "commits", "blocks", "block_versions", "pending_diffs",
                                   "mirror_watermarks", "mirror_commit_log", "schema_migrations"}) {
        auto other = collated_otherwise(conn, table, collation);
        if (!other) return other.error();
        if (!*other) continue;
        const std::string alter = "ALTER TABLE " + std::string(table) +
                                  " CONVERT TO CHARACTER SET utf8mb4 COLLATE " + collation;
        if (auto r = conn.execute(alter); !r) return r.error();
    }
    return {};
}

// The control plane's tables (adapters/dolt/control.hpp): the plan every replica follows (one
// versioned row, changed by compare-and-set with a fresh op_token each time), the history of its
// changes, and one row per replica saying which plan version it applies. On Dolt the replicas'
// heartbeats are listed in dolt_ignore first, so no data commit carries them; the plan and its
// history are data worth versioning (a tag marks each flip).
result<void> control_tables_step(connection& conn) {
    auto dolt = conn.is_dolt();
    if (!dolt) return dolt.error();
    const std::string collation = *dolt ? "utf8mb4_0900_bin" : "utf8mb4_nopad_bin";
    if (*dolt) {
        if (auto r =
                conn.execute("INSERT IGNORE INTO dolt_ignore VALUES ('shadowgate_replicas', 1)");
            !r) {
            return r.error();
        }
    }
    const std::string tail = ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + collation;
    for (const std::string_view table : {
             "CREATE TABLE IF NOT EXISTS shadowgate_plan ("
             " id TINYINT NOT NULL,"
             " version BIGINT NOT NULL,"
             " op_token CHAR(36) NOT NULL,"
             " body LONGTEXT NOT NULL,"
             " updated_by VARCHAR(255) NOT NULL,"
             " updated_at DATETIME(6) NOT NULL,"
             " PRIMARY KEY (id)",
             "CREATE TABLE IF NOT EXISTS shadowgate_stage_history ("
             " id BIGINT NOT NULL AUTO_INCREMENT,"
             " plan_version BIGINT NOT NULL,"
             " event VARCHAR(16) NOT NULL,"
             " cohort VARCHAR(255) NOT NULL,"
             " from_stage VARCHAR(32) NOT NULL,"
             " to_stage VARCHAR(32) NOT NULL,"
             " forced TINYINT NOT NULL,"
             " who VARCHAR(255) NOT NULL,"
             " why TEXT NOT NULL,"
             " gate_verdict TEXT NOT NULL,"
             " tag VARCHAR(255) NOT NULL,"
             " changed_at DATETIME(6) NOT NULL,"
             " PRIMARY KEY (id),"
             " KEY history_by_version (plan_version)",
             "CREATE TABLE IF NOT EXISTS shadowgate_replicas ("
             " replica_id VARCHAR(255) NOT NULL,"
             " boot_id CHAR(36) NOT NULL,"
             " applied_version BIGINT NOT NULL,"
             " op_token CHAR(36) NOT NULL,"
             " started_at DATETIME(6) NOT NULL,"
             " last_poll_ok DATETIME(6) NOT NULL,"
             " PRIMARY KEY (replica_id)",
         }) {
        if (auto r = conn.execute(std::string(table) + tail); !r) return r.error();
    }
    return {};
}

// Long on purpose: this is the schema's history as one table, read top to bottom like a
// changelog, each entry's DDL beside the comment that says why. Applied migrations never change
// and new ones are appended; cutting the list (or migration 1's six tables) into functions would
// only scatter one table over several places.
const std::vector<migration>& all_migrations() {
    static const std::vector<migration> list{
        {1,
         "v1 mirror tables: users, commits, blocks, block_versions, pending_diffs, "
         "mirror_watermarks",
         {
             // One row per mirrored v1 user: v1 knows users without blocks. `head` and
             // `diffs_fingerprint` are the state the rows reflect (user_state.head and
             // .diffs_fingerprint).
             "CREATE TABLE IF NOT EXISTS users ("
             " user_id VARCHAR(255) NOT NULL,"
             " head VARCHAR(64) NOT NULL,"
             " diffs_fingerprint VARCHAR(255) NOT NULL,"
             " PRIMARY KEY (user_id)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

             // Every commit reachable from the user's HEAD, so "the file at commit X" and git's
             // order can be answered without git. committed_at is UTC; tz_offset (minutes east)
             // gives back the commit's own zone; seq is `git rev-list HEAD` order (0 = HEAD).
             "CREATE TABLE IF NOT EXISTS commits ("
             " user_id VARCHAR(255) NOT NULL,"
             " sha VARCHAR(64) NOT NULL,"
             " seq BIGINT NOT NULL,"
             " parents TEXT NOT NULL,"
             " message LONGTEXT NOT NULL,"
             " author VARCHAR(255) NOT NULL,"
             " committed_at DATETIME NOT NULL,"
             " tz_offset SMALLINT NOT NULL,"
             " PRIMARY KEY (user_id, sha),"
             " KEY commits_by_seq (user_id, seq)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

             // The migration plan's table, plus `source` (the exact file v1 wrote) and
             // `v1_commit` (the newest v1 commit that touched the file).
             "CREATE TABLE IF NOT EXISTS blocks ("
             " user_id VARCHAR(255) NOT NULL,"
             " label VARCHAR(255) NOT NULL,"
             " content LONGTEXT NOT NULL,"
             " metadata JSON,"
             " updated_at DATETIME(6),"
             " source LONGTEXT NOT NULL,"
             " v1_commit VARCHAR(64) NOT NULL,"
             " PRIMARY KEY (user_id, label)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

             // The plan keyed this by `id` (the commit sha) alone, but one commit can touch two
             // block files: the key is (user_id, label, id). `message` stays the plan's
             // VARCHAR(500) and holds the history summary (first line); `full_message` keeps the
             // whole message byte for byte. created_at is UTC, created_tz_offset the commit's
             // zone in minutes; ordinal is the position in the block's history (0 = newest)
             // which reproduces git's order when commits share a second; deleted marks the
             // commit that removed the file (source and content are then empty).
             "CREATE TABLE IF NOT EXISTS block_versions ("
             " id VARCHAR(255) NOT NULL,"
             " user_id VARCHAR(255) NOT NULL,"
             " label VARCHAR(255) NOT NULL,"
             " content LONGTEXT NOT NULL,"
             " metadata JSON,"
             " author VARCHAR(255) NOT NULL,"
             " message VARCHAR(500),"
             " created_at DATETIME NOT NULL,"
             " is_current BOOLEAN DEFAULT FALSE,"
             " source LONGTEXT NOT NULL,"
             " full_message LONGTEXT NOT NULL,"
             " created_tz_offset SMALLINT NOT NULL,"
             " ordinal BIGINT NOT NULL,"
             " deleted BOOLEAN NOT NULL DEFAULT FALSE,"
             " PRIMARY KEY (user_id, label, id),"
             " KEY block_versions_history (user_id, label, ordinal)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

             // The plan's columns, keyed per user (a diff id is a file name in one user's
             // pending_diffs/), with reasoning and source_query widened to LONGTEXT (agents
             // write what they like). created_at/reviewed_at are the parsed DATETIME(6) (NULL
             // when v1's text is not a naive ISO time); the *_text columns keep v1's strings
             // exactly; raw_json keeps the file byte for byte.
             "CREATE TABLE IF NOT EXISTS pending_diffs ("
             " id VARCHAR(255) NOT NULL,"
             " user_id VARCHAR(255) NOT NULL,"
             " agent_id VARCHAR(255) NOT NULL,"
             " block_label VARCHAR(255) NOT NULL,"
             " field VARCHAR(255),"
             " operation ENUM('append','replace','llm_diff','full_replace') NOT NULL,"
             " current_value LONGTEXT,"
             " proposed_value LONGTEXT NOT NULL,"
             " reasoning LONGTEXT NOT NULL,"
             " confidence ENUM('low','medium','high') NOT NULL,"
             " status ENUM('pending','approved','rejected','superseded','expired') NOT NULL,"
             " source_query LONGTEXT,"
             " created_at DATETIME(6),"
             " reviewed_at DATETIME(6),"
             " applied_commit VARCHAR(255),"
             " created_at_text VARCHAR(64) NOT NULL,"
             " reviewed_at_text VARCHAR(64),"
             " raw_json LONGTEXT NOT NULL,"
             " PRIMARY KEY (user_id, id),"
             " KEY pending_diffs_by_block (user_id, block_label, status)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

             // What the mirror last applied for a user, written in the same transaction as the
             // data: the capture scan compares v1's HEAD and pending_diffs/ fingerprint to it.
             // applied_at (UTC) changes only when the watermark does, so rewriting an unchanged
             // user changes no row (and makes no Dolt commit).
             "CREATE TABLE IF NOT EXISTS mirror_watermarks ("
             " user_id VARCHAR(255) NOT NULL,"
             " v1_commit VARCHAR(64) NOT NULL,"
             " diffs_fingerprint VARCHAR(255) NOT NULL,"
             " applied_at DATETIME(6) NOT NULL,"
             " PRIMARY KEY (user_id)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
         }},
        // commits.seq and block_versions.ordinal were counted from the newest (0 = HEAD, 0 = the
        // newest version), so every new v1 commit renumbered every row of the user. Counted
        // from the oldest, new history only appends rows: the mirror rewrites what changed and
        // Dolt's history keeps one row per change. (The model still counts from the newest; the
        // store converts.)
        {2,
         "commits.seq and block_versions.ordinal counted from the oldest",
         {
             "UPDATE commits c JOIN (SELECT user_id, MAX(seq) AS top FROM commits"
             " GROUP BY user_id) m ON c.user_id = m.user_id SET c.seq = m.top - c.seq",
             "UPDATE block_versions v JOIN (SELECT user_id, label, MAX(ordinal) AS top"
             " FROM block_versions GROUP BY user_id, label) m"
             " ON v.user_id = m.user_id AND v.label = m.label SET v.ordinal = m.top - v.ordinal",
         },
         /*transactional=*/true},
        // What would have been Dolt commits, on a server that is not Dolt (MariaDB): the mirror
        // records each one here instead (author and date as DOLT_COMMIT would take them), so the
        // commit policy can be checked on either server. Never written on Dolt.
        {3,
         "mirror_commit_log: the Dolt commits a non-Dolt server could not make",
         {
             "CREATE TABLE IF NOT EXISTS mirror_commit_log ("
             " id BIGINT NOT NULL AUTO_INCREMENT,"
             " made_at DATETIME(6) NOT NULL,"
             " author VARCHAR(600) NOT NULL,"
             " commit_date VARCHAR(32) NOT NULL,"
             " message LONGTEXT NOT NULL,"
             " user_id VARCHAR(255),"
             " v1_commit VARCHAR(64),"
             " PRIMARY KEY (id)"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
         }},
        // The v2 side answers from the plan's columns alone, so they hold all v1's answers need
        // (adapters/v1/columns.hpp; README, "The v2 tables"):
        //   blocks.content          the body of the file as v1's GET block reads it (universal
        //                           newlines, then parse_frontmatter); block_versions.content
        //                           the same of the blob as GET version reads it (line ends kept)
        //   metadata                the frontmatter as JSON, NULL without frontmatter
        //   metadata_keys           JSON Pointers of every mapping key in document order (Dolt
        //                           sorts JSON keys; yaml.dump keeps dict order)
        //   frontmatter             whether the text has a frontmatter block
        //   blank_lines             the "\n"s between the closing "---\n" and the body
        //   block_versions.message  the first line of the commit message, uncut (LONGTEXT)
        //   block_versions.author   the "Author:" footer as history shows it
        // Then every row is derived again from the audit copies (source, full_message, raw_json).
        {4,
         "text columns v1's answers can be rebuilt from (metadata_keys, frontmatter, "
         "blank_lines; block_versions.message uncut)",
         {},
         /*transactional=*/false,
         text_columns_step},
        {5,
         "every table NO PAD (utf8mb4_nopad_bin, utf8mb4_0900_bin on Dolt): keys that differ "
         "in trailing blanks are different keys",
         {},
         /*transactional=*/false,
         no_pad_step},
        {6,
         "control tables: shadowgate_plan, shadowgate_stage_history, shadowgate_replicas",
         {},
         /*transactional=*/false,
         control_tables_step},
    };
    return list;
}

constexpr std::string_view create_migrations_table =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL,"
    " name VARCHAR(255) NOT NULL,"
    " applied_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (version)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

std::mutex& migrate_mutex() {
    static std::mutex m;
    return m;
}

}  // namespace

std::span<const migration> migrations() { return all_migrations(); }

result<std::vector<int>> applied_migrations(connection& conn) {
    // information_schema rather than a failing SELECT: a missing table is an answer here, not
    // a failure to count.
    auto exists = conn.query(
        "SELECT COUNT(*) FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'");
    if (!exists) {
        return exists.error();
    }
    if (exists->data.empty() || !exists->data[0][0] || *exists->data[0][0] == "0") {
        return std::vector<int>{};
    }
    auto rs = conn.query("SELECT version FROM schema_migrations ORDER BY version");
    if (!rs) {
        return rs.error();
    }
    std::vector<int> versions;
    for (const auto& r : rs->data) {
        versions.push_back(std::stoi(r[0].value_or("0")));
    }
    return versions;
}

result<std::vector<int>> migrate(connection& conn) {
    if (conn.in_transaction()) {
        // DDL would silently commit the caller's transaction.
        return adapter_error("migrate called inside an open transaction", "25000");
    }
    const std::lock_guard lock(migrate_mutex());
    if (auto r = conn.execute(create_migrations_table); !r) {
        return r.error();
    }
    auto done = applied_migrations(conn);
    if (!done) {
        return done.error();
    }
    const std::set<int> applied(done->begin(), done->end());
    std::vector<int> now_applied;
    for (const migration& m : migrations()) {
        if (applied.contains(m.version)) {
            continue;
        }
        auto failed = [&](error e) {
            e.message = "migration " + std::to_string(m.version) + ": " + e.message;
            if (conn.in_transaction()) conn.rollback();
            return e;
        };
        std::string record =
            "INSERT IGNORE INTO schema_migrations (version, name, applied_at) "
            "VALUES (" +
            std::to_string(m.version) + ", ";
        conn.append_quoted(record, m.name);
        record += ", ";
        conn.append_quoted(record, datetime6(std::chrono::system_clock::now()));
        record += ")";
        bool run = true;
        if (m.transactional) {
            if (auto r = conn.begin(); !r) return failed(r.error());
            auto claimed = conn.execute(record);
            if (!claimed) return failed(claimed.error());
            run = *claimed == 1;  // 0: another process applied it meanwhile
        }
        for (std::string_view stmt : m.statements) {
            if (!run) break;
            if (auto r = conn.execute(stmt); !r) return failed(r.error());
        }
        if (run && m.step != nullptr) {
            if (auto r = m.step(conn); !r) return failed(r.error());
        }
        if (m.transactional) {
            if (auto r = conn.commit(); !r) return failed(r.error());
        } else if (auto r = conn.execute(record); !r) {
            return r.error();
        }
        if (run) now_applied.push_back(m.version);
    }
    return now_applied;
}

}  // namespace sg::dolt
