// adapters/v1/yaml_encode: FastAPI's jsonable_encoder then json.dumps on the Python objects
// (python_json), and the JSON values made of them (to_json, yaml_to_json).
#include "adapters/v1/yaml_json.hpp"

#include "adapters/v1/yaml_internal.hpp"

#include <cmath>
#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sg::v1 {

using namespace yaml_detail;

// ------------------------------------------------------------------------------------------------
// Encoding: jsonable_encoder then json.dumps, in one pass.

namespace {

struct encode_stop {
    yaml_outcome outcome;
};

class encoder {
public:
    encoder(const py_graph& g, const yaml_limits& limits) : g_(g), limits_(limits) {}

    void value(std::size_t i, std::string& out, std::size_t depth) {
        spend(1);
        const py_object& o = g_.at(i);
        const bool container = o.kind == py_kind::list || o.kind == py_kind::tuple ||
                               o.kind == py_kind::set || o.kind == py_kind::dict;
        // Also ends cycles ("&a [*a]"), which recurse until Python's RecursionError.
        if (container && depth + 1 >= limits_.max_encode_depth)
            throw encode_stop{yaml_outcome::crash};
        switch (o.kind) {
            case py_kind::none: out += "null"; break;
            case py_kind::boolean: out += o.boolean ? "true" : "false"; break;
            case py_kind::integer:
                if (o.text.empty()) throw encode_stop{yaml_outcome::crash};
                out += o.text;
                break;
            case py_kind::floating:
                if (!std::isfinite(o.number)) throw encode_stop{yaml_outcome::crash};
                out += python_float_repr(o.number);
                break;
            case py_kind::string:
                if (has_surrogate(o.text)) throw encode_stop{yaml_outcome::crash};
                out += python_json_string(o.text);
                break;
            case py_kind::bytes:
                if (!is_valid_utf8(o.text)) throw encode_stop{yaml_outcome::crash};
                out += python_json_string(o.text);
                break;
            case py_kind::date:
            case py_kind::datetime: out += python_json_string(o.text); break;
            case py_kind::list:
            case py_kind::tuple:
            case py_kind::set: {
                out += '[';
                bool first = true;
                for (const std::size_t c : o.items) {
                    if (!first) out += ',';
                    first = false;
                    value(c, out, depth + 1);
                }
                out += ']';
                break;
            }
            case py_kind::dict: dict(o, out, depth); break;
        }
        spend(0);
        if (out.size() > limits_.max_output_bytes) throw encode_stop{yaml_outcome::too_large};
    }

private:
    void spend(std::size_t n) {
        work_ += n;
        if (work_ > limits_.max_output_bytes) throw encode_stop{yaml_outcome::too_large};
    }

    // jsonable_encoder's dict branch builds a new dict of encoded keys (so keys that become equal
    // merge: first position, last value), then json.dumps spells each key.
    void dict(const py_object& o, std::string& out, std::size_t depth) {
        struct entry {
            std::string key;
            std::string value;
        };
        std::vector<entry> entries;
        std::unordered_map<std::string, std::size_t> where;
        for (std::size_t p = 0; p + 1 < o.items.size(); p += 2) {
            const py_object& k = g_.at(o.items[p]);
            if (k.kind == py_kind::string && k.text.rfind("_sa", 0) == 0)
                continue;  // sqlalchemy_safe
            std::string identity, spelled;
            switch (k.kind) {
                case py_kind::string:
                    if (has_surrogate(k.text)) throw encode_stop{yaml_outcome::crash};
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::bytes:
                    if (!is_valid_utf8(k.text)) throw encode_stop{yaml_outcome::crash};
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::date:
                case py_kind::datetime:
                    identity = "s:" + k.text;
                    spelled = k.text;
                    break;
                case py_kind::none:
                    identity = "N";
                    spelled = "null";
                    break;
                case py_kind::boolean:
                    identity = python_key_identity(g_, o.items[p]);
                    spelled = k.boolean ? "true" : "false";
                    break;
                case py_kind::integer:
                    if (k.text.empty()) throw encode_stop{yaml_outcome::crash};
                    identity = python_key_identity(g_, o.items[p]);
                    spelled = k.text;
                    break;
                case py_kind::floating:
                    identity = python_key_identity(g_, o.items[p]);
                    if (!std::isfinite(k.number)) {
                        spelled.clear();  // json.dumps raises, but only once it gets here
                    } else {
                        spelled = python_float_repr(k.number);
                    }
                    break;
                default: throw encode_stop{yaml_outcome::crash};
            }
            std::string v;
            value(o.items[p + 1], v, depth + 1);
            const auto it = where.find(identity);
            if (it == where.end()) {
                where.emplace(identity, entries.size());
                const bool bad_float = k.kind == py_kind::floating && spelled.empty();
                entries.push_back(
                    {bad_float ? std::string() : python_json_string(spelled), std::move(v)});
                if (bad_float) entries.back().key = "\x01";  // marker: raises when written
            } else {
                entries[it->second].value = std::move(v);
            }
        }
        out += '{';
        bool first = true;
        for (const auto& e : entries) {
            if (e.key == "\x01") throw encode_stop{yaml_outcome::crash};
            if (!first) out += ',';
            first = false;
            out += e.key;
            out += ':';
            out += e.value;
        }
        out += '}';
    }

    const py_graph& g_;
    const yaml_limits& limits_;
    std::size_t work_ = 0;
};

}  // namespace

json_text_result python_json(const py_graph& graph, std::size_t index, const yaml_limits& limits) {
    json_text_result r;
    try {
        encoder e(graph, limits);
        e.value(index, r.text, 0);
        r.outcome = yaml_outcome::ok;
    } catch (const encode_stop& s) {
        r.outcome = s.outcome;
        r.text.clear();
    } catch (const std::bad_alloc&) {
        r.outcome = yaml_outcome::too_large;
        r.text.clear();
    }
    return r;
}

yaml_json_result to_json(const py_graph& graph, std::size_t index, const yaml_limits& limits) {
    yaml_json_result r;
    auto text = python_json(graph, index, limits);
    r.outcome = text.outcome;
    if (text.outcome != yaml_outcome::ok) {
        r.error = "not encodable";
        return r;
    }
    try {
        r.value = nlohmann::ordered_json::parse(text.text);
    } catch (const std::exception& e) {
        r.outcome = yaml_outcome::crash;
        r.error = e.what();
    }
    return r;
}

yaml_json_result yaml_to_json(std::string_view text, const yaml_limits& limits) {
    auto loaded = load_yaml(text, limits);
    if (loaded.outcome != yaml_outcome::ok) {
        yaml_json_result r;
        r.outcome = loaded.outcome;
        r.error = loaded.error;
        return r;
    }
    return to_json(loaded.graph, loaded.graph.root, limits);
}

}  // namespace sg::v1
