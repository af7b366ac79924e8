// adapters/dolt/control: the control plane's tables (migration 6): the plan every replica follows,
// the history of its changes, and the replicas' acknowledgements. The plan is one row changed
// only by compare-and-set on its version, and every write also stores a fresh UUID() in op_token:
// on Dolt, row locks do nothing and identical concurrent writes merge without a conflict, so the
// fresh value is what makes two racing writers collide (1213) instead of both "winning". The
// callers retry 1213/1205 (with_retry). Bodies are opaque JSON text here (proxy/control reads
// them). Synchronous; for worker threads.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/error.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt {

struct stored_plan {
    std::uint64_t version = 0;
    std::string op_token;    // the UUID() of the write that made this version
    std::string body;        // the plan's JSON
    std::string updated_by;  // who wrote it ("replica r1 (initial plan)", "alice via cli")
    std::string updated_at;  // UTC, "YYYY-MM-DD HH:MM:SS.ffffff"
};

// One change of the plan, as recorded (one row per cohort moved by a plan version).
struct stage_change_row {
    std::uint64_t plan_version = 0;  // filled by compare_and_set_plan
    std::string event = "stage";     // "stage", "freeze" or "unfreeze"
    std::string cohort;
    std::string from_stage;
    std::string to_stage;
    bool forced = false;
    std::string who;
    std::string why;
    std::string gate_verdict;  // the gate's verdict JSON at the time of the change
    std::string tag;           // the Dolt tag (or, on MariaDB, the name it would have)
    std::string changed_at;    // UTC, read back
};

struct replica_row {
    std::string replica_id;
    std::string boot_id;
    std::uint64_t applied_version = 0;
    std::string started_at;
    std::string last_poll_ok;
    double seconds_since_poll = 0;  // by the database's clock, so replicas' clocks do not matter
};

// The plan row, or nullopt when none was ever written.
result<std::optional<stored_plan>> read_plan(connection& conn);

// Writes `body` as version 1 when the table holds no plan; either way returns the plan stored
// afterwards (another replica's, when it was first). Safe to race.
result<stored_plan> init_plan(connection& conn, std::string_view body, std::string_view who);

// In one transaction: replaces the plan when its version is still `expected_version` (the new
// version is expected_version + 1, with a fresh op_token) and records `changes` under it. Returns
// the stored plan, or nullopt when the plan had changed meanwhile (nothing written). On Dolt the
// new state is then committed and tagged (each row's `tag`).
result<std::optional<stored_plan>> compare_and_set_plan(connection& conn,
                                                        std::uint64_t expected_version,
                                                        std::string_view body, std::string_view who,
                                                        std::span<const stage_change_row> changes);

// The newest `limit` changes, newest first.
result<std::vector<stage_change_row>> read_history(connection& conn, std::size_t limit);

// This replica's row: the plan version it applies now, and that it polled just now.
result<void> report_replica(connection& conn, std::string_view replica_id, std::string_view boot_id,
                            std::uint64_t applied_version);

// Every replica's row, by id.
result<std::vector<replica_row>> read_replicas(connection& conn);

}  // namespace sg::dolt
