// adapters/dolt/store: bulk replace of user states and the lossless read back.
//
// Round trips dominate a bulk import, so a batch costs a fixed handful of statements plus one
// multi-row INSERT per few hundred rows: BEGIN, one SELECT of the old watermarks, one DELETE per
// table, the INSERTs, COMMIT. The INSERTs are prepared statements with many rows of placeholders
// each, reused across batches: values travel length-prefixed in the binary protocol, so neither
// side escapes or lexes them (lexing multi-MiB literals was MariaDB's biggest cost in the bulk
// import, ahead of storing the rows).
#include "adapters/dolt/store.hpp"

#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

namespace sg::dolt {

namespace {

constexpr std::size_t default_statement_bytes = 4u << 20;
// Room for the packet header and anything the server adds; max_allowed_packet bounds the whole
// statement packet.
constexpr std::size_t packet_headroom = 1024;
// A prepared statement takes at most 65,535 placeholders.
constexpr std::size_t max_placeholders = 65535;

// Accumulates rows of one table and sends them as multi-row INSERTs through prepared statements
// (values bound, never lexed by the server). Statements carry `rows_per_statement` rows, so the
// same few prepared shapes are reused for a whole import; a statement is sent earlier when its
// values would pass the byte limit, and the rest of a batch goes out at flush().
class batched_insert {
public:
    batched_insert(connection& conn, std::string_view table, std::string_view columns,
                   std::size_t soft_limit, std::size_t hard_limit, std::size_t max_rows,
                   write_stats& stats)
        : conn_(conn),
          table_(table),
          head_("INSERT INTO " + std::string(table) + " (" + std::string(columns) + ") VALUES "),
          columns_(1 + static_cast<std::size_t>(std::count(columns.begin(), columns.end(), ','))),
          soft_(soft_limit),
          hard_(hard_limit),
          max_rows_(std::clamp<std::size_t>(max_rows, 1, max_placeholders / columns_)),
          stats_(stats) {
        row_ = "(?";
        for (std::size_t i = 1; i < columns_; ++i) {
            row_ += ",?";
        }
        row_ += ')';
    }

    // Opens a row: append exactly one value per column, then call end_row().
    std::vector<param>& begin_row() {
        mark_ = params_.size();
        return params_;
    }

    // Closes the row; sends the rows before it first when this one would make the statement too
    // big, and sends everything when the statement is full.
    result<void> end_row() {
        if (params_.size() - mark_ != columns_) {
            return adapter_error("internal: a row for table " + table_ + " has " +
                                 std::to_string(params_.size() - mark_) + " values, not " +
                                 std::to_string(columns_));
        }
        std::size_t row_bytes = 0;
        for (std::size_t i = mark_; i < params_.size(); ++i) {
            row_bytes += params_[i].wire_bytes();
        }
        if (head_.size() + row_.size() + row_bytes > hard_) {
            const std::uint64_t needed = head_.size() + row_.size() + row_bytes + packet_headroom;
            return adapter_error("a row of " + std::to_string(row_bytes) + " bytes for table " +
                                 table_ + " does not fit the server's max_allowed_packet of " +
                                 std::to_string(conn_.max_allowed_packet()) + " bytes: " +
                                 packet_remedy(needed));
        }
        if (rows_ > 0 && bytes_ + row_bytes > soft_) {
            if (auto r = send(rows_); !r) {
                return r;
            }
        }
        ++rows_;
        bytes_ += row_bytes;
        if (rows_ >= max_rows_) {
            return send(rows_);
        }
        return {};
    }

    result<void> flush() {
        if (rows_ == 0) {
            return {};
        }
        return send(rows_);
    }

private:
    // Sends the first n rows held and keeps the rest.
    result<void> send(std::size_t n) {
        std::string sql = head_;
        sql.reserve(head_.size() + n * (row_.size() + 1));
        for (std::size_t i = 0; i < n; ++i) {
            if (i > 0) {
                sql += ',';
            }
            sql += row_;
        }
        const std::size_t values = n * columns_;
        std::size_t sent_bytes = sql.size();
        for (std::size_t i = 0; i < values; ++i) {
            sent_bytes += params_[i].wire_bytes();
        }
        stats_.statements += 1;
        stats_.bytes += sent_bytes;
        stats_.rows += n;
        auto r = conn_.execute_prepared(sql, std::span<const param>(params_.data(), values));
        params_.erase(params_.begin(), params_.begin() + static_cast<std::ptrdiff_t>(values));
        rows_ -= n;
        bytes_ = 0;
        for (const param& p : params_) {
            bytes_ += p.wire_bytes();
        }
        if (!r) {
            return r.error();
        }
        return {};
    }

