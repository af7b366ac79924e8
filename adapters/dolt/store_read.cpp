// adapters/dolt/store_read: the lossless read back of user states (read_user, read_users), the
// user list, watermarks, and the one-statement snapshot answers are built from (read_snapshot).
#include "adapters/dolt/store.hpp"

#include "adapters/dolt/store_internal.hpp"
#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt {

using namespace store_detail;

namespace {

result<std::int64_t> to_int(const cell& c, std::string_view what) {
    std::int64_t v = 0;
    if (c) {
        const char* end = c->data() + c->size();
        auto [p, ec] = std::from_chars(c->data(), end, v);
        if (ec == std::errc{} && p == end) {
            return v;
        }
    }
    return adapter_error("unexpected value in column " + std::string(what));
}

result<std::int64_t> to_epoch(const cell& c, std::string_view what) {
    if (c) {
        if (auto t = parse_utc_datetime(*c)) {
            return *t;
        }
    }
    return adapter_error("unexpected time in column " + std::string(what));
}

// One table's share of a read of users: its select list (names and literals only, no comma
// inside one, so a comma counts a column), the table with its condition, and the order the
// readers take its rows in.
struct table_read {
    std::string columns;
    std::string from;
    std::string order;

    std::size_t width() const {
        return static_cast<std::size_t>(std::count(columns.begin(), columns.end(), ',')) + 1;
    }
    std::string statement() const {
        return "SELECT " + columns + " FROM " + from + (order.empty() ? "" : " ORDER BY " + order);
    }
};

// What reads `parts` of the users `where` selects (" WHERE user_id = 'u'"), in the order
// parse_rows takes their results: users, then commits, blocks, versions, diffs as asked.
// `keyed`: every row starts with its user_id and rows come ordered by user first (several users).
std::vector<table_read> user_reads(const connection& conn, const std::string& where,
                                   const read_parts& parts, bool keyed = false) {
    std::string of_label;
    if (parts.label) {
        of_label = " AND label = " + conn.quoted(*parts.label);
    }
    const std::string key = keyed ? "user_id, " : "";
    const std::string by = keyed ? "user_id, " : "";
    constexpr std::string_view texts = "content, metadata, metadata_keys, frontmatter, blank_lines";
    constexpr std::string_view no_texts = "'', NULL, '[]', FALSE, 0";
    std::vector<table_read> out;
    out.push_back(
        {key + "user_id, head, diffs_fingerprint", "users" + where, keyed ? "user_id" : ""});
    if (parts.commits) {
        out.push_back({key + "sha, parents, message, author, committed_at, tz_offset, seq",
                       "commits" + where, by + "seq DESC"});
    }
    if (parts.blocks) {
        out.push_back({key + "label, " + std::string(parts.block_texts ? texts : no_texts) +
                           ", updated_at, v1_commit" + (parts.audit ? ", source" : ""),
                       "blocks" + where + of_label, by + "label"});
    }
    if (parts.versions) {
        out.push_back({key + "id, label, " + std::string(parts.version_texts ? texts : no_texts) +
                           ", author, message, created_at, created_tz_offset, is_current, "
                           "ordinal, deleted" +
                           (parts.audit ? ", full_message, source" : ""),
                       "block_versions" + where + of_label, by + "label, ordinal DESC"});
    }
    if (parts.diffs) {
        out.push_back({key +
                           "id, agent_id, block_label, field, operation, current_value, "
                           "proposed_value, reasoning, confidence, status, source_query, "
                           "created_at, reviewed_at, applied_commit" +
                           (parts.audit ? ", created_at_text, reviewed_at_text, raw_json" : ""),
                       "pending_diffs" + where, by + "id"});
    }
    return out;
}

std::vector<std::string> user_statements(const connection& conn, const std::string& where,
                                         const read_parts& parts, bool keyed = false) {
    std::vector<std::string> out;
    for (const auto& t : user_reads(conn, where, parts, keyed)) out.push_back(t.statement());
    return out;
}

result<std::optional<std::string>> datetime6_cell(const cell& c, std::string_view what) {
    if (!c) return std::optional<std::string>{};
    if (auto n = normal_datetime6(*c)) return std::optional<std::string>(std::move(*n));
    return adapter_error("unexpected time in column " + std::string(what));
}

// content, metadata, metadata_keys, frontmatter, blank_lines from r[at...].
result<v1::text_columns> text_cells(std::vector<cell>& r, std::size_t at, std::string_view table) {
    v1::text_columns t;
    t.content = std::move(r[at]).value_or("");
    t.metadata = std::move(r[at + 1]);
    t.metadata_keys = std::move(r[at + 2]).value_or("[]");
    t.frontmatter = r[at + 3].value_or("0") != "0";
    auto blank = to_int(r[at + 4], std::string(table) + ".blank_lines");
    if (!blank) return blank.error();
    t.blank_lines = *blank;
    return t;
}

// A row of commits, as user_reads selects it.
result<v1::commit> commit_of(std::vector<cell>& r) {
    v1::commit c;
    c.sha = std::move(r[0]).value_or("");
    c.parents = split_parents(r[1].value_or(""));
    c.message = std::move(r[2]).value_or("");
    c.author = std::move(r[3]).value_or("");
    auto t = to_epoch(r[4], "commits.committed_at");
    auto tz = to_int(r[5], "commits.tz_offset");
    auto seq = to_int(r[6], "commits.seq");
    if (!t || !tz || !seq) {
        return !t ? t.error() : !tz ? tz.error() : seq.error();
    }
    c.commit_time = *t;
    c.commit_tz_offset_minutes = static_cast<int>(*tz);
    c.seq = *seq;
    return c;
}

// A row of blocks, as user_reads selects it (source with `audit`).
result<block_row> block_of(std::vector<cell>& r, bool audit) {
    block_row b;
    b.label = std::move(r[0]).value_or("");
    auto text = text_cells(r, 1, "blocks");
    auto updated = datetime6_cell(r[6], "blocks.updated_at");
    if (!text || !updated) return !text ? text.error() : updated.error();
    b.text = std::move(*text);
    b.updated_at = std::move(*updated);
    b.v1_commit = std::move(r[7]).value_or("");
    if (audit) b.source = std::move(r[8]).value_or("");
    return b;
}

// A row of block_versions, as user_reads selects it (full_message and source with `audit`).
result<version_row> version_of(std::vector<cell>& r, bool audit) {
    version_row v;
    v.id = std::move(r[0]).value_or("");
    v.label = std::move(r[1]).value_or("");
    auto text = text_cells(r, 2, "block_versions");
    if (!text) return text.error();
    v.text = std::move(*text);
    v.author = std::move(r[7]).value_or("");
    v.message = std::move(r[8]).value_or("");
    auto t = to_epoch(r[9], "block_versions.created_at");
    auto tz = to_int(r[10], "block_versions.created_tz_offset");
    auto ord = to_int(r[12], "block_versions.ordinal");
    if (!t || !tz || !ord) {
        return !t ? t.error() : !tz ? tz.error() : ord.error();
    }
    v.created_at = *t;
    v.created_tz_offset = static_cast<int>(*tz);
    v.is_current = r[11].value_or("0") != "0";
    v.ordinal = *ord;
    v.deleted = r[13].value_or("0") != "0";
    if (audit) {
        v.full_message = std::move(r[14]).value_or("");
        v.source = std::move(r[15]).value_or("");
    }
    return v;
}

// A row of pending_diffs, as user_reads selects it (the texts and raw_json with `audit`).
result<diff_row> diff_of(std::vector<cell>& r, bool audit) {
    diff_row row;
    v1::pending_diff& d = row.fields;
    d.id = std::move(r[0]).value_or("");
    d.agent_id = std::move(r[1]).value_or("");
    d.block_label = std::move(r[2]).value_or("");
    d.field = std::move(r[3]);
    d.operation = std::move(r[4]).value_or("");
    d.current_value = std::move(r[5]);
    d.proposed_value = std::move(r[6]).value_or("");
    d.reasoning = std::move(r[7]).value_or("");
    d.confidence = std::move(r[8]).value_or("");
    d.status = std::move(r[9]).value_or("");
    d.source_query = std::move(r[10]);
    auto created = datetime6_cell(r[11], "pending_diffs.created_at");
    auto reviewed = datetime6_cell(r[12], "pending_diffs.reviewed_at");
    if (!created || !reviewed) return !created ? created.error() : reviewed.error();
    row.created_at = std::move(*created);
    row.reviewed_at = std::move(*reviewed);
    d.applied_commit = std::move(r[13]);
    if (audit) {
        d.created_at = std::move(r[14]).value_or("");
        d.reviewed_at = std::move(r[15]);
        d.raw_json = std::move(r[16]).value_or("");
    }
    return row;
}

// The user's rows from the results of user_statements(parts), in that order.
result<std::optional<user_rows>> parse_rows(std::span<rows> results, std::string_view user_id,
                                            const read_parts& parts) {
    std::size_t next = 0;
    rows& urs = results[next++];
    // PAD SPACE: 'u ' = 'u' in SQL. Only the exact id is this user.
    if (urs.data.empty() || urs.data[0][0].value_or("") != user_id) {
        return std::optional<user_rows>{};
    }
    user_rows u;
    u.user_id = std::string(user_id);
    u.head = urs.data[0][1].value_or("");
    u.diffs_fingerprint = urs.data[0][2].value_or("");

    if (parts.commits) {
        for (auto& r : results[next++].data) {
            auto commit = commit_of(r);
            if (!commit) return commit.error();
            u.commits.push_back(std::move(*commit));
        }
    }

    if (parts.blocks) {
        for (auto& r : results[next++].data) {
            auto block = block_of(r, parts.audit);
            if (!block) return block.error();
            u.blocks.push_back(std::move(*block));
        }
    }

    if (parts.versions) {
        for (auto& r : results[next++].data) {
            auto version = version_of(r, parts.audit);
            if (!version) return version.error();
            u.versions.push_back(std::move(*version));
        }
    }

    if (parts.diffs) {
        for (auto& r : results[next++].data) {
            auto diff = diff_of(r, parts.audit);
            if (!diff) return diff.error();
            u.diffs.push_back(std::move(*diff));
        }
    }
    return std::optional<user_rows>(std::move(u));
}

std::optional<watermark> parse_watermark(rows& rs, std::string_view user_id) {
    if (rs.data.empty() || rs.data[0][0].value_or("") != user_id) {
        return std::nullopt;
    }
    auto& r = rs.data[0];
    return watermark{std::move(r[0]).value_or(""), std::move(r[1]).value_or(""),
                     std::move(r[2]).value_or(""), std::move(r[3]).value_or("")};
}

table_read watermark_read(const connection& conn, std::string_view user_id) {
    return {"user_id, v1_commit, diffs_fingerprint, applied_at",
            "mirror_watermarks WHERE user_id = " + conn.quoted(user_id), ""};
}

std::string watermark_statement(const connection& conn, std::string_view user_id) {
    return watermark_read(conn, user_id).statement();
}

// The reads as one statement: a UNION ALL of them, each row led by its read's index and padded
// with NULLs to the widest. One statement reads every table from one snapshot (InnoDB's
// consistent read, Dolt's working set of the statement), with no transaction around it, in one
// round trip; the rows' order is put right by the reader (sort_rows). The columns stacked in one
// position can differ in type (the text protocol sends each as its text either way); their
// collations are one (migration 5), or the union would be an "Illegal mix of collations".
std::string union_statement(std::span<const table_read> reads) {
    std::size_t width = 0;
    for (const auto& t : reads) width = std::max(width, t.width());
    std::string sql;
    for (std::size_t i = 0; i < reads.size(); ++i) {
        if (i) sql += " UNION ALL ";
        sql += "SELECT " + std::to_string(i) + ", " + reads[i].columns;
        for (std::size_t c = reads[i].width(); c < width; ++c) sql += ", NULL";
        sql += " FROM " + reads[i].from;
    }
    return sql;
}

// The rows of a union_statement, split back into one result per read, each row as wide as its
// read.
result<std::vector<rows>> split_union(rows&& all, std::span<const table_read> reads) {
    std::vector<rows> out(reads.size());
    for (auto& r : all.data) {
        std::size_t at = reads.size();
        if (!r.empty() && r[0]) {
            const std::string& tag = *r[0];
            std::from_chars(tag.data(), tag.data() + tag.size(), at);
        }
        if (at >= reads.size() || r.size() < reads[at].width() + 1) {
            return adapter_error("a snapshot row names no read of the statement");
        }
        r.erase(r.begin());
        r.resize(reads[at].width());
        out[at].data.push_back(std::move(r));
    }
    return out;
}

}  // namespace

