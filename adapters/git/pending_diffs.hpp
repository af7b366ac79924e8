// adapters/git/pending_diffs: reading a user's pending_diffs/ directory (v1-contract.md §5), which
// v1's agents write as plain files that are never committed, and fingerprinting it so that a
// capture scan can tell cheaply whether it changed since it was last mirrored. Building blocks of
// adapters/git/reader, which counts the errors it returns; errors from here are not counted.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/git/errors.hpp"
#include "adapters/v1/model.hpp"

namespace sg::git {

// A stat-only fingerprint of pending_diffs/: a hash over the sorted names of the "*.json" entries
// with their file type, size, mtime and ctime (nanoseconds). No file is opened.
//
// `racy` is git's "racily clean" problem: a file rewritten twice within one filesystem timestamp
// tick with the same size keeps its fingerprint. When some entry changed less than
// racy_window_seconds ago, a later same-tick rewrite cannot be ruled out, so a caller comparing
// fingerprints must treat a racy directory as changed (read it again) until the window passes.
struct diffs_fingerprint {
    std::string value;  // 40 hex digits
    bool racy = false;
};
inline constexpr int racy_window_seconds = 2;

// What pending_diffs/ holds, read the way v1 reads it: every "*.json" file (Python's glob: names
// starting with "." excluded) that v1 can load; the others are skipped with a warning.
struct diffs_read {
    std::vector<v1::pending_diff> diffs;  // sorted by id; one per id
    diffs_fingerprint fingerprint;        // same value as fingerprint_diffs would give
    std::string content_hash;             // same value as diffs_content_hash would give
    std::vector<warning> warnings;
};

// Fingerprints {user_dir_fd}/pending_diffs. A missing directory is an empty one (v1 creates it on
// first use). Errors: unsafe_path (a symlink or not a directory), io.
result<diffs_fingerprint> fingerprint_diffs(int user_dir_fd);

// A hash over the names and exact bytes of the "*.json" files (40 hex digits): what changed,
// regardless of times. Reads every file. Errors as fingerprint_diffs.
result<std::string> diffs_content_hash(int user_dir_fd);

// Reads {user_dir_fd}/pending_diffs. Each file is stat'ed before it is read, so that a write
// racing with the read changes the fingerprint later rather than being lost. `subject_prefix`
// (e.g. "user-001/") starts warning subjects. Errors as fingerprint_diffs; a bad file is only a
// warning.
result<diffs_read> read_diffs(int user_dir_fd, std::string_view subject_prefix);

// Loads one diff file's text as v1's PendingDiff(**json.loads(text)) would: nullopt (with a
// malformed_diff warning) when v1 cannot (not JSON, not an object, a missing required key, an
// unknown key); fields of an unexpected type are kept as their JSON text with an odd_diff_field
// warning. `file_name` is the name in pending_diffs/ (for warnings and the id check).
std::optional<v1::pending_diff> parse_pending_diff(std::string_view file_name, std::string raw,
                                                   std::string_view subject_prefix,
                                                   std::vector<warning>& warnings);

// The git blob id of `bytes` (40 hex digits), used as the hash for fingerprints.
std::string hash_hex(std::string_view bytes);

}  // namespace sg::git
