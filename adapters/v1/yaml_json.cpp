// adapters/v1/yaml_json: PyYAML safe_load semantics on top of yaml-cpp's event parser, and
// FastAPI's JSON encoding of the result. See the header for the contract and the known gaps.
#include "adapters/v1/yaml_json.hpp"

#include <locale.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace sg::v1 {

std::size_t py_graph::add(py_object o) {
    objects.push_back(std::move(o));
    return objects.size() - 1;
}

// ------------------------------------------------------------------------------------------------
// UTF-8, the way CPython's codec sees it.

namespace {

// strchr-like membership that is false for '\0' (strchr would find the terminator).
bool one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

bool has_surrogate(std::string_view s) {
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        if (static_cast<unsigned char>(s[i]) == 0xED &&
            static_cast<unsigned char>(s[i + 1]) >= 0xA0)
            return true;
    }
    return false;
}

// PyYAML's Reader refuses these anywhere in the stream (ReaderError, a YAMLError).
bool is_yaml_printable(char32_t c) {
    return c == 0x09 || c == 0x0A || c == 0x0D || (c >= 0x20 && c <= 0x7E) || c == 0x85 ||
           (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

}  // namespace

std::size_t python_len(std::string_view utf8) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < utf8.size();) {
        next_code_point(utf8, i, true);
        ++n;
    }
    return n;
}

bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view python_strip(std::string_view s) {
    std::size_t b = 0;
    while (b < s.size()) {
        std::size_t j = b;
        const char32_t c = next_code_point(s, j, true);
        if (c == no_char || !is_python_space(c)) break;
        b = j;
    }
    std::size_t e = s.size();
    while (e > b) {
        // Step back to the start of the last code point.
        std::size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80 && e - k < 4) --k;
        std::size_t j = k;
        const char32_t c = next_code_point(s, j, true);
        if (c == no_char || j != e || !is_python_space(c)) break;
        e = k;
    }
    return s.substr(b, e - b);
}

std::string python_json_string(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size() + 2);
    out += '"';
    for (const char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

std::string python_float_repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
    // Shortest round-trip digits, then Python's layout rule (float_repr_style 'short', mode 'r').
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    std::string sign;
    if (!sci.empty() && sci[0] == '-') {
        sign = "-";
        sci.erase(0, 1);
    }
    const auto epos = sci.find('e');
    std::string mant = sci.substr(0, epos);
    const int exp10 = std::atoi(sci.c_str() + epos + 1);
    std::string digits;
    for (const char c : mant)
        if (c != '.') digits += c;
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    const int decpt = exp10 + 1;
    const int n = static_cast<int>(digits.size());
    std::string out = sign;
    if (decpt > 16 || decpt <= -4) {
        out += digits[0];
        if (n > 1) {
            out += '.';
            out += digits.substr(1);
        }
        char ebuf[16];
        std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
        out += ebuf;
    } else if (decpt <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-decpt), '0');
        out += digits;
    } else if (decpt >= n) {
        out += digits;
        out.append(static_cast<std::size_t>(decpt - n), '0');
        out += ".0";
    } else {
        out += digits.substr(0, static_cast<std::size_t>(decpt));
        out += '.';
        out += digits.substr(static_cast<std::size_t>(decpt));
    }
    return out;
}

// ------------------------------------------------------------------------------------------------
// Unbounded integers, enough for PyYAML's int constructor: parse in base 2/8/10/16, * small, + big.

namespace {

// CPython 3.11 refuses int <-> decimal str conversions beyond this many digits (ValueError).
constexpr std::size_t python_max_str_digits = 4300;

struct bigint {
    bool neg = false;
    std::vector<std::uint32_t> limbs;  // little-endian, base 1e9

    static constexpr std::uint32_t base = 1'000'000'000;

    bool is_zero() const { return limbs.empty(); }

    void trim() {
        while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
        if (limbs.empty()) neg = false;
    }

    void mul_add_small(std::uint32_t m, std::uint32_t a) {
        std::uint64_t carry = a;
        for (auto& l : limbs) {
            const std::uint64_t v = std::uint64_t{l} * m + carry;
            l = static_cast<std::uint32_t>(v % base);
            carry = v / base;
        }
        while (carry) {
            limbs.push_back(static_cast<std::uint32_t>(carry % base));
            carry /= base;
        }
        trim();
    }

    static int cmp_mag(const bigint& a, const bigint& b) {
        if (a.limbs.size() != b.limbs.size()) return a.limbs.size() < b.limbs.size() ? -1 : 1;
        for (std::size_t i = a.limbs.size(); i-- > 0;) {
            if (a.limbs[i] != b.limbs[i]) return a.limbs[i] < b.limbs[i] ? -1 : 1;
        }
        return 0;
    }

    static bigint add(const bigint& a, const bigint& b) {
        bigint r;
        if (a.neg == b.neg) {
            r.neg = a.neg;
            std::uint64_t carry = 0;
            for (std::size_t i = 0; i < std::max(a.limbs.size(), b.limbs.size()) || carry; ++i) {
                std::uint64_t v = carry;
                if (i < a.limbs.size()) v += a.limbs[i];
                if (i < b.limbs.size()) v += b.limbs[i];
                r.limbs.push_back(static_cast<std::uint32_t>(v % base));
                carry = v / base;
            }
        } else {
            const bool a_big = cmp_mag(a, b) >= 0;
            const bigint& x = a_big ? a : b;
            const bigint& y = a_big ? b : a;
            r.neg = x.neg;
            std::int64_t borrow = 0;
            for (std::size_t i = 0; i < x.limbs.size(); ++i) {
                std::int64_t v = std::int64_t{x.limbs[i]} - borrow -
                                 (i < y.limbs.size() ? std::int64_t{y.limbs[i]} : 0);
                borrow = v < 0 ? 1 : 0;
                if (v < 0) v += base;
                r.limbs.push_back(static_cast<std::uint32_t>(v));
            }
        }
        r.trim();
        return r;
    }

    std::string to_decimal() const {
        if (limbs.empty()) return "0";
        std::string out = neg ? "-" : "";
        out += std::to_string(limbs.back());
        char buf[16];
        for (std::size_t i = limbs.size() - 1; i-- > 0;) {
            std::snprintf(buf, sizeof buf, "%09u", limbs[i]);
            out += buf;
        }
        return out;
    }

    std::size_t decimal_digits() const {
        if (limbs.empty()) return 1;
        return (limbs.size() - 1) * 9 + std::to_string(limbs.back()).size();
    }
};

int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

// Python's int(s, base) for base 2, 8, 10 or 16 (underscores are already gone: PyYAML removes them
// first). nullopt where Python raises ValueError. `printable` is false when the value has more than
// 4300 decimal digits (str() of it would raise); such a value is then left at 0.
struct parsed_int {
    bigint value;
    bool printable = true;
};

std::optional<parsed_int> python_int(std::string_view s, int base) {
    s = python_strip(s);
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.size() >= 2 && s[0] == '0') {
        const char p = static_cast<char>(s[1] | 0x20);
        if ((base == 16 && p == 'x') || (base == 8 && p == 'o') || (base == 2 && p == 'b'))
            s.remove_prefix(2);
    }
    if (s.empty()) return std::nullopt;
    for (const char c : s)
        if (digit_value(c) >= base) return std::nullopt;
    if (base == 10 && s.size() > python_max_str_digits) return std::nullopt;
    parsed_int r;
    // A power-of-two base has no digit limit in CPython, but str() of a huge value fails later.
    const double bits_per_digit = base == 16 ? 4 : base == 8 ? 3 : base == 2 ? 1 : 3.33;
    if (static_cast<double>(s.size()) * bits_per_digit > 4300 * 3.33 + 64) {
        r.printable = false;
        return r;
    }
    for (const char c : s)
        r.value.mul_add_small(static_cast<std::uint32_t>(base),
                              static_cast<std::uint32_t>(digit_value(c)));
    r.value.neg = neg;
    r.value.trim();
    if (r.value.decimal_digits() > python_max_str_digits) r.printable = false;
    return r;
}

