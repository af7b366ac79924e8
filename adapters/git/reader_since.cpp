// adapters/git/reader_since: read_user_since's incremental read (history_extender): a user's
// state from an earlier read plus the single-parent commits made since, when that gives exactly
// what a full read would.
#include "adapters/git/reader.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "adapters/git/history.hpp"
#include "adapters/git/libgit2.hpp"
#include "adapters/git/reader_internal.hpp"
#include "adapters/v1/routes.hpp"

namespace sg::git {

using namespace reader_detail;

namespace {

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
        auto walked = walk_chain(head, prev_id, max_new);
        if (!walked) return walked.error();
        if (!*walked) return outcome::not_applicable;

        const std::size_t n = chain_.size();
        std::vector<entry_map> trees(n + 1);
        std::set<std::string> labels(prev_.labels.begin(), prev_.labels.end());
        auto read = read_trees(prev_id, trees, labels);
        if (!read) return read.error();
        if (!*read) return outcome::not_applicable;
        const changes changed = changed_versions(trees, labels);

        user_read r;
        v1::user_state& s = r.state;
        s.user_id = before.user_id;
        s.head = lg::hex(head);
        add_commits(s);
        if (auto added = add_versions(s, changed, trees); !added) return added.error();
        if (!add_blocks(s, changed, trees)) return outcome::not_applicable;
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

    // For each label, the indexes in chain_ of its new versions, newest first.
    using changes = std::map<std::string, std::vector<std::size_t>>;

    // chain_: the commits from `head` back to the earlier HEAD `prev_id`, newest first. False
    // when that is not a chain of at most `max_new` single-parent commits.
    result<bool> walk_chain(const git_oid& head, const git_oid& prev_id, std::size_t max_new) {
        git_oid at = head;
        while (git_oid_cmp(&at, &prev_id) != 0) {
            if (chain_.size() >= max_new) return false;
            git_commit* raw = nullptr;
            if (git_commit_lookup(&raw, repo_, &at) != 0) return corrupt("commit " + lg::hex(at));
            lg::commit_ptr c(raw);
            if (git_commit_parentcount(c.get()) != 1) return false;
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
        return true;
    }

    // memory-blocks/ of every new commit (index i) and of the earlier HEAD (index n) into `trees`,
    // the new commits' labels into `labels`. False when a full read would warn about a file or
    // match it as a pattern: leave it to one.
    result<bool> read_trees(const git_oid& prev_id, std::vector<entry_map>& trees,
                            std::set<std::string>& labels) {
        const std::size_t n = chain_.size();
        for (std::size_t i = 0; i < n; ++i) {
            if (auto e = block_entries(chain_[i].tree, lg::hex(chain_[i].id), trees[i])) {
                return std::move(*e);
            }
            for (const auto& [file, info] : trees[i]) {
                if (!file.ends_with(block_suffix)) continue;
                const auto label = file.substr(0, file.size() - block_suffix.size());
                if (!is_blob_mode(info.mode) || !v1::is_safe_identifier(label) ||
                    has_glob_chars(label)) {
                    return false;
                }
                labels.insert(label);
            }
        }
        if (n > 0) {
            git_commit* raw = nullptr;
            if (git_commit_lookup(&raw, repo_, &prev_id) != 0) {
                return corrupt("commit " + prev_.state.head);
            }
            lg::commit_ptr c(raw);
            if (auto e = block_entries(*git_commit_tree_id(c.get()), prev_.state.head, trees[n])) {
                return std::move(*e);
            }
        }
        return true;
    }

    // The new versions of each label: a commit whose entry differs from its parent's
    // (path_limited_order on a chain).
    changes changed_versions(const std::vector<entry_map>& trees,
                             const std::set<std::string>& labels) const {
        changes changed;
        auto key_of = [&](const entry_map& t, const std::string& file) {
            const auto it = t.find(file);
            return it == t.end() ? std::string() : entry_key(it->second);
        };
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            for (const auto& label : labels) {
                const std::string file = label + std::string(block_suffix);
                if (key_of(trees[i], file) != key_of(trees[i + 1], file)) {
                    changed[label].push_back(i);
                }
            }
        }
        return changed;
    }

    // The new commits, then the earlier ones renumbered after them.
    void add_commits(v1::user_state& s) const {
        const v1::user_state& before = prev_.state;
        const std::size_t n = chain_.size();
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
    }

    // The new versions of each label, then the earlier ones with their ordinals moved past them.
    result<void> add_versions(v1::user_state& s, const changes& changed,
                              const std::vector<entry_map>& trees) {
        const v1::user_state& before = prev_.state;
        s.versions.reserve(before.versions.size() + chain_.size());
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
        return {};
    }

    // The blocks at HEAD: an unchanged block is the earlier one; a changed one is its newest
    // version (the blob at HEAD is the blob of the last commit that changed the file). False when
    // a block is neither (cannot happen for a well-formed previous read).
    bool add_blocks(v1::user_state& s, const changes& changed,
                    const std::vector<entry_map>& trees) const {
        const v1::user_state& before = prev_.state;
        if (chain_.empty()) {
            s.blocks = before.blocks;
            return true;
        }
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
                return false;
            }
        }
        std::sort(s.blocks.begin(), s.blocks.end(),
                  [](const v1::block& a, const v1::block& b) { return a.label < b.label; });
        return true;
    }

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

}  // namespace

namespace reader_detail {

result<bool> extend_history(git_repository* repo, const user_read& previous, user_read& out,
                            const git_oid& head, std::size_t max_new) {
    history_extender extender(repo, previous, out);
    auto r = extender.extend(head, max_new);
    if (!r) return r.error();
    return *r == history_extender::outcome::extended;
}

}  // namespace reader_detail

}  // namespace sg::git
