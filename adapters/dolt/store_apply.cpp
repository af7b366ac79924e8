// adapters/dolt/store_apply: apply_user, which makes the tables hold one user's state by
// changing only the rows that differ from what is there (read first, every column compared).
#include "adapters/dolt/store.hpp"

#include "adapters/dolt/store_internal.hpp"
#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sg::dolt {

using namespace store_detail;

namespace {

bool same_commit(const v1::commit& a, const v1::commit& b) {
    return a.sha == b.sha && a.parents == b.parents && a.message == b.message &&
           a.author == b.author && a.commit_time == b.commit_time &&
           a.commit_tz_offset_minutes == b.commit_tz_offset_minutes && a.seq == b.seq;
}

// A row's key within one user's rows of a table: one or two columns (the second "" for tables
// keyed by one column). Compared as a pair: no allocation per row.
using row_key = std::pair<std::string_view, std::string_view>;

// "DELETE FROM table WHERE user_id = u AND (k = 'a' OR k = 'b' ...)", in chunks that fit.
result<void> delete_keys(connection& conn, std::string_view table, std::string_view user_id,
                         std::string_view key_sql, const std::vector<row_key>& keys,
                         std::size_t soft, write_stats& stats) {
    std::vector<std::string_view> columns;
    for (std::size_t at = 0; at <= key_sql.size();) {
        const std::size_t comma = std::min(key_sql.find(',', at), key_sql.size());
        columns.push_back(key_sql.substr(at, comma - at));
        at = comma + 1;
    }
    std::string head = "DELETE FROM " + std::string(table) + " WHERE user_id = ";
    conn.append_quoted(head, user_id);
    head += " AND (";
    std::string sql;
    auto send = [&]() -> result<void> {
        if (sql.empty()) {
            return {};
        }
        sql += ')';
        auto r = run_counted(conn, sql, stats);
        sql.clear();
        return r;
    };
    for (const auto& key : keys) {
        sql += sql.empty() ? head : std::string(" OR ");
        sql += '(';
        for (std::size_t i = 0; i < columns.size() && i < 2; ++i) {
            if (i > 0) {
                sql += " AND ";
            }
            sql += columns[i];
            sql += " = ";
            conn.append_quoted(sql, i == 0 ? key.first : key.second);
        }
        sql += ')';
        if (sql.size() > soft / 2) {
            if (auto r = send(); !r) {
                return r;
            }
        }
    }
    return send();
}

// One table of one user: the rows `want` has and `cur` lacks or holds differently are
// (re)inserted through `add`, the keys `cur` has and `want` lacks are deleted.
template <class T>
struct table_sync {
    std::string_view table;
    std::string_view key_columns;  // "a,b": the key's columns, in key() order
    const std::vector<T>& cur;
    const std::vector<T>& want;
    row_key (*key)(const T&);
    std::function<bool(const T&, const T&)> same;
    std::function<result<void>(const T&)> add;
    std::size_t* added = nullptr;    // counts keys new to the table
    std::size_t* changed = nullptr;  // counts rows inserted, replaced or deleted
};

template <class T>
result<void> sync_rows(connection& conn, std::string_view uid, std::size_t soft, apply_stats& st,
                       const table_sync<T>& t) {
    // Both sides sorted by key, then walked together (a key given twice in `want`: the last
    // one wins, as in write_users).
    using keyed = std::pair<row_key, const T*>;
    auto sorted = [&](const std::vector<T>& rows) {
        std::vector<keyed> v;
        v.reserve(rows.size());
        for (const T& x : rows) v.emplace_back(t.key(x), &x);
        std::stable_sort(v.begin(), v.end(),
                         [](const keyed& a, const keyed& b) { return a.first < b.first; });
        return v;
    };
    const std::vector<keyed> cur = sorted(t.cur);
    const std::vector<keyed> want = sorted(t.want);
    std::vector<row_key> gone;
    std::vector<const T*> added;
    auto add = [&](const T& x) {
        added.push_back(&x);
        if (t.changed != nullptr) ++*t.changed;
    };
    std::size_t i = 0, j = 0;
    while (i < cur.size() || j < want.size()) {
        if (j + 1 < want.size() && want[j].first == want[j + 1].first) {
            ++j;  // an earlier duplicate of the next key
            continue;
        }
        if (j == want.size() || (i < cur.size() && cur[i].first < want[j].first)) {
            gone.push_back(cur[i++].first);  // only in the table
            if (t.changed != nullptr) ++*t.changed;
        } else if (i == cur.size() || want[j].first < cur[i].first) {
            if (t.added != nullptr) ++*t.added;  // new to the table
            add(*want[j++].second);
        } else {
            const bool same = t.same(*cur[i].second, *want[j].second);
            if (!same) {
                gone.push_back(cur[i].first);
                add(*want[j].second);
            }
            ++i;
            ++j;
        }
    }
    // Deletes first: the sink sends its inserts whenever its buffer fills, and the new row of a
    // changed key must never reach the table while the old one is still there (a duplicate key:
    // this parked users that caught up on more than one buffer of rows after an outage).
    if (auto r = delete_keys(conn, t.table, uid, t.key_columns, gone, soft, st.writes); !r) {
        return r;
    }
    st.rows_deleted += gone.size();
    for (const T* x : added) {
        if (auto r = t.add(*x); !r) return r;
        ++st.rows_inserted;
    }
    return {};
}

// The user's commits, blocks, versions and diffs, each table brought from `cur` to `want`.
result<void> sync_tables(connection& conn, const std::string& uid, std::size_t soft,
                         apply_stats& st, const user_rows& cur, const user_rows& want,
                         row_sink& sink) {
    auto sync = [&](const auto& ctx) { return sync_rows(conn, uid, soft, st, ctx); };
    // Every column is compared, so a row changed behind the mirror's back is written again.
    if (auto r = sync(table_sync<v1::commit>{
            "commits", "sha", cur.commits, want.commits,
            [](const v1::commit& c) {
                return row_key{c.sha, {}};
            },
            same_commit, [&](const v1::commit& c) { return sink.commit(want, c); },
            &st.commits_added, nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<block_row>{
            "blocks", "label", cur.blocks, want.blocks,
            [](const block_row& b) {
                return row_key{b.label, {}};
            },
            [](const block_row& a, const block_row& b) { return same_row(a, b); },
            [&](const block_row& b) { return sink.block(want, b); }, nullptr, nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<version_row>{
            "block_versions", "label,id", cur.versions, want.versions,
            [](const version_row& v) {
                return row_key{v.label, v.id};
            },
            [](const version_row& a, const version_row& b) { return same_row(a, b); },
            [&](const version_row& v) { return sink.version(want, v); }, nullptr, nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<diff_row>{
            "pending_diffs", "id", cur.diffs, want.diffs,
            [](const diff_row& d) {
                return row_key{d.fields.id, {}};
            },
            [](const diff_row& a, const diff_row& b) { return same_row(a, b); },
            [&](const diff_row& d) { return sink.diff(want, d); }, nullptr, &st.diffs_changed});
        !r) {
        return r.error();
    }
    return {};
}

result<apply_stats> apply_in_tx(connection& conn, const user_rows& wanted,
                                const write_options& opts, const apply_options& aopts) {
    apply_stats st;
    auto mark = read_watermark(conn, wanted.user_id);
    if (!mark) {
        return mark.error();
    }
    const user_rows* known = aopts.known;
    st.used_known = known != nullptr && *mark && known->user_id == wanted.user_id &&
                    (*mark)->v1_commit == known->head &&
                    (*mark)->diffs_fingerprint == known->diffs_fingerprint;
    result<std::optional<user_rows>> current = std::optional<user_rows>{};
    if (!st.used_known) {
        current = read_user_in_tx(conn, wanted.user_id);
        if (!current) {
            return current.error();
        }
    }
    st.existed = st.used_known || current->has_value();
    st.previous_head = *mark ? (*mark)->v1_commit : std::string();
    const user_rows empty{};
    const user_rows& cur = st.used_known ? *known : *current ? **current : empty;

    user_rows kept_diffs;
    const user_rows* desired = &wanted;
    if (aopts.keep_diffs) {
        kept_diffs = wanted;
        kept_diffs.diffs = cur.diffs;
        kept_diffs.diffs_fingerprint = *mark ? (*mark)->diffs_fingerprint : cur.diffs_fingerprint;
        desired = &kept_diffs;
    }
    const user_rows& want = *desired;
    const std::string uid = want.user_id;

    row_sink sink(conn, opts, st.writes);
    const std::size_t soft = sink.limits().soft;
    auto counted_rows = [&](std::size_t deleted, std::size_t inserted) {
        st.rows_deleted += deleted;
        st.rows_inserted += inserted;
    };

    // users
    const bool user_changed =
        !st.existed || cur.head != want.head || cur.diffs_fingerprint != want.diffs_fingerprint;
    if (user_changed) {
        if (st.existed) {
            std::string sql = "DELETE FROM users WHERE user_id = " + conn.quoted(uid);
            if (auto r = run_counted(conn, sql, st.writes); !r) return r.error();
            counted_rows(1, 0);
        }
        if (auto r = sink.user(want); !r) return r.error();
        counted_rows(0, 1);
    }

    if (auto r = sync_tables(conn, uid, soft, st, cur, want, sink); !r) return r.error();

    // the watermark: moves (with applied_at) only when what it names moved
    st.watermark_moved = !*mark || (*mark)->v1_commit != want.head ||
                         (*mark)->diffs_fingerprint != want.diffs_fingerprint;
    if (st.watermark_moved) {
        if (*mark) {
            std::string sql = "DELETE FROM mirror_watermarks WHERE user_id = " + conn.quoted(uid);
            if (auto r = run_counted(conn, sql, st.writes); !r) return r.error();
            counted_rows(1, 0);
        }
        const auto now = opts.now ? opts.now() : std::chrono::system_clock::now();
        if (auto r = sink.mark(want, datetime6(now)); !r) return r.error();
        counted_rows(0, 1);
    }
    if (auto r = sink.flush(); !r) return r.error();
    return st;
}

}  // namespace

result<apply_stats> apply_user(connection& conn, const user_rows& desired,
                               const write_options& opts, const apply_options& aopts) {
    if (conn.in_transaction()) {
        return adapter_error("apply_user called inside an open transaction", "25000");
    }
    if (auto r = conn.begin(); !r) {
        return r.error();
    }
    auto st = apply_in_tx(conn, desired, opts, aopts);
    if (!st) {
        conn.rollback();
        return st.error();
    }
    st->writes.statements += 2;
    if (auto r = conn.commit(); !r) {
        conn.rollback();
        return r.error();
    }
    st->writes.users = 1;
    return st;
}

}  // namespace sg::dolt