// ------------------------------------------------------------------------------------------------
// Python float(str).

locale_t c_locale() {
    static locale_t loc = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
    return loc;
}

bool ascii_ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
}

std::optional<double> python_float(std::string_view s) {
    s = python_strip(s);
    std::string_view body = s;
    bool neg = false;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
    }
    if (ascii_ieq(body, "inf") || ascii_ieq(body, "infinity"))
        return neg ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    if (ascii_ieq(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
    // digits [. digits] [e [sign] digits], at least one mantissa digit.
    std::size_t i = 0, mant = 0;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++mant;
    if (i < body.size() && body[i] == '.') {
        ++i;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++mant;
    }
    if (mant == 0) return std::nullopt;
    if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
        ++i;
        if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
        std::size_t ed = 0;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++ed;
        if (ed == 0) return std::nullopt;
    }
    if (i != body.size()) return std::nullopt;
    const std::string tmp(body);
    const double v = strtod_l(tmp.c_str(), nullptr, c_locale());
    return neg ? -v : v;
}

// ------------------------------------------------------------------------------------------------
// PyYAML's implicit resolvers (resolver.py), hand-written instead of regexes: same languages.

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

struct timestamp_fields {
    int year = 0, month = 0, day = 0;
    bool has_time = false;
    int hour = 0, minute = 0, second = 0;
    std::string fraction;
    bool has_tz = false, tz_utc = false, tz_neg = false;
    int tz_hour = 0, tz_minute = 0;
};

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

constexpr std::string_view tag_null = "tag:yaml.org,2002:null";
constexpr std::string_view tag_bool = "tag:yaml.org,2002:bool";
constexpr std::string_view tag_int = "tag:yaml.org,2002:int";
constexpr std::string_view tag_float = "tag:yaml.org,2002:float";
constexpr std::string_view tag_binary = "tag:yaml.org,2002:binary";
constexpr std::string_view tag_timestamp = "tag:yaml.org,2002:timestamp";
constexpr std::string_view tag_omap = "tag:yaml.org,2002:omap";
constexpr std::string_view tag_pairs = "tag:yaml.org,2002:pairs";
constexpr std::string_view tag_set = "tag:yaml.org,2002:set";
constexpr std::string_view tag_str = "tag:yaml.org,2002:str";
constexpr std::string_view tag_seq = "tag:yaml.org,2002:seq";
constexpr std::string_view tag_map = "tag:yaml.org,2002:map";
constexpr std::string_view tag_merge = "tag:yaml.org,2002:merge";
constexpr std::string_view tag_value = "tag:yaml.org,2002:value";

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

}  // namespace

bool plain_scalar_is_str(std::string_view value) { return resolve_plain(value) == tag_str; }

namespace {

// ------------------------------------------------------------------------------------------------
// Composition: yaml-cpp events into PyYAML-like nodes (tags resolved as PyYAML's composer does).

struct ynode {
    enum class kind : std::uint8_t { scalar, sequence, mapping };
    kind k = kind::scalar;
    std::string tag;
    std::string value;
    std::vector<std::size_t> children;  // sequence items; mapping key, value, key, value...
};

// Thrown from inside the event handler; caught in load_yaml.
struct yaml_stop {
    yaml_outcome outcome;
    std::string why;
};

// yaml-cpp (YAML 1.2) reads "&a:" and "*a:" as names ending in ":", PyYAML (YAML 1.1) as a name
// followed by ":". load_yaml inserts a blank at `at` and parses again, which changes nothing for
// PyYAML.
struct colon_after_name {
    std::size_t at;
};

bool is_anchor_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// Where to put the blank for an anchor or alias indicator at `pos`, if that is the fix.
std::optional<std::size_t> colon_fix(std::string_view text, std::size_t pos) {
    std::size_t i = pos + 1;
    while (i < text.size() && is_anchor_char(text[i])) ++i;
    if (i > pos + 1 && i < text.size() && text[i] == ':') return i;
    return std::nullopt;
}

// [begin, end) of the source a quoted or block scalar occupies, as PyYAML's scanner reads it.
using text_range = std::pair<std::size_t, std::size_t>;

// Skips a node's properties ("&anchor", "!tag") at `i`; tells whether one was the non-specific
// "!" tag, which PyYAML resolves like a plain scalar whatever the style ("! 5" is 5, "! '5'" too),
// while yaml-cpp reports it like a quoted scalar.
std::size_t skip_properties(std::string_view text, std::size_t i, bool* non_specific = nullptr) {
    while (i < text.size()) {
        const char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ++i;
        } else if (c == '!' || c == '&') {
            if (c == '!' && non_specific &&
                (i + 1 >= text.size() || one_of(text[i + 1], " \t\r\n")))
                *non_specific = true;
            if (c == '!' && i + 1 < text.size() && text[i + 1] == '<') {
                const auto e = text.find('>', i);
                i = e == std::string_view::npos ? text.size() : e + 1;
            } else {
                while (i < text.size() && !one_of(text[i], " \t\r\n,[]{}")) ++i;
            }
        } else {
            break;
        }
    }
    return i;
}

// PyYAML's scan_block_scalar on the text from the "|" or ">" indicator: yaml-cpp keeps one line
// break fewer than PyYAML when "+" chomping meets trailing lines holding only spaces, and the
// indentation rules differ in corners. `parent_indent` is the column of the innermost block
// collection (-1 at top level). `end` receives where PyYAML's scanner stops. Throws yaml_stop
// where PyYAML raises.
std::string pyyaml_block_scalar(std::string_view t, std::size_t i, long parent_indent,
                                std::size_t& end) {
    auto peek = [&](std::size_t k) { return k < t.size() ? t[k] : '\0'; };
    const bool folded = t[i] == '>';
    ++i;
    int chomping = 0;  // -1 strip, 0 clip, +1 keep
    long increment = 0;
    for (int round = 0; round < 2; ++round) {
        const char c = peek(i);
        if ((c == '+' || c == '-') && chomping == 0) {
            chomping = c == '+' ? 1 : -1;
            ++i;
        } else if (c >= '1' && c <= '9' && increment == 0) {
            increment = c - '0';
            ++i;
        }
    }
    while (peek(i) == ' ') ++i;
    if (peek(i) == '#')
        while (peek(i) != '\0' && peek(i) != '\r' && peek(i) != '\n') ++i;
    long column = 0;
    auto line_break = [&]() -> bool {  // scan_line_break for \r\n, \r, \n
        if (peek(i) == '\r') {
            i += peek(i + 1) == '\n' ? 2 : 1;
        } else if (peek(i) == '\n') {
            ++i;
        } else {
            return false;
        }
        column = 0;
        return true;
    };
    if (!line_break() && i < t.size())
        throw yaml_stop{yaml_outcome::invalid, "expected a comment or a line break"};
    const long min_indent = std::max(parent_indent + 1, 1L);
    std::string breaks;
    long indent;
    if (increment == 0) {
        long max_indent = 0;
        while (peek(i) == ' ' || peek(i) == '\r' || peek(i) == '\n') {
            if (peek(i) != ' ') {
                line_break();
                breaks += '\n';
            } else {
                ++i;
                ++column;
                max_indent = std::max(max_indent, column);
            }
        }
        indent = std::max(min_indent, max_indent);
    } else {
        indent = min_indent + increment - 1;
    }
    auto scan_breaks = [&](std::string& out) {
        while (column < indent && peek(i) == ' ') ++i, ++column;
        while (peek(i) == '\r' || peek(i) == '\n') {
            line_break();
            out += '\n';
            while (column < indent && peek(i) == ' ') ++i, ++column;
        }
    };
    if (increment != 0) scan_breaks(breaks);
    std::string chunks;
    std::string last_break;
    while (column == indent && peek(i) != '\0') {
        chunks += breaks;
        const bool leading_non_space = peek(i) != ' ' && peek(i) != '\t';
        const std::size_t start = i;
        while (peek(i) != '\0' && peek(i) != '\r' && peek(i) != '\n') ++i;
        chunks.append(t.substr(start, i - start));
        last_break = line_break() ? "\n" : "";
        breaks.clear();
        scan_breaks(breaks);
        if (column == indent && peek(i) != '\0') {
            if (folded && last_break == "\n" && leading_non_space && peek(i) != ' ' &&
                peek(i) != '\t') {
                if (breaks.empty()) chunks += ' ';
            } else {
                chunks += last_break;
            }
        } else {
            break;
        }
    }
    if (chomping != -1) chunks += last_break;
    if (chomping == 1) chunks += breaks;
    end = i;
    return chunks;
}