namespace store_detail {

result<std::optional<user_rows>> read_user_in_tx(connection& conn, std::string_view user_id) {
    const read_parts all = read_parts::everything();
    const auto statements = user_statements(conn, " WHERE user_id = " + conn.quoted(user_id), all);
    std::vector<rows> results;
    for (const auto& sql : statements) {
        auto rs = conn.query(sql);
        if (!rs) {
            return rs.error();
        }
        // No such user: the other tables hold nothing for it either.
        if (results.empty() && (rs->data.empty() || rs->data[0][0].value_or("") != user_id)) {
            return std::optional<user_rows>{};
        }
        results.push_back(std::move(*rs));
    }
    return parse_rows(results, user_id, all);
}

}  // namespace store_detail

result<std::optional<user_rows>> read_user(connection& conn, std::string_view user_id) {
    const bool own = !conn.in_transaction();
    if (own) {
        if (auto r = conn.begin(); !r) {
            return r.error();
        }
    }
    auto u = read_user_in_tx(conn, user_id);
    if (own) {
        if (!u) {
            conn.rollback();
        } else if (auto r = conn.commit(); !r) {
            return r.error();
        }
    }
    return u;
}

result<std::vector<std::string>> list_users(connection& conn) {
    auto rs = conn.query("SELECT user_id FROM users ORDER BY user_id");
    if (!rs) {
        return rs.error();
    }
    std::vector<std::string> ids;
    ids.reserve(rs->data.size());
    for (auto& r : rs->data) {
        ids.push_back(std::move(r[0]).value_or(""));
    }
    return ids;
}