    connection& conn_;
    std::string table_;
    std::string head_;
    std::size_t columns_;
    std::string row_;  // "(?,?,...)"
    std::size_t soft_;
    std::size_t hard_;
    std::size_t max_rows_;
    write_stats& stats_;
    std::vector<param> params_;
    std::size_t mark_ = 0;
    std::size_t rows_ = 0;
    std::size_t bytes_ = 0;
};

// Appends a row's values; strings computed for the row are kept in `owned` (a deque: its
// elements never move) until the batch has been sent.
class row_writer {
public:
    row_writer(std::vector<param>& out, std::deque<std::string>& owned)
        : out_(out), owned_(owned) {}
    row_writer& str(std::string_view s) {
        out_.push_back(param::of(s));
        return *this;
    }
    row_writer& own(std::string s) {
        owned_.push_back(std::move(s));
        return str(owned_.back());
    }
    row_writer& opt(const std::optional<std::string>& s) {
        if (s) {
            return own(*s);
        }
        return null();
    }
    row_writer& opt_view(const std::optional<std::string>& s) {
        if (s) {
            return str(*s);
        }
        return null();
    }
    row_writer& num(std::int64_t v) {
        out_.push_back(param::of(v));
        return *this;
    }
    row_writer& boolean(bool b) {
        out_.push_back(param::flag(b));
        return *this;
    }
    row_writer& null() {
        out_.push_back(param::null_value());
        return *this;
    }

private:
    std::vector<param>& out_;
    std::deque<std::string>& owned_;
};


result<std::string> commit_datetime(std::int64_t t, std::string_view user, std::string_view sha) {
    auto s = utc_datetime(t);
    if (!s) {
        return adapter_error("commit " + std::string(sha) + " of user " + std::string(user) +
                                 " has a time (" + std::to_string(t) +
                                 ") outside DATETIME's range",
                             "22008");
    }
    return *s;
}

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

struct statement_limits {
    std::size_t soft;
    std::size_t hard;
    std::size_t max_rows;
};

}  // namespace

std::uint64_t packet_needed_for_block(std::uint64_t block_bytes) {
    constexpr std::uint64_t other_columns = 1u << 20;
    return 2 * block_bytes + other_columns + packet_headroom;
}

std::string packet_remedy(std::uint64_t needed) {
    const std::string n = std::to_string(needed);
    return "raise max_allowed_packet to at least " + n + " (SET GLOBAL max_allowed_packet = " +
           n + ", and keep it across restarts: max_allowed_packet under [mysqld] for MariaDB, " +
           "SET PERSIST on Dolt), then POST /admin/mirror/retry";
}

namespace {

statement_limits limits_of(const connection& conn, const write_options& opts) {
    const std::size_t hard =
        conn.max_allowed_packet() > packet_headroom * 2
            ? static_cast<std::size_t>(conn.max_allowed_packet()) - packet_headroom
            : default_statement_bytes;
    const std::size_t soft = std::min(
        hard, opts.max_statement_bytes ? opts.max_statement_bytes : default_statement_bytes);
    return {soft, hard, std::max<std::size_t>(1, opts.max_rows_per_statement)};
}

// The rows of one transaction, table by table, as prepared multi-row INSERTs.
class row_sink {
public:
    row_sink(connection& conn, const write_options& opts, write_stats& stats)
        : lim_(limits_of(conn, opts)),
          users_(conn, "users", "user_id, head, diffs_fingerprint", lim_.soft, lim_.hard,
                 lim_.max_rows, stats),
          commits_(conn, "commits",
                   "user_id, sha, seq, parents, message, author, committed_at, tz_offset",
                   lim_.soft, lim_.hard, lim_.max_rows, stats),
          blocks_(conn, "blocks",
                  "user_id, label, content, metadata, metadata_keys, frontmatter, blank_lines, "
                  "updated_at, source, v1_commit",
                  lim_.soft, lim_.hard, lim_.max_rows, stats),
          versions_(conn, "block_versions",
                    "id, user_id, label, content, metadata, metadata_keys, frontmatter, "
                    "blank_lines, author, message, created_at, is_current, source, full_message, "
                    "created_tz_offset, ordinal, deleted",
                    lim_.soft, lim_.hard, lim_.max_rows, stats),
          diffs_(conn, "pending_diffs",
                 "id, user_id, agent_id, block_label, field, operation, current_value, "
                 "proposed_value, reasoning, confidence, status, source_query, created_at, "
                 "reviewed_at, applied_commit, created_at_text, reviewed_at_text, raw_json",
                 lim_.soft, lim_.hard, lim_.max_rows, stats),
          marks_(conn, "mirror_watermarks", "user_id, v1_commit, diffs_fingerprint, applied_at",
                 lim_.soft, lim_.hard, lim_.max_rows, stats) {}