// PyYAML's scan_flow_scalar from the opening quote at `i`. yaml-cpp differs in places that
// matter for files PyYAML wrote: U+0085, U+2028 and U+2029 are line breaks for PyYAML (folded,
// with the next line's indentation dropped), "\N" and "\_" are mis-encoded by yaml-cpp, and a
// quoted scalar opening with a line break folds differently. Throws yaml_stop where PyYAML raises.
std::string pyyaml_quoted_scalar(std::string_view t, std::size_t i, std::size_t& end) {
    const char quote = t[i];
    const bool dbl = quote == '"';
    ++i;
    auto cp_at = [&](std::size_t k, std::size_t* len = nullptr) -> char32_t {
        if (k >= t.size()) {
            if (len) *len = 0;
            return 0;
        }
        std::size_t j = k;
        const char32_t c = next_code_point(t, j, true);
        if (len) *len = j - k;
        return c;
    };
    auto is_break = [](char32_t c) {
        return c == '\r' || c == '\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
    };
    auto line_break = [&](std::string& out) {  // scan_line_break
        std::size_t len;
        const char32_t c = cp_at(i, &len);
        if (c == '\r' || c == '\n' || c == 0x85) {
            i += (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ? 2 : len;
            out += '\n';
        } else {
            out.append(t.substr(i, len));
            i += len;
        }
    };
    auto breaks = [&](std::string& out) {  // scan_flow_scalar_breaks
        while (true) {
            const std::string_view pre = t.substr(i, 3);
            if ((pre == "---" || pre == "...") &&
                (i + 3 >= t.size() || one_of(t[i + 3], " \t\r\n") || is_break(cp_at(i + 3))))
                throw yaml_stop{yaml_outcome::invalid, "found unexpected document separator"};
            while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
            if (i < t.size() && is_break(cp_at(i))) {
                line_break(out);
            } else {
                return;
            }
        }
    };
    std::string out;
    auto non_spaces = [&] {
        while (true) {
            while (i < t.size()) {
                std::size_t len;
                const char32_t c = cp_at(i, &len);
                if (c == '\'' || c == '"' || c == '\\' || c == ' ' || c == '\t' || is_break(c))
                    break;
                out.append(t.substr(i, len));
                i += len;
            }
            if (i >= t.size()) return;
            const char ch = t[i];
            if (!dbl && ch == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
                out += '\'';
                i += 2;
            } else if ((dbl && ch == '\'') || (!dbl && (ch == '"' || ch == '\\'))) {
                out += ch;
                ++i;
            } else if (dbl && ch == '\\') {
                ++i;
                const char e = i < t.size() ? t[i] : '\0';
                static const std::string_view simple = "0abt\tnvfre \"/\\";
                static const char* const repl[] = {"\0",   "\x07", "\x08", "\x09", "\x09",
                                                   "\x0A", "\x0B", "\x0C", "\x0D", "\x1B",
                                                   " ",    "\"",   "/",    "\\"};
                const auto si = e ? simple.find(e) : std::string_view::npos;
                if (si != std::string_view::npos) {
                    if (e == '0') {
                        out += '\0';
                    } else {
                        out += repl[si];
                    }
                    ++i;
                } else if (e == 'N' || e == '_' || e == 'L' || e == 'P') {
                    out += e == 'N'   ? "\xC2\x85"
                           : e == '_' ? "\xC2\xA0"
                           : e == 'L' ? "\xE2\x80\xA8"
                                      : "\xE2\x80\xA9";
                    ++i;
                } else if (e == 'x' || e == 'u' || e == 'U') {
                    const std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    ++i;
                    std::uint32_t code = 0;
                    for (std::size_t k = 0; k < n; ++k) {
                        if (i + k >= t.size() ||
                            !std::isxdigit(static_cast<unsigned char>(t[i + k])))
                            throw yaml_stop{yaml_outcome::invalid, "expected escape sequence"};
                        code = code * 16 + static_cast<std::uint32_t>(digit_value(t[i + k]));
                    }
                    if (code > 0x10FFFF)
                        throw yaml_stop{yaml_outcome::crash, "chr() arg not in range"};
                    // Lone surrogates stay (as WTF-8): Python keeps them until it must encode.
                    const char32_t c = code;
                    if (c < 0x80) {
                        out += static_cast<char>(c);
                    } else if (c < 0x800) {
                        out += static_cast<char>(0xC0 | (c >> 6));
                        out += static_cast<char>(0x80 | (c & 0x3F));
                    } else if (c < 0x10000) {
                        out += static_cast<char>(0xE0 | (c >> 12));
                        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (c & 0x3F));
                    } else {
                        out += static_cast<char>(0xF0 | (c >> 18));
                        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
                        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (c & 0x3F));
                    }
                    i += n;
                } else if (i < t.size() && is_break(cp_at(i))) {
                    std::string ignored;
                    line_break(ignored);
                    breaks(out);
                } else {
                    throw yaml_stop{yaml_outcome::invalid, "found unknown escape character"};
                }
            } else {
                return;
            }
        }
    };
    non_spaces();
    while (i < t.size() && t[i] != quote) {
        // scan_flow_scalar_spaces
        const std::size_t ws = i;
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
        const std::string_view whitespace = t.substr(ws, i - ws);
        if (i >= t.size()) throw yaml_stop{yaml_outcome::invalid, "found unexpected end of stream"};
        if (is_break(cp_at(i))) {
            std::string lb, more;
            line_break(lb);
            breaks(more);
            if (lb != "\n") {
                out += lb;
            } else if (more.empty()) {
                out += ' ';
            }
            out += more;
        } else {
            out.append(whitespace);
        }
        non_spaces();
    }
    if (i >= t.size()) throw yaml_stop{yaml_outcome::invalid, "found unexpected end of stream"};
    end = i + 1;
    return out;
}

// Turns yaml-cpp's events into PyYAML-like nodes (tags resolved as PyYAML's composer and resolver
// do) and refuses, by throwing yaml_stop, what PyYAML's scanner or parser would refuse as far as
// the events and their source positions show it.
class composer final : public YAML::EventHandler {
public:
    composer(std::string_view text, const yaml_limits& limits, std::vector<ynode>& nodes)
        : text_(text), limits_(limits), nodes_(nodes) {}

