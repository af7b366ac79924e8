// adapters/git/reader: users, HEAD, history, blocks and versions of v1 storage via libgit2.
// History order comes from adapters/git/history (git's algorithm over the loaded graph), never
// from libgit2's revwalk. No libgit2 callback is used, so no exception can cross one.
#include "adapters/git/reader.hpp"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "adapters/git/history.hpp"
#include "adapters/git/libgit2.hpp"
#include "adapters/v1/routes.hpp"

namespace sg::git {

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

namespace {

constexpr std::string_view blocks_dir = "memory-blocks";
constexpr const char* blocks_dir_c = "memory-blocks";  // for libgit2's C strings
constexpr std::string_view block_suffix = ".md";
// A tree nested deeper than this under memory-blocks/ is not followed by wildcard matching.
constexpr int max_tree_depth = 64;

std::string join(const std::string& dir, std::string_view name) {
    std::string out = dir;
    if (!out.ends_with('/')) out += '/';
    out += name;
    return out;
}

bool is_hex40(std::string_view s) {
    return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
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

std::string raw_key(const git_oid& id) {
    return std::string(reinterpret_cast<const char*>(id.id), GIT_OID_RAWSZ);
}

bool is_blob_mode(git_filemode_t m) {
    return m == GIT_FILEMODE_BLOB || m == GIT_FILEMODE_BLOB_EXECUTABLE || m == GIT_FILEMODE_LINK;
}

struct tree_entry_info {
    git_oid id{};
    git_filemode_t mode = GIT_FILEMODE_UNREADABLE;
};

// What a pathspec sees of one entry: equal keys mean no difference (git compares id and mode).
std::string entry_key(const tree_entry_info& e) {
    return std::to_string(static_cast<unsigned>(e.mode)) + ':' + raw_key(e.id);
}

// The parts of a commit a user_state keeps, as both loaders read them.
struct commit_facts {
    std::string sha;
    std::string message;
    std::int64_t time = 0;
    int offset = 0;
};

v1::commit model_commit(const commit_facts& f, std::vector<std::string> parents,
                        std::int64_t seq) {
    v1::commit c;
    c.sha = f.sha;
    c.parents = std::move(parents);
    c.message = f.message;
    c.author = author_footer(f.message);
    c.commit_time = f.time;
    c.commit_tz_offset_minutes = f.offset;
    c.seq = seq;
    return c;
}

// A version of `label` at commit `f`; `source` null for a commit in which v1 cannot read the
// file (deleted).
v1::block_version model_version(const commit_facts& f, const std::string& label,
                                const std::string* source, std::int64_t ordinal) {
    v1::block_version v;
    v.sha = f.sha;
    v.label = label;
    if (source != nullptr) {
        v.source = *source;
    } else {
        v.deleted = true;
    }
    v.message = f.message;
    v.author = author_footer(f.message);
    v.commit_time = f.time;
    v.commit_tz_offset_minutes = f.offset;
    v.ordinal = ordinal;
    return v;
}

// Blob contents by id, each read from the repository once per read of a user.
class blob_cache {
public:
    blob_cache(git_repository* repo, const std::string& user) : repo_(repo), user_(user) {}

    result<const std::string*> get(const git_oid& id) {
        const auto key = raw_key(id);
        if (const auto it = blobs_.find(key); it != blobs_.end()) return &it->second;
        git_blob* raw = nullptr;
        if (git_blob_lookup(&raw, repo_, &id) != 0) {
            return make_error(error_kind::corrupt, user_ + ": " + lg::last_error("blob " + lg::hex(id)));
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

// Loads one user's history from a repository and fills a user_read. One instance per call.
class history_loader {
public:
    history_loader(git_repository* repo, user_read& out) : repo_(repo), out_(out) {}

    std::optional<error> load(const git_oid& head) {
        if (auto e = load_graph(head)) return e;
        if (auto e = load_block_trees()) return e;
        fill_commits();
        if (auto e = fill_versions()) return e;
        return fill_blocks();
    }

private:
    struct loaded_commit {
        git_oid id{};
        git_oid tree{};
        std::string message;
        int offset = 0;
        std::string blocks_tree;  // raw id of memory-blocks/ in this commit's tree, "" if none
    };
    using entry_map = std::map<std::string, tree_entry_info>;

    std::string subject(std::string_view rest) const {
        return out_.state.user_id + "/" + std::string(rest);
    }

    error corrupt(std::string_view what) const {
        return make_error(error_kind::corrupt, out_.state.user_id + ": " + lg::last_error(what));
    }

    std::uint32_t add_commit(const git_oid& id) {
        const auto [it, inserted] =
            index_.emplace(raw_key(id), static_cast<std::uint32_t>(commits_.size()));
        if (inserted) {
            commits_.push_back(loaded_commit{id, {}, {}, 0, {}});
            graph_.emplace_back();
        }
        return it->second;
    }

    // Every commit reachable from HEAD (breadth first; order does not matter here).
    std::optional<error> load_graph(const git_oid& head) {
        git_object* obj = nullptr;
        if (git_object_lookup(&obj, repo_, &head, GIT_OBJECT_ANY) != 0) return corrupt("HEAD");
        lg::object_ptr head_obj(obj);
        git_object* peeled = nullptr;
        if (git_object_peel(&peeled, head_obj.get(), GIT_OBJECT_COMMIT) != 0) {
            return corrupt("HEAD is not a commit");
        }
        lg::object_ptr tip(peeled);
        add_commit(*git_object_id(tip.get()));

        for (std::size_t i = 0; i < commits_.size(); ++i) {
            git_commit* raw = nullptr;
            const git_oid id = commits_[i].id;
            if (git_commit_lookup(&raw, repo_, &id) != 0) {
                return corrupt("commit " + lg::hex(id));
            }
            lg::commit_ptr c(raw);
            const char* message = git_commit_message_raw(c.get());
            commits_[i].message = message != nullptr ? message : "";
            commits_[i].tree = *git_commit_tree_id(c.get());
            commits_[i].offset = git_commit_time_offset(c.get());
            graph_[i].time = static_cast<std::int64_t>(git_commit_time(c.get()));
            const unsigned n = git_commit_parentcount(c.get());
            for (unsigned k = 0; k < n; ++k) {
                const git_oid* pid = git_commit_parent_id(c.get(), k);
                if (pid == nullptr) return corrupt("parent of commit " + lg::hex(id));
                const auto p = add_commit(*pid);
                graph_[i].parents.push_back(p);
            }
        }
        return std::nullopt;
    }

    // memory-blocks/ of every commit, and the entries of every distinct memory-blocks/ tree.
    std::optional<error> load_block_trees() {
        for (auto& c : commits_) {
            git_tree* raw = nullptr;
            if (git_tree_lookup(&raw, repo_, &c.tree) != 0) {
                return corrupt("tree of commit " + lg::hex(c.id));
            }
            lg::tree_ptr root(raw);
            const git_tree_entry* e = git_tree_entry_byname(root.get(), blocks_dir_c);
            if (e == nullptr || git_tree_entry_type(e) != GIT_OBJECT_TREE) continue;
            c.blocks_tree = raw_key(*git_tree_entry_id(e));
            if (block_trees_.count(c.blocks_tree) != 0) continue;
            git_tree* sub_raw = nullptr;
            if (git_tree_lookup(&sub_raw, repo_, git_tree_entry_id(e)) != 0) {
                return corrupt("memory-blocks tree of commit " + lg::hex(c.id));
            }
            lg::tree_ptr sub(sub_raw);
            entry_map entries;
            const std::size_t n = git_tree_entrycount(sub.get());
            for (std::size_t k = 0; k < n; ++k) {
                const git_tree_entry* se = git_tree_entry_byindex(sub.get(), k);
                entries.emplace(
                    git_tree_entry_name(se),
                    tree_entry_info{*git_tree_entry_id(se), git_tree_entry_filemode(se)});
            }
            block_trees_.emplace(c.blocks_tree, std::move(entries));
        }
        return std::nullopt;
    }

    commit_facts facts(std::uint32_t i) const {
        return {lg::hex(commits_[i].id), commits_[i].message, graph_[i].time, commits_[i].offset};
    }

    void fill_commits() {
        const auto order = rev_list_order(graph_, 0);
        auto& out = out_.state.commits;
        out.reserve(order.size());
        for (std::size_t seq = 0; seq < order.size(); ++seq) {
            std::vector<std::string> parents;
            for (const auto p : graph_[order[seq]].parents) {
                parents.push_back(lg::hex(commits_[p].id));
            }
            out.push_back(model_commit(facts(order[seq]), std::move(parents),
                                       static_cast<std::int64_t>(seq)));
        }
    }

    const tree_entry_info* block_entry(std::uint32_t commit, const std::string& file) const {
        const auto& key = commits_[commit].blocks_tree;
        if (key.empty()) return nullptr;
        const auto& entries = block_trees_.at(key);
        const auto it = entries.find(file);
        return it == entries.end() ? nullptr : &it->second;
    }

    // Safe labels of every "*.md" blob in any memory-blocks/ tree of the history; unsafe names
    // are warned about once each.
    std::set<std::string> all_labels() {
        std::set<std::string> labels;
        std::set<std::string> unsafe;
        for (const auto& [key, entries] : block_trees_) {
            for (const auto& [file, info] : entries) {
                if (!file.ends_with(block_suffix) || !is_blob_mode(info.mode)) continue;
                const auto label = file.substr(0, file.size() - block_suffix.size());
                if (v1::is_safe_identifier(label)) {
                    labels.insert(label);
                } else {
                    unsafe.insert(file);
                }
            }
        }
        for (const auto& file : unsafe) {
            out_.warnings.push_back(make_warning(
                warning_kind::unsafe_label, subject(std::string(blocks_dir) + "/" + file),
                "the block name is not a safe identifier: skipped"));
        }
        return labels;
    }

    // What a wildcard pathspec matches below one memory-blocks/ tree, as a comparable key.
    std::optional<error> wildcard_key(const git_oid& tree_id, const std::string& prefix,
                                      const std::string& pattern, int depth, std::string& key) {
        git_tree* raw = nullptr;
        if (git_tree_lookup(&raw, repo_, &tree_id) != 0) return corrupt("tree " + lg::hex(tree_id));
        lg::tree_ptr tree(raw);
        const std::size_t n = git_tree_entrycount(tree.get());
        for (std::size_t k = 0; k < n; ++k) {
            const git_tree_entry* e = git_tree_entry_byindex(tree.get(), k);
            const std::string path = prefix + git_tree_entry_name(e);
            const tree_entry_info info{*git_tree_entry_id(e), git_tree_entry_filemode(e)};
            if (pathspec_matches(pattern, path)) {
                // A matching directory is taken whole: equal tree ids mean equal contents.
                key += path;
                key += '\0';
                key += entry_key(info);
                key += '\n';
            } else if (git_tree_entry_type(e) == GIT_OBJECT_TREE && depth < max_tree_depth) {
                if (auto err = wildcard_key(info.id, path + "/", pattern, depth + 1, key)) {
                    return err;
                }
            }
        }
        return std::nullopt;
    }

    // path_state for one label: what the pathspec v1 hands to git matches in each commit.
    std::optional<error> path_states(const std::string& label, std::vector<std::string>& states) {
        const std::string file = label + std::string(block_suffix);
        states.assign(commits_.size(), std::string());
        if (!has_glob_chars(label)) {
            for (std::uint32_t i = 0; i < commits_.size(); ++i) {
                if (const auto* e = block_entry(i, file)) states[i] = entry_key(*e);
            }
            return std::nullopt;
        }
        // GitPython passes the path to `git rev-list -- <path>` as a pathspec, so "*", "?" and
        // "[" in a label are wildcards there and other files can count as touching the block.
        const std::string pattern = std::string(blocks_dir) + "/" + file;
        std::unordered_map<std::string, std::string> by_tree;
        for (std::uint32_t i = 0; i < commits_.size(); ++i) {
            const auto& tree = commits_[i].blocks_tree;
            if (tree.empty()) continue;
            auto it = by_tree.find(tree);
            if (it == by_tree.end()) {
                git_oid id{};
                std::memcpy(id.id, tree.data(), GIT_OID_RAWSZ);
                std::string key;
                if (auto e = wildcard_key(id, std::string(blocks_dir) + "/", pattern, 0, key)) {
                    return e;
                }
                it = by_tree.emplace(tree, std::move(key)).first;
            }
            states[i] = it->second;
        }
        return std::nullopt;
    }

    result<const std::string*> blob(const git_oid& id) { return blobs_.get(id); }

    std::optional<error> fill_versions() {
        std::vector<std::string> states;
        const auto labels = all_labels();
        out_.labels.assign(labels.begin(), labels.end());
        for (const auto& label : labels) {
            if (auto e = path_states(label, states)) return e;
            const auto order = path_limited_order(graph_, 0, states);
            const std::string file = label + std::string(block_suffix);
            bool warned = false;
            for (std::size_t ordinal = 0; ordinal < order.size(); ++ordinal) {
                const auto i = order[ordinal];
                const commit_facts f = facts(i);
                const std::string* source = nullptr;
                const auto* entry = block_entry(i, file);
                if (entry != nullptr && is_blob_mode(entry->mode)) {
                    auto bytes = blob(entry->id);
                    if (!bytes) return bytes.error();
                    source = *bytes;
                } else if (entry != nullptr && !warned) {
                    // v1 cannot read the file at this commit: to its versions endpoint it is
                    // gone, as after a deletion.
                    warned = true;
                    out_.warnings.push_back(
                        make_warning(warning_kind::non_blob_block,
                                     subject(std::string(blocks_dir) + "/" + file),
                                     "not a file in commit " + f.sha + ": read as deleted"));
                }
                if (ordinal == 0) newest_[label] = f.sha;
                out_.state.versions.push_back(
                    model_version(f, label, source, static_cast<std::int64_t>(ordinal)));
            }
        }
        return std::nullopt;
    }

    std::optional<error> fill_blocks() {
        const auto& key = commits_[0].blocks_tree;
        if (key.empty()) return std::nullopt;
        for (const auto& [file, info] : block_trees_.at(key)) {
            if (!file.ends_with(block_suffix)) continue;
            const auto label = file.substr(0, file.size() - block_suffix.size());
            if (!v1::is_safe_identifier(label)) continue;  // warned about in all_labels
            if (!is_blob_mode(info.mode)) {
                out_.warnings.push_back(make_warning(warning_kind::non_blob_block,
                                                     subject(std::string(blocks_dir) + "/" + file),
                                                     "not a file at HEAD: not a block"));
                continue;
            }
            auto bytes = blob(info.id);
            if (!bytes) return bytes.error();
            out_.state.blocks.push_back(v1::block{label, **bytes, newest_[label]});
        }
        std::sort(out_.state.blocks.begin(), out_.state.blocks.end(),
                  [](const v1::block& a, const v1::block& b) { return a.label < b.label; });
        return std::nullopt;
    }

    git_repository* repo_;
    user_read& out_;
    std::vector<loaded_commit> commits_;  // index 0 is HEAD
    std::vector<graph_node> graph_;       // same indices
    std::unordered_map<std::string, std::uint32_t> index_;
    std::unordered_map<std::string, entry_map> block_trees_;
    blob_cache blobs_{repo_, out_.state.user_id};
    std::map<std::string, std::string> newest_;  // label -> sha of its newest version
};

// Builds a user_read from an earlier one plus the commits made since, when that gives exactly
// what history_loader would (storage_reader::read_user_since): the new commits are a chain of
// single-parent commits from the earlier HEAD, so git's walks (rev_list_order and
// path_limited_order, see history.hpp) print the new commits first and then exactly what they
// printed from the earlier HEAD. One instance per call; `out` is only written on success.
class history_extender {
public:
    enum class outcome { extended, not_applicable };

    history_extender(git_repository* repo, const user_read& previous, user_read& out)
        : repo_(repo), prev_(previous), out_(out) {}

    result<outcome> extend(const git_oid& head, std::size_t max_new) {
        const v1::user_state& before = prev_.state;
        git_oid prev_id{};
        if (before.user_id != out_.state.user_id || !is_hex40(before.head) ||
            git_oid_fromstrn(&prev_id, before.head.data(), before.head.size()) != 0) {
            return outcome::not_applicable;
        }
        for (const auto& label : prev_.labels) {
            if (has_glob_chars(label)) return outcome::not_applicable;  // pathspec patterns
        }
        // The chain from HEAD back to the earlier HEAD, newest first.
        git_oid at = head;
        while (git_oid_cmp(&at, &prev_id) != 0) {
            if (chain_.size() >= max_new) return outcome::not_applicable;
            git_commit* raw = nullptr;
            if (git_commit_lookup(&raw, repo_, &at) != 0) return corrupt("commit " + lg::hex(at));
            lg::commit_ptr c(raw);
            if (git_commit_parentcount(c.get()) != 1) return outcome::not_applicable;
            const git_oid* parent = git_commit_parent_id(c.get(), 0);
            if (parent == nullptr) return corrupt("parent of commit " + lg::hex(at));
            const char* message = git_commit_message_raw(c.get());
            link l;
            l.id = at;
            l.parent = *parent;
            l.tree = *git_commit_tree_id(c.get());
            l.message = message != nullptr ? message : "";
            l.time = static_cast<std::int64_t>(git_commit_time(c.get()));
            l.offset = git_commit_time_offset(c.get());
            chain_.push_back(std::move(l));
            at = *parent;
        }

        // memory-blocks/ of every new commit (index i) and of the earlier HEAD (index n).
        const std::size_t n = chain_.size();
        std::vector<entry_map> trees(n + 1);
        std::set<std::string> labels(prev_.labels.begin(), prev_.labels.end());
        for (std::size_t i = 0; i < n; ++i) {
            if (auto e = block_entries(chain_[i].tree, lg::hex(chain_[i].id), trees[i])) {
                return std::move(*e);
            }
            for (const auto& [file, info] : trees[i]) {
                if (!file.ends_with(block_suffix)) continue;
                const auto label = file.substr(0, file.size() - block_suffix.size());
                // What a full read warns about or matches as a pattern: leave it to one.
                if (!is_blob_mode(info.mode) || !v1::is_safe_identifier(label) ||
                    has_glob_chars(label)) {
                    return outcome::not_applicable;
                }
                labels.insert(label);
            }
        }
        if (n > 0) {
            git_commit* raw = nullptr;
            if (git_commit_lookup(&raw, repo_, &prev_id) != 0) {
                return corrupt("commit " + before.head);
            }
            lg::commit_ptr c(raw);
            if (auto e = block_entries(*git_commit_tree_id(c.get()), before.head, trees[n])) {
                return std::move(*e);
            }
        }

        // The new versions of each label, newest first: a commit whose entry differs from its
        // parent's (path_limited_order on a chain).
        std::map<std::string, std::vector<std::size_t>> changed;
        auto key_of = [&](const entry_map& t, const std::string& file) {
            const auto it = t.find(file);
            return it == t.end() ? std::string() : entry_key(it->second);
        };
        for (std::size_t i = 0; i < n; ++i) {
            for (const auto& label : labels) {
                const std::string file = label + std::string(block_suffix);
                if (key_of(trees[i], file) != key_of(trees[i + 1], file)) {
                    changed[label].push_back(i);
                }
            }
        }

        user_read r;
        v1::user_state& s = r.state;
        s.user_id = before.user_id;
        s.head = lg::hex(head);
        s.commits.reserve(n + before.commits.size());
        for (std::size_t i = 0; i < n; ++i) {
            const link& l = chain_[i];
            s.commits.push_back(
                model_commit(facts(l), {lg::hex(l.parent)}, static_cast<std::int64_t>(i)));
        }
        for (const auto& c : before.commits) {
            s.commits.push_back(c);
            s.commits.back().seq += static_cast<std::int64_t>(n);
        }

        s.versions.reserve(before.versions.size() + n);
        for (const auto& [label, at_commits] : changed) {
            const std::string file = label + std::string(block_suffix);
            for (std::size_t k = 0; k < at_commits.size(); ++k) {
                const std::string* source = nullptr;
                const auto it = trees[at_commits[k]].find(file);
                if (it != trees[at_commits[k]].end()) {
                    auto bytes = blob(it->second.id);
                    if (!bytes) return bytes.error();
                    source = *bytes;
                }
                s.versions.push_back(model_version(facts(chain_[at_commits[k]]), label, source,
                                                   static_cast<std::int64_t>(k)));
            }
        }
        for (const auto& v : before.versions) {
            s.versions.push_back(v);
            if (const auto it = changed.find(v.label); it != changed.end()) {
                s.versions.back().ordinal += static_cast<std::int64_t>(it->second.size());
            }
        }

        // The blocks at HEAD: an unchanged block is the earlier one; a changed one is its newest
        // version (the blob at HEAD is the blob of the last commit that changed the file).
        if (n == 0) {
            s.blocks = before.blocks;
        } else {
            std::map<std::string, const v1::block*> old_blocks;
            for (const auto& b : before.blocks) old_blocks.emplace(b.label, &b);
            std::map<std::string, const v1::block_version*> first_new;
            for (const auto& v : s.versions) {
                if (v.ordinal == 0 && changed.count(v.label) != 0) first_new.emplace(v.label, &v);
            }
            for (const auto& [file, info] : trees[0]) {
                if (!file.ends_with(block_suffix)) continue;
                const auto label = file.substr(0, file.size() - block_suffix.size());
                if (const auto it = first_new.find(label); it != first_new.end()) {
                    s.blocks.push_back(v1::block{label, it->second->source, it->second->sha});
                } else if (const auto ob = old_blocks.find(label); ob != old_blocks.end()) {
                    s.blocks.push_back(*ob->second);
                } else {
                    return outcome::not_applicable;  // cannot happen for a well-formed previous
                }
            }
            std::sort(s.blocks.begin(), s.blocks.end(),
                      [](const v1::block& a, const v1::block& b) { return a.label < b.label; });
        }
        r.labels.assign(labels.begin(), labels.end());
        r.incremental = true;
        out_ = std::move(r);
        return outcome::extended;
    }

private:
    struct link {
        git_oid id{};
        git_oid parent{};
        git_oid tree{};
        std::string message;
        std::int64_t time = 0;
        int offset = 0;
    };
    using entry_map = std::map<std::string, tree_entry_info>;

    static commit_facts facts(const link& l) {
        return {lg::hex(l.id), l.message, l.time, l.offset};
    }

    error corrupt(std::string_view what) const {
        return make_error(error_kind::corrupt, out_.state.user_id + ": " + lg::last_error(what));
    }

    // The entries of memory-blocks/ in the tree `root` (none when it is absent or not a tree).
    std::optional<error> block_entries(const git_oid& root_id, const std::string& commit,
                                       entry_map& out) {
        git_tree* raw = nullptr;
        if (git_tree_lookup(&raw, repo_, &root_id) != 0) return corrupt("tree of commit " + commit);
        lg::tree_ptr root(raw);
        const git_tree_entry* e = git_tree_entry_byname(root.get(), blocks_dir_c);
        if (e == nullptr || git_tree_entry_type(e) != GIT_OBJECT_TREE) return std::nullopt;
        git_tree* sub_raw = nullptr;
        if (git_tree_lookup(&sub_raw, repo_, git_tree_entry_id(e)) != 0) {
            return corrupt("memory-blocks tree of commit " + commit);
        }
        lg::tree_ptr sub(sub_raw);
        const std::size_t count = git_tree_entrycount(sub.get());
        for (std::size_t k = 0; k < count; ++k) {
            const git_tree_entry* se = git_tree_entry_byindex(sub.get(), k);
            out.emplace(git_tree_entry_name(se),
                        tree_entry_info{*git_tree_entry_id(se), git_tree_entry_filemode(se)});
        }
        return std::nullopt;
    }

    result<const std::string*> blob(const git_oid& id) { return blobs_.get(id); }

    git_repository* repo_;
    const user_read& prev_;
    user_read& out_;
    std::vector<link> chain_;
    blob_cache blobs_{repo_, out_.state.user_id};
};

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
            return make_error(error_kind::invalid_id,
                              out.state.user_id + ": not a full commit id: " +
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
            history_extender extender(repo.get(), *previous, out);
            auto r = extender.extend(**head, max_new_commits);
            if (!r) return r.error();
            extended = *r == history_extender::outcome::extended;
        }
        if (!extended) {
            out.state.head = lg::hex(**head);
            history_loader loader(repo.get(), out);
            if (auto e = loader.load(**head)) return std::move(*e);
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
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_BLOB, static_cast<size_t>(64 * 1024));
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
