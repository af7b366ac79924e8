// adapters/v1/columns: a v1 block text as the v2 plan's columns, and back. v1 keeps a block as
// one file, "---\n" + yaml.dump(metadata, default_flow_style=False, sort_keys=False) + "---\n\n"
// + body; the plan keeps `content` (the body) and `metadata` (JSON). These columns must rebuild
// the exact text v1 reads (its answers carry the whole text), so they say a little more than the
// plan did:
//
//   content        the body as parse_frontmatter gives it (leading "\n"s stripped), or the whole
//                  text when there is no frontmatter
//   metadata       the frontmatter's mapping as JSON (keys in document order; Dolt sorts them),
//                  NULL without frontmatter
//   metadata_keys  a JSON array of the JSON Pointers of every mapping key, in document order:
//                  what gives yaml.dump its key order back after Dolt sorted the keys
//   frontmatter    whether the text starts with a frontmatter block
//   blank_lines    the "\n"s between the closing "---\n" and the body (v1 writes one, plus any
//                  the body it was given started with)
//
// A text is representable when join_text(split_text(text)) gives it back byte for byte: true for
// every file v1 writes itself; hand-edited files can fail (YAML not as yaml.dump spells it,
// values JSON cannot carry such as dates, invalid YAML, text that is not UTF-8). Then
// split_text still fills the columns as close to v1's answer as it can and says why. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sg::v1 {

struct text_columns {
    std::string content;
    std::optional<std::string> metadata;  // JSON text
    std::string metadata_keys = "[]";     // JSON text
    bool frontmatter = false;
    std::int64_t blank_lines = 0;
    bool operator==(const text_columns&) const = default;
};

struct split_result {
    text_columns columns;
    std::string unrepresentable;  // why the columns cannot give the text back; "" when they do
};

// The columns of `text` (v1's reading of it: for a current block, after universal newlines; for
// a version, the blob as it is).
split_result split_text(std::string_view text);

// The text the columns stand for: content alone without frontmatter, else "---\n" +
// yaml.dump(metadata in metadata_keys order) + "---\n" + blank_lines * "\n" + content. nullopt
// when the columns cannot make one (metadata not a JSON object, or holding what yaml.dump cannot
// be given, such as invalid UTF-8). Keys metadata_keys does not list follow the listed ones.
std::optional<std::string> join_text(const text_columns& columns);

}  // namespace sg::v1