    std::optional<std::size_t> root;
    std::vector<text_range> scalar_ranges;  // quoted and block scalars, for the tab rule

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        // "{: x}", "[a, : x]": an empty key in flow context is an error for PyYAML.
        if (pos < text_.size() && text_[pos] == ':' && !stack_.empty() && stack_.back().flow)
            throw yaml_stop{yaml_outcome::invalid, "while parsing a flow node"};
        // "[a, , b]" and "{a,,b}": yaml-cpp reads an empty entry as null, PyYAML refuses it.
        if (pos < text_.size() && one_of(text_[pos], ",]}")) {
            std::size_t k = pos;
            while (k > 0 && one_of(text_[k - 1], " \t\r\n")) --k;
            if (k > 0 && one_of(text_[k - 1], ",[{"))
                throw yaml_stop{yaml_outcome::invalid, "expected the node content"};
        }
        // yaml-cpp reports plain "", "~", "null", "Null", "NULL" without a tag as null: PyYAML
        // resolves all of them to the null tag as well.
        ynode n;
        n.tag = tag_null;
        finish(add(std::move(n), anchor), mark, event_kind::null);
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        const auto it = anchors_.find(anchor);
        if (it == anchors_.end()) throw yaml_stop{yaml_outcome::invalid, "unknown alias"};
        finish(it->second, mark, event_kind::scalar);
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.value = value;
        bool non_specific = false;
        event_kind kind = event_kind::scalar;
        if (tag != "?") {
            const std::size_t body = skip_properties(text_, pos, &non_specific);
            if (body < text_.size() && (text_[body] == '\'' || text_[body] == '"')) {
                std::size_t end = body;
                n.value = pyyaml_quoted_scalar(text_, body, end);
                scalar_ranges.emplace_back(body, end);
            } else if (body < text_.size() && (text_[body] == '|' || text_[body] == '>')) {
                kind = event_kind::block;
                long parent = -1;
                for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
                    if (it->block) {
                        parent = it->column;
                        break;
                    }
                }
                std::size_t end = body;
                n.value = pyyaml_block_scalar(text_, body, parent, end);
                scalar_ranges.emplace_back(body, end);
            }
        }
        if (tag == "?" || non_specific) {
            n.tag = resolve_plain(n.value);
        } else if (tag == "!") {
            n.tag = tag_str;  // quoted or block scalar: never resolved
        } else {
            n.tag = tag;
        }
        finish(add(std::move(n), anchor), mark, kind);
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value style) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.k = ynode::kind::sequence;
        n.tag = (tag == "?" || tag == "!") ? std::string(tag_seq) : tag;
        open(add(std::move(n), anchor), mark, style == YAML::EmitterStyle::Block, false,
             style == YAML::EmitterStyle::Flow);
    }

    void OnSequenceEnd() override { close(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value style) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.k = ynode::kind::mapping;
        n.tag = (tag == "?" || tag == "!") ? std::string(tag_map) : tag;
        const bool block = style == YAML::EmitterStyle::Block;
        open(add(std::move(n), anchor), mark, block, block, style == YAML::EmitterStyle::Flow);
    }

    void OnMapEnd() override { close(); }

    void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
        // PyYAML's scanner takes only [0-9A-Za-z_-] in anchor names ("while scanning an anchor").
        if (!std::all_of(name.begin(), name.end(), is_anchor_char)) {
            const auto at = text_.find("&" + name, pos_of(mark));
            if (at != std::string_view::npos) {
                if (auto fix = colon_fix(text_, at)) throw colon_after_name{*fix};
            }
            throw yaml_stop{yaml_outcome::invalid, "while scanning an anchor"};
        }
        // PyYAML's composer refuses a second anchor of the same name ("found duplicate anchor").
        if (!anchor_names_.insert(name).second)
            throw yaml_stop{yaml_outcome::invalid, "duplicate anchor"};
    }

