// adapters/git/history: git's rev-list order and path-limited history simplification over an
// in-memory graph, and v1's author footer. The walks follow git's revision.c (get_revision_1,
// process_parents, try_to_simplify_commit, get_commit_action) for the options v1 uses.
#include "adapters/git/history.hpp"

#include <fnmatch.h>

#include <queue>

namespace sg::git {
namespace {

// git keeps commit dates as an unsigned timestamp_t (a negative date parses as a huge one), so
// dates are compared as unsigned to order such commits as git does.
struct queued {
    std::uint64_t date;
    std::uint64_t seq;  // insertion order: git's commit_list_insert_by_date is FIFO among equals
    std::uint32_t node;
};

struct later_first {
    bool operator()(const queued& a, const queued& b) const {
        if (a.date != b.date) return a.date < b.date;
        return a.seq > b.seq;
    }
};

class date_queue {
public:
    void push(std::uint32_t node, std::int64_t time) {
        q_.push(queued{static_cast<std::uint64_t>(time), next_seq_++, node});
    }
    bool empty() const { return q_.empty(); }
    std::uint32_t pop() {
        const auto n = q_.top().node;
        q_.pop();
        return n;
    }

private:
    std::priority_queue<queued, std::vector<queued>, later_first> q_;
    std::uint64_t next_seq_ = 0;
};

// Python's str.isspace() for one code point, as str.strip() uses it.
bool py_space(char32_t c) {
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return true;
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Decodes the UTF-8 code point starting at s[i] (length in `len`); an invalid sequence decodes
// as a one-byte non-space, which is all strip needs.
char32_t decode_at(std::string_view s, std::size_t i, std::size_t& len) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    len = 1;
    if (b0 < 0x80) return b0;
    std::size_t n = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return 0xfffd;
    char32_t c = b0 & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xc0) != 0x80) return 0xfffd;
        c = (c << 6) | (b & 0x3f);
    }
    len = n;
    return c;
}

std::string_view py_strip(std::string_view s) {
    std::size_t begin = 0;
    while (begin < s.size()) {
        std::size_t len = 0;
        if (!py_space(decode_at(s, begin, len))) break;
        begin += len;
    }
    std::size_t end = s.size();
    while (end > begin) {
        // Step back to the start of the last code point (at most 3 continuation bytes).
        std::size_t start = end - 1;
        while (start > begin && end - start < 4 &&
               (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) {
            --start;
        }
        std::size_t len = 0;
        const char32_t c = decode_at(s, start, len);
        if (start + len != end || !py_space(c)) break;
        end = start;
    }
    return s.substr(begin, end - begin);
}

}  // namespace

std::vector<std::uint32_t> rev_list_order(std::span<const graph_node> graph, std::uint32_t tip) {
    std::vector<std::uint32_t> out;
    if (tip >= graph.size()) return out;
    std::vector<bool> seen(graph.size(), false);
    date_queue queue;
    seen[tip] = true;
    queue.push(tip, graph[tip].time);
    while (!queue.empty()) {
        const auto c = queue.pop();
        out.push_back(c);
        for (const auto p : graph[c].parents) {
            if (p >= graph.size() || seen[p]) continue;
            seen[p] = true;
            queue.push(p, graph[p].time);
        }
    }
    return out;
}

std::vector<std::uint32_t> path_limited_order(std::span<const graph_node> graph, std::uint32_t tip,
                                              std::span<const std::string> path_state) {
    std::vector<std::uint32_t> out;
    if (tip >= graph.size() || path_state.size() != graph.size()) return out;
    std::vector<bool> seen(graph.size(), false);
    date_queue queue;
    seen[tip] = true;
    queue.push(tip, graph[tip].time);
    while (!queue.empty()) {
        const auto c = queue.pop();
        const auto& parents = graph[c].parents;
        // try_to_simplify_commit: the first parent with no difference under the pathspec
        // replaces all parents, so side branches the merge discarded are never walked.
        bool treesame = false;
        std::span<const std::uint32_t> follow(parents);
        if (parents.empty()) {
            treesame = path_state[c].empty();
        } else {
            for (std::size_t i = 0; i < parents.size(); ++i) {
                if (parents[i] < graph.size() && path_state[parents[i]] == path_state[c]) {
                    treesame = true;
                    follow = follow.subspan(i, 1);
                    break;
                }
            }
        }
        for (const auto p : follow) {
            if (p >= graph.size() || seen[p]) continue;
            seen[p] = true;
            queue.push(p, graph[p].time);
        }
        // get_commit_action: without --parents, a TREESAME commit (merge or not) is not shown.
        if (!treesame) out.push_back(c);
    }
    return out;
}

std::string author_footer(std::string_view message) {
    static constexpr std::string_view tag = "Author: ";
    std::string_view rest = py_strip(message);
    while (true) {
        const auto nl = rest.find('\n');
        const auto line = rest.substr(0, nl);
        if (line.starts_with(tag)) {
            std::string out;
            std::size_t from = 0;
            for (auto at = line.find(tag); at != std::string_view::npos;
                 at = line.find(tag, from)) {
                out.append(line.substr(from, at - from));
                from = at + tag.size();
            }
            out.append(line.substr(from));
            return out;
        }
        if (nl == std::string_view::npos) return "unknown";
        rest.remove_prefix(nl + 1);
    }
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

bool pathspec_matches(std::string_view pattern, std::string_view path) {
    if (pattern == path) return true;
    if (!has_glob_chars(pattern)) return false;
    // git's wildmatch without WM_PATHNAME behaves as fnmatch without FNM_PATHNAME for the
    // patterns a safe label can form (no backslash escapes).
    const std::string p(pattern);
    const std::string s(path);
    return ::fnmatch(p.c_str(), s.c_str(), 0) == 0;
}

}  // namespace sg::git
