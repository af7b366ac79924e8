// adapters/dolt/error: what a failed database call returns. Every call of the Dolt adapter returns
// `result<T>`, a value or an `error` carrying the server's (or client library's) code, SQLSTATE and
// message, plus a classification the mirror acts on: retry the transaction (after reconnecting
// when the session was lost) or give up on this input. Messages never contain the password.
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace sg::dolt {

enum class error_kind {
    // The session is gone (server restarted, network, read timeout, KILL CONNECTION, Dolt's GC):
    // reconnect, then retry the whole transaction; the server already rolled it back.
    connection_lost,
    // The session survives but the transaction lost a race (deadlock 1213, lock wait 1205,
    // SQLSTATE 40001, Dolt's "Merge conflict detected", KILL QUERY): retry it.
    retryable,
    // Retrying the same input gives the same failure (data too long 1406, bad string 1366,
    // duplicate key, syntax, access denied, a value outside what the schema holds): report it.
    permanent,
};

std::string_view name(error_kind k);

struct error {
    // Constructors rather than an aggregate: C++20 would let `error(true)` aggregate-initialize,
    // which makes result<bool> (and result<integer>) ambiguous to construct from a value.
    error() = default;
    error(unsigned c, std::string state, std::string msg, error_kind k)
        : code(c), sqlstate(std::move(state)), message(std::move(msg)), kind(k) {}

    unsigned code = 0;     // server/client error number; 0 for errors found by this adapter
    std::string sqlstate;  // five characters, e.g. "22001"; "HY000" when unknown
    std::string message;   // the server's text (or ours); never the password
    error_kind kind = error_kind::permanent;

    bool retryable() const { return kind != error_kind::permanent; }
    // "code=1406 sqlstate=22001 kind=permanent: Data too long for column 'user_id' at row 1"
    std::string to_string() const;
};

// Classifies an error from its number, SQLSTATE and message (Dolt reports several conditions as
// 1105 with a telling message). Pure; table-driven tests live in tests/mariadb/.
error_kind classify(unsigned code, std::string_view sqlstate, std::string_view message);

// An error found by the adapter itself (code 0), e.g. a commit time outside DATETIME's range.
error adapter_error(std::string message, std::string_view sqlstate = "HY000",
                    error_kind kind = error_kind::permanent);

template <class T>
using result = boost::system::result<T, error>;

// Found by ADL when `result<T>::value()` is called on an error: throws std::runtime_error with
// `e.to_string()`. Code that must not throw checks the result first.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace sg::dolt
