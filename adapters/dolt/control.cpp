// adapters/dolt/control: the plan row's compare-and-set, its history and the replicas' rows.
#include "adapters/dolt/control.hpp"

#include <algorithm>
#include <charconv>

namespace sg::dolt {

namespace {

std::uint64_t to_u64(const cell& c) {
    std::uint64_t v = 0;
    if (c) std::from_chars(c->data(), c->data() + c->size(), v);
    return v;
}

stored_plan plan_of(const row& r) {
    stored_plan p;
    p.version = to_u64(r[0]);
    p.op_token = r[1].value_or("");
    p.body = r[2].value_or("");
    p.updated_by = r[3].value_or("");
    p.updated_at = r[4].value_or("");
    return p;
}

constexpr std::string_view select_plan =
    "SELECT version, op_token, body, updated_by, updated_at FROM shadowgate_plan WHERE id = 1";

// Dolt commits and tags the flip so that its data can be inspected or reset to this state.
result<void> commit_and_tag(connection& conn, const stored_plan& p,
                            std::span<const stage_change_row> changes) {
    auto dolt = conn.is_dolt();
    if (!dolt) return dolt.error();
    if (!*dolt) return {};  // MariaDB: the history rows carry the tag names
    std::string sql = "CALL DOLT_COMMIT('-a', '--skip-empty', '-m', ";
    conn.append_quoted(
        sql, "shadowgate: plan version " + std::to_string(p.version) + " by " + p.updated_by);
    sql += ")";
    if (auto r = conn.execute(sql); !r) return r.error();
    std::vector<std::string_view> made;  // one tag per change, however many rows record it
    for (const auto& c : changes) {
        if (c.tag.empty() || std::find(made.begin(), made.end(), c.tag) != made.end()) continue;
        made.push_back(c.tag);
        std::string tag = "CALL DOLT_TAG(";
        conn.append_quoted(tag, c.tag);
        tag += ", 'HEAD', '-m', ";
        conn.append_quoted(tag, c.cohort + ": " + c.from_stage + " -> " + c.to_stage);
        tag += ")";
        if (auto r = conn.execute(tag); !r) return r.error();
    }
    return {};
}

}  // namespace

result<std::optional<stored_plan>> read_plan(connection& conn) {
    auto r = conn.query(select_plan);
    if (!r) return r.error();
    if (r->data.empty()) return std::optional<stored_plan>();
    return std::optional<stored_plan>(plan_of(r->data.front()));
}

result<stored_plan> init_plan(connection& conn, std::string_view body, std::string_view who) {
    std::string sql =
        "INSERT IGNORE INTO shadowgate_plan (id, version, op_token, body, updated_by, updated_at)"
        " VALUES (1, 1, UUID(), ";
    conn.append_quoted(sql, body);
    sql += ", ";
    conn.append_quoted(sql, who);
    sql += ", UTC_TIMESTAMP(6))";
    if (auto r = conn.execute(sql); !r) return r.error();
    auto p = read_plan(conn);
    if (!p) return p.error();
    if (!*p) return adapter_error("shadowgate_plan has no row after it was written");
    return std::move(**p);
}

result<std::optional<stored_plan>> compare_and_set_plan(connection& conn,
                                                        std::uint64_t expected_version,
                                                        std::string_view body, std::string_view who,
                                                        std::span<const stage_change_row> changes) {
    if (auto b = conn.begin(); !b) return b.error();
    std::string sql =
        "UPDATE shadowgate_plan SET version = version + 1, op_token = UUID(), body = ";
    conn.append_quoted(sql, body);
    sql += ", updated_by = ";
    conn.append_quoted(sql, who);
    sql += ", updated_at = UTC_TIMESTAMP(6) WHERE id = 1 AND version = " +
           std::to_string(expected_version);
    auto updated = conn.execute(sql);
    if (!updated) {
        conn.rollback();
        return updated.error();
    }
    if (*updated != 1) {  // op_token changes every time: matched rows are changed rows
        conn.rollback();
        return std::optional<stored_plan>();
    }
    const std::uint64_t version = expected_version + 1;
    for (const auto& c : changes) {
        std::string ins =
            "INSERT INTO shadowgate_stage_history (plan_version, event, cohort, from_stage,"
            " to_stage, forced, who, why, gate_verdict, tag, changed_at) VALUES (" +
            std::to_string(version);
        for (const std::string* v : {&c.event, &c.cohort, &c.from_stage, &c.to_stage}) {
            ins += ", ";
            conn.append_quoted(ins, *v);
        }
        ins += c.forced ? ", 1" : ", 0";
        for (const std::string* v : {&c.who, &c.why, &c.gate_verdict, &c.tag}) {
            ins += ", ";
            conn.append_quoted(ins, *v);
        }
        ins += ", UTC_TIMESTAMP(6))";
        if (auto r = conn.execute(ins); !r) {
            conn.rollback();
            return r.error();
        }
    }
    auto p = conn.query(select_plan);
    if (!p) {
        conn.rollback();
        return p.error();
    }
    if (auto c = conn.commit(); !c) return c.error();
    if (p->data.empty()) return adapter_error("shadowgate_plan lost its row");
    stored_plan stored = plan_of(p->data.front());
    if (auto t = commit_and_tag(conn, stored, changes); !t) return t.error();
    return std::optional<stored_plan>(std::move(stored));
}

result<std::vector<stage_change_row>> read_history(connection& conn, std::size_t limit) {
    auto r = conn.query(
        "SELECT plan_version, event, cohort, from_stage, to_stage, forced, who, why,"
        " gate_verdict, tag, changed_at FROM shadowgate_stage_history ORDER BY id DESC LIMIT " +
        std::to_string(limit));
    if (!r) return r.error();
    std::vector<stage_change_row> out;
    for (const auto& x : r->data) {
        stage_change_row c;
        c.plan_version = to_u64(x[0]);
        c.event = x[1].value_or("");
        c.cohort = x[2].value_or("");
        c.from_stage = x[3].value_or("");
        c.to_stage = x[4].value_or("");
        c.forced = x[5].value_or("0") == "1";
        c.who = x[6].value_or("");
        c.why = x[7].value_or("");
        c.gate_verdict = x[8].value_or("");
        c.tag = x[9].value_or("");
        c.changed_at = x[10].value_or("");
        out.push_back(std::move(c));
    }
    return out;
}

result<void> report_replica(connection& conn, std::string_view replica_id, std::string_view boot_id,
                            std::uint64_t applied_version) {
    std::string sql =
        "INSERT INTO shadowgate_replicas (replica_id, boot_id, applied_version, op_token,"
        " started_at, last_poll_ok) VALUES (";
    conn.append_quoted(sql, replica_id);
    sql += ", ";
    conn.append_quoted(sql, boot_id);
    sql += ", " + std::to_string(applied_version) +
           ", UUID(), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE"
           " started_at = IF(boot_id = VALUES(boot_id), started_at, VALUES(started_at)),"
           " boot_id = VALUES(boot_id), applied_version = VALUES(applied_version),"
           " op_token = UUID(), last_poll_ok = VALUES(last_poll_ok)";
    if (auto r = conn.execute(sql); !r) return r.error();
    return {};
}

result<std::vector<replica_row>> read_replicas(connection& conn) {
    auto r = conn.query(
        "SELECT replica_id, boot_id, applied_version, started_at, last_poll_ok,"
        " TIMESTAMPDIFF(MICROSECOND, last_poll_ok, UTC_TIMESTAMP(6)) FROM shadowgate_replicas"
        " ORDER BY replica_id");
    if (!r) return r.error();
    std::vector<replica_row> out;
    for (const auto& x : r->data) {
        replica_row rr;
        rr.replica_id = x[0].value_or("");
        rr.boot_id = x[1].value_or("");
        rr.applied_version = to_u64(x[2]);
        rr.started_at = x[3].value_or("");
        rr.last_poll_ok = x[4].value_or("");
        rr.seconds_since_poll = static_cast<double>(to_u64(x[5])) / 1e6;
        out.push_back(std::move(rr));
    }
    return out;
}

}  // namespace sg::dolt
