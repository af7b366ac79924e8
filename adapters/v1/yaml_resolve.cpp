// adapters/v1/yaml_resolve: PyYAML's implicit resolvers (the tag a plain scalar gets) and the
// timestamp form its constructor reads.
#include "adapters/v1/yaml_json.hpp"

#include "adapters/v1/yaml_internal.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <string_view>

namespace sg::v1 {

using namespace yaml_detail;

// ------------------------------------------------------------------------------------------------
// PyYAML's implicit resolvers (resolver.py), hand-written instead of regexes: same languages.

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_bool_word(std::string_view s) {
    static const std::array<std::string_view, 18> words = {
        "yes",   "Yes",   "YES",   "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off",  "Off",  "OFF"};
    return std::find(words.begin(), words.end(), s) != words.end();
}

bool is_null_word(std::string_view s) {
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// [0-9_]* from i
std::size_t skip_digits_us(std::string_view s, std::size_t i) {
    while (i < s.size() && (is_digit(s[i]) || s[i] == '_')) ++i;
    return i;
}

// (:[0-5]?[0-9])+ from i, greedy as the regex engine may backtrack: each group is ':' then one or
// two digits with the first in 0-5 when two.
std::size_t skip_sexagesimal(std::string_view s, std::size_t i, bool& any) {
    any = false;
    while (i < s.size() && s[i] == ':') {
        std::size_t j = i + 1;
        if (j + 1 < s.size() && s[j] >= '0' && s[j] <= '5' && is_digit(s[j + 1]) &&
            (j + 2 >= s.size() || !is_digit(s[j + 2]))) {
            j += 2;
        } else if (j < s.size() && is_digit(s[j]) && (j + 1 >= s.size() || !is_digit(s[j + 1]))) {
            j += 1;
        } else {
            break;
        }
        i = j;
        any = true;
    }
    return i;
}

bool match_float(std::string_view s) {
    std::size_t i = 0;
    auto signed_start = [&] {
        i = 0;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    };
    auto exponent_to_end = [&](std::size_t j) {
        if (j == s.size()) return true;
        if (s[j] != 'e' && s[j] != 'E') return false;
        ++j;
        if (j >= s.size() || (s[j] != '+' && s[j] != '-')) return false;
        ++j;
        const std::size_t d = j;
        while (j < s.size() && is_digit(s[j])) ++j;
        return j > d && j == s.size();
    };
    // [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?
    signed_start();
    if (i < s.size() && is_digit(s[i])) {
        std::size_t j = skip_digits_us(s, i + 1);
        if (j < s.size() && s[j] == '.') {
            j = skip_digits_us(s, j + 1);
            if (exponent_to_end(j)) return true;
        }
    }
    // \.[0-9][0-9_]*([eE][-+][0-9]+)?
    if (s.size() >= 2 && s[0] == '.' && is_digit(s[1])) {
        if (exponent_to_end(skip_digits_us(s, 2))) return true;
    }
    // [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
    signed_start();
    if (i < s.size() && is_digit(s[i])) {
        std::size_t j = skip_digits_us(s, i + 1);
        bool any = false;
        j = skip_sexagesimal(s, j, any);
        if (any && j < s.size() && s[j] == '.' && skip_digits_us(s, j + 1) == s.size()) return true;
    }
    // [-+]?\.(inf|Inf|INF)  and  \.(nan|NaN|NAN)
    signed_start();
    const std::string_view rest = s.substr(i);
    if (rest == ".inf" || rest == ".Inf" || rest == ".INF") return true;
    return s == ".nan" || s == ".NaN" || s == ".NAN";
}

bool match_int(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::string_view b = s.substr(i);
    if (b.empty()) return false;
    auto all_of = [](std::string_view t, auto pred) {
        return !t.empty() && std::all_of(t.begin(), t.end(), pred);
    };
    // 0b[0-1_]+
    if (b.size() > 2 && b.substr(0, 2) == "0b" &&
        all_of(b.substr(2), [](char c) { return c == '0' || c == '1' || c == '_'; }))
        return true;
    // 0[0-7_]+
    if (b.size() > 1 && b[0] == '0' &&
        all_of(b.substr(1), [](char c) { return (c >= '0' && c <= '7') || c == '_'; }))
        return true;
    // 0|[1-9][0-9_]*
    if (b == "0") return true;
    if (b[0] >= '1' && b[0] <= '9' && skip_digits_us(b, 1) == b.size()) return true;
    // 0x[0-9a-fA-F_]+
    if (b.size() > 2 && b.substr(0, 2) == "0x" && all_of(b.substr(2), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) || c == '_';
        }))
        return true;
    // [1-9][0-9_]*(:[0-5]?[0-9])+
    if (b[0] >= '1' && b[0] <= '9') {
        bool any = false;
        const std::size_t j = skip_sexagesimal(b, skip_digits_us(b, 1), any);
        if (any && j == b.size()) return true;
    }
    return false;
}

}  // namespace