    const statement_limits& limits() const { return lim_; }

    result<void> user(const user_rows& u) {
        row_writer(users_.begin_row(), owned_).str(u.user_id).str(u.head).str(u.diffs_fingerprint);
        return users_.end_row();
    }

    result<void> commit(const user_rows& u, const v1::commit& c) {
        auto when = commit_datetime(c.commit_time, u.user_id, c.sha);
        if (!when) {
            return when.error();
        }
        row_writer(commits_.begin_row(), owned_)
            .str(u.user_id)
            .str(c.sha)
            .num(c.seq)
            .own(join_parents(c.parents))
            .str(c.message)
            .str(c.author)
            .own(std::move(*when))
            .num(c.commit_tz_offset_minutes);
        return commits_.end_row();
    }

    result<void> block(const user_rows& u, const block_row& b) {
        row_writer w(blocks_.begin_row(), owned_);
        w.str(u.user_id).str(b.label);
        text(w, b.text);
        w.opt_view(b.updated_at).str(b.source).str(b.v1_commit);
        return blocks_.end_row();
    }

    result<void> version(const user_rows& u, const version_row& v) {
        auto when = commit_datetime(v.created_at, u.user_id, v.id);
        if (!when) {
            return when.error();
        }
        row_writer w(versions_.begin_row(), owned_);
        w.str(v.id).str(u.user_id).str(v.label);
        text(w, v.text);
        w.str(v.author)
            .str(v.message)
            .own(std::move(*when))
            .boolean(v.is_current)
            .str(v.source)
            .str(v.full_message)
            .num(v.created_tz_offset)
            .num(v.ordinal)
            .boolean(v.deleted);
        return versions_.end_row();
    }

    result<void> diff(const user_rows& u, const diff_row& row) {
        const v1::pending_diff& d = row.fields;
        row_writer(diffs_.begin_row(), owned_)
            .str(d.id)
            .str(u.user_id)
            .str(d.agent_id)
            .str(d.block_label)
            .opt_view(d.field)
            .str(d.operation)
            .opt_view(d.current_value)
            .str(d.proposed_value)
            .str(d.reasoning)
            .str(d.confidence)
            .str(d.status)
            .opt_view(d.source_query)
            .opt_view(row.created_at)
            .opt_view(row.reviewed_at)
            .opt_view(d.applied_commit)
            .str(d.created_at)
            .opt_view(d.reviewed_at)
            .str(d.raw_json);
        return diffs_.end_row();
    }

    result<void> mark(const user_rows& u, std::string applied_at) {
        row_writer(marks_.begin_row(), owned_)
            .str(u.user_id)
            .str(u.head)
            .str(u.diffs_fingerprint)
            .own(std::move(applied_at));
        return marks_.end_row();
    }

    result<void> flush() {
        for (batched_insert* b : {&users_, &commits_, &blocks_, &versions_, &diffs_, &marks_}) {
            if (auto r = b->flush(); !r) {
                return r;
            }
        }
        owned_.clear();
        return {};
    }

private:
    // content, metadata, metadata_keys, frontmatter, blank_lines
    static void text(row_writer& w, const v1::text_columns& t) {
        w.str(t.content).opt_view(t.metadata).str(t.metadata_keys).boolean(t.frontmatter).num(
            t.blank_lines);
    }

