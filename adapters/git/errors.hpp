// adapters/git/errors: how the v1 storage reader reports failure. Errors end a call (the user
// cannot be read); warnings are kept in the result (the user was read, something was skipped).
// Every error and warning the reader hands out is also counted here, so that the proxy can export
// them as metrics (shadowgate_git_errors_total{kind}, shadowgate_git_warnings_total{kind}).
#pragma once

#include <array>
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace sg::git {

enum class error_kind : std::uint8_t {
    invalid_id,   // a user id that is not a safe identifier: no path was built from it
    not_found,    // no {data_dir}/{user}/.git: v1 says the user does not exist
    unsafe_path,  // a symlink (or other non-directory) where v1 storage has a directory
    io,           // the filesystem refused (permissions, I/O error, out of file descriptors)
    repository,   // libgit2 could not open the repository or resolve HEAD
    corrupt,      // an object reachable from HEAD is missing or malformed
};
inline constexpr std::size_t error_kind_count = 6;

enum class warning_kind : std::uint8_t {
    unsafe_user,       // list_users: an entry that cannot be a user (unsafe name, symlink, ...)
    empty_repository,  // no commit at HEAD yet: read as a user with no history and no blocks
    unsafe_label,      // memory-blocks/{name}.md whose stem is not a safe identifier: skipped
    non_blob_block,    // memory-blocks/{label}.md is a directory or submodule in some commit
    unsafe_diff_file,  // pending_diffs/{x}.json is a symlink or not a regular file: skipped
    malformed_diff,    // a diff file v1 cannot load (bad JSON, not an object, wrong keys): skipped
    odd_diff_field,    // a diff field with an unexpected type or value: kept, as text
};
inline constexpr std::size_t warning_kind_count = 7;

struct error {
    error_kind kind = error_kind::io;
    std::string message;
};

struct warning {
    warning_kind kind = warning_kind::malformed_diff;
    std::string subject;  // what it is about: a user id, a file name relative to the user dir
    std::string message;
};

// Results of everything that can fail on storage we do not control. Calling .value() on an error
// throws (a broken invariant in the caller); check has_value() or use the error() branch.
template <class T>
using result = boost::system::result<T, error>;

// Builds an error, not yet counted: lower layers also use errors for expected probes ("is there
// a loose ref?"), so an error is counted once, when a public reader function returns it.
inline error make_error(error_kind kind, std::string message) {
    return error{kind, std::move(message)};
}
// Counts the error in `r`, if any, and passes `r` on: the reader's public functions return
// through here.
void count_error(const error& e);
template <class T>
result<T> counted(result<T> r) {
    if (!r) count_error(r.error());
    return r;
}
// Builds a warning and counts it. Every warning the reader returns goes through here.
warning make_warning(warning_kind kind, std::string subject, std::string message);

// Stable snake_case names, used as metric label values.
std::string_view name(error_kind k);
std::string_view name(warning_kind k);

// Process-wide totals since start (relaxed atomics: for metrics, not for synchronization).
std::uint64_t count(error_kind k);
std::uint64_t count(warning_kind k);

// Found by boost::system::result::value() through ADL.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace sg::git