private:
    enum class event_kind : std::uint8_t { null, scalar, flow, block };

    struct frame {
        std::size_t id;
        bool block;  // a block collection (its column is an indentation level for PyYAML)
        bool block_map;
        bool flow;
        long column;
        std::size_t key_pos = 0;
        long key_line = 0;
    };

    // PyYAML wants a blank (or the end) after a tag, and one of " \t\r\n?:,]}%@`" after an anchor;
    // yaml-cpp also ends them at flow indicators ("!{a: 1}").
    void check_properties(std::size_t i) const {
        while (i < text_.size() && (text_[i] == '!' || text_[i] == '&')) {
            const bool tag = text_[i] == '!';
            if (tag && i + 1 < text_.size() && text_[i + 1] == '<') {
                const auto e = text_.find('>', i);
                i = e == std::string_view::npos ? text_.size() : e + 1;
            } else if (tag) {
                ++i;
                while (i < text_.size() && !one_of(text_[i], " \t\r\n,[]{}")) ++i;
            } else {
                ++i;
                while (i < text_.size() && is_anchor_char(text_[i])) ++i;
            }
            if (i < text_.size() && !one_of(text_[i], tag ? " \r\n" : " \t\r\n?:,]}%@`"))
                throw yaml_stop{yaml_outcome::invalid, "while scanning a tag or anchor"};
            while (i < text_.size() && one_of(text_[i], " \t\r\n")) ++i;
        }
    }

    // PyYAML's simple keys (block context) live on one line, properties included, with their ":"
    // within 1024 characters; yaml-cpp lets "key\n: value" and "&a\nkey: value" through.
    bool bad_implicit_key(std::size_t key_pos) const {
        std::size_t k = key_pos;
        while (k > 0 && (text_[k - 1] == ' ' || text_[k - 1] == '\t')) --k;
        if (k > 0 && text_[k - 1] == '?') return false;  // an explicit "? key"
        const std::size_t body = skip_properties(text_, key_pos);
        for (std::size_t i = key_pos; i < text_.size(); ++i) {
            const char c = text_[i];
            if (i == body && (c == '\'' || c == '"')) {
                std::size_t j = i + 1;
                while (j < text_.size()) {
                    if (c == '"' && text_[j] == '\\') {
                        j += 2;
                        continue;
                    }
                    if (text_[j] == c) {
                        if (c == '\'' && j + 1 < text_.size() && text_[j + 1] == '\'') {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    ++j;
                }
                const std::string_view quoted = text_.substr(i, std::min(j, text_.size()) - i);
                if (quoted.find_first_of("\r\n") != std::string_view::npos) return true;
                i = j;
                continue;
            }
            if (c == '\n' || c == '\r') return true;
            if (c == '#' && i > key_pos && (text_[i - 1] == ' ' || text_[i - 1] == '\t'))
                return true;
            if (c == ':' && (i + 1 >= text_.size() || one_of(text_[i + 1], " \t\r\n")))
                return python_len(text_.substr(key_pos, i - key_pos)) > 1024;
        }
        return false;
    }

    std::size_t pos_of(const YAML::Mark& mark) const {
        return std::min(static_cast<std::size_t>(std::max(mark.pos, 0)), text_.size());
    }

    std::size_t add(ynode n, YAML::anchor_t anchor) {
        if (nodes_.size() >= limits_.max_nodes)
            throw yaml_stop{yaml_outcome::too_large, "too many nodes"};
        nodes_.push_back(std::move(n));
        const std::size_t id = nodes_.size() - 1;
        if (anchor != YAML::NullAnchor) anchors_[anchor] = id;
        return id;
    }

    void open(std::size_t id, const YAML::Mark& mark, bool block, bool block_map, bool flow) {
        // PyYAML's composer recurses twice per level: Python's recursion limit ends it near here.
        if (stack_.size() + 1 >= limits_.max_depth)
            throw yaml_stop{yaml_outcome::crash, "nesting too deep"};
        finish(id, mark, block ? event_kind::block : event_kind::flow);
        stack_.push_back({id, block, block_map, flow, mark.column});
    }

    void close() {
        if (!stack_.empty()) stack_.pop_back();
    }

    void finish(std::size_t id, const YAML::Mark& mark, event_kind kind) {
        if (stack_.empty()) {
            if (!root) root = id;
            return;
        }
        const std::size_t pos = pos_of(mark);
        frame& f = stack_.back();
        auto& children = nodes_[f.id].children;
        if (f.block_map) {
            if (children.size() % 2 == 0) {
                // ": x" (no key) in block context: PyYAML "while parsing a block mapping".
                if (kind == event_kind::null && pos < text_.size() && text_[pos] == ':')
                    throw yaml_stop{yaml_outcome::invalid, "expected <block end>"};
                f.key_pos = pos;
                f.key_line = mark.line;
            } else if (kind == event_kind::null && pos == f.key_pos) {
                // yaml-cpp gives a block mapping key without ":" a null value ("a: 1\nb");
                // PyYAML: "could not find expected ':'".
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            } else if ((kind == event_kind::scalar || kind == event_kind::flow ||
                        (kind == event_kind::null && pos < text_.size() &&
                         (text_[pos] == '&' || text_[pos] == '!'))) &&
                       mark.line > f.key_line && mark.column <= f.column) {
                // A value on a later line no deeper than its key ("a:\n{x: 1}"): PyYAML scans it
                // as the next key and finds no ":".
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            } else if (kind != event_kind::null && bad_implicit_key(f.key_pos)) {
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            }
        }
        children.push_back(id);
    }

    std::string_view text_;
    const yaml_limits& limits_;
    std::vector<ynode>& nodes_;
    std::vector<frame> stack_;
    std::unordered_map<YAML::anchor_t, std::size_t> anchors_;
    std::unordered_set<std::string> anchor_names_;
};

// Syntax PyYAML refuses and yaml-cpp (YAML 1.2) accepts, found with the help of the event
// positions: (1) PyYAML never skips a tab between tokens and never lets one into a plain scalar, so
// a tab is an error except inside a quoted scalar, a block scalar's content, or a comment; (2) a
// "%" at the start of a line is a directive for PyYAML, an error once the document has begun.
bool pyyaml_refuses(std::string_view text, std::vector<text_range> safe) {
    const bool tabs = text.find('\t') != std::string_view::npos;
    const bool percent =
        text.find("\n%") != std::string_view::npos || (!text.empty() && text[0] == '%');
    if (!tabs && !percent) return false;
    std::sort(safe.begin(), safe.end());
    std::size_t si = 0;
    bool in_comment = false, content_seen = false, line_start = true, need_doc_start = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        while (si < safe.size() && safe[si].second <= i) ++si;
        if (si < safe.size() && safe[si].first <= i) {
            i = safe[si].second - 1;
            in_comment = false;
            line_start = text[i] == '\n' || text[i] == '\r';
            content_seen = true;
            continue;
        }
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            in_comment = false;
            line_start = true;
            continue;
        }
        const bool at_line_start = line_start;
        line_start = false;
        if (in_comment) continue;
        if (c == '#' && (i == 0 || one_of(text[i - 1], " \t\n\r"))) {
            in_comment = true;
            continue;
        }
        if (c == '\t') return true;
        if (need_doc_start && c != ' ' && c != '%') {
            // After directives PyYAML wants "---" ("expected '<document start>'").
            if (!at_line_start || text.substr(i, 3) != "---" ||
                (i + 3 < text.size() && !one_of(text[i + 3], " \t\r\n")))
                return true;
            need_doc_start = false;
        }
        if (c == '%' && at_line_start) {
            if (content_seen) return true;
            // A directive of the prologue: PyYAML wants a name of [0-9A-Za-z_-] then a blank;
            // yaml-cpp judges the rest.
            std::size_t k = i + 1;
            while (k < text.size() && is_anchor_char(text[k])) ++k;
            if (k == i + 1 || (k < text.size() && !one_of(text[k], " \r\n"))) return true;
            in_comment = true;
            need_doc_start = true;
            continue;
        }
        if (c != ' ') content_seen = true;
    }
    return false;
}

// PyYAML's parser wants a node after an implicit document start, so a stream whose first token is
// "..." is an error there; yaml-cpp reads it as an empty document.
bool starts_with_document_end(std::string_view text) {
    std::size_t i = 0;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
    while (i < text.size()) {
        std::size_t sp = i;
        while (sp < text.size() && text[sp] == ' ') ++sp;
        const std::size_t eol = std::min(text.find('\n', i), text.size());
        if (sp >= eol || text[sp] == '#' || text[sp] == '\r') {
            i = eol + 1;
            continue;
        }
        if (sp == i && text.substr(i, 3) == "..." &&
            (i + 3 >= text.size() || one_of(text[i + 3], " \t\r\n")))
            return true;
        return false;
    }
    return false;
}

// ------------------------------------------------------------------------------------------------
// Construction: PyYAML's SafeConstructor, including its order of work (collections are created
// empty and filled in later rounds), because which error comes first decides between "invalid"
// and "crash".

struct constructor_error {};  // yaml.constructor.ConstructorError: a YAMLError
struct python_error {};       // anything else Python would raise

bool is_unhashable(py_kind k) {
    return k == py_kind::list || k == py_kind::dict || k == py_kind::set;
}

std::string exact_integral(double v) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    std::string s = buf;
    if (s == "-0") s = "0";
    return s;
}

}  // namespace

std::string python_key_identity(const py_graph& g, std::size_t index) {
    const py_object& o = g.at(index);
    switch (o.kind) {
        case py_kind::none:
            return "N";
        case py_kind::boolean:
            return o.boolean ? "n:1" : "n:0";
        case py_kind::integer:
            return o.text.empty() ? "big:" + std::to_string(index) : "n:" + o.text;
        case py_kind::floating:
            if (std::isnan(o.number)) return "nan";
            if (std::isinf(o.number)) return o.number < 0 ? "n:-inf" : "n:inf";
            if (std::floor(o.number) == o.number) return "n:" + exact_integral(o.number);
            return "f:" + python_float_repr(o.number);
        case py_kind::string:
            return "s:" + o.text;
        case py_kind::bytes:
            return "b:" + o.text;
        case py_kind::date:
            return "d:" + o.text;
        case py_kind::datetime:
            return o.aware ? "z:" + std::to_string(o.utc_micros) : "t:" + o.text;
        default:
            return "obj:" + std::to_string(index);  // unhashable; never a key
    }
}

namespace {

int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// binascii.a2b_base64 in its default (non-strict) mode: junk is skipped, padding ends the data.
std::optional<std::string> a2b_base64(std::string_view s) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    int quad_pos = 0, pads = 0;
    unsigned left = 0;
    for (const char c : s) {
        if (c == '=') {
            if (quad_pos >= 2 && quad_pos + ++pads >= 4) return out;
            continue;
        }
        const int v = val(c);
        if (v < 0) continue;
        pads = 0;
        switch (quad_pos) {
            case 0:
                quad_pos = 1;
                left = static_cast<unsigned>(v);
                break;
            case 1:
                quad_pos = 2;
                out += static_cast<char>((left << 2) | (static_cast<unsigned>(v) >> 4));
                left = static_cast<unsigned>(v) & 0x0F;
                break;
            case 2:
                quad_pos = 3;
                out += static_cast<char>((left << 4) | (static_cast<unsigned>(v) >> 2));
                left = static_cast<unsigned>(v) & 0x03;
                break;
            default:
                quad_pos = 0;
                out += static_cast<char>((left << 6) | static_cast<unsigned>(v));
                left = 0;
        }
    }
    if (quad_pos != 0) return std::nullopt;
    return out;
}

