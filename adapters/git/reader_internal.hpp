// adapters/git/reader_internal: what the files behind reader.hpp (reader, reader_history,
// reader_since) share: the names in memory-blocks/, the model helpers and the blob cache both
// history readers use, and the history readers' entry points. Only those files include it;
// everyone else includes reader.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/git/errors.hpp"
#include "adapters/git/libgit2.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/model.hpp"

namespace sg::git::reader_detail {

// From reader.cpp.

bool is_hex40(std::string_view s);

// From reader_history.cpp: what both history readers use.

inline constexpr const char* blocks_dir_c = "memory-blocks";  // for libgit2's C strings
inline constexpr std::string_view block_suffix = ".md";

std::string raw_key(const git_oid& id);

bool is_blob_mode(git_filemode_t m);

struct tree_entry_info {
    git_oid id{};
    git_filemode_t mode = GIT_FILEMODE_UNREADABLE;
};

// What a pathspec sees of one entry: equal keys mean no difference (git compares id and mode).
std::string entry_key(const tree_entry_info& e);

// The parts of a commit a user_state keeps, as both loaders read them.
struct commit_facts {
    std::string sha;
    std::string message;
    std::int64_t time = 0;
    int offset = 0;
};

v1::commit model_commit(const commit_facts& f, std::vector<std::string> parents, std::int64_t seq);

// A version of `label` at commit `f`; `source` null for a commit in which v1 cannot read the
// file (deleted).
v1::block_version model_version(const commit_facts& f, const std::string& label,
                                const std::string* source, std::int64_t ordinal);

// Blob contents by id, each read from the repository once per read of a user.
class blob_cache {
public:
    blob_cache(git_repository* repo, const std::string& user) : repo_(repo), user_(user) {}

    result<const std::string*> get(const git_oid& id) {
        const auto key = raw_key(id);
        if (const auto it = blobs_.find(key); it != blobs_.end()) return &it->second;
        git_blob* raw = nullptr;
        if (git_blob_lookup(&raw, repo_, &id) != 0) {
            return make_error(error_kind::corrupt,
                              user_ + ": " + lg::last_error("blob " + lg::hex(id)));
        }
        lg::blob_ptr b(raw);
        std::string bytes(static_cast<const char*>(git_blob_rawcontent(b.get())),
                          static_cast<std::size_t>(git_blob_rawsize(b.get())));
        return &blobs_.emplace(key, std::move(bytes)).first->second;
    }

private:
    git_repository* repo_;
    const std::string& user_;
    std::unordered_map<std::string, std::string> blobs_;
};

// Loads the history of one user from the commit `head` into `out` (history_loader); the caller
// has set out.state.user_id and out.state.head.
std::optional<error> load_history(git_repository* repo, user_read& out, const git_oid& head);

// From reader_since.cpp.

// read_user_since's incremental read (history_extender): true when `out` now holds `previous`
// extended by the commits made since (at most `max_new` of them), false when that would not give
// what load_history gives (`out` is then untouched: read the history in full).
result<bool> extend_history(git_repository* repo, const user_read& previous, user_read& out,
                            const git_oid& head, std::size_t max_new);

}  // namespace sg::git::reader_detail
