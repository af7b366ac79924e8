// adapters/git/reader: reads v1's storage (v1-contract.md §2-§6) into sg::v1::user_state: users,
// HEAD, every commit in `git rev-list HEAD` order, the blocks at HEAD, every version of every
// block in `git log -- memory-blocks/{label}.md` order, and pending_diffs/. Synchronous and
// blocking (run it on the worker pool); no exception leaves a public function except
// std::bad_alloc; every failure is an error value or a warning, and is counted (errors.hpp).
//
// Path safety: user ids are checked with sg::v1::is_safe_identifier before any path is built;
// the user directory, its .git, .git/objects and pending_diffs/ must be real directories and the
// diff files real files (a symlink anywhere there is refused, wherever it points); objects are
// read from the user's own .git/objects only (no alternates). Blocks are read from git objects,
// never from the working tree, so a symlinked block file is read as the blob git stores.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/git/errors.hpp"
#include "adapters/git/pending_diffs.hpp"
#include "adapters/git/safe_fs.hpp"
#include "adapters/v1/model.hpp"

namespace sg::git {

class repo_cache;

struct skipped_user {
    std::string name;    // the directory entry's name, as readdir gave it
    std::string reason;  // why it is not listed as a user
};

struct user_list {
    std::vector<std::string> users;     // sorted bytewise
    std::vector<skipped_user> skipped;  // entries that look like users but cannot be read as one
};

// What a capture scan compares with the mirror's watermark.
struct head_state {
    std::string head;         // HEAD's commit sha; "" for an empty repository
    diffs_fingerprint diffs;  // see pending_diffs.hpp (value, and racy)
};

// One user read in full.
struct user_read {
    v1::user_state state;            // state.diffs_fingerprint == diffs_fingerprint(...).value
    bool diffs_racy = false;         // see diffs_fingerprint::racy
    std::string diffs_content_hash;  // see sg::git::diffs_content_hash
    std::vector<warning> warnings;   // what was skipped or odd; the state is still usable
    // Every safe block label any memory-blocks/ tree of the history names (including labels
    // without a version: a file only on a side branch a merge discarded), sorted: what the next
    // read_user_since needs to know about the history it does not read again.
    std::vector<std::string> labels;
    // read_user_since: true when the state was built from `previous` and the new commits only;
    // false after a full read.
    bool incremental = false;
};

// A reader of one data directory. Construction resolves the directory once; afterwards every
// method is const and opens its own handles, so one reader may be used from several threads.
class storage_reader {
public:
    // Opens `data_dir` (symlinks in this path are resolved once, here). Errors: not_found,
    // unsafe_path (not a directory), io.
    static result<storage_reader> open(std::string_view data_dir);

    // Keeps up to `count` repositories open between reads (0: none, the default), so that a
    // user read again soon finds its history in libgit2's object cache: for the mirror, which
    // reads a user on every write. Bounded memory (libgit2's cache limit, 128 MiB, is set
    // process-wide here). Call before sharing the reader between threads.
    void keep_open_repositories(std::size_t count);

    // The canonical data directory path.
    const std::string& data_dir() const { return dir_; }

    // The users v1 would say exist: directories whose name is a safe identifier and that hold a
    // .git directory. Entries with an unsafe name are reported in `skipped` and never looked
    // into; so are symlinks and directories whose .git is not a directory. One readdir and one
    // lstat per directory: no repository is opened. Errors: io.
    result<user_list> list_users() const;

    // HEAD's sha and the pending_diffs/ fingerprint, from refs and directory metadata only: no
    // object is read and no history walked (loose refs are read directly; libgit2 is used only
    // for layouts the direct path does not handle). Equal to read_user's head and fingerprint for
    // the same state. Errors: invalid_id, not_found, unsafe_path, io, repository.
    result<head_state> head_and_fingerprint(std::string_view user_id) const;

    // Everything v1 storage says about one user (see user_read). An empty repository (no commit
    // yet) reads as a user with no commits and no blocks, with an empty_repository warning; a
    // missing pending_diffs/ as no diffs. Errors: invalid_id, not_found, unsafe_path, io,
    // repository, corrupt (an object reachable from HEAD is missing or malformed).
    result<user_read> read_user(std::string_view user_id) const;

    // read_user, computed from an earlier read of the same user plus what changed since: when
    // HEAD is `previous.state.head` or a descendant by a chain of at most `max_new_commits`
    // single-parent commits, only those commits, their memory-blocks/ trees and the blobs of
    // changed blocks are read, and pending_diffs/ as always; the result equals read_user's (the
    // same state, in every order; warnings only for what was read). Otherwise (a merge among the
    // new commits, a rewritten history, a longer chain, an empty repository, a block name that is
    // unsafe, not a file or a git wildcard in the new trees or the history's labels) it falls
    // back to a full read_user. `previous` must come from read_user or read_user_since of this
    // user. Errors as read_user.
    result<user_read> read_user_since(const user_read& previous,
                                      std::size_t max_new_commits = 512) const;

    // read_user as if HEAD were `commit` (40 hex digits, reachable or not): the state v1 had
    // right after that commit, for mirroring history one commit at a time. pending_diffs/ is not
    // in git: the diffs are today's. Errors as read_user, plus invalid_id (not a full sha) and
    // not_found (no such commit).
    result<user_read> read_user_at_commit(std::string_view user_id, std::string_view commit) const;

    // The content hash of the user's pending_diffs/ (reads every diff file). Errors as
    // head_and_fingerprint.
    result<std::string> diffs_content_hash(std::string_view user_id) const;

private:
    storage_reader(std::string dir, unique_fd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}

    std::string dir_;
    unique_fd fd_;
    std::shared_ptr<repo_cache> cache_;
};

// A storage_reader opened on first use, for services whose data directory may appear after
// they start: get() tries to open it until that succeeds, then always returns the same reader.
// Thread-safe. keep_open: see storage_reader::keep_open_repositories.
class lazy_storage_reader {
public:
    explicit lazy_storage_reader(std::string data_dir, std::size_t keep_open = 0)
        : dir_(std::move(data_dir)), keep_open_(keep_open) {}

    // The reader, or why the directory cannot be opened (yet). Errors as storage_reader::open.
    result<const storage_reader*> get();

private:
    std::string dir_;
    std::size_t keep_open_;
    std::mutex mu_;
    std::optional<storage_reader> reader_;
};

// One-shot forms of the methods above, for callers that do not keep a reader.
result<user_list> list_users(std::string_view data_dir);
result<head_state> head_and_fingerprint(std::string_view data_dir, std::string_view user_id);
result<user_read> read_user(std::string_view data_dir, std::string_view user_id);

}  // namespace sg::git