class constructor {
public:
    constructor(std::vector<ynode>& nodes, py_graph& out, const yaml_limits& limits)
        : nodes_(nodes), out_(out), limits_(limits), built_(nodes.size(), npos) {}

    std::size_t document(std::size_t root) {
        const std::size_t r = object(root);
        while (!pending_.empty()) {
            auto round = std::move(pending_);
            pending_.clear();
            for (const auto& [node, obj] : round) fill(node, obj);
        }
        return r;
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    std::size_t make(py_object o) { return out_.add(std::move(o)); }

    // BaseConstructor.construct_object (deep=False).
    std::size_t object(std::size_t id) {
        if (built_[id] != npos) return built_[id];
        const ynode& n = nodes_[id];
        const std::string_view t = n.tag;
        py_object o;
        if (t == tag_seq || t == tag_omap || t == tag_pairs) {
            o.kind = py_kind::list;
        } else if (t == tag_map) {
            o.kind = py_kind::dict;
        } else if (t == tag_set) {
            o.kind = py_kind::set;
        } else {
            o = scalar(n);
            const std::size_t idx = make(std::move(o));
            built_[id] = idx;
            return idx;
        }
        // Generator constructors: the empty container exists now, its content comes later.
        const std::size_t idx = make(std::move(o));
        built_[id] = idx;
        pending_.emplace_back(id, idx);
        return idx;
    }

    py_object scalar(const ynode& n) {
        const std::string_view t = n.tag;
        const bool known = t == tag_null || t == tag_bool || t == tag_int || t == tag_float ||
                           t == tag_binary || t == tag_timestamp || t == tag_str;
        if (!known) throw constructor_error{};  // construct_undefined (also merge and value tags)
        if (n.k != ynode::kind::scalar) throw constructor_error{};  // construct_scalar
        py_object o;
        const std::string& v = n.value;
        if (t == tag_null) return o;
        if (t == tag_str) {
            o.kind = py_kind::string;
            o.text = v;
            return o;
        }
        if (t == tag_bool) {
            std::string low = v;
            for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            o.kind = py_kind::boolean;
            if (low == "yes" || low == "true" || low == "on") {
                o.boolean = true;
            } else if (low == "no" || low == "false" || low == "off") {
                o.boolean = false;
            } else {
                throw python_error{};  // KeyError
            }
            return o;
        }
        if (t == tag_int) return make_int(v);
        if (t == tag_float) return make_float(v);
        if (t == tag_binary) {
            for (const char c : v)
                if (static_cast<unsigned char>(c) >= 0x80) throw constructor_error{};
            auto bytes = a2b_base64(v);
            if (!bytes) throw constructor_error{};
            o.kind = py_kind::bytes;
            o.text = std::move(*bytes);
            return o;
        }
        return make_timestamp(v);
    }

    static py_object make_int(std::string_view raw) {
        std::string v;
        for (const char c : raw)
            if (c != '_') v += c;
        int sign = 1;
        if (v.empty()) throw python_error{};  // value[0]: IndexError
        if (v[0] == '-') sign = -1;
        if (v[0] == '+' || v[0] == '-') v.erase(0, 1);
        if (v.empty()) throw python_error{};
        py_object o;
        o.kind = py_kind::integer;
        std::optional<parsed_int> p;
        if (v == "0") {
            o.text = "0";
            return o;
        } else if (v.rfind("0b", 0) == 0) {
            p = python_int(std::string_view(v).substr(2), 2);
        } else if (v.rfind("0x", 0) == 0) {
            p = python_int(std::string_view(v).substr(2), 16);
        } else if (v[0] == '0') {
            p = python_int(v, 8);
        } else if (v.find(':') != std::string::npos) {
            parsed_int acc;
            std::size_t start = 0;
            while (true) {
                const std::size_t colon = v.find(':', start);
                auto part = python_int(std::string_view(v).substr(start, colon - start), 10);
                if (!part) throw python_error{};
                if (!part->printable || !acc.printable) {
                    acc.printable = false;
                } else {
                    acc.value.mul_add_small(60, 0);
                    acc.value = bigint::add(acc.value, part->value);
                    if (acc.value.decimal_digits() > python_max_str_digits + 10)
                        acc.printable = false;
                }
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
            p = std::move(acc);
        } else {
            p = python_int(v, 10);
        }
        if (!p) throw python_error{};  // ValueError from int()
        if (!p->printable || p->value.decimal_digits() > python_max_str_digits) {
            o.text.clear();  // str() of it would raise: encoding gives `crash`
            return o;
        }
        if (sign < 0 && !p->value.is_zero()) p->value.neg = !p->value.neg;
        o.text = p->value.to_decimal();
        return o;
    }

    static py_object make_float(std::string_view raw) {
        std::string v;
        for (const char c : raw) {
            if (c != '_') v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (v.empty()) throw python_error{};
        double sign = 1;
        if (v[0] == '-') sign = -1;
        if (v[0] == '+' || v[0] == '-') v.erase(0, 1);
        py_object o;
        o.kind = py_kind::floating;
        if (v == ".inf") {
            o.number = sign * std::numeric_limits<double>::infinity();
        } else if (v == ".nan") {
            o.number = std::numeric_limits<double>::quiet_NaN();
        } else if (v.find(':') != std::string::npos) {
            std::vector<double> parts;
            std::size_t start = 0;
            while (true) {
                const std::size_t colon = v.find(':', start);
                auto d = python_float(std::string_view(v).substr(start, colon - start));
                if (!d) throw python_error{};
                parts.push_back(*d);
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
            double value = 0.0, base = 1;
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
                value += *it * base;
                base *= 60;
            }
            o.number = sign * value;
        } else {
            auto d = python_float(v);
            if (!d) throw python_error{};
            o.number = sign * *d;
        }
        return o;
    }

    static py_object make_timestamp(std::string_view v) {
        auto f = match_timestamp(v, false);
        if (!f) throw python_error{};  // match is None: AttributeError
        if (f->year < 1 || f->month < 1 || f->month > 12 || f->day < 1 ||
            f->day > days_in_month(f->year, f->month))
            throw python_error{};
        py_object o;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", f->year, f->month, f->day);
        o.text = buf;
        if (!f->has_time) {
            o.kind = py_kind::date;
            return o;
        }
        o.kind = py_kind::datetime;
        int micro = 0;
        if (!f->fraction.empty()) {
            std::string fr = f->fraction.substr(0, 6);
            while (fr.size() < 6) fr += '0';
            micro = std::atoi(fr.c_str());
        }
        int offset = 0;
        if (f->has_tz && !f->tz_utc) {
            offset = f->tz_hour * 60 + f->tz_minute;
            if (offset >= 24 * 60) throw python_error{};  // timezone(): offset out of range
            if (f->tz_neg) offset = -offset;
        }
        if (f->hour > 23 || f->minute > 59 || f->second > 59) throw python_error{};
        std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", f->hour, f->minute, f->second);
        o.text += buf;
        if (micro) {
            std::snprintf(buf, sizeof buf, ".%06d", micro);
            o.text += buf;
        }
        if (f->has_tz) {
            const int a = std::abs(offset);
            std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset < 0 ? '-' : '+', a / 60, a % 60);
            o.text += buf;
            o.aware = true;
            const std::int64_t days = days_from_civil(f->year, static_cast<unsigned>(f->month),
                                                      static_cast<unsigned>(f->day));
            const std::int64_t secs =
                ((days * 24 + f->hour) * 60 + f->minute - offset) * 60 + f->second;
            o.utc_micros = secs * 1'000'000 + micro;
        }
        return o;
    }

    // SafeConstructor.flatten_mapping: merge keys become the merged mappings' pairs, in front.
    void flatten(std::size_t id, std::size_t depth) {
        // Each level deletes its merge key before recursing, so "&a {<<: *a}" ends; only a very
        // long chain of merges reaches Python's recursion limit.
        if (depth >= limits_.max_depth) throw python_error{};  // RecursionError
        std::vector<std::size_t> merge;
        auto& pairs = nodes_[id].children;
        std::size_t index = 0;
        while (index + 1 < pairs.size()) {
            const std::size_t key = pairs[index], value = pairs[index + 1];
            if (nodes_[key].tag == tag_merge) {
                pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(index),
                            pairs.begin() + static_cast<std::ptrdiff_t>(index) + 2);
                const ynode& vn = nodes_[value];
                if (vn.k == ynode::kind::mapping) {
                    flatten(value, depth + 1);
                    const auto& vp = nodes_[value].children;
                    merge.insert(merge.end(), vp.begin(), vp.end());
                } else if (vn.k == ynode::kind::sequence) {
                    std::vector<std::vector<std::size_t>> submerge;
                    const std::vector<std::size_t> subs = vn.children;
                    for (const std::size_t sub : subs) {
                        if (nodes_[sub].k != ynode::kind::mapping) throw constructor_error{};
                        flatten(sub, depth + 1);
                        submerge.push_back(nodes_[sub].children);
                    }
                    for (auto it = submerge.rbegin(); it != submerge.rend(); ++it)
                        merge.insert(merge.end(), it->begin(), it->end());
                } else {
                    throw constructor_error{};
                }
            } else if (nodes_[key].tag == tag_value) {
                nodes_[key].tag = tag_str;
                index += 2;
            } else {
                index += 2;
            }
        }
        if (!merge.empty()) {
            auto& p = nodes_[id].children;
            merge.insert(merge.end(), p.begin(), p.end());
            p = std::move(merge);
        }
    }

    // SafeConstructor.construct_mapping: returns key, value, key, value in dict order.
    std::vector<std::size_t> mapping(std::size_t id) {
        if (nodes_[id].k == ynode::kind::mapping) flatten(id, 0);
        if (nodes_[id].k != ynode::kind::mapping) throw constructor_error{};
        const std::vector<std::size_t> pairs = nodes_[id].children;
        std::vector<std::size_t> items;
        std::unordered_map<std::string, std::size_t> where;  // key identity -> slot in items
        for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
            const std::size_t k = object(pairs[i]);
            if (is_unhashable(out_.at(k).kind)) throw constructor_error{};
            const std::size_t v = object(pairs[i + 1]);
            const auto ident = python_key_identity(out_, k);
            const auto it = where.find(ident);
            if (it == where.end()) {
                where.emplace(ident, items.size());
                items.push_back(k);
                items.push_back(v);
            } else {
                items[it->second + 1] = v;  // Python keeps the first key object and position
            }
        }
        return items;
    }