    statement_limits lim_;
    std::deque<std::string> owned_;  // strings computed for rows not yet sent
    batched_insert users_, commits_, blocks_, versions_, diffs_, marks_;
};

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

result<void> run_counted(connection& conn, const std::string& sql, write_stats& stats) {
    stats.statements += 1;
    stats.bytes += sql.size();
    auto r = conn.execute(sql);
    if (!r) {
        return r.error();
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
    for (std::string_view table : {"users", "commits", "blocks", "block_versions",
                                   "pending_diffs", "mirror_watermarks"}) {
        for (const auto& list : in_lists) {
            if (auto r = run_counted(
                    conn, "DELETE FROM " + std::string(table) + " WHERE user_id IN " + list,
                    stats);
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
        if (auto it = old.find(u->user_id); it != old.end() &&
                                            it->second.v1_commit == u->head &&
                                            it->second.fingerprint == u->diffs_fingerprint) {
            applied = it->second.applied_at;
        }
        if (auto r = sink.mark(*u, std::move(applied)); !r) {
            return r;
        }
    }
    return sink.flush();
}

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
    out.push_back({key + "user_id, head, diffs_fingerprint", "users" + where,
                   keyed ? "user_id" : ""});
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
            u.commits.push_back(std::move(c));
        }
    }

    if (parts.blocks) {
        for (auto& r : results[next++].data) {
            block_row b;
            b.label = std::move(r[0]).value_or("");
            auto text = text_cells(r, 1, "blocks");
            auto updated = datetime6_cell(r[6], "blocks.updated_at");
            if (!text || !updated) return !text ? text.error() : updated.error();
            b.text = std::move(*text);
            b.updated_at = std::move(*updated);
            b.v1_commit = std::move(r[7]).value_or("");
            if (parts.audit) b.source = std::move(r[8]).value_or("");
            u.blocks.push_back(std::move(b));
        }
    }

    if (parts.versions) {
        for (auto& r : results[next++].data) {
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
            if (parts.audit) {
                v.full_message = std::move(r[14]).value_or("");
                v.source = std::move(r[15]).value_or("");
            }
            u.versions.push_back(std::move(v));
        }
    }

    if (parts.diffs) {
        for (auto& r : results[next++].data) {
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
            if (parts.audit) {
                d.created_at = std::move(r[14]).value_or("");
                d.reviewed_at = std::move(r[15]);
                d.raw_json = std::move(r[16]).value_or("");
            }
            u.diffs.push_back(std::move(row));
        }
    }
    return std::optional<user_rows>(std::move(u));
}

result<std::optional<user_rows>> read_user_in_tx(connection& conn, std::string_view user_id) {
    const read_parts all = read_parts::everything();
    const auto statements =
        user_statements(conn, " WHERE user_id = " + conn.quoted(user_id), all);
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

    auto sync = [&](const auto& ctx) { return sync_rows(conn, uid, soft, st, ctx); };
    // Every column is compared, so a row changed behind the mirror's back is written again.
    if (auto r = sync(table_sync<v1::commit>{
            "commits", "sha", cur.commits, want.commits,
            [](const v1::commit& c) { return row_key{c.sha, {}}; }, same_commit,
            [&](const v1::commit& c) { return sink.commit(want, c); }, &st.commits_added,
            nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<block_row>{
            "blocks", "label", cur.blocks, want.blocks,
            [](const block_row& b) { return row_key{b.label, {}}; },
            [](const block_row& a, const block_row& b) { return same_row(a, b); },
            [&](const block_row& b) { return sink.block(want, b); }, nullptr, nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<version_row>{
            "block_versions", "label,id", cur.versions, want.versions,
            [](const version_row& v) { return row_key{v.label, v.id}; },
            [](const version_row& a, const version_row& b) { return same_row(a, b); },
            [&](const version_row& v) { return sink.version(want, v); }, nullptr, nullptr});
        !r) {
        return r.error();
    }
    if (auto r = sync(table_sync<diff_row>{
            "pending_diffs", "id", cur.diffs, want.diffs,
            [](const diff_row& d) { return row_key{d.fields.id, {}}; },
            [](const diff_row& a, const diff_row& b) { return same_row(a, b); },
            [&](const diff_row& d) { return sink.diff(want, d); }, nullptr, &st.diffs_changed});
        !r) {
        return r.error();
    }

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
