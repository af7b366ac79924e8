// adapters/v1/routes: the v1 route table (v1-contract.md §1) as one pure function over raw paths.
#include "adapters/v1/routes.hpp"

#include "adapters/v1/utf8.hpp"

#include <boost/url/pct_string_view.hpp>

#include <algorithm>

namespace sg::v1 {
namespace {

constexpr std::array<std::string_view, endpoint_count> endpoint_names = {
    "user_init",    "user_exists",   "list_blocks", "diff_counts",     "get_block",
    "put_block",    "block_history", "get_version", "restore_version", "list_diffs",
    "approve_diff", "reject_diff",   "passthrough",
};

constexpr std::array<endpoint, endpoint_count> endpoints = [] {
    std::array<endpoint, endpoint_count> out{};
    for (std::size_t i = 0; i < endpoint_count; ++i) out[i] = static_cast<endpoint>(i);
    return out;
}();

// The deepest v1 route, users/{u}/blocks/{label}/diffs/{id}/approve, has 7 segments. Splitting
// stops one past that, so a path with thousands of segments costs no more than a short one.
constexpr std::size_t max_segments = 7;

struct segments {
    std::array<std::string_view, max_segments> items;
    std::size_t count = 0;
    bool usable = true;  // false: an empty segment or more than max_segments
};

segments split_path(std::string_view path) {
    segments out;
    std::string_view rest = path.substr(1);  // the caller checked the leading "/"
    while (true) {
        const auto slash = rest.find('/');
        const auto seg = rest.substr(0, slash);
        if (seg.empty() || out.count == max_segments) {
            out.usable = false;
            return out;
        }
        out.items[out.count++] = seg;
        if (slash == std::string_view::npos) return out;
        rest.remove_prefix(slash + 1);
    }
}

// Decodes `raw` into `out`; the first problem found becomes the route's hostile_reason.
void take_identifier(route& r, std::string_view what, std::string_view raw, std::string& out,
                     const char* (*problem_of)(std::string_view)) {
    auto decoded = percent_decode(raw);
    const char* problem = decoded ? problem_of(*decoded) : "has malformed percent-encoding";
    if (decoded) out = std::move(*decoded);
    if (problem != nullptr && !r.hostile_reason) {
        r.hostile_reason = std::string(what) + " " + problem;
    }
}

// A path under /users/ that names no route (an empty segment, a trailing slash, a segment too
// many, a method v1 does not route there): v1 answers 404, or 307 to the path without the
// trailing slash, and writes nothing. A segment that could climb out of a directory is refused
// all the same, so that no parser that does route such a path (and no redirect) sees one.
void check_unrouted(route& r, std::string_view path) {
    if (!path.starts_with("/users/")) return;
    std::string_view rest = path.substr(1);
    while (!rest.empty()) {
        const auto slash = std::min(rest.find('/'), rest.size());
        const auto decoded = percent_decode(rest.substr(0, slash));
        const char* problem = nullptr;
        if (!decoded) {
            problem = "has malformed percent-encoding";
        } else if (decoded->find("..") != std::string::npos) {
            problem = "contains \"..\"";
        } else if (*decoded == ".") {
            problem = "is \".\"";
        } else if (decoded->find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) {
            problem = "contains \"/\", \"\\\" or NUL";
        }
        if (problem != nullptr) {
            r.hostile_reason = std::string("path segment ") + problem;
            return;
        }
        rest.remove_prefix(std::min(slash + 1, rest.size()));
    }
}

endpoint match(std::string_view method, const segments& s) {
    const auto n = s.count;
    const auto& seg = s.items;
    const bool get = method == "GET";
    const bool post = method == "POST";
    if (n < 2 || seg[0] != "users") return endpoint::passthrough;
    if (n == 2) return post && seg[1] == "init" ? endpoint::user_init : endpoint::passthrough;
    if (n == 3 && get && seg[2] == "exists") return endpoint::user_exists;
    if (seg[2] != "blocks") return endpoint::passthrough;
    if (n == 3) return get ? endpoint::list_blocks : endpoint::passthrough;
    // The literal diffs/counts wins over a block labelled "diffs" with a sub-route "counts" (which
    // does not exist anyway); a PUT there is not a block write either.
    if (n == 5 && seg[3] == "diffs" && seg[4] == "counts") {
        return get ? endpoint::diff_counts : endpoint::passthrough;
    }
    if (n == 4) {
        if (get) return endpoint::get_block;
        return method == "PUT" ? endpoint::put_block : endpoint::passthrough;
    }
    if (n == 5) {
        if (get && seg[4] == "history") return endpoint::block_history;
        if (get && seg[4] == "diffs") return endpoint::list_diffs;
        if (post && seg[4] == "restore") return endpoint::restore_version;
        return endpoint::passthrough;
    }
    if (n == 6) return get && seg[4] == "versions" ? endpoint::get_version : endpoint::passthrough;
    if (n == 7 && post && seg[4] == "diffs") {
        if (seg[6] == "approve") return endpoint::approve_diff;
        if (seg[6] == "reject") return endpoint::reject_diff;
    }
    return endpoint::passthrough;
}

bool is_write(endpoint e) {
    return e == endpoint::user_init || e == endpoint::put_block || e == endpoint::restore_version ||
           e == endpoint::approve_diff || e == endpoint::reject_diff;
}

}  // namespace

std::string_view name(endpoint e) {
    const auto i = static_cast<std::size_t>(e);
    return i < endpoint_count ? endpoint_names[i] : "passthrough";
}

const std::array<endpoint, endpoint_count>& all_endpoints() { return endpoints; }

bool is_block_read(endpoint e) {
    switch (e) {
        case endpoint::user_exists:
        case endpoint::list_blocks:
        case endpoint::diff_counts:
        case endpoint::get_block:
        case endpoint::block_history:
        case endpoint::get_version:
        case endpoint::list_diffs: return true;
        default: return false;
    }
}

route classify(std::string_view method, std::string_view target) {
    route r;
    // Only origin-form targets name a v1 route; "*", absolute-form and authority-form do not.
    if (target.empty() || target.front() != '/') return r;
    // The path ends at the first "?", as uvicorn reads it. The target is not parsed as a strict
    // RFC 3986 URI first: v1's server accepts characters that grammar forbids (a raw "|", "{",
    // a UTF-8 byte), so strictness would misroute requests v1 serves. Each identifier is
    // checked and decoded by Boost.URL (percent_decode).
    const auto path = target.substr(0, target.find('?'));
    const auto s = split_path(path);
    if (s.usable) r.ep = match(method, s);
    r.write = is_write(r.ep);
    if (r.ep == endpoint::passthrough) {
        check_unrouted(r, path);
        return r;
    }
    if (r.ep == endpoint::user_init) return r;

    take_identifier(r, "user id", s.items[1], r.user_id, identifier_problem);
    if (s.count >= 4 && r.ep != endpoint::diff_counts) {
        take_identifier(r, "label", s.items[3], r.label, identifier_problem);
    }
    if (r.ep == endpoint::get_version) {
        take_identifier(r, "sha", s.items[5], r.sha, revision_problem);
    }
    if (r.ep == endpoint::approve_diff || r.ep == endpoint::reject_diff) {
        take_identifier(r, "diff id", s.items[5], r.diff_id, identifier_problem);
    }
    return r;
}

// ".." is tested before the leading dot so that the reason names the traversal.
const char* identifier_problem(std::string_view s) {
    if (s.empty()) return "is empty";
    if (s.size() > 255) return "is longer than 255 bytes";
    if (s.find("..") != std::string_view::npos) return "contains \"..\"";
    if (s.front() == '.') return "starts with \".\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '/') return "contains \"/\"";
        if (c == '\\') return "contains \"\\\"";
        if (c == 0) return "contains NUL";
        if (c < 0x20 || c == 0x7f) return "contains a control character";
    }
    if (!is_valid_utf8(s)) return "is not valid UTF-8";
    return nullptr;
}

const char* revision_problem(std::string_view s) {
    if (s.find("..") != std::string_view::npos) return "contains \"..\"";
    if (s.find('/') != std::string_view::npos) return "contains \"/\"";
    if (s.find('\\') != std::string_view::npos) return "contains \"\\\"";
    if (s.find('\0') != std::string_view::npos) return "contains NUL";
    return nullptr;
}

bool is_safe_identifier(std::string_view s) { return identifier_problem(s) == nullptr; }

// Boost.URL checks every escape and decodes; "+" stays "+" (it means a space only in a query).
std::optional<std::string> percent_decode(std::string_view s) {
    const auto pct = boost::urls::make_pct_string_view(s);
    if (pct.has_error()) return std::nullopt;
    return pct->decode();
}

}  // namespace sg::v1
