// comparator/json_diff: structural comparison of two JSON documents under per-endpoint rules.
// Objects compare as values (key order and whitespace never matter); arrays compare in order,
// or as sets keyed by one field of their elements; paths can be ignored; timestamps compare after
// normalization (formats, time zones, precision); numbers within a tolerance. Every difference
// is reported with its path and both values. Pure: no I/O, no clock.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::comparator {

using json = nlohmann::json;

// A path pattern: a JSON Pointer ("/a/0/b", "" for the whole document) in which a segment "*"
// matches any one key or array element.
struct path_pattern {
    std::vector<std::string> segments;  // unescaped (~1 -> "/", ~0 -> "~")
};

// Parses "/a/*/b" (RFC 6901 escapes allowed); nullopt when it does not start with "/" and is
// not "".
std::optional<path_pattern> parse_pattern(std::string_view text);
bool matches(const path_pattern& p, const std::vector<std::string>& path);

struct keyed_array {
    path_pattern at;    // where the array is
    std::string field;  // elements are matched by this field's value (elements without it, or
                        // whose key repeats, are compared by position among the rest)
};

struct timestamp_rule {
    path_pattern at;
    // Differences below this are equal (0: exact to the microsecond). 1000 ignores fractions.
    std::int64_t precision_ms = 0;
    // A timestamp without a zone is read in this zone: minutes east of UTC.
    int naive_offset_minutes = 0;
};

struct rules {
    std::vector<path_pattern> ignore;        // not compared at all (nor below them)
    std::vector<keyed_array> keyed;          // arrays compared as sets
    std::vector<timestamp_rule> timestamps;  // strings compared as points in time
    double numeric_tolerance = 0;            // |a - b| <= this is equal, for any two numbers
    bool status_only = false;                // bodies are not compared at all
};

enum class change {
    changed,        // at the path in both, different values
    missing_in_v2,  // at the path in v1 only
    extra_in_v2,    // at the path in v2 only
};

std::string_view name(change c);

struct difference {
    // JSON Pointer of the value; an element of a keyed array is addressed by its key
    // ("/student/pending_diffs" for the element of the root array whose label is "student").
    std::string path;
    // The path with every array position and keyed-array key replaced by "*": a bounded label
    // for metrics ("/*/pending_diffs"); object keys stay.
    std::string general_path;
    change what = change::changed;
    std::optional<json> v1;  // absent for extra_in_v2
    std::optional<json> v2;  // absent for missing_in_v2
};

struct diff_result {
    std::vector<difference> differences;
    bool truncated = false;  // more differences than max_differences: the rest are not listed
    bool empty() const { return differences.empty(); }
    std::size_t size() const { return differences.size(); }
};

// Every difference between v1 and v2 under `r`, in document order (v1's, then what only v2
// has), at most `max_differences`. Never throws except std::bad_alloc.
diff_result diff(const json& v1, const json& v2, const rules& r, std::size_t max_differences = 200);

// A JSON Pointer segment for `key` ("~" -> "~0", "/" -> "~1", RFC 6901).
std::string escape_segment(std::string_view key);

// A timestamp as microseconds since the epoch: "YYYY-MM-DD", then optionally "T" or " " and
// "HH:MM[:SS[.f{1,9}]]", then optionally "Z" or "±HH[:]MM". nullopt for anything else.
std::optional<std::int64_t> parse_timestamp(std::string_view s, int naive_offset_minutes);

}  // namespace sg::comparator
