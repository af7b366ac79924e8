// adapters/v1/yaml_internal: what the files behind yaml_json.hpp (yaml_json, yaml_numbers,
// yaml_resolve, yaml_scalars, yaml_compose, yaml_construct, yaml_encode) share: the helpers, types
// and tag names one of them defines and another uses. Only those files include it; everyone else
// includes yaml_json.hpp.
#pragma once

#include "adapters/v1/yaml_json.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::v1::yaml_detail {

// From yaml_json.cpp: UTF-8, the way CPython's codec sees it.

// strchr-like membership that is false for '\0' (strchr would find the terminator).
inline bool one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

// True when `s` holds a lone surrogate (ED A0..BF, kept as WTF-8): Python cannot encode that str.
bool has_surrogate(std::string_view s);

// False for what PyYAML's Reader refuses anywhere in the stream (ReaderError, a YAMLError).
bool is_yaml_printable(char32_t c);

// From yaml_numbers.cpp: unbounded integers, Python's int(str, base) and float(str).

// CPython 3.11 refuses int <-> decimal str conversions beyond this many digits (ValueError).
inline constexpr std::size_t python_max_str_digits = 4300;

// Unbounded integers, enough for PyYAML's int constructor: parse in base 2/8/10/16, * small, + big.
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

// The value of the digit `c` in bases up to 36; 99 when it is none.
int digit_value(char c);

// Python's int(s, base) for base 2, 8, 10 or 16 (underscores are already gone: PyYAML removes them
// first). nullopt where Python raises ValueError. `printable` is false when the value has more than
// 4300 decimal digits (str() of it would raise); such a value is then left at 0.
struct parsed_int {
    bigint value;
    bool printable = true;
};

std::optional<parsed_int> python_int(std::string_view s, int base);

// Python's float(s); nullopt where Python raises ValueError.
std::optional<double> python_float(std::string_view s);

// From yaml_resolve.cpp: PyYAML's implicit resolvers, and the tags.

// A timestamp's parts as match_timestamp reads them.
struct timestamp_fields {
    int year = 0, month = 0, day = 0;
    bool has_time = false;
    int hour = 0, minute = 0, second = 0;
    std::string fraction;
    bool has_tz = false, tz_utc = false, tz_neg = false;
    int tz_hour = 0, tz_minute = 0;
};

// The constructor's timestamp_regexp; `implicit` applies the resolver's stricter form on top.
std::optional<timestamp_fields> match_timestamp(std::string_view s, bool implicit);

inline constexpr std::string_view tag_null = "tag:yaml.org,2002:null";
inline constexpr std::string_view tag_bool = "tag:yaml.org,2002:bool";
inline constexpr std::string_view tag_int = "tag:yaml.org,2002:int";
inline constexpr std::string_view tag_float = "tag:yaml.org,2002:float";
inline constexpr std::string_view tag_binary = "tag:yaml.org,2002:binary";
inline constexpr std::string_view tag_timestamp = "tag:yaml.org,2002:timestamp";
inline constexpr std::string_view tag_omap = "tag:yaml.org,2002:omap";
inline constexpr std::string_view tag_pairs = "tag:yaml.org,2002:pairs";
inline constexpr std::string_view tag_set = "tag:yaml.org,2002:set";
inline constexpr std::string_view tag_str = "tag:yaml.org,2002:str";
inline constexpr std::string_view tag_seq = "tag:yaml.org,2002:seq";
inline constexpr std::string_view tag_map = "tag:yaml.org,2002:map";
inline constexpr std::string_view tag_merge = "tag:yaml.org,2002:merge";
inline constexpr std::string_view tag_value = "tag:yaml.org,2002:value";

// The tag PyYAML's resolver gives a plain scalar with the value `v`.
std::string_view resolve_plain(std::string_view v);

// From yaml_scalars.cpp and yaml_compose.cpp: composition.

// A node as PyYAML's composer builds it; the nodes of one document refer to each other by index.
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

// Skips a node's properties ("&anchor", "!tag") at `i`; sets `*non_specific` when one was the
// non-specific "!" tag.
std::size_t skip_properties(std::string_view text, std::size_t i, bool* non_specific = nullptr);

// PyYAML's scan_block_scalar from the "|" or ">" indicator at `i`, and its scan_flow_scalar from
// the opening quote at `i`: the scalar's value; `end` receives where PyYAML's scanner stops.
// Throw yaml_stop where PyYAML raises.
std::string pyyaml_block_scalar(std::string_view t, std::size_t i, long parent_indent,
                                std::size_t& end);
std::string pyyaml_quoted_scalar(std::string_view t, std::size_t i, std::size_t& end);

// From yaml_construct.cpp: construction.

struct constructor_error {};  // yaml.constructor.ConstructorError: a YAMLError
struct python_error {};       // anything else Python would raise

// PyYAML's SafeConstructor on the composed `nodes` from `root` (it flattens merge keys in
// `nodes`): the Python objects go into `out`, the root's index there is returned. Throws
// constructor_error or python_error where PyYAML raises.
std::size_t construct_document(std::vector<ynode>& nodes, py_graph& out, const yaml_limits& limits,
                               std::size_t root);

}  // namespace sg::v1::yaml_detail
