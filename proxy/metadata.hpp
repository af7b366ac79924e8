// proxy/metadata: the `metadata` JSON column of blocks and block_versions, from a block file's
// frontmatter YAML, with v1's rules (PyYAML safe_load, FastAPI's JSON encoding; invalid YAML
// is {}). Informational for people querying Dolt: rendering always starts from the exact source.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sg::proxy {

// JSON text of the metadata v1 shows for a frontmatter; nullopt (SQL NULL) when v1 itself could
// not show it (it answers 500 for YAML that does not load into a mapping it can encode).
std::optional<std::string> metadata_json_of_frontmatter(std::string_view frontmatter_yaml);

}  // namespace sg::proxy
