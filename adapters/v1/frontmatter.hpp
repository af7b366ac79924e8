// adapters/v1/frontmatter: v1's parse_frontmatter (v1-contract.md §3) and the text-mode newline
// translation of its GET block, as pure functions. v1 answers GET block from the working-tree file
// read in text mode and GET versions from the git blob as stored, and both split the text into YAML
// metadata and a Markdown body this way; the renderer needs exactly the same split to answer alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/v1/yaml_json.hpp"

namespace sg::v1 {

enum class frontmatter_outcome : std::uint8_t {
    no_frontmatter,  // `^---\n(.*?)\n---\n` did not match: metadata {}, the whole text is the body
    ok,              // the YAML loaded to a mapping, or to something falsy that `or {}` made {}
    invalid_yaml,    // yaml.YAMLError: metadata {}
    not_mapping,     // the YAML loaded to a truthy non-mapping (a list, 42, "text", a date): v1's
                     // GET versions answers with it as "metadata"; GET block answers 500 unless
                     // pydantic's dict() coercion accepts it (a list of pairs does)
    crash,           // loading raised something other than a YAMLError: both endpoints answer 500
    too_large,       // beyond `yaml_limits`: answer as for `crash`
};

struct frontmatter {
    frontmatter_outcome outcome = frontmatter_outcome::no_frontmatter;
    // `yaml.safe_load(group) or {}`, or an empty dict without (valid) frontmatter. Empty graph for
    // `crash` and `too_large`.
    py_graph metadata;
    std::string body;  // after the closing "---\n", leading "\n"s stripped; the whole text if none
    std::size_t stripped_newlines = 0;  // how many "\n"s were stripped before the body
    std::size_t yaml_size = 0;          // bytes of the YAML between the "---" lines
};

// v1's parse_frontmatter(text) for a Python str `text` (valid UTF-8). The frontmatter is the
// shortest "---\n" ... "\n---\n" at the very start (its YAML may be empty: "---\n\n---\n"); the
// body is what follows with leading "\n" (only "\n") removed. Never throws.
frontmatter parse_frontmatter(std::string_view text, const yaml_limits& limits = {});

// What Python's text-mode read returns for `bytes` already decoded: "\r\n" and lone "\r" become
// "\n" (universal newlines). v1's GET block reads the working-tree file this way.
std::string universal_newlines(std::string_view text);

// Python truthiness of one object (None, False, 0, 0.0, "", b"" and empty containers are false).
bool python_truthy(const py_graph& graph, std::size_t index);

}  // namespace sg::v1
