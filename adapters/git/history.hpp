// adapters/git/history: git's commit ordering and history simplification, reproduced over an
// in-memory commit graph. libgit2's revwalk sorts differently from `git rev-list` (it has no mode
// for git's default "newest committer date first, first-inserted first among equal dates" order,
// and it has no path-limited simplification), so the reader loads the graph and orders it here.
// Pure code: no I/O, no libgit2, nothing throws except std::bad_alloc.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::git {

// One commit of a graph: its parents (indices into the same graph, in the commit's parent order)
// and its committer time in seconds since the epoch, as git reads it from the commit.
struct graph_node {
    std::vector<std::uint32_t> parents;
    std::int64_t time = 0;
};

// The commits reachable from `tip`, in the order `git rev-list <tip>` prints them (no options):
// a walk that always takes the queued commit with the newest committer time, and among equal
// times the one queued first (parents are queued in parent order when their child is taken).
// Indices out of range are ignored (the tip's gives an empty order).
std::vector<std::uint32_t> rev_list_order(std::span<const graph_node> graph, std::uint32_t tip);

// The commits `git rev-list <tip> -- <paths>` (and so `git log -- <paths>` and GitPython's
// iter_commits(paths=...)) prints, in its order, with git's default history simplification.
// path_state[i] describes what the pathspec matches in commit i's tree: equal strings mean "no
// difference under the pathspec", and the empty string means "nothing matches" (path absent).
// As in git: a commit equal to one of its parents (the first such parent, in parent order) is
// not printed and only that parent is followed; a root commit is printed unless nothing
// matches; a merge that differs from every parent is printed and all its parents are followed.
// path_state must have one entry per node (else the result is empty).
std::vector<std::uint32_t> path_limited_order(std::span<const graph_node> graph, std::uint32_t tip,
                                              std::span<const std::string> path_state);

// The author v1 shows for a commit message: as v1's _author does it, the first line of the
// message (after Python's str.strip() of the whole message) that starts with "Author: ", with
// every "Author: " in that line removed; "unknown" when no line starts with it.
std::string author_footer(std::string_view message);

// True when `s` has a character git's pathspecs treat as a wildcard ("*", "?", "["). A label
// with one makes v1's history pathspec a pattern: see pathspec_matches.
bool has_glob_chars(std::string_view s);

// Whether git's default pathspec `pattern` (no magic, wildcards enabled, "*" also matches "/")
// matches `path` itself: literally equal, or a wildcard match of the whole path.
bool pathspec_matches(std::string_view pattern, std::string_view path);

}  // namespace sg::git
