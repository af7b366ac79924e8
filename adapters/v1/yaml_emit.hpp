// adapters/v1/yaml_emit: PyYAML's yaml.dump for JSON values, byte for byte. v1 writes every block
// file as "---\n" + yaml.dump(metadata, default_flow_style=False, sort_keys=False) + "---\n\n" +
// body; the Dolt side keeps the metadata as JSON and must rebuild that text exactly (the
// `content` field of v1's answers, what `live` serves, what the reverse mirror writes back).
// A port of PyYAML 6.0's Representer/Serializer/Emitter for what JSON can hold: Python's
// defaults (allow_unicode=False, width 80, indent 2, block style), str / int / float / bool /
// None / list / dict, no anchors (JSON values share nothing). Pure, no I/O, never throws.
// Defined in yaml_emit.cpp (pyyaml_dump) and yaml_exact.cpp (exact_json).
#pragma once

#include "adapters/v1/yaml_json.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sg::v1 {

// yaml.dump(value, default_flow_style=False, sort_keys=False) for the Python value json.loads
// gives for `value` (objects in their iteration order: pass an ordered_json in the order the
// keys should appear). nullopt when Python could not hold the value the same way (a string that
// is not valid UTF-8, a non-finite number).
std::optional<std::string> pyyaml_dump(const nlohmann::ordered_json& value);

// The object at `index` of a loaded document as a JSON value, when JSON holds it exactly, so that
// pyyaml_dump of the value is yaml.dump of the Python object: str keys only; str (valid UTF-8),
// int (64 bits), finite float, bool, None, list and dict values; no list or dict reached twice
// (yaml.dump would write an anchor). Keys keep their order. Otherwise `reason` says what JSON
// cannot carry ("a date", "a non-string key", ...). Unlike FastAPI's encoding (python_json),
// nothing is dropped or renamed: this is the document, not v1's answer.
struct exact_json_result {
    std::optional<nlohmann::ordered_json> value;
    std::string reason;  // when !value
};
exact_json_result exact_json(const py_graph& graph, std::size_t index);

}  // namespace sg::v1
