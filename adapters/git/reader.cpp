// adapters/git/reader: users, HEAD, history, blocks and versions of v1 storage via libgit2. This
// file holds the public functions, the repository cache and the HEAD readers; a user's history
// is read by reader_history (in full) and reader_since (from an earlier read), and what the
// three share is in reader_internal.hpp.
// History order comes from adapters/git/history (git's algorithm over the loaded graph), never
// from libgit2's revwalk. No libgit2 callback is used, so no exception can cross one.
#include "adapters/git/reader.hpp"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "adapters/git/libgit2.hpp"
#include "adapters/git/reader_internal.hpp"
#include "adapters/v1/routes.hpp"

namespace sg::git {

using namespace reader_detail;

// Open repositories kept between reads (storage_reader::keep_open_repositories): libgit2's
// object cache lives in the repository, so a user read again soon (the mirror reads a user on
// every write) finds its commits and trees parsed instead of opening and inflating every loose
// object of its history again. Objects are immutable and refs are re-read on every use, so a
// kept repository never serves stale history.
class repo_cache {
public:
    explicit repo_cache(std::size_t capacity) : capacity_(capacity) {}

    // The kept repository for `key` (taken out: one user at a time), or null.
    lg::repository_ptr take(const std::string& key) {
        std::lock_guard lock(mu_);
        for (auto it = kept_.begin(); it != kept_.end(); ++it) {
            if (it->first == key) {
                lg::repository_ptr r = std::move(it->second);
                kept_.erase(it);
                return r;
            }
        }
        return nullptr;
    }

