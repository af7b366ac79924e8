// adapters/v1/frontmatter: the frontmatter split of v1's storage code. See the header.
#include "adapters/v1/frontmatter.hpp"

#include <new>

namespace sg::v1 {

namespace {

std::size_t empty_dict(py_graph& g) {
    py_object o;
    o.kind = py_kind::dict;
    return g.add(std::move(o));
}

}  // namespace

bool python_truthy(const py_graph& graph, std::size_t index) {
    const py_object& o = graph.at(index);
    switch (o.kind) {
        case py_kind::none: return false;
        case py_kind::boolean: return o.boolean;
        case py_kind::integer: return o.text != "0";     // "" is a huge (non-zero) value
        case py_kind::floating: return o.number != 0.0;  // NaN is true, as in Python
        case py_kind::string:
        case py_kind::bytes: return !o.text.empty();
        case py_kind::date:
        case py_kind::datetime: return true;
        default: return !o.items.empty();
    }
}

frontmatter parse_frontmatter(std::string_view text, const yaml_limits& limits) {
    frontmatter f;
    try {
        // re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL): the group starts right after the
        // opening line and ends at the first "\n---\n" from there (it may be empty).
        std::size_t close = std::string_view::npos;
        if (text.substr(0, 4) == "---\n") close = text.find("\n---\n", 4);
        if (close == std::string_view::npos) {
            f.outcome = frontmatter_outcome::no_frontmatter;
            f.metadata.root = empty_dict(f.metadata);
            f.body = std::string(text);
            return f;
        }
        std::string_view body = text.substr(close + 5);
        const auto first = body.find_first_not_of('\n');
        f.stripped_newlines = first == std::string_view::npos ? body.size() : first;
        body = body.substr(f.stripped_newlines);
        f.body = std::string(body);
        f.yaml_size = close - 4;

        auto loaded = load_yaml(text.substr(4, close - 4), limits);
        switch (loaded.outcome) {
            case yaml_outcome::ok: break;
            case yaml_outcome::invalid:
                f.outcome = frontmatter_outcome::invalid_yaml;
                f.metadata.root = empty_dict(f.metadata);
                return f;
            case yaml_outcome::crash: f.outcome = frontmatter_outcome::crash; return f;
            case yaml_outcome::too_large: f.outcome = frontmatter_outcome::too_large; return f;
        }
        f.metadata = std::move(loaded.graph);
        if (!python_truthy(f.metadata, f.metadata.root)) {
            // `yaml.safe_load(...) or {}`
            f.outcome = frontmatter_outcome::ok;
            f.metadata = py_graph{};
            f.metadata.root = empty_dict(f.metadata);
        } else if (f.metadata.root_object().kind == py_kind::dict) {
            f.outcome = frontmatter_outcome::ok;
        } else {
            f.outcome = frontmatter_outcome::not_mapping;
        }
        return f;
    } catch (const std::bad_alloc&) {
        f = frontmatter{};
        f.outcome = frontmatter_outcome::too_large;
        return f;
    }
}

std::string universal_newlines(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            out += '\n';
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

}  // namespace sg::v1
