// tests/fuzz/fuzz_yaml_emit: libFuzzer target for adapters/v1/yaml_emit. Property: whatever JSON
// value the input makes, pyyaml_dump's text loads back with our PyYAML-compatible loader to the
// same value, keys in the same order (read with exact_json: the document itself, not FastAPI's
// encoding of it, which drops "_sa" keys). (tests/fuzz/run.sh then replays the corpus through
// PyYAML itself with tests/tools/yaml_emit_tool.)
#include "adapters/v1/yaml_emit.hpp"
#include "adapters/v1/yaml_json.hpp"
#include "tests/fuzz/emit_input.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const nlohmann::ordered_json value = sg::fuzz::emit_input(bytes).value();
    const auto dumped = sg::v1::pyyaml_dump(value);
    if (!dumped) return 0;  // not a value Python could hold (checked by the unit tests)
    const auto loaded = sg::v1::load_yaml(*dumped);
    const auto back = loaded.outcome == sg::v1::yaml_outcome::ok
                          ? sg::v1::exact_json(loaded.graph, loaded.graph.root)
                          : sg::v1::exact_json_result{};
    if (!back.value || *back.value != value) {
        std::fprintf(stderr, "value: %s\ndump:\n%s\nloaded (%d): %s %s\n", value.dump().c_str(),
                     dumped->c_str(), static_cast<int>(loaded.outcome),
                     back.value ? back.value->dump().c_str() : "-", back.reason.c_str());
        std::abort();
    }
    return 0;
}
