// proxy/common/result: the one result type of proxy/'s fallible functions: a value, or a failure
// that says what went wrong in words for the operator (the adapters have their own, richer error
// types; proxy/ code turns them into this where it reports them). Callers must look at it.
#pragma once

#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace sg::proxy {

struct failure {
    // Not an aggregate and not constructible from a string, so that a result<std::string> (or
    // result<bool>) is built from its value without ambiguity: failures are made by fail().
    failure() = default;

    std::string what;        // "cannot rename x.tmp to x: Permission denied"
    bool timed_out = false;  // the failure was a deadline passing (callers count it apart)
    bool refused = false;    // the input was refused by a rule (a client's error, not a fault)
};

// The failure `what` (timed_out: a deadline passed).
inline failure fail(std::string what, bool timed_out = false) {
    failure f;
    f.what = std::move(what);
    f.timed_out = timed_out;
    return f;
}

// The input is refused by a rule: `what` says which (an illegal stage change, an unknown cohort).
inline failure refuse(std::string what) {
    failure f = fail(std::move(what));
    f.refused = true;
    return f;
}

template <class T = void>
using result = boost::system::result<T, failure>;

// Found by ADL when `result<T>::value()` is called on a failure: a broken invariant, so it
// throws. Code that can fail checks the result first.
[[noreturn]] inline void throw_exception_from_error(const failure& f,
                                                    const boost::source_location&) {
    throw std::runtime_error(f.what);
}

}  // namespace sg::proxy
