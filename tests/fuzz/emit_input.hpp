// tests/fuzz/emit_input: turns arbitrary bytes into a JSON value for the YAML emitter's fuzz target
// and for tests/tools/yaml_emit_tool (which replays the fuzz corpus through PyYAML). Bytes that
// are a JSON document are that document; anything else is read as a small program that builds
// nested lists, mappings and scalars, with strings taken from the bytes (invalid UTF-8 replaced).
#pragma once

#include "adapters/v1/yaml_json.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

namespace sg::fuzz {

class emit_input {
public:
    explicit emit_input(std::string_view bytes) : b_(bytes) {}

    nlohmann::ordered_json value() {
        auto parsed = nlohmann::ordered_json::parse(b_, nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded()) return parsed;
        return node(0);
    }

private:
    std::uint8_t next() { return i_ < b_.size() ? static_cast<std::uint8_t>(b_[i_++]) : 0; }

    std::string text() {
        const std::size_t n = next() % 96;
        const std::string_view raw = b_.substr(std::min(i_, b_.size()), n);
        i_ += raw.size();
        return v1::utf8_decode_replace(raw);
    }

    nlohmann::ordered_json node(int depth) {
        const std::uint8_t op = next();
        switch (depth > 6 ? op % 6 : op % 8) {
            case 0: return nullptr;
            case 1: return (op & 8) != 0;
            case 2: {
                std::int64_t v = 0;
                for (int k = 0; k < 8; ++k) v = (v << 8) | next();
                return v >> (op % 64);
            }
            case 3: {
                std::uint64_t bits = 0;
                for (int k = 0; k < 8; ++k) bits = (bits << 8) | next();
                double d = 0;
                std::memcpy(&d, &bits, sizeof d);
                if (!std::isfinite(d)) d = static_cast<double>(bits % 100000) / 8;
                return d;
            }
            case 4:
            case 5: return text();
            case 6: {
                auto a = nlohmann::ordered_json::array();
                for (int n = next() % 5; n > 0 && i_ < b_.size(); --n) a.push_back(node(depth + 1));
                return a;
            }
            default: {
                auto o = nlohmann::ordered_json::object();
                for (int n = next() % 5; n > 0 && i_ < b_.size(); --n) {
                    std::string k = text();
                    o[k] = node(depth + 1);
                }
                return o;
            }
        }
    }

    std::string_view b_;
    std::size_t i_ = 0;
};

}  // namespace sg::fuzz