    void fill(std::size_t id, std::size_t obj) {
        const std::string_view t = nodes_[id].tag;
        if (t == tag_seq) {
            if (nodes_[id].k != ynode::kind::sequence) throw constructor_error{};
            std::vector<std::size_t> items;
            const std::vector<std::size_t> children = nodes_[id].children;
            for (const std::size_t c : children) items.push_back(object(c));
            out_.objects[obj].items = std::move(items);
        } else if (t == tag_map) {
            auto items = mapping(id);
            out_.objects[obj].items = std::move(items);
        } else if (t == tag_set) {
            auto items = mapping(id);
            std::vector<std::size_t> keys;
            for (std::size_t i = 0; i < items.size(); i += 2) keys.push_back(items[i]);
            out_.objects[obj].items = std::move(keys);
        } else {  // omap, pairs: a list of (key, value) tuples
            if (nodes_[id].k != ynode::kind::sequence) throw constructor_error{};
            const std::vector<std::size_t> children = nodes_[id].children;
            std::vector<std::size_t> items;
            for (const std::size_t sub : children) {
                if (nodes_[sub].k != ynode::kind::mapping) throw constructor_error{};
                if (nodes_[sub].children.size() != 2) throw constructor_error{};
                const std::size_t kn = nodes_[sub].children[0], vn = nodes_[sub].children[1];
                py_object tup;
                tup.kind = py_kind::tuple;
                tup.items.push_back(object(kn));
                tup.items.push_back(object(vn));
                items.push_back(make(std::move(tup)));
            }
            out_.objects[obj].items = std::move(items);
        }
    }

    std::vector<ynode>& nodes_;
    py_graph& out_;
    const yaml_limits& limits_;
    std::vector<std::size_t> built_;
    std::vector<std::pair<std::size_t, std::size_t>> pending_;
};

}  // namespace

yaml_load_result load_yaml(std::string_view text, const yaml_limits& limits) {
    yaml_load_result r;
    try {
        if (!is_valid_utf8(text)) {
            r.outcome = yaml_outcome::crash;
            r.error = "not UTF-8";
            return r;
        }
        for (std::size_t i = 0; i < text.size();) {
            const char32_t c = next_code_point(text, i);
            if (!is_yaml_printable(c)) {
                r.outcome = yaml_outcome::invalid;
                r.error = "special characters are not allowed";
                return r;
            }
        }
        if (starts_with_document_end(text)) {
            r.outcome = yaml_outcome::invalid;
            r.error = "expected the node content, but found '<document end>'";
            return r;
        }
        // Parse; where yaml-cpp reads "&a:" or "*a:" as a name with a colon, put a blank after
        // the name (meaningless to PyYAML) and parse again.
        std::string work(text);
        std::vector<ynode> nodes;
        std::optional<composer> comp;
        for (int attempt = 0;; ++attempt) {
            nodes.clear();
            comp.emplace(work, limits, nodes);
            std::optional<std::size_t> fix;
            try {
                std::istringstream in{work};
                YAML::Parser parser(in);
                if (parser.HandleNextDocument(*comp)) {
                    // safe_load wants exactly one document.
                    std::vector<ynode> more_nodes;
                    composer more(work, limits, more_nodes);
                    if (parser.HandleNextDocument(more)) {
                        r.outcome = yaml_outcome::invalid;
                        r.error = "expected a single document in the stream";
                        return r;
                    }
                }
            } catch (const colon_after_name& c) {
                fix = c.at;
            } catch (const YAML::Exception& e) {
                const auto at = static_cast<std::size_t>(std::max(e.mark.pos, 0));
                if (e.msg.find("referenced anchor is not defined") != std::string::npos &&
                    at < work.size() && work[at] == '*')
                    fix = colon_fix(work, at);
                if (!fix) throw;
            }
            if (!fix) break;
            if (attempt >= 64) throw yaml_stop{yaml_outcome::invalid, "anchor names"};
            work.insert(*fix, 1, ' ');
        }
        if (pyyaml_refuses(work, comp->scalar_ranges)) {
            r.outcome = yaml_outcome::invalid;
            r.error = "a tab or directive PyYAML cannot scan";
            return r;
        }
        if (!comp->root) {
            r.graph.root = r.graph.add(py_object{});  // empty stream: None
            r.outcome = yaml_outcome::ok;
            return r;
        }
        constructor cons(nodes, r.graph, limits);
        r.graph.root = cons.document(*comp->root);
        r.outcome = yaml_outcome::ok;
        return r;
    } catch (const yaml_stop& s) {
        r.outcome = s.outcome;
        r.error = s.why;
    } catch (const constructor_error&) {
        r.outcome = yaml_outcome::invalid;
        r.error = "constructor error";
    } catch (const python_error&) {
        r.outcome = yaml_outcome::crash;
        r.error = "value error";
    } catch (const YAML::Exception& e) {
        const std::string what = e.what();
        // PyYAML builds the string (chr() of a surrogate is fine, beyond U+10FFFF raises
        // ValueError); either way v1 ends in a 500, never in a YAMLError.
        r.outcome = what.find("invalid unicode") != std::string::npos ? yaml_outcome::crash
                                                                      : yaml_outcome::invalid;
        r.error = what;
    } catch (const std::bad_alloc&) {
        r.outcome = yaml_outcome::too_large;
        r.error = "out of memory";
    } catch (const std::exception& e) {
        r.outcome = yaml_outcome::invalid;
        r.error = e.what();
    }
    r.graph = py_graph{};
    return r;
}

