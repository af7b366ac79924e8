// proxy/metadata: frontmatter YAML to the metadata JSON column.
#include "proxy/metadata.hpp"

#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/yaml_json.hpp"

namespace sg::proxy {

std::optional<std::string> metadata_json_of_frontmatter(std::string_view frontmatter_yaml) {
    const v1::yaml_load_result loaded = v1::load_yaml(frontmatter_yaml);
    if (loaded.outcome == v1::yaml_outcome::invalid) return std::string("{}");
    if (loaded.outcome != v1::yaml_outcome::ok) return std::nullopt;
    // v1 does `yaml.safe_load(...) or {}`: anything falsy (None, 0, "", []) shows as {}.
    if (!v1::python_truthy(loaded.graph, loaded.graph.root)) return std::string("{}");
    if (loaded.graph.root_object().kind != v1::py_kind::dict) return std::nullopt;
    v1::json_text_result json = v1::python_json(loaded.graph, loaded.graph.root);
    if (json.outcome != v1::yaml_outcome::ok) return std::nullopt;
    return json.text;
}

}  // namespace sg::proxy
