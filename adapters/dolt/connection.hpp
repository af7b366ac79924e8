// adapters/dolt/connection: one synchronous MariaDB Connector/C session to Dolt (or MariaDB),
// owning its MYSQL* handle. Deadlines come from the library's own options (connect, read and
// write timeouts), since nothing else can interrupt a blocking call; a caller runs this on a
// bounded worker pool, never on an event loop. Every call returns a value or an `error`;
// every failure it handles is counted in `counters`.
//
// Reconnection is explicit: Connector/C's automatic reconnect is off, because a silent reconnect
// in the middle of a transaction would run its remaining statements outside it. After an error
// of kind `connection_lost` the session is marked broken; `ensure_connected()` (or `with_retry`)
// opens a new one and says so.
#pragma once

#include "adapters/dolt/error.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct st_mysql;       // MYSQL from <mysql.h>; kept out of this header
struct st_mysql_stmt;  // MYSQL_STMT

namespace sg::dolt {

struct options {
    std::string host = "127.0.0.1";
    unsigned port = 3306;
    std::optional<std::string> unix_socket;  // when set, used instead of host:port
    std::string user;
    std::string password;  // never copied into an error, a log line or to_string()
    std::string database;
    std::chrono::seconds connect_timeout{5};
    // Bound every statement's wait for the server (a lost session when it expires); a bulk
    // insert of a few MiB, its COMMIT and a Dolt commit must fit.
    std::chrono::seconds read_timeout{60};
    std::chrono::seconds write_timeout{60};
};

// Monotonic counters of what the adapter did and which failures it handled; shared by all the
// connections of one component so the proxy can publish them as shadowgate_dolt_*_total.
struct counters {
    std::atomic<std::uint64_t> connects{0};               // sessions opened (first time or again)
    std::atomic<std::uint64_t> connect_failures{0};       // attempts that failed
    std::atomic<std::uint64_t> reconnects{0};             // sessions reopened after a lost one
    std::atomic<std::uint64_t> statements{0};             // statements sent
    std::atomic<std::uint64_t> connection_lost{0};        // statements failed: session gone
    std::atomic<std::uint64_t> retryable_errors{0};       // statements failed: lost a race
    std::atomic<std::uint64_t> permanent_errors{0};       // statements failed: bad input or schema
    std::atomic<std::uint64_t> rollback_failures{0};      // ROLLBACK after a failure failed too
    std::atomic<std::uint64_t> retries{0};                // with_retry attempts after the first
    std::atomic<std::uint64_t> dolt_commits{0};           // DOLT_COMMIT calls that made a commit
    std::atomic<std::uint64_t> dolt_commits_empty{0};     // --skip-empty: nothing changed
    std::atomic<std::uint64_t> dolt_commits_not_dolt{0};  // skipped: the server is not Dolt
    std::atomic<std::uint64_t> dolt_commit_failures{0};

    void count(const error& e);  // bumps the counter of e's kind
};

using cell = std::optional<std::string>;  // NULL is nullopt; bytes are exact (NULs kept)
using row = std::vector<cell>;

// A value bound to a placeholder of a prepared statement. Text is sent as it is, length-prefixed
// in the binary protocol: no escaping, and the server does not lex it (for multi-MiB bulk inserts
// that lexing was the server's biggest cost). The viewed bytes must outlive the call.
struct param {
    enum class type : unsigned char { null, text, integer };
    type t = type::null;
    std::string_view text;
    std::int64_t integer = 0;

    static param null_value() { return {}; }
    static param of(std::string_view s) { return {type::text, s, 0}; }
    static param of(const char* s) { return of(std::string_view(s)); }
    static param of(std::int64_t v) { return {type::integer, {}, v}; }
    // Not an overload of of(): a string literal would convert to bool before string_view.
    static param flag(bool b) { return {type::integer, {}, b ? 1 : 0}; }
    std::size_t wire_bytes() const { return t == type::text ? text.size() + 9 : 9; }
};

struct rows {
    std::vector<row> data;       // the first result set (empty for statements without one)
    std::uint64_t affected = 0;  // affected rows of the last statement (INSERT, DELETE, ...)
};

class connection {
public:
    // Does not connect: call connect() (or ensure_connected()). `stats` may be shared between
    // connections; a private set is made when it is null.
    explicit connection(options opts, std::shared_ptr<counters> stats = nullptr);
    ~connection();
    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Opens a new session (closing any previous one): utf8mb4, strict SQL mode, UTC session
    // time zone, the server's max_allowed_packet read. On failure the connection stays closed.
    result<void> connect();
    // Reconnects when the session is closed or was lost. Returns true when it opened a new one
    // (the caller's transaction, if any, is gone), false when the session was already usable.
    result<bool> ensure_connected();
    bool connected() const { return handle_ != nullptr && !broken_; }
    void close();