// ------------------------------------------------------------------------------------------------
// Encoding: jsonable_encoder then json.dumps, in one pass.

namespace {

struct encode_stop {
    yaml_outcome outcome;
};

class encoder {
public:
    encoder(const py_graph& g, const yaml_limits& limits) : g_(g), limits_(limits) {}

    void value(std::size_t i, std::string& out, std::size_t depth) {
        spend(1);
        const py_object& o = g_.at(i);
        const bool container = o.kind == py_kind::list || o.kind == py_kind::tuple ||
                               o.kind == py_kind::set || o.kind == py_kind::dict;
        // Also ends cycles ("&a [*a]"), which recurse until Python's RecursionError.
        if (container && depth + 1 >= limits_.max_encode_depth)
            throw encode_stop{yaml_outcome::crash};
        switch (o.kind) {
            case py_kind::none:
                out += "null";
                break;
            case py_kind::boolean:
                out += o.boolean ? "true" : "false";
                break;
            case py_kind::integer:
                if (o.text.empty()) throw encode_stop{yaml_outcome::crash};
                out += o.text;
                break;
            case py_kind::floating:
                if (!std::isfinite(o.number)) throw encode_stop{yaml_outcome::crash};
                out += python_float_repr(o.number);
                break;
            case py_kind::string:
                if (has_surrogate(o.text)) throw encode_stop{yaml_outcome::crash};
                out += python_json_string(o.text);
                break;
            case py_kind::bytes:
                if (!is_valid_utf8(o.text)) throw encode_stop{yaml_outcome::crash};
                out += python_json_string(o.text);
                break;
            case py_kind::date:
            case py_kind::datetime:
                out += python_json_string(o.text);
                break;
            case py_kind::list:
            case py_kind::tuple:
            case py_kind::set: {
                out += '[';
                bool first = true;
                for (const std::size_t c : o.items) {
                    if (!first) out += ',';
                    first = false;
                    value(c, out, depth + 1);
                }
                out += ']';
                break;
            }
            case py_kind::dict:
                dict(o, out, depth);
                break;
        }
        spend(0);
        if (out.size() > limits_.max_output_bytes) throw encode_stop{yaml_outcome::too_large};
    }

private:
    void spend(std::size_t n) {
        work_ += n;
        if (work_ > limits_.max_output_bytes) throw encode_stop{yaml_outcome::too_large};
    }

    // jsonable_encoder's dict branch builds a new dict of encoded keys (so keys that become equal
    // merge: first position, last value), then json.dumps spells each key.
    void dict(const py_object& o, std::string& out, std::size_t depth) {
        struct entry {
            std::string key;
            std::string value;
        };
        std::vector<entry> entries;
        std::unordered_map<std::string, std::size_t> where;
        for (std::size_t p = 0; p + 1 < o.items.size(); p += 2) {
            const py_object& k = g_.at(o.items[p]);
            if (k.kind == py_kind::string && k.text.rfind("_sa", 0) == 0)
                continue;  // sqlalchemy_safe
            std::string identity, spelled;
            switch (k.kind) {
                case py_kind::string:
                    if (has_surrogate(k.text)) throw encode_stop{yaml_outcome::crash};
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::bytes:
                    if (!is_valid_utf8(k.text)) throw encode_stop{yaml_outcome::crash};
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::date:
                case py_kind::datetime:
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::none:
                    identity = "N";
                    spelled = "null";
                    break;
                case py_kind::boolean:
                    identity = python_key_identity(g_, o.items[p]);
                    spelled = k.boolean ? "true" : "false";
                    break;
                case py_kind::integer:
                    if (k.text.empty()) throw encode_stop{yaml_outcome::crash};
                    identity = python_key_identity(g_, o.items[p]);
                    spelled = k.text;
                    break;
                case py_kind::floating:
                    identity = python_key_identity(g_, o.items[p]);
                    if (!std::isfinite(k.number)) {
                        spelled.clear();  // json.dumps raises, but only once it gets here
                    } else {
                        spelled = python_float_repr(k.number);
                    }
                    break;
                default:
                    throw encode_stop{yaml_outcome::crash};
            }
            std::string v;
            value(o.items[p + 1], v, depth + 1);
            const auto it = where.find(identity);
            if (it == where.end()) {
                where.emplace(identity, entries.size());
                const bool bad_float = k.kind == py_kind::floating && spelled.empty();
                entries.push_back(
                    {bad_float ? std::string() : python_json_string(spelled), std::move(v)});
                if (bad_float) entries.back().key = "\x01";  // marker: raises when written
            } else {
                entries[it->second].value = std::move(v);
            }
        }
        out += '{';
        bool first = true;
        for (const auto& e : entries) {
            if (e.key == "\x01") throw encode_stop{yaml_outcome::crash};
            if (!first) out += ',';
            first = false;
            out += e.key;
            out += ':';
            out += e.value;
        }
        out += '}';
    }

    const py_graph& g_;
    const yaml_limits& limits_;
    std::size_t work_ = 0;
};

}  // namespace

json_text_result python_json(const py_graph& graph, std::size_t index, const yaml_limits& limits) {
    json_text_result r;
    try {
        encoder e(graph, limits);
        e.value(index, r.text, 0);
        r.outcome = yaml_outcome::ok;
    } catch (const encode_stop& s) {
        r.outcome = s.outcome;
        r.text.clear();
    } catch (const std::bad_alloc&) {
        r.outcome = yaml_outcome::too_large;
        r.text.clear();
    }
    return r;
}

yaml_json_result to_json(const py_graph& graph, std::size_t index, const yaml_limits& limits) {
    yaml_json_result r;
    auto text = python_json(graph, index, limits);
    r.outcome = text.outcome;
    if (text.outcome != yaml_outcome::ok) {
        r.error = "not encodable";
        return r;
    }
    try {
        r.value = nlohmann::ordered_json::parse(text.text);
    } catch (const std::exception& e) {
        r.outcome = yaml_outcome::crash;
        r.error = e.what();
    }
    return r;
}

yaml_json_result yaml_to_json(std::string_view text, const yaml_limits& limits) {
    auto loaded = load_yaml(text, limits);
    if (loaded.outcome != yaml_outcome::ok) {
        yaml_json_result r;
        r.outcome = loaded.outcome;
        r.error = loaded.error;
        return r;
    }
    return to_json(loaded.graph, loaded.graph.root, limits);
}

}  // namespace sg::v1
