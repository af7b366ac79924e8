// adapters/git/libgit2: owning handles for the libgit2 objects the reader uses, one-time library
// set-up, and a read-only repository opener that refuses symlinked git dirs and alternates.
#pragma once

#include <git2.h>

#include <memory>
#include <string>
#include <string_view>

#include "adapters/git/errors.hpp"

namespace sg::git::lg {

struct deleter {
    void operator()(git_repository* p) const { git_repository_free(p); }
    void operator()(git_commit* p) const { git_commit_free(p); }
    void operator()(git_tree* p) const { git_tree_free(p); }
    void operator()(git_blob* p) const { git_blob_free(p); }
    void operator()(git_reference* p) const { git_reference_free(p); }
    void operator()(git_object* p) const { git_object_free(p); }
    void operator()(git_odb* p) const { git_odb_free(p); }
};

using repository_ptr = std::unique_ptr<git_repository, deleter>;
using commit_ptr = std::unique_ptr<git_commit, deleter>;
using tree_ptr = std::unique_ptr<git_tree, deleter>;
using blob_ptr = std::unique_ptr<git_blob, deleter>;
using reference_ptr = std::unique_ptr<git_reference, deleter>;
using object_ptr = std::unique_ptr<git_object, deleter>;
using odb_ptr = std::unique_ptr<git_odb, deleter>;

// Initializes libgit2 once per process (never shut down: handles may outlive any owner) and
// turns off its repository owner check: shadowgate reads v1's storage read-only and usually
// runs as a different user than v1. Thread-safe; cheap after the first call.
void ensure_init();

// "what: <libgit2's last error message>" for the calling thread.
std::string last_error(std::string_view what);

// 40 lowercase hex digits.
std::string hex(const git_oid& id);

// Opens the repository whose git dir is `git_dir` (an absolute path without symlinks, ending in
// "/.git"), read-only in practice: objects are read from git_dir/objects only (loose and packs;
// alternates are ignored, so no object is read from outside the user's directory). Errors:
// repository (libgit2 refused it), unsafe_path (libgit2 resolved it somewhere else).
result<repository_ptr> open_repository(const std::string& git_dir);

}  // namespace sg::git::lg
