// adapters/v1/render_history: v1's history and version answers (GET .../history, GET
// .../versions/{sha}) and what they are made of: the history `limit` as pydantic and git read it,
// GitPython's rev_parse over the model's commits, a block file's bytes at a commit, and the time
// zone history timestamps are printed in. See render.hpp for the contract.
#include "adapters/v1/render.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <new>
#include <unordered_map>

#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/render_internal.hpp"
#include "adapters/v1/yaml_json.hpp"

namespace sg::v1 {

using namespace render_detail;

namespace {

// Python int() of a str, as pydantic 1's int_validator calls it on a query value. nullopt where it
// raises (then: type_error.integer). `huge_negative`/`huge_positive` flag values beyond int64.
struct query_int {
    std::int64_t value = 0;
    bool below_int64 = false;
    bool above_int64 = false;
};

constexpr std::array<char32_t, 66> decimal_zeros = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,
    0xc66,   0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,
    0x1810,  0x1946,  0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,
    0xa8d0,  0xa900,  0xa9d0,  0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066,
    0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0,
    0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2,
    0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

// Unicode category Nd (Python 3.11, Unicode 14): every decimal digit run starts at one of these.
int unicode_decimal(char32_t c) {
    for (const char32_t z : decimal_zeros)
        if (c >= z && c < z + 10) return static_cast<int>(c - z);
    return -1;
}

std::vector<char32_t> code_points(std::string_view utf8) {
    std::vector<char32_t> out;
    for (std::size_t i = 0; i < utf8.size();) {
        const auto b = static_cast<unsigned char>(utf8[i]);
        char32_t c;
        int n;
        if (b < 0x80)
            c = b, n = 1;
        else if (b < 0xE0)
            c = b & 0x1F, n = 2;
        else if (b < 0xF0)
            c = b & 0x0F, n = 3;
        else
            c = b & 0x07, n = 4;
        for (int k = 1; k < n && i + static_cast<std::size_t>(k) < utf8.size(); ++k)
            c = (c << 6) |
                (static_cast<unsigned char>(utf8[i + static_cast<std::size_t>(k)]) & 0x3F);
        out.push_back(c);
        i += static_cast<std::size_t>(n);
    }
    return out;
}

std::optional<query_int> python_int_of_query(std::string_view raw_bytes) {
    const std::string s = as_python_str(raw_bytes);
    std::vector<char32_t> cps = code_points(s);
    if (cps.size() > 4300) return std::nullopt;  // pydantic's max_str_int guard
    std::size_t b = 0, e = cps.size();
    while (b < e && is_python_space(cps[b])) ++b;
    while (e > b && is_python_space(cps[e - 1])) --e;
    bool neg = false;
    if (b < e && (cps[b] == '+' || cps[b] == '-')) {
        neg = cps[b] == '-';
        ++b;
    }
    if (b >= e) return std::nullopt;
    query_int q;
    bool prev_digit = false;
    std::uint64_t mag = 0;
    bool overflow = false;
    for (std::size_t i = b; i < e; ++i) {
        if (cps[i] == '_') {
            if (!prev_digit || i + 1 >= e) return std::nullopt;
            prev_digit = false;
            continue;
        }
        const int d = unicode_decimal(cps[i]);
        if (d < 0) return std::nullopt;
        prev_digit = true;
        const auto ud = static_cast<std::uint64_t>(d);
        if (overflow || mag > (std::numeric_limits<std::uint64_t>::max() - ud) / 10) {
            overflow = true;
        } else {
            mag = mag * 10 + ud;
        }
    }
    if (!prev_digit) return std::nullopt;
    const auto lim = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (neg) {
        if (overflow || mag > lim + 1)
            q.below_int64 = true;
        else
            q.value = mag == lim + 1 ? std::numeric_limits<std::int64_t>::min()
                                     : -static_cast<std::int64_t>(mag);
    } else {
        if (overflow || mag > lim)
            q.above_int64 = true;
        else
            q.value = static_cast<std::int64_t>(mag);
    }
    return q;
}

// How many commits `git rev-list --max-count=N` lists for the N v1 passes: git reads N with
// atoi(), i.e. strtol (clamped to the long range) truncated to int; a negative count is no limit.
std::optional<std::size_t> git_max_count(const query_int& q) {
    std::int64_t l = q.below_int64 ? std::numeric_limits<std::int64_t>::min() : q.value;
    const auto as_int = static_cast<std::int32_t>(
        static_cast<std::uint32_t>(static_cast<std::uint64_t>(l) & 0xFFFFFFFFu));
    if (as_int < 0) return std::nullopt;
    return static_cast<std::size_t>(as_int);
}

// ------------------------------------------------------------------------------------------------
// Revisions (GitPython's rev_parse on "{sha}^0") and file contents at a commit.

struct commit_index {
    std::unordered_map<std::string, std::size_t> by_sha;
};

commit_index index_commits(const user_state& state) {
    commit_index ix;
    for (std::size_t i = 0; i < state.commits.size(); ++i)
        ix.by_sha.emplace(state.commits[i].sha, i);
    return ix;
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// name_to_object: a 4..40 hex string resolves as a (unique) object id, else a ref ("HEAD").
std::optional<std::size_t> name_to_commit(const user_state& state, const commit_index& ix,
                                          std::string_view name) {
    const bool hexish =
        name.size() >= 4 && name.size() <= 40 && std::all_of(name.begin(), name.end(), is_hex);
    if (hexish) {
        std::string low(name);
        for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (low.size() == 40) {
            const auto it = ix.by_sha.find(low);
            if (it == ix.by_sha.end()) return std::nullopt;  // new_from_sha raises; no ref lookup
            return it->second;
        }
        std::optional<std::size_t> found;
        bool ambiguous = false;
        for (std::size_t i = 0; i < state.commits.size(); ++i) {
            if (state.commits[i].sha.compare(0, low.size(), low) == 0) {
                if (found) ambiguous = true;
                found = i;
            }
        }
        if (found && !ambiguous) return found;
        // short_to_long failed: GitPython tries the name as a ref next.
    }
    if (name == "HEAD" && !state.head.empty()) {
        const auto it = ix.by_sha.find(state.head);
        if (it != ix.by_sha.end()) return it->second;
    }
    return std::nullopt;
}

std::optional<std::size_t> parent_of(const user_state& state, const commit_index& ix, std::size_t c,
                                     std::size_t n) {
    const auto& parents = state.commits[c].parents;
    if (n >= parents.size()) return std::nullopt;
    const auto it = ix.by_sha.find(parents[n]);
    if (it == ix.by_sha.end()) return std::nullopt;
    return it->second;
}

std::optional<std::size_t> resolve_with(const user_state& state, const commit_index& ix,
                                        std::string_view given) {
    const std::string rev = std::string(given) + "^0";  // repo.commit(rev) = rev_parse(rev + "^0")
    if (rev.rfind(":/", 0) == 0) return std::nullopt;
    std::optional<std::size_t> obj;
    std::size_t start = 0, parsed_to = 0;
    const std::size_t lr = rev.size();
    while (start < lr) {
        const char token = rev[start];
        if (token != '^' && token != '~' && token != ':' && token != '@') {
            ++start;
            continue;
        }
        if (!obj) {
            if (start == 0 || token == '@')
                return std::nullopt;  // HEAD's ref / reflog: unsupported
            obj = name_to_commit(state, ix, std::string_view(rev).substr(0, start));
            if (!obj) return std::nullopt;
        }
        ++start;
        if (start < lr && rev[start] == '{') {
            const auto end = rev.find('}', start);
            if (end == std::string::npos) return std::nullopt;
            const std::string type = rev.substr(start + 1, end - start - 1);
            if (type != "commit" && !type.empty())
                return std::nullopt;  // tree/blob/@{n}: no commit
            start = end + 1;
            parsed_to = start;
            continue;
        }
        std::size_t num = 0;
        if (token != ':') {
            bool found_digit = false;
            while (start < lr && rev[start] >= '0' && rev[start] <= '9') {
                num = num * 10 + static_cast<std::size_t>(rev[start] - '0');
                if (num > state.commits.size() + 1) num = state.commits.size() + 1;
                ++start;
                found_digit = true;
            }
            if (!found_digit) num = 1;
        }
        parsed_to = start;
        if (token == '~') {
            for (std::size_t k = 0; k < num && obj; ++k) obj = parent_of(state, ix, *obj, 0);
            if (!obj) return std::nullopt;
        } else if (token == '^') {
            if (num) obj = parent_of(state, ix, *obj, num - 1);
            if (!obj) return std::nullopt;
        } else {
            return std::nullopt;  // ':' (a path; "^0" then names no file) or '@' after a name
        }
    }
    if (parsed_to != lr) return std::nullopt;
    return obj;
}

std::optional<std::string_view> source_at(const user_state& state, const commit_index& ix,
                                          std::string_view label, std::size_t commit) {
    std::unordered_map<std::string_view, const block_version*> touched;
    for (const auto& v : state.versions)
        if (v.label == label) touched.emplace(v.sha, &v);
    // Walk first parents until a commit that touched the file: v1's history is linear, and a
    // commit that did not touch the file has its parent's copy.
    std::optional<std::size_t> c = commit;
    for (std::size_t steps = 0; c && steps <= state.commits.size(); ++steps) {
        const auto it = touched.find(state.commits[*c].sha);
        if (it != touched.end()) {
            if (it->second->deleted) return std::nullopt;
            return std::string_view(it->second->source);
        }
        c = parent_of(state, ix, *c, 0);
    }
    return std::nullopt;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

std::optional<std::string> time_zone::naive_iso(std::int64_t epoch_seconds) const {
    int year, month, day, hour, minute, second;
    if (k == kind::process_local) {
        const auto t = static_cast<std::time_t>(epoch_seconds);
        std::tm tm{};
        if (!localtime_r(&t, &tm)) return std::nullopt;
        year = tm.tm_year + 1900;
        month = tm.tm_mon + 1;
        day = tm.tm_mday;
        hour = tm.tm_hour;
        minute = tm.tm_min;
        second = tm.tm_sec;
    } else {
        const std::int64_t s = epoch_seconds + std::int64_t{offset_minutes} * 60;
        std::int64_t days = s / 86400, rem = s % 86400;
        if (rem < 0) rem += 86400, --days;
        // civil_from_days (Howard Hinnant)
        const std::int64_t z = days + 719468;
        const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const auto doe = static_cast<unsigned>(z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
        month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
        const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2);
        if (y < 1 || y > 9999) return std::nullopt;
        year = static_cast<int>(y);
        hour = static_cast<int>(rem / 3600);
        minute = static_cast<int>(rem % 3600 / 60);
        second = static_cast<int>(rem % 60);
    }
    if (year < 1 || year > 9999) return std::nullopt;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute,
                  second);
    return std::string(buf);
}

std::optional<rendered> check_history_limit(std::optional<std::string_view> raw_limit) {
    if (!raw_limit) return std::nullopt;
    const auto q = python_int_of_query(*raw_limit);
    if (!q) {
        return json_answer(422,
                           "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"value is not a "
                           "valid integer\",\"type\":\"type_error.integer\"}]}");
    }
    if (q->above_int64 || (!q->below_int64 && q->value > 100)) {
        return json_answer(422,
                           "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"ensure this "
                           "value is less than or equal to 100\",\"type\":\"value_error.number."
                           "not_le\",\"ctx\":{\"limit_value\":100}}]}");
    }
    return std::nullopt;
}

rendered render_history(const user_state& state, std::string_view label_bytes,
                        std::optional<std::string_view> raw_limit, const time_zone& tz) {
    return answer_or_500([&]() -> rendered {
        if (auto bad = check_history_limit(raw_limit)) return *bad;
        std::optional<std::size_t> max_count = 20;
        if (raw_limit) max_count = git_max_count(*python_int_of_query(*raw_limit));
        const std::string label = as_python_str(label_bytes);
        if (!find_block(state, label)) return json_answer(200, "[]");
        std::vector<const block_version*> versions;
        for (const auto& v : state.versions)
            if (v.label == label) versions.push_back(&v);
        std::stable_sort(
            versions.begin(), versions.end(),
            [](const block_version* a, const block_version* b) { return a->ordinal < b->ordinal; });
        if (max_count && versions.size() > *max_count) versions.resize(*max_count);
        std::string out = "[";
        for (std::size_t i = 0; i < versions.size(); ++i) {
            const auto* v = versions[i];
            const std::string message = utf8_decode_replace(v->message);
            const auto ts = tz.naive_iso(v->commit_time);
            if (!ts) return render_internal_error();  // fromtimestamp raises
            if (i) out += ',';
            out += "{\"sha\":" + python_json_string(v->sha);
            out += ",\"message\":" + python_json_string(message.substr(0, message.find('\n')));
            out += ",\"author\":" + python_json_string(utf8_decode_replace(v->author));
            out += ",\"timestamp\":" + python_json_string(*ts);
            out +=
                v->is_current.value_or(i == 0) ? ",\"is_current\":true}" : ",\"is_current\":false}";
        }
        out += ']';
        return json_answer(200, std::move(out));
    });
}

bool answerable_revision(std::string_view rev) {
    const auto name_end = std::min(rev.find_first_of("^~"), rev.size());
    const auto name = rev.substr(0, name_end);
    const bool hexish =
        name.size() >= 4 && name.size() <= 40 && std::all_of(name.begin(), name.end(), is_hex);
    if (name != "HEAD" && !hexish) return false;
    for (std::size_t i = name_end; i < rev.size();) {
        const char op = rev[i++];
        if (op != '^' && op != '~') return false;
        if (op == '^' && rev.substr(i).starts_with("{")) {
            if (rev.substr(i).starts_with("{}")) {
                i += 2;
            } else if (rev.substr(i).starts_with("{commit}")) {
                i += 8;
            } else {
                return false;
            }
            continue;
        }
        while (i < rev.size() && rev[i] >= '0' && rev[i] <= '9') ++i;
    }
    return true;
}

std::optional<std::size_t> resolve_commit(const user_state& state, std::string_view rev) {
    try {
        return resolve_with(state, index_commits(state), rev);
    } catch (const std::bad_alloc&) {
        return std::nullopt;
    }
}

std::optional<std::string_view> block_source_at(const user_state& state, std::string_view label,
                                                std::size_t commit_index) {
    if (commit_index >= state.commits.size()) return std::nullopt;
    try {
        return source_at(state, index_commits(state), label, commit_index);
    } catch (const std::bad_alloc&) {
        return std::nullopt;
    }
}

rendered render_get_version(const user_state& state, std::string_view label_bytes,
                            std::string_view sha_bytes) {
    return answer_or_500([&]() -> rendered {
        const std::string label = as_python_str(label_bytes);
        const std::string sha = as_python_str(sha_bytes);
        const auto ix = index_commits(state);
        const auto c = resolve_with(state, ix, sha);
        std::optional<std::string_view> source;
        if (c) source = source_at(state, ix, label, *c);
        // blob.data_stream.read().decode("utf-8") inside v1's try: failure is "not found" too.
        if (!source || !is_valid_utf8(*source)) return detail(404, "Version not found");
        auto fm = parse_frontmatter(*source);
        if (fm.outcome == frontmatter_outcome::crash ||
            fm.outcome == frontmatter_outcome::too_large)
            return render_internal_error();
        const auto meta = python_json(fm.metadata, fm.metadata.root);
        if (meta.outcome != yaml_outcome::ok) return render_internal_error();
        std::string out = "{\"content\":" + python_json_string(*source);
        out += ",\"body\":" + python_json_string(fm.body);
        out += ",\"metadata\":" + meta.text;
        out += ",\"sha\":" + python_json_string(sha) + "}";
        return json_answer(200, std::move(out));
    });
}

}  // namespace sg::v1
