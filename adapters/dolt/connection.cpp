// adapters/dolt/connection: the MYSQL* session, its options, statements and result draining.
#include "adapters/dolt/connection.hpp"

#include <mysql.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <utility>

namespace sg::dolt {

namespace {

void library_init_once() {
    // mysql_library_init is not thread-safe; mysql_init calls it implicitly on first use, which
    // could race between worker threads.
    static std::once_flag once;
    std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

unsigned seconds_option(std::chrono::seconds s) {
    // 0 would mean "no timeout" to Connector/C: never let a misconfiguration remove a deadline.
    return static_cast<unsigned>(std::clamp<std::int64_t>(s.count(), 1, 24 * 3600));
}

// Replaces every occurrence of the password by "***": defense in depth for messages that echo
// statement text or server-side strings.
void scrub(std::string& message, const std::string& password) {
    if (password.size() < 3) {
        return;  // scrubbing a 1-2 character password would mangle messages, not protect them
    }
    for (std::size_t at = message.find(password); at != std::string::npos;
         at = message.find(password, at)) {
        message.replace(at, password.size(), "***");
        at += 3;
    }
}

// The handle used where no session exists yet: mysql_real_escape_string needs a character set
// and nothing else from the handle.
MYSQL* offline_handle() {
    static MYSQL* h = [] {
        library_init_once();
        MYSQL* m = mysql_init(nullptr);
        mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        return m;
    }();
    return h;
}

void append_escaped(MYSQL* h, std::string& out, std::string_view s) {
    out.push_back('\'');
    const std::size_t at = out.size();
    out.resize(at + 2 * s.size() + 1);
    const unsigned long n = mysql_real_escape_string(h, out.data() + at, s.data(), s.size());
    out.resize(at + n);
    out.push_back('\'');
}

}  // namespace

void append_quoted_offline(std::string& out, std::string_view s) {
    append_escaped(offline_handle(), out, s);
}

void counters::count(const error& e) {
    switch (e.kind) {
        case error_kind::connection_lost:
            connection_lost.fetch_add(1, std::memory_order_relaxed);
            break;
        case error_kind::retryable: retryable_errors.fetch_add(1, std::memory_order_relaxed); break;
        case error_kind::permanent: permanent_errors.fetch_add(1, std::memory_order_relaxed); break;
    }
}

connection::connection(options opts, std::shared_ptr<counters> stats)
    : opts_(std::move(opts)), stats_(stats ? std::move(stats) : std::make_shared<counters>()) {
    library_init_once();
}

connection::~connection() { close(); }

connection::connection(connection&& other) noexcept
    : opts_(std::move(other.opts_)),
      stats_(other.stats_),
      handle_(std::exchange(other.handle_, nullptr)),
      broken_(other.broken_),
      ever_connected_(other.ever_connected_),
      in_transaction_(std::exchange(other.in_transaction_, false)),
      is_dolt_(other.is_dolt_),
      max_allowed_packet_(other.max_allowed_packet_),
      statements_(std::move(other.statements_)) {}

connection& connection::operator=(connection&& other) noexcept {
    if (this != &other) {
        close();
        opts_ = std::move(other.opts_);
        stats_ = other.stats_;
        handle_ = std::exchange(other.handle_, nullptr);
        broken_ = other.broken_;
        ever_connected_ = other.ever_connected_;
        in_transaction_ = std::exchange(other.in_transaction_, false);
        is_dolt_ = other.is_dolt_;
        max_allowed_packet_ = other.max_allowed_packet_;
        statements_ = std::move(other.statements_);
    }
    return *this;
}

void connection::drop_statements() {
    for (auto& c : statements_) {
        mysql_stmt_close(c.stmt);  // on a lost session this only frees the handle
    }
    statements_.clear();
}

void connection::close() {
    drop_statements();
    if (handle_ != nullptr) {
        mysql_close(handle_);
        handle_ = nullptr;
    }
    broken_ = false;
    in_transaction_ = false;
    is_dolt_.reset();
}

std::string connection::describe() const {
    std::string s = opts_.user + "@";
    if (opts_.unix_socket) {
        s += "unix:" + *opts_.unix_socket;
    } else {
        s += opts_.host + ":" + std::to_string(opts_.port);
    }
    return s + "/" + opts_.database;
}

error connection::last_error(std::string_view context) const {
    error e;
    if (handle_ == nullptr) {
        e = adapter_error("not connected", "08003", error_kind::connection_lost);
    } else {
        e.code = mysql_errno(handle_);
        e.sqlstate = mysql_sqlstate(handle_);
        e.message = mysql_error(handle_);
        e.kind = classify(e.code, e.sqlstate, e.message);
    }
    if (!context.empty()) {
        e.message = std::string(context) + ": " + e.message;
    }
    scrub(e.message, opts_.password);
    return e;
}

error connection::stmt_error(MYSQL_STMT* stmt) const {
    error e;
    e.code = mysql_stmt_errno(stmt);
    e.sqlstate = mysql_stmt_sqlstate(stmt);
    e.message = mysql_stmt_error(stmt);
    e.kind = classify(e.code, e.sqlstate, e.message);
    scrub(e.message, opts_.password);
    return e;
}

error connection::fail(error e) {
    stats_->count(e);
    if (e.kind == error_kind::connection_lost) {
        drop_statements();
        broken_ = true;
        in_transaction_ = false;  // the server rolled it back when the session ended
        is_dolt_.reset();
    }
    return e;
}

result<void> connection::connect() {
    const bool again = ever_connected_;
    close();
    MYSQL* h = mysql_init(nullptr);
    if (h == nullptr) {
        stats_->connect_failures.fetch_add(1, std::memory_order_relaxed);
        return adapter_error("mysql_init failed: out of memory");
    }
    const unsigned connect_timeout = seconds_option(opts_.connect_timeout);
    const unsigned read_timeout = seconds_option(opts_.read_timeout);
    const unsigned write_timeout = seconds_option(opts_.write_timeout);
    const my_bool no = 0;
    const unsigned no_local_infile = 0;
    const unsigned protocol = opts_.unix_socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_optionsv(h, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_optionsv(h, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_optionsv(h, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
    mysql_optionsv(h, MYSQL_OPT_RECONNECT, &no);
    mysql_optionsv(h, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
    mysql_optionsv(h, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_optionsv(h, MYSQL_SET_CHARSET_NAME, "utf8mb4");

    const char* host = opts_.unix_socket ? "localhost" : opts_.host.c_str();
    const char* socket = opts_.unix_socket ? opts_.unix_socket->c_str() : nullptr;
    const char* db = opts_.database.empty() ? nullptr : opts_.database.c_str();
    // CLIENT_MULTI_RESULTS: CALL returns several results. Never CLIENT_MULTI_STATEMENTS: one
    // statement per query, so an escaping mistake cannot become a second statement.
    const unsigned long flags = CLIENT_MULTI_RESULTS;
    if (mysql_real_connect(h, host, opts_.user.c_str(), opts_.password.c_str(), db, opts_.port,
                           socket, flags) == nullptr) {
        handle_ = h;
        error e = last_error("connect to " + describe());
        handle_ = nullptr;
        mysql_close(h);
        stats_->connect_failures.fetch_add(1, std::memory_order_relaxed);
        return e;
    }
    handle_ = h;
    ever_connected_ = true;
    stats_->connects.fetch_add(1, std::memory_order_relaxed);
    if (again) {
        stats_->reconnects.fetch_add(1, std::memory_order_relaxed);
    }

    // Strict mode: a value the column cannot hold is an error (1406, 1366), never a silent
    // truncation. UTC: the adapter formats every DATETIME itself; this only keeps NOW() honest.
    auto set = execute(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
        "time_zone = '+00:00'");
    if (!set) {
        close();
        return set.error();
    }
    auto packet = query("SELECT @@max_allowed_packet");
    if (!packet) {
        close();
        return packet.error();
    }
    max_allowed_packet_ = 0;
    if (!packet->data.empty() && !packet->data[0].empty() && packet->data[0][0]) {
        max_allowed_packet_ = std::stoull(*packet->data[0][0]);
    }
    return {};
}

result<bool> connection::ensure_connected() {
    if (connected()) {
        return false;
    }
    auto r = connect();
    if (!r) {
        return r.error();
    }
    return true;
}

namespace {

// Appends the rows of a stored result set to out.data (NULL cells stay nullopt).
void copy_rows(MYSQL_RES* res, rows& out) {
    const unsigned n = mysql_num_fields(res);
    out.data.reserve(out.data.size() + mysql_num_rows(res));
    while (MYSQL_ROW r = mysql_fetch_row(res)) {
        const unsigned long* len = mysql_fetch_lengths(res);
        row values(n);
        for (unsigned i = 0; i < n; ++i) {
            if (r[i] != nullptr) {
                values[i].emplace(r[i], len[i]);
            }
        }
        out.data.push_back(std::move(values));
    }
}

// Drains every result of the statement just sent. The first result set is copied out; the rest
// are read and freed (left unread, the next statement would fail with 2014).
bool drain(MYSQL* h, rows& out) {
    bool have_set = false;
    for (;;) {
        MYSQL_RES* res = mysql_store_result(h);
        if (res != nullptr) {
            if (!have_set) {
                have_set = true;
                copy_rows(res, out);
            }
            mysql_free_result(res);
        } else if (mysql_field_count(h) != 0) {
            return false;  // a result set was due but could not be read
        } else {
            out.affected = mysql_affected_rows(h);
        }
        const int more = mysql_next_result(h);
        if (more == -1) {
            return true;
        }
        if (more > 0) {
            return false;
        }
    }
}

}  // namespace

result<rows> connection::query(std::string_view sql) {
    if (handle_ == nullptr || broken_) {
        return fail(adapter_error("not connected", "08003", error_kind::connection_lost));
    }
    stats_->statements.fetch_add(1, std::memory_order_relaxed);
    rows out;
    if (mysql_real_query(handle_, sql.data(), sql.size()) != 0 || !drain(handle_, out)) {
        return fail(last_error(""));
    }
    return out;
}

result<std::uint64_t> connection::execute(std::string_view sql) {
    auto r = query(sql);
    if (!r) {
        return r.error();
    }
    return r->affected;
}

result<MYSQL_STMT*> connection::prepared(const std::string& sql) {
    for (auto it = statements_.begin(); it != statements_.end(); ++it) {
        if (it->sql == sql) {
            statements_.splice(statements_.begin(), statements_, it);
            return it->stmt;
        }
    }
    MYSQL_STMT* stmt = mysql_stmt_init(handle_);
    if (stmt == nullptr) {
        return fail(adapter_error("mysql_stmt_init failed: out of memory"));
    }
    stats_->statements.fetch_add(1, std::memory_order_relaxed);
    if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
        error e = stmt_error(stmt);
        mysql_stmt_close(stmt);
        return fail(std::move(e));
    }
    if (statements_.size() >= statement_cache_size) {
        mysql_stmt_close(statements_.back().stmt);
        statements_.pop_back();
    }
    statements_.push_front({sql, stmt});
    return stmt;
}

result<std::uint64_t> connection::execute_prepared(const std::string& sql,
                                                   std::span<const param> params) {
    if (handle_ == nullptr || broken_) {
        return fail(adapter_error("not connected", "08003", error_kind::connection_lost));
    }
    auto stmt = prepared(sql);
    if (!stmt) {
        return stmt.error();
    }
    if (mysql_stmt_param_count(*stmt) != params.size()) {
        return fail(adapter_error("prepared statement takes " +
                                  std::to_string(mysql_stmt_param_count(*stmt)) +
                                  " values, given " + std::to_string(params.size())));
    }
    static char empty = 0;
    std::vector<MYSQL_BIND> binds(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        MYSQL_BIND& b = binds[i];
        const param& p = params[i];
        switch (p.t) {
            case param::type::null: b.buffer_type = MYSQL_TYPE_NULL; break;
            case param::type::text:
                b.buffer_type = MYSQL_TYPE_STRING;
                b.buffer = p.text.empty() ? &empty : const_cast<char*>(p.text.data());
                b.buffer_length = p.text.size();
                break;
            case param::type::integer:
                b.buffer_type = MYSQL_TYPE_LONGLONG;
                b.buffer = const_cast<std::int64_t*>(&p.integer);
                break;
        }
    }
    stats_->statements.fetch_add(1, std::memory_order_relaxed);
    if (mysql_stmt_bind_param(*stmt, binds.data()) != 0 || mysql_stmt_execute(*stmt) != 0) {
        return fail(stmt_error(*stmt));
    }
    const auto affected = mysql_stmt_affected_rows(*stmt);
    mysql_stmt_free_result(*stmt);
    return static_cast<std::uint64_t>(affected);
}

result<void> connection::begin() {
    auto r = execute("START TRANSACTION");
    if (!r) {
        return r.error();
    }
    in_transaction_ = true;
    return {};
}

result<void> connection::commit() {
    auto r = execute("COMMIT");
    if (!r) {
        return r.error();
    }
    in_transaction_ = false;
    return {};
}

void connection::rollback() {
    if (handle_ != nullptr && !broken_) {
        stats_->statements.fetch_add(1, std::memory_order_relaxed);
        rows ignored;
        if (mysql_real_query(handle_, "ROLLBACK", 8) != 0 || !drain(handle_, ignored)) {
            stats_->rollback_failures.fetch_add(1, std::memory_order_relaxed);
            const error e = last_error("");
            if (e.kind == error_kind::connection_lost) {
                broken_ = true;
                is_dolt_.reset();
            }
        }
    }
    in_transaction_ = false;
}

void connection::append_quoted(std::string& out, std::string_view s) const {
    append_escaped(handle_ != nullptr ? handle_ : offline_handle(), out, s);
}

std::string connection::quoted(std::string_view s) const {
    std::string out;
    append_quoted(out, s);
    return out;
}

result<bool> connection::is_dolt() {
    if (is_dolt_) {
        return *is_dolt_;
    }
    if (handle_ == nullptr || broken_) {
        return fail(adapter_error("not connected", "08003", error_kind::connection_lost));
    }
    // Not query(): on MariaDB the failure is the expected answer, not a handled failure.
    stats_->statements.fetch_add(1, std::memory_order_relaxed);
    rows out;
    if (mysql_real_query(handle_, "SELECT dolt_version()", 21) != 0 || !drain(handle_, out)) {
        const error e = last_error("");
        if (e.kind == error_kind::connection_lost) {
            return fail(e);
        }
        is_dolt_ = false;
    } else {
        is_dolt_ = true;
    }
    return *is_dolt_;
}

std::uint64_t connection::thread_id() const {
    return handle_ != nullptr ? mysql_thread_id(handle_) : 0;
}

void retry_sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace sg::dolt
