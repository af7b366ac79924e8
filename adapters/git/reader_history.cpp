// adapters/git/reader_history: one user's history read in full from its repository
// (history_loader): every commit reachable from HEAD in rev-list order, every version of every
// block, the blocks at HEAD; and the model helpers it shares with reader_since.
#include "adapters/git/reader.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/git/history.hpp"
#include "adapters/git/libgit2.hpp"
#include "adapters/git/reader_internal.hpp"
#include "adapters/v1/routes.hpp"

namespace sg::git {

using namespace reader_detail;

namespace {

constexpr std::string_view blocks_dir = "memory-blocks";
// A tree nested deeper than this under memory-blocks/ is not followed by wildcard matching.
constexpr int max_tree_depth = 64;

}  // namespace

namespace reader_detail {

std::string raw_key(const git_oid& id) {
    return std::string(reinterpret_cast<const char*>(id.id), GIT_OID_RAWSZ);
}

bool is_blob_mode(git_filemode_t m) {
    return m == GIT_FILEMODE_BLOB || m == GIT_FILEMODE_BLOB_EXECUTABLE || m == GIT_FILEMODE_LINK;
}

std::string entry_key(const tree_entry_info& e) {
    return std::to_string(static_cast<unsigned>(e.mode)) + ':' + raw_key(e.id);
}

v1::commit model_commit(const commit_facts& f, std::vector<std::string> parents, std::int64_t seq) {
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

}  // namespace reader_detail

namespace {

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
                    out_.warnings.push_back(make_warning(
                        warning_kind::non_blob_block, subject(std::string(blocks_dir) + "/" + file),
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

}  // namespace

namespace reader_detail {

std::optional<error> load_history(git_repository* repo, user_read& out, const git_oid& head) {
    history_loader loader(repo, out);
    return loader.load(head);
}

}  // namespace reader_detail

}  // namespace sg::git