result<std::optional<watermark>> read_watermark(connection& conn, std::string_view user_id) {
    auto rs = conn.query(watermark_statement(conn, user_id));
    if (!rs) {
        return rs.error();
    }
    return parse_watermark(*rs, user_id);
}

result<std::map<std::string, user_rows, std::less<>>> read_users(
    connection& conn, std::span<const std::string> user_ids) {
    std::map<std::string, user_rows, std::less<>> out;
    if (user_ids.empty()) return out;
    std::string where = " WHERE user_id IN (";
    for (std::size_t i = 0; i < user_ids.size(); ++i) {
        if (i) where += ',';
        conn.append_quoted(where, user_ids[i]);
    }
    where += ')';
    const read_parts all = read_parts::everything();
    const bool own = !conn.in_transaction();
    if (own) {
        if (auto r = conn.begin(); !r) return r.error();
    }
    // Every table's rows, split by their first column (the user): exact bytes, so a 'u ' that
    // PAD SPACE lets match 'u' is not taken for it.
    std::map<std::string, std::vector<rows>, std::less<>> by_user;
    const auto statements = user_statements(conn, where, all, /*keyed=*/true);
    for (std::size_t t = 0; t < statements.size(); ++t) {
        auto rs = conn.query(statements[t]);
        if (!rs) {
            if (own) conn.rollback();
            return rs.error();
        }
        for (auto& r : rs->data) {
            std::string id = r[0].value_or("");
            auto& tables = by_user[id];
            tables.resize(statements.size());
            r.erase(r.begin());
            tables[t].data.push_back(std::move(r));
        }
    }
    if (own) {
        if (auto r = conn.commit(); !r) return r.error();
    }
    for (const auto& id : user_ids) {
        auto it = by_user.find(id);
        if (it == by_user.end()) continue;
        auto state = parse_rows(it->second, id, all);
        if (!state) return state.error();
        if (*state) out.emplace(id, std::move(**state));
    }
    return out;
}

result<snapshot> read_snapshot(connection& conn, std::string_view user_id,
                               const read_parts& parts) {
    read_parts plan = parts;
    plan.audit = false;  // answers come from the plan's columns only
    std::vector<table_read> reads;
    reads.reserve(6);
    reads.push_back(watermark_read(conn, user_id));
    for (auto& t : user_reads(conn, " WHERE user_id = " + conn.quoted(user_id), plan)) {
        reads.push_back(std::move(t));
    }
    auto all = conn.query(union_statement(reads));
    if (!all) return all.error();
    auto results = split_union(std::move(*all), reads);
    if (!results) return results.error();
    snapshot out;
    out.mark = parse_watermark((*results)[0], user_id);
    auto state = parse_rows(std::span<rows>(*results).subspan(1), user_id, plan);
    if (!state) {
        return state.error();
    }
    if (*state) {
        sort_rows(**state);
        out.state = rebuild_state(**state);
    }
    return out;
}

}  // namespace sg::dolt
