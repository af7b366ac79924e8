// tests/tools/yaml_emit_tool: adapters/v1/yaml_emit from the command line, for the tests that hold
// it against PyYAML itself (tests/integration/test_yaml_emitter.py, tests/fuzz/run.sh).
//   yaml_emit_tool              JSON values on stdin, one per line -> {"dump": text|null} lines
//   yaml_emit_tool --inputs F.. each file as fuzz input      -> {"file","value","dump"} lines
#include "adapters/v1/yaml_emit.hpp"
#include "tests/fuzz/emit_input.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

namespace {

nlohmann::ordered_json dump_of(const nlohmann::ordered_json& value) {
    auto d = sg::v1::pyyaml_dump(value);
    return d ? nlohmann::ordered_json(*d) : nlohmann::ordered_json(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--inputs") {
        for (int i = 2; i < argc; ++i) {
            std::ifstream in(argv[i], std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(in)), {});
            const auto value = sg::fuzz::emit_input(bytes).value();
            nlohmann::ordered_json line;
            line["file"] = argv[i];
            line["value"] = value;
            line["dump"] = dump_of(value);
            std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << '\n';
        }
        return 0;
    }
    std::string text;
    int status = 0;
    while (std::getline(std::cin, text)) {
        auto value = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
        nlohmann::ordered_json line;
        if (value.is_discarded()) {
            line["error"] = "not JSON";
            status = 1;
        } else {
            line["dump"] = dump_of(value);
        }
        std::cout << line.dump() << '\n';
    }
    return status;
}