namespace yaml_detail {

// The constructor's timestamp_regexp (1-2 digit month/day, optional time); `implicit` applies the
// resolver's stricter form on top (2-digit month/day when there is no time). Python's `$` also
// matches before one final "\n", which only an explicitly tagged quoted scalar can hold.
std::optional<timestamp_fields> match_timestamp(std::string_view s, bool implicit) {
    if (!implicit && !s.empty() && s.back() == '\n') s.remove_suffix(1);
    timestamp_fields f;
    std::size_t i = 0;
    auto digits = [&](std::size_t min, std::size_t max, int& out) {
        std::size_t n = 0;
        int v = 0;
        while (n < max && i < s.size() && is_digit(s[i])) v = v * 10 + (s[i] - '0'), ++i, ++n;
        out = v;
        return n >= min;
    };
    if (!digits(4, 4, f.year) || i >= s.size() || s[i] != '-') return std::nullopt;
    ++i;
    const std::size_t m0 = i;
    if (!digits(1, 2, f.month) || i >= s.size() || s[i] != '-') return std::nullopt;
    const std::size_t mlen = i - m0;
    ++i;
    const std::size_t d0 = i;
    if (!digits(1, 2, f.day)) return std::nullopt;
    const std::size_t dlen = i - d0;
    if (i == s.size()) {
        if (implicit && (mlen != 2 || dlen != 2)) return std::nullopt;
        return f;
    }
    if (s[i] == 'T' || s[i] == 't') {
        ++i;
    } else if (s[i] == ' ' || s[i] == '\t') {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    } else {
        return std::nullopt;
    }
    f.has_time = true;
    if (!digits(1, 2, f.hour) || i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    if (!digits(2, 2, f.minute) || i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    if (!digits(2, 2, f.second)) return std::nullopt;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && is_digit(s[i])) f.fraction += s[i++];
    }
    if (i == s.size()) return f;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i < s.size() && s[i] == 'Z') {
        ++i;
        f.has_tz = f.tz_utc = true;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        f.tz_neg = s[i] == '-';
        ++i;
        if (!digits(1, 2, f.tz_hour)) return std::nullopt;
        if (i < s.size() && s[i] == ':') {
            ++i;
            if (!digits(2, 2, f.tz_minute)) return std::nullopt;
        }
        f.has_tz = true;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    return f;
}

// Resolver.resolve(ScalarNode, value, (True, False)) for a plain scalar; resolvers are tried in
// their registration order (bool, float, int, merge, null, timestamp, value) among those keyed by
// the first character.
std::string_view resolve_plain(std::string_view v) {
    if (v.empty()) return tag_null;
    const char c = v[0];
    if (one_of(c, "yYnNtTfFoO") && is_bool_word(v)) return tag_bool;
    if (one_of(c, "-+0123456789.") && match_float(v)) return tag_float;
    if (one_of(c, "-+0123456789") && match_int(v)) return tag_int;
    if (v == "<<") return tag_merge;
    if (one_of(c, "~nN") && is_null_word(v)) return tag_null;
    if (is_digit(c) && match_timestamp(v, true)) return tag_timestamp;
    if (v == "=") return tag_value;
    return tag_str;
}

}  // namespace yaml_detail

bool plain_scalar_is_str(std::string_view value) { return resolve_plain(value) == tag_str; }

}  // namespace sg::v1
