// adapters/v1/yaml_json: YAML text to the Python objects PyYAML 6's safe_load builds from it, and
// those objects to the exact JSON bytes FastAPI 0.92 answers with. v1 keeps block metadata as YAML
// frontmatter and returns it as JSON, so both halves must behave like PyYAML (YAML 1.1 implicit
// typing, merge keys, Python dict semantics) and FastAPI (jsonable_encoder, then
// json.dumps(ensure_ascii=False, allow_nan=False, separators=(",", ":"))), not like YAML 1.2.
// yaml-cpp does the syntax; typing, construction and encoding are done here. Pure, no I/O, never
// throws out of a public function.
//
// PyYAML's verdicts are matched where yaml-cpp is more lenient and the source positions show it
// cheaply: tabs, duplicate anchors and PyYAML's anchor alphabet, a stream starting with "...",
// several documents, non-printable characters, directives after content, keys without ":" or
// spanning lines, empty flow entries, text right after a tag. Quoted and block scalars are
// re-read with PyYAML's own scanning rules (folding, escapes, chomping).
// Known differences from PyYAML that are not closed (the syntax is yaml-cpp's, YAML 1.2 flavoured):
//  - U+0085, U+2028, U+2029 and a lone "\r" are line breaks for PyYAML; outside quoted scalars
//    yaml-cpp reads them as text (PyYAML's own dumper only writes them inside quotes).
//  - A multi-line plain scalar whose continuation lines start with "- ", "? " or ": ", and a flow
//    collection with a line break before a "," or ":", are refused by yaml-cpp only.
//  - An alias used as a key right before ":" ("*a: 1"): yaml-cpp reads ":" as part of the name;
//    one retry with a blank inserted fixes the usual cases, some nested ones stay refused.
//  - An empty explicit key ("?" alone) and "?" inside flow sequences ("[? a : b]").
//  - !!set keeps insertion order; Python iterates a set in hash order (random for strings).
//  - Where Python's recursion limit ends a deep document depends on the caller's stack (a few
//    levels either side of `yaml_limits::max_depth`).
//  - Python's float()/int() also accept non-ASCII digits for an explicit !!float/!!int.
//  - All NaN keys count as one (PyYAML shares one NaN object for ".nan"; "!!float nan" makes new
//    ones); two huge (> 4300 digits) int keys never compare equal.
#pragma once

#include "adapters/v1/utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace sg::v1 {

// What came of handing a text to v1's YAML or JSON code.
enum class yaml_outcome : std::uint8_t {
    ok,         // a value was built
    invalid,    // PyYAML raised yaml.YAMLError (v1 catches it: metadata becomes {})
    crash,      // Python raised something else (ValueError for 2026-02-30, RecursionError, a lone
                // surrogate that cannot be encoded, NaN under allow_nan=False...): v1 answers 500
    too_large,  // beyond `yaml_limits` (alias bombs, huge node counts): v1 would stall or run out
                // of memory; callers answer as for `crash`
};

// The Python types safe_load produces.
enum class py_kind : std::uint8_t {
    none,
    boolean,
    integer,   // unbounded: `text` holds canonical decimal digits ("-12", "0")
    floating,  // `number`
    string,    // `text`, UTF-8; a lone surrogate from a "\ud800" escape is kept as 3-byte WTF-8
    bytes,     // `text`, raw (from !!binary)
    date,      // `text` = date.isoformat()
    datetime,  // `text` = datetime.isoformat(); `utc_micros` set when it carries a UTC offset
    list,
    tuple,  // (key, value) pairs of !!omap / !!pairs
    set,
    dict,
};

// One Python object. Containers refer to other objects of the same graph by index; a dict's `items`
// alternate key, value in Python's iteration order.
struct py_object {
    py_kind kind = py_kind::none;
    bool boolean = false;
    bool aware = false;  // datetime with tzinfo
    double number = 0;
    std::int64_t utc_micros = 0;  // aware datetimes: the instant, for Python's == between them
    std::string text;
    std::vector<std::size_t> items;
};