    void put(const std::string& key, lg::repository_ptr repo) {
        std::lock_guard lock(mu_);
        for (const auto& [k, r] : kept_) {
            if (k == key) return;  // another thread kept one meanwhile: this one goes
        }
        kept_.emplace_front(key, std::move(repo));
        while (kept_.size() > capacity_) kept_.pop_back();
    }

private:
    std::mutex mu_;
    std::size_t capacity_;
    std::list<std::pair<std::string, lg::repository_ptr>> kept_;  // most recent first
};

namespace reader_detail {

bool is_hex40(std::string_view s) {
    return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

}  // namespace reader_detail

namespace {

std::string join(const std::string& dir, std::string_view name) {
    std::string out = dir;
    if (!out.ends_with('/')) out += '/';
    out += name;
    return out;
}

std::string_view trim_right(std::string_view s) {
    while (!s.empty() &&
           (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// A ref name the direct HEAD reader may open below .git: anything unusual is left to libgit2.
bool is_plain_refname(std::string_view r) {
    if (!r.starts_with("refs/") || r.ends_with('/') || r.find("//") != std::string_view::npos) {
        return false;
    }
    for (const char ch : r) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f || std::strchr("~^:?*[\\", ch) != nullptr) return false;
    }
    std::string_view rest = r;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const auto part = rest.substr(0, slash);
        if (part.empty() || part.front() == '.' || part.ends_with(".lock") ||
            part.find("..") != std::string_view::npos) {
            return false;
        }
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return true;
}

// HEAD read straight from the files git writes: HEAD, the loose ref, packed-refs. `unknown`
// sends the caller to libgit2 (symlinked or odd HEAD, ref chains, unreadable files).
struct direct_head {
    enum { found, unborn, unknown } kind = unknown;
    std::string sha;
};

constexpr std::size_t max_ref_file = 4096;
constexpr std::size_t max_packed_refs = std::size_t{64} << 20;

direct_head read_head_directly(int git_fd) {
    const auto read_small = [&](std::string_view rel, std::size_t max,
                                bool& absent) -> std::optional<std::string> {
        absent = false;
        auto fd = open_file_beneath(git_fd, rel, rel);
        if (!fd) {
            absent = fd.error().kind == error_kind::not_found;
            return std::nullopt;
        }
        auto text = read_all(fd->get(), max, rel);
        if (!text) return std::nullopt;
        return std::move(*text);
    };
    bool absent = false;
    const auto head = read_small("HEAD", max_ref_file, absent);
    if (!head) return {};
    const auto h = trim_right(*head);
    if (is_hex40(h)) return {direct_head::found, std::string(h)};
    if (!h.starts_with("ref: ")) return {};
    const auto refname = h.substr(5);
    if (!is_plain_refname(refname)) return {};

    const auto loose = read_small(refname, max_ref_file, absent);
    if (loose) {
        const auto sha = trim_right(*loose);
        if (is_hex40(sha)) return {direct_head::found, std::string(sha)};
        return {};
    }
    if (!absent) return {};
    const auto packed = read_small("packed-refs", max_packed_refs, absent);
    if (!packed) return absent ? direct_head{direct_head::unborn, {}} : direct_head{};
    std::string_view rest = *packed;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const auto line = trim_right(rest.substr(0, nl));
        if (line.size() > 41 && line[40] == ' ' && line.substr(41) == refname &&
            is_hex40(line.substr(0, 40))) {
            return {direct_head::found, std::string(line.substr(0, 40))};
        }
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    return {direct_head::unborn, {}};
}

// HEAD through libgit2: nullopt for an unborn branch (empty repository).
result<std::optional<git_oid>> resolve_head(git_repository* repo) {
    const int unborn = git_repository_head_unborn(repo);
    if (unborn == 1) return std::optional<git_oid>();
    if (unborn < 0) return make_error(error_kind::repository, lg::last_error("resolve HEAD"));
    git_oid id{};
    if (git_reference_name_to_id(&id, repo, "HEAD") != 0) {
        return make_error(error_kind::repository, lg::last_error("resolve HEAD"));
    }
    return std::optional<git_oid>(id);
}

struct user_dir {
    unique_fd fd;          // {data_dir}/{user}
    unique_fd git_fd;      // {data_dir}/{user}/.git
    std::string git_path;  // its canonical path
};

// Opens {data_dir}/{user_id} and its .git, both real directories, after checking the id.
result<user_dir> open_user(const std::string& data_dir, int data_fd, std::string_view user_id) {
    if (!v1::is_safe_identifier(user_id)) {
        return make_error(error_kind::invalid_id, "user id is not a safe identifier");
    }
    const std::string id(user_id);
    auto dir = open_subdir(data_fd, id, "user directory " + id);
    if (!dir) return dir.error();
    auto git = open_subdir(dir->get(), ".git", id + "/.git");
    if (!git) return git.error();
    return user_dir{std::move(*dir), std::move(*git), join(join(data_dir, id), ".git")};
}

// The bodies of the public functions below, which count the errors these return.

result<std::string> canonical_data_dir(std::string_view data_dir) {
    const std::string path(data_dir);
    if (path.empty() || path.find('\0') != std::string::npos) {
        return make_error(error_kind::not_found, "bad data dir path");
    }
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
    if (!real) {
        const int err = errno;
        if (err == ENOENT) return make_error(error_kind::not_found, "data dir not found: " + path);
        return make_error(error_kind::io, "data dir " + path + ": " + std::strerror(err));
    }
    return std::string(real.get());
}

result<user_list> list_users_at(int data_fd) {
    auto entries = list_dir(data_fd, "data dir");
    if (!entries) return entries.error();
    user_list out;
    const auto skip = [&](const std::string& name, std::string reason) {
        (void)make_warning(warning_kind::unsafe_user, name, reason);
        out.skipped.push_back(skipped_user{name, std::move(reason)});
    };
    for (const auto& e : *entries) {
        bool is_dir = e.type == DT_DIR;
        bool is_link = e.type == DT_LNK;
        if (e.type == DT_UNKNOWN) {
            struct stat st {};
            auto present = stat_at(data_fd, e.name, st, e.name);
            if (!present) return present.error();
            if (!*present) continue;
            is_dir = S_ISDIR(st.st_mode);
            is_link = S_ISLNK(st.st_mode);
        }
        if (!is_dir && !is_link) continue;  // plain files are never users
        if (!v1::is_safe_identifier(e.name)) {
            skip(e.name, "not a safe identifier");
            continue;
        }
        if (is_link) {
            skip(e.name, "is a symlink");
            continue;
        }
        struct stat st {};
        auto present = stat_at(data_fd, e.name + "/.git", st, e.name);
        if (!present) return present.error();
        if (!*present) continue;  // a directory without .git: v1 says no such user
        if (!S_ISDIR(st.st_mode)) {
            skip(e.name, S_ISLNK(st.st_mode) ? ".git is a symlink" : ".git is not a directory");
            continue;
        }
        out.users.push_back(e.name);
    }
    std::sort(out.users.begin(), out.users.end());
    std::sort(out.skipped.begin(), out.skipped.end(),
              [](const skipped_user& a, const skipped_user& b) { return a.name < b.name; });
    return out;
}

result<head_state> head_and_fingerprint_at(const std::string& data_dir, int data_fd,
                                           std::string_view user_id) {
    auto user = open_user(data_dir, data_fd, user_id);
    if (!user) return user.error();
    head_state out;
    const auto direct = read_head_directly(user->git_fd.get());
    if (direct.kind == direct_head::found) {
        out.head = direct.sha;
    } else if (direct.kind == direct_head::unknown) {
        auto repo = lg::open_repository(user->git_path);
        if (!repo) return repo.error();
        auto head = resolve_head(repo->get());
        if (!head) return head.error();
        if (*head) out.head = lg::hex(**head);
    }
    auto fp = fingerprint_diffs(user->fd.get());
    if (!fp) return fp.error();
    out.diffs = std::move(*fp);
    return out;
}

result<user_read> read_user_at(const std::string& data_dir, int data_fd, std::string_view user_id,
                               std::string_view at_commit, repo_cache* cache,
                               const user_read* previous = nullptr,
                               std::size_t max_new_commits = 0) {
    auto user = open_user(data_dir, data_fd, user_id);
    if (!user) return user.error();
    user_read out;
    out.state.user_id = std::string(user_id);

    // libgit2 opens the object directory by path: refuse a symlink there first.
    struct stat st {};
    auto objects = stat_at(user->git_fd.get(), "objects", st, "objects");
    if (!objects) return objects.error();
    if (*objects && !S_ISDIR(st.st_mode)) {
        return make_error(error_kind::unsafe_path,
                          out.state.user_id + "/.git/objects is " +
                              (S_ISLNK(st.st_mode) ? "a symlink" : "not a directory"));
    }
    lg::repository_ptr repo = cache != nullptr ? cache->take(user->git_path) : nullptr;
    if (!repo) {
        auto opened = lg::open_repository(user->git_path);
        if (!opened) return opened.error();
        repo = std::move(*opened);
    }
    struct give_back {
        repo_cache* cache;
        const std::string& key;
        lg::repository_ptr& repo;
        ~give_back() {
            if (cache != nullptr && repo) cache->put(key, std::move(repo));
        }
    } keep{cache, user->git_path, repo};
    result<std::optional<git_oid>> head = std::optional<git_oid>{};
    if (at_commit.empty()) {
        head = resolve_head(repo.get());
    } else {
        git_oid id{};
        if (!is_hex40(at_commit) ||
            git_oid_fromstrn(&id, at_commit.data(), at_commit.size()) != 0) {
            return make_error(error_kind::invalid_id, out.state.user_id +
                                                          ": not a full commit id: " +
                                                          std::string(at_commit.substr(0, 64)));
        }
        git_commit* raw = nullptr;
        if (git_commit_lookup(&raw, repo.get(), &id) != 0) {
            return make_error(error_kind::not_found,
                              out.state.user_id + ": no commit " + std::string(at_commit));
        }
        lg::commit_ptr found(raw);
        head = std::optional<git_oid>(id);
    }
    if (!head) return head.error();
    if (!*head) {
        out.warnings.push_back(make_warning(warning_kind::empty_repository, out.state.user_id,
                                            "HEAD has no commit yet"));
    } else {
        bool extended = false;
        if (previous != nullptr) {
            auto r = extend_history(repo.get(), *previous, out, **head, max_new_commits);
            if (!r) return r.error();
            extended = *r;
        }
        if (!extended) {
            out.state.head = lg::hex(**head);
            if (auto e = load_history(repo.get(), out, **head)) return std::move(*e);
        }
    }

    auto diffs = read_diffs(user->fd.get(), out.state.user_id + "/");
    if (!diffs) return diffs.error();
    out.state.diffs = std::move(diffs->diffs);
    out.state.diffs_fingerprint = diffs->fingerprint.value;
    out.diffs_racy = diffs->fingerprint.racy;
    out.diffs_content_hash = std::move(diffs->content_hash);
    for (auto& w : diffs->warnings) out.warnings.push_back(std::move(w));
    return out;
}

result<std::string> diffs_content_hash_at(const std::string& data_dir, int data_fd,
                                          std::string_view user_id) {
    auto user = open_user(data_dir, data_fd, user_id);
    if (!user) return user.error();
    return diffs_content_hash(user->fd.get());
}

}  // namespace

void storage_reader::keep_open_repositories(std::size_t count) {
    if (count == 0) {
        cache_.reset();
        return;
    }
    lg::ensure_init();
    // Blobs (block versions) are not cached by default; small ones are worth keeping too. The
    // cache's total stays bounded by libgit2's global limit.
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_BLOB,
                     static_cast<size_t>(64 * 1024));
    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, static_cast<ssize_t>(128 * 1024 * 1024));
    cache_ = std::make_shared<repo_cache>(count);
}

result<storage_reader> storage_reader::open(std::string_view data_dir) {
    lg::ensure_init();
    auto dir = canonical_data_dir(data_dir);
    if (!dir) return counted<storage_reader>(dir.error());
    auto fd = open_root_dir(*dir);
    if (!fd) return counted<storage_reader>(fd.error());
    return storage_reader(std::move(*dir), std::move(*fd));
}

result<user_list> storage_reader::list_users() const { return counted(list_users_at(fd_.get())); }

result<head_state> storage_reader::head_and_fingerprint(std::string_view user_id) const {
    return counted(head_and_fingerprint_at(dir_, fd_.get(), user_id));
}

result<user_read> storage_reader::read_user_at_commit(std::string_view user_id,
                                                      std::string_view commit) const {
    if (commit.empty()) {
        return counted(result<user_read>(make_error(error_kind::invalid_id, "no commit given")));
    }
    return counted(read_user_at(dir_, fd_.get(), user_id, commit, cache_.get()));
}

result<user_read> storage_reader::read_user(std::string_view user_id) const {
    return counted(read_user_at(dir_, fd_.get(), user_id, {}, cache_.get()));
}

result<user_read> storage_reader::read_user_since(const user_read& previous,
                                                  std::size_t max_new_commits) const {
    return counted(read_user_at(dir_, fd_.get(), previous.state.user_id, {}, cache_.get(),
                                &previous, max_new_commits));
}

result<std::string> storage_reader::diffs_content_hash(std::string_view user_id) const {
    return counted(diffs_content_hash_at(dir_, fd_.get(), user_id));
}

result<const storage_reader*> lazy_storage_reader::get() {
    std::lock_guard lock(mu_);
    if (!reader_) {
        auto r = storage_reader::open(dir_);
        if (!r) return r.error();
        reader_.emplace(std::move(*r));
        if (keep_open_ > 0) reader_->keep_open_repositories(keep_open_);
    }
    return &*reader_;
}

// The one-shot forms: an error from open() was counted there.
result<user_list> list_users(std::string_view data_dir) {
    auto reader = storage_reader::open(data_dir);
    if (!reader) return reader.error();
    return reader->list_users();
}

result<head_state> head_and_fingerprint(std::string_view data_dir, std::string_view user_id) {
    auto reader = storage_reader::open(data_dir);
    if (!reader) return reader.error();
    return reader->head_and_fingerprint(user_id);
}

result<user_read> read_user(std::string_view data_dir, std::string_view user_id) {
    auto reader = storage_reader::open(data_dir);
    if (!reader) return reader.error();
    return reader->read_user(user_id);
}

}  // namespace sg::git
