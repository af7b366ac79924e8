// adapters/dolt/store_write: bulk replace of user states (write_users), and the definitions of
// what the row sink (store_internal.hpp) calls.
//
// Round trips dominate a bulk import, so a batch costs a fixed handful of statements plus one
// multi-row INSERT per few hundred rows: BEGIN, one SELECT of the old watermarks, one DELETE per
// table, the INSERTs, COMMIT. The INSERTs are prepared statements with many rows of placeholders
// each, reused across batches: values travel length-prefixed in the binary protocol, so neither
// side escapes or lexes them (lexing multi-MiB literals was MariaDB's biggest cost in the bulk
// import, ahead of storing the rows).
#include "adapters/dolt/store.hpp"

#include "adapters/dolt/store_internal.hpp"
#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sg::dolt {

using namespace store_detail;

namespace {

constexpr std::size_t default_statement_bytes = 4u << 20;

}  // namespace

namespace store_detail {

result<std::string> commit_datetime(std::int64_t t, std::string_view user, std::string_view sha) {
    auto s = utc_datetime(t);
    if (!s) {
        return adapter_error("commit " + std::string(sha) + " of user " + std::string(user) +
                                 " has a time (" + std::to_string(t) + ") outside DATETIME's range",
                             "22008");
    }
    return *s;
}

}  // namespace store_detail

namespace {

// "('a','b',...)" for the users of the batch.
std::string in_list(const connection& conn, const std::vector<const user_rows*>& users) {
    std::string s = "(";
    for (std::size_t i = 0; i < users.size(); ++i) {
        if (i > 0) {
            s += ',';
        }
        conn.append_quoted(s, users[i]->user_id);
    }
    s += ')';
    return s;
}

struct old_watermark {
    std::string v1_commit;
    std::string fingerprint;
    std::string applied_at;
};

}  // namespace

std::uint64_t packet_needed_for_block(std::uint64_t block_bytes) {
    constexpr std::uint64_t other_columns = 1u << 20;
    return 2 * block_bytes + other_columns + packet_headroom;
}

std::string packet_remedy(std::uint64_t needed) {
    const std::string n = std::to_string(needed);
    return "raise max_allowed_packet to at least " + n + " (SET GLOBAL max_allowed_packet = " + n +
           ", and keep it across restarts: max_allowed_packet under [mysqld] for MariaDB, " +
           "SET PERSIST on Dolt), then POST /admin/mirror/retry";
}

namespace store_detail {

statement_limits limits_of(const connection& conn, const write_options& opts) {
    const std::size_t hard =
        conn.max_allowed_packet() > packet_headroom * 2
            ? static_cast<std::size_t>(conn.max_allowed_packet()) - packet_headroom
            : default_statement_bytes;
    const std::size_t soft = std::min(
        hard, opts.max_statement_bytes ? opts.max_statement_bytes : default_statement_bytes);
    return {soft, hard, std::max<std::size_t>(1, opts.max_rows_per_statement)};
}

result<void> run_counted(connection& conn, const std::string& sql, write_stats& stats) {
    stats.statements += 1;
    stats.bytes += sql.size();
    auto r = conn.execute(sql);
    if (!r) {
        return r.error();
    }
    return {};
}

}  // namespace store_detail

namespace {

// Every row of `u` except its watermark.
result<void> add_all_rows(row_sink& sink, const user_rows& u) {
    if (auto r = sink.user(u); !r) {
        return r;
    }
    for (const v1::commit& c : u.commits) {
        if (auto r = sink.commit(u, c); !r) {
            return r;
        }
    }
    for (const block_row& b : u.blocks) {
        if (auto r = sink.block(u, b); !r) {
            return r;
        }
    }
    for (const version_row& v : u.versions) {
        if (auto r = sink.version(u, v); !r) {
            return r;
        }
    }
    for (const diff_row& d : u.diffs) {
        if (auto r = sink.diff(u, d); !r) {
            return r;
        }
    }
    return {};
}

result<void> write_batch(connection& conn, const std::vector<const user_rows*>& users,
                         const write_options& opts, write_stats& stats) {
    row_sink sink(conn, opts, stats);
    const std::size_t soft = sink.limits().soft;
    const auto now = opts.now ? opts.now() : std::chrono::system_clock::now();
    const std::string applied_now = datetime6(now);

    // Old watermarks, so that an unchanged user keeps its applied_at (no row changes at all).
    // Sent in chunks of users: an IN list of 255-character ids must fit a statement too.
    std::unordered_map<std::string, old_watermark> old;
    std::vector<std::string> in_lists;
    for (std::size_t i = 0; i < users.size();) {
        std::vector<const user_rows*> chunk;
        std::size_t bytes = 0;
        while (i < users.size() && (chunk.empty() || bytes < soft / 4)) {
            bytes += users[i]->user_id.size() * 2 + 4;
            chunk.push_back(users[i++]);
        }
        in_lists.push_back(in_list(conn, chunk));
    }
    for (const auto& list : in_lists) {
        const std::string sql =
            "SELECT user_id, v1_commit, diffs_fingerprint, applied_at FROM mirror_watermarks"
            " WHERE user_id IN " +
            list;
        stats.statements += 1;
        stats.bytes += sql.size();
        auto rs = conn.query(sql);
        if (!rs) {
            return rs.error();
        }
        for (auto& r : rs->data) {
            old[r[0].value_or("")] = {r[1].value_or(""), r[2].value_or(""), r[3].value_or("")};
        }
    }
    for (std::string_view table :
         {"users", "commits", "blocks", "block_versions", "pending_diffs", "mirror_watermarks"}) {
        for (const auto& list : in_lists) {
            if (auto r = run_counted(
                    conn, "DELETE FROM " + std::string(table) + " WHERE user_id IN " + list, stats);
                !r) {
                return r;
            }
        }
    }

    for (const user_rows* u : users) {
        if (auto r = add_all_rows(sink, *u); !r) {
            return r;
        }
        std::string applied = applied_now;
        if (auto it = old.find(u->user_id); it != old.end() && it->second.v1_commit == u->head &&
                                            it->second.fingerprint == u->diffs_fingerprint) {
            applied = it->second.applied_at;
        }
        if (auto r = sink.mark(*u, std::move(applied)); !r) {
            return r;
        }
    }
    return sink.flush();
}

}  // namespace

result<write_stats> write_users(connection& conn, std::span<const user_rows> users,
                                const write_options& opts) {
    if (conn.in_transaction()) {
        return adapter_error("write_users called inside an open transaction", "25000");
    }
    // The last state given for a user wins; keep first-appearance order for the rest.
    std::unordered_map<std::string_view, std::size_t> last;
    for (std::size_t i = 0; i < users.size(); ++i) {
        last[users[i].user_id] = i;
    }
    std::vector<const user_rows*> batch;
    batch.reserve(last.size());
    for (std::size_t i = 0; i < users.size(); ++i) {
        if (last[users[i].user_id] == i) {
            batch.push_back(&users[i]);
        }
    }
    write_stats stats;
    stats.users = batch.size();
    if (batch.empty()) {
        return stats;
    }

    if (auto r = conn.begin(); !r) {
        return r.error();
    }
    stats.statements += 1;
    if (auto r = write_batch(conn, batch, opts, stats); !r) {
        conn.rollback();
        return r.error();
    }
    stats.statements += 1;
    if (auto r = conn.commit(); !r) {
        conn.rollback();
        return r.error();
    }
    return stats;
}

}  // namespace sg::dolt