// The objects of one document. Aliases share objects exactly as in Python, so the graph may be a
// DAG or even cyclic ("&a [*a]").
struct py_graph {
    std::vector<py_object> objects;
    std::size_t root = 0;

    const py_object& at(std::size_t i) const { return objects[i]; }
    const py_object& root_object() const { return objects[root]; }
    std::size_t add(py_object o);
};

// Caps that keep hostile input linear. The defaults are far beyond any real frontmatter.
struct yaml_limits {
    // Nesting of collections, counted from the document's root. PyYAML's composer recurses twice
    // per level and hits Python's recursion limit (RecursionError: `crash`) when a document
    // reaches this many levels under v1's GET versions (measured on the v1 reference; GET block
    // fails one level earlier, see render.cpp).
    std::size_t max_depth = 483;
    // Nesting reached through aliases when encoding (jsonable_encoder and json.dumps recurse once
    // per level); measured the same way.
    std::size_t max_encode_depth = 487;
    std::size_t max_nodes = 200'000;           // YAML nodes in one document
    std::size_t max_output_bytes = 16u << 20;  // JSON text produced from one value (alias bombs)
};

struct yaml_load_result {
    yaml_outcome outcome = yaml_outcome::invalid;
    py_graph graph;     // when ok: the document (None for an empty stream)
    std::string error;  // a short reason otherwise, for logs
};

// yaml.safe_load(text) for a Python str `text` (UTF-8 here; invalid UTF-8 gives `crash`, as the
// decode would have failed before v1 got a str).
yaml_load_result load_yaml(std::string_view text, const yaml_limits& limits = {});

struct json_text_result {
    yaml_outcome outcome = yaml_outcome::ok;  // ok, crash or too_large
    std::string text;                         // when ok: the JSON bytes
};

// json.dumps(jsonable_encoder(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
// then .encode("utf-8"), for the object at `index`: what FastAPI 0.92 sends for it. As FastAPI
// does, str keys starting with "_sa" are dropped, date/datetime become isoformat() strings, bytes
// are decoded as UTF-8, sets and tuples become arrays, and non-str keys are spelt as json.dumps
// spells them (True -> "true", None -> "null", 1 -> "1"), so the text can hold one key twice.
json_text_result python_json(const py_graph& graph, std::size_t index,
                             const yaml_limits& limits = {});

// JSON string literal for a Python str as json.dumps(ensure_ascii=False) writes it. `utf8` must be
// valid UTF-8.
std::string python_json_string(std::string_view utf8);

// repr(float) for a finite double: shortest round-trip digits, exponent form outside 1e-4..1e16.
std::string python_float_repr(double v);

// Python's == (with hash) between dict keys, as a string: two objects are the same key exactly when
// their identities are equal (1 == 1.0 == True, aware datetimes by instant, str vs bytes differ).
// All NaNs count as one key (PyYAML returns one shared NaN object for ".nan").
std::string python_key_identity(const py_graph& graph, std::size_t index);

// str.isspace() for one code point, and str.strip() with no argument, for UTF-8 text.
bool is_python_space(char32_t c);
std::string_view python_strip(std::string_view utf8);

// True when PyYAML's resolver reads `value` as a plain scalar back as a str (no bool, int, float,
// null, timestamp, merge or value tag): what yaml.dump checks before it writes a str unquoted.
bool plain_scalar_is_str(std::string_view value);

// len() of a Python str held as UTF-8 (code points).
std::size_t python_len(std::string_view utf8);

struct yaml_json_result {
    yaml_outcome outcome = yaml_outcome::invalid;
    nlohmann::ordered_json value;  // when ok
    std::string error;
};

// yaml.safe_load then FastAPI's encoding, as a JSON value: the parsed form of what
// `python_json` prints. Lossy only where a JSON object cannot follow Python: a key that appears
// twice after encoding keeps its first position and last value, and integers beyond 64 bits become
// doubles.
yaml_json_result yaml_to_json(std::string_view text, const yaml_limits& limits = {});

// The same conversion for one object of a loaded graph.
yaml_json_result to_json(const py_graph& graph, std::size_t index, const yaml_limits& limits = {});

}  // namespace sg::v1
