// tests/fuzz/fuzz_frontmatter: libFuzzer target for adapters/v1 frontmatter splitting and the
// PyYAML-compatible YAML-to-JSON conversion behind every rendered block's metadata, with the
// limits the renderer uses (deep nesting, huge aliases and long documents must end as too_large
// or crash outcomes, never as a hang or a crash of the process).
#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/yaml_json.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto fm = sg::v1::parse_frontmatter(text);
    if (fm.outcome == sg::v1::frontmatter_outcome::ok ||
        fm.outcome == sg::v1::frontmatter_outcome::not_mapping) {
        (void)sg::v1::to_json(fm.metadata, 0);
    }
    (void)sg::v1::yaml_to_json(text);
    (void)sg::v1::universal_newlines(text);
    return 0;
}
