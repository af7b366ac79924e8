// adapters/dolt/store_internal: what the files behind store.hpp (store_write, store_apply,
// store_read) share: the row sink that writes a transaction's rows as prepared multi-row INSERTs
// (write_users and apply_user both write through it), with the batched INSERT and the row writer
// it is made of, and the helpers one of the files defines and another uses. Only those files
// include it; everyone else includes store.hpp.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/rows.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt::store_detail {

// From store_write.cpp: the row sink.

// Room for the packet header and anything the server adds; max_allowed_packet bounds the whole
// statement packet.
inline constexpr std::size_t packet_headroom = 1024;
// A prepared statement takes at most 65,535 placeholders.
inline constexpr std::size_t max_placeholders = 65535;

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
                                 std::to_string(conn_.max_allowed_packet()) +
                                 " bytes: " + packet_remedy(needed));
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

// A commit's (or version's) time `t` as a DATETIME; the error names `sha` of `user` when
// DATETIME cannot hold it.
result<std::string> commit_datetime(std::int64_t t, std::string_view user, std::string_view sha);

struct statement_limits {
    std::size_t soft;
    std::size_t hard;
    std::size_t max_rows;
};

// The statement sizes and rows per statement for `conn` under `opts`.
statement_limits limits_of(const connection& conn, const write_options& opts);

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
        w.str(t.content)
            .opt_view(t.metadata)
            .str(t.metadata_keys)
            .boolean(t.frontmatter)
            .num(t.blank_lines);
    }

    statement_limits lim_;
    std::deque<std::string> owned_;  // strings computed for rows not yet sent
    batched_insert users_, commits_, blocks_, versions_, diffs_, marks_;
};

// Runs `sql`, counted in `stats`.
result<void> run_counted(connection& conn, const std::string& sql, write_stats& stats);

// From store_read.cpp.

// read_user's body, inside the caller's transaction.
result<std::optional<user_rows>> read_user_in_tx(connection& conn, std::string_view user_id);

}  // namespace sg::dolt::store_detail
