// adapters/dolt/error: classification of MariaDB, MySQL, Connector/C and Dolt errors.
#include "adapters/dolt/error.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace sg::dolt {

namespace {

// The session is unusable after these; the server has rolled back any open transaction.
constexpr std::array<unsigned, 14> lost_codes{
    2002,  // CR_CONNECTION_ERROR: cannot reach the socket
    2003,  // CR_CONN_HOST_ERROR: cannot reach host:port
    2005,  // CR_UNKNOWN_HOST: resolver hiccup as often as a typo; the connect deadline bounds it
    2006,  // CR_SERVER_GONE_ERROR: closed between queries (restart, KILL CONNECTION, idle timeout)
    2013,  // CR_SERVER_LOST: closed during a query, or MYSQL_OPT_READ_TIMEOUT expired
    2026,  // CR_SSL_CONNECTION_ERROR
    2055,  // CR_SERVER_LOST_EXTENDED
    5013,  // CR_ERR_NET_READ (Connector/C 3)
    5014,  // CR_ERR_NET_WRITE (Connector/C 3)
    1053,  // ER_SERVER_SHUTDOWN
    1159,  // ER_NET_READ_INTERRUPTED: the server's net_read_timeout
    1161,  // ER_NET_WRITE_INTERRUPTED
    1927,  // ER_CONNECTION_KILLED (MariaDB)
    4031,  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8): disconnected for inactivity
};

// The transaction lost a race or was interrupted; the session is still usable.
constexpr std::array<unsigned, 10> retry_codes{
    1213,  // ER_LOCK_DEADLOCK (the transaction was rolled back)
    1205,  // ER_LOCK_WAIT_TIMEOUT
    1020,  // ER_CHECKREAD: record changed since last read (snapshot isolation)
    1317,  // ER_QUERY_INTERRUPTED: KILL QUERY
    1040,  // ER_CON_COUNT_ERROR: too many connections, at connect time
    1203,  // ER_TOO_MANY_USER_CONNECTIONS
    1412,  // ER_TABLE_DEF_CHANGED: a concurrent DDL (migration) changed the table
    1614,  // ER_XA_RBDEADLOCK
    1969,  // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024,  // ER_QUERY_TIMEOUT (MySQL max_execution_time)
};

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

template <std::size_t N>
bool in(const std::array<unsigned, N>& codes, unsigned code) {
    return std::find(codes.begin(), codes.end(), code) != codes.end();
}

}  // namespace

std::string_view name(error_kind k) {
    switch (k) {
        case error_kind::connection_lost: return "connection_lost";
        case error_kind::retryable: return "retryable";
        case error_kind::permanent: return "permanent";
    }
    return "permanent";
}

std::string error::to_string() const {
    std::string s = "code=" + std::to_string(code) + " sqlstate=" + sqlstate +
                    " kind=" + std::string(name(kind)) + ": " + message;
    return s;
}

error_kind classify(unsigned code, std::string_view sqlstate, std::string_view message) {
    if (in(lost_codes, code)) {
        return error_kind::connection_lost;
    }
    if (code == 1105) {  // ER_UNKNOWN_ERROR: Dolt's catch-all, told apart by its text
        // Dolt's online GC invalidates older sessions: "... this connection can no longer be
        // used. please reconnect."
        if (contains(message, "please reconnect") || contains(message, "connection was killed")) {
            return error_kind::connection_lost;
        }
        if (contains(message, "Merge conflict detected") ||
            contains(message, "serialization failure") ||
            contains(message, "transaction rollback")) {
            return error_kind::retryable;
        }
        return error_kind::permanent;
    }
    if (in(retry_codes, code)) {
        return error_kind::retryable;
    }
    // Any other client-side error (2000-2999: Connector/C's CR_* codes) is about the session, not
    // the data (out of sync, malformed packet while the server shuts down, ...): reconnect. The
    // exceptions are the prepared-statement binding errors 2030-2036, which are our own bugs and
    // would fail the same way again.
    if (code >= 2000 && code <= 2999 && !(code >= 2030 && code <= 2036)) {
        return error_kind::connection_lost;
    }
    // Class 40 is "transaction rollback" (40001 serialization failure, 40XA0...): always a race.
    if (sqlstate.size() == 5 && sqlstate.substr(0, 2) == "40") {
        return error_kind::retryable;
    }
    // Class 08 is "connection exception", whatever the number.
    if (sqlstate.size() == 5 && sqlstate.substr(0, 2) == "08") {
        return error_kind::connection_lost;
    }
    return error_kind::permanent;
}

error adapter_error(std::string message, std::string_view sqlstate, error_kind kind) {
    return error{0, std::string(sqlstate), std::move(message), kind};
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw std::runtime_error(e.to_string());
}

}  // namespace sg::dolt