    // Runs one statement and drains every result it produces (CALL returns several). Returns the
    // first result set's rows. An error marks the session broken when it is `connection_lost`.
    result<rows> query(std::string_view sql);
    // query() for statements whose result set is not needed; returns affected rows.
    result<std::uint64_t> execute(std::string_view sql);

    // Runs one statement with `?` placeholders bound to `params` (as many as the statement has),
    // through a server-side prepared statement kept per session for reuse (a small cache keyed
    // by the SQL text; a lost session forgets them). Returns affected rows. Not for statements
    // that return rows.
    result<std::uint64_t> execute_prepared(const std::string& sql, std::span<const param> params);

    // START TRANSACTION / COMMIT / ROLLBACK, tracking whether one is open (a lost session closes
    // it). rollback() never fails: it is the cleanup path; a failure is counted.
    result<void> begin();
    result<void> commit();
    void rollback();
    bool in_transaction() const { return in_transaction_; }

    // Appends s as a quoted SQL string literal, escaped by mysql_real_escape_string for the
    // session's character set (and its NO_BACKSLASH_ESCAPES mode). Works on a closed connection
    // too (the handle keeps its character set), as long as connect() was called once.
    void append_quoted(std::string& out, std::string_view s) const;
    std::string quoted(std::string_view s) const;

    // True when the server is Dolt: `SELECT dolt_version()` succeeds. Any server error means
    // "not Dolt"; a lost session is an error. Cached per session.
    result<bool> is_dolt();

    // The server's max_allowed_packet, read at connect (0 before the first connect).
    std::uint64_t max_allowed_packet() const { return max_allowed_packet_; }
    // The server-side id of this session (for KILL), 0 when closed.
    std::uint64_t thread_id() const;
    counters& stats() const { return *stats_; }
    const std::shared_ptr<counters>& shared_stats() const { return stats_; }
    // Where this connects to, for logs and errors: "user@host:port/db" (no password).
    std::string describe() const;

private:
    error last_error(std::string_view context) const;
    error stmt_error(st_mysql_stmt* stmt) const;
    error fail(error e);  // counts e, marks the session broken when it was lost
    void drop_statements();
    result<st_mysql_stmt*> prepared(const std::string& sql);

    struct cached_statement {
        std::string sql;
        st_mysql_stmt* stmt;
    };
    static constexpr std::size_t statement_cache_size = 32;

    options opts_;
    std::shared_ptr<counters> stats_;
    st_mysql* handle_ = nullptr;
    bool broken_ = false;
    bool ever_connected_ = false;
    bool in_transaction_ = false;
    std::optional<bool> is_dolt_;
    std::uint64_t max_allowed_packet_ = 0;
    std::list<cached_statement> statements_;  // most recently used first
};

// mysql_real_escape_string as for a utf8mb4 session with backslash escapes (every server's
// default), without any session: for SQL text built by pure code and its tests. Appends 'escaped'.
void append_quoted_offline(std::string& out, std::string_view s);

struct retry_policy {
    int max_attempts = 3;                    // total, the first included
    std::chrono::milliseconds backoff{100};  // doubled after each failed attempt
};

// Runs fn(conn) -> result<T> until it succeeds, fails permanently, or max_attempts ran.
// Before each attempt the session is (re)opened if it was lost. fn must be safe to repeat: a
// whole transaction that begins, writes and commits (the server rolled back the failed one).
// Blocks the calling thread during back-off. Returns the last attempt's result.
template <class F>
auto with_retry(connection& conn, const retry_policy& policy, F&& fn) -> decltype(fn(conn));

// Blocking sleep used between attempts (out of line so this header needs no <thread>).
void retry_sleep(std::chrono::milliseconds d);

template <class F>
auto with_retry(connection& conn, const retry_policy& policy, F&& fn) -> decltype(fn(conn)) {
    auto backoff = policy.backoff;
    for (int attempt = 1;; ++attempt) {
        if (attempt > 1) {
            conn.stats().retries.fetch_add(1, std::memory_order_relaxed);
        }
        auto up = conn.ensure_connected();
        if (up) {
            auto r = fn(conn);
            if (r || !r.error().retryable() || attempt >= policy.max_attempts) {
                return r;
            }
        } else if (!up.error().retryable() || attempt >= policy.max_attempts) {
            return up.error();
        }
        retry_sleep(backoff);
        backoff *= 2;
    }
}

}  // namespace sg::dolt
