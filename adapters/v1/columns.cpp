// adapters/v1/columns: v1 block texts as the plan's columns and back. See the header.
#include "adapters/v1/columns.hpp"

#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/yaml_emit.hpp"
#include "adapters/v1/yaml_json.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace sg::v1 {

namespace {

using ojson = nlohmann::ordered_json;

// Longer runs of blank lines than this are not a text v1 wrote (and would let a column make a
// huge string).
constexpr std::int64_t max_blank_lines = 1 << 20;

std::string pointer_token(std::string_view key) {
    std::string out;
    for (const char ch : key) {
        if (ch == '~') {
            out += "~0";
        } else if (ch == '/') {
            out += "~1";
        } else {
            out += ch;
        }
    }
    return out;
}

void collect_keys(const ojson& v, const std::string& at, nlohmann::json& out) {
    if (v.is_object()) {
        for (const auto& [k, x] : v.items()) {
            std::string p = at + "/" + pointer_token(k);
            out.push_back(p);
            collect_keys(x, p, out);
        }
    } else if (v.is_array()) {
        for (std::size_t i = 0; i < v.size(); ++i)
            collect_keys(v[i], at + "/" + std::to_string(i), out);
    }
}

// `v` with every object's keys in the order `rank` gives (unlisted keys after, as they come).
ojson reorder(const ojson& v, const std::string& at,
              const std::unordered_map<std::string, std::size_t>& rank) {
    if (v.is_array()) {
        ojson out = ojson::array();
        for (std::size_t i = 0; i < v.size(); ++i)
            out.push_back(reorder(v[i], at + "/" + std::to_string(i), rank));
        return out;
    }
    if (!v.is_object()) return v;
    struct entry {
        std::size_t rank;
        std::size_t seen;
        std::string key;
        std::string pointer;
    };
    std::vector<entry> keys;
    std::size_t seen = 0;
    for (const auto& [k, x] : v.items()) {
        (void)x;
        std::string p = at + "/" + pointer_token(k);
        const auto it = rank.find(p);
        keys.push_back({it == rank.end() ? std::numeric_limits<std::size_t>::max() : it->second,
                        seen++, k, std::move(p)});
    }
    std::sort(keys.begin(), keys.end(), [](const entry& a, const entry& b) {
        return a.rank != b.rank ? a.rank < b.rank : a.seen < b.seen;
    });
    ojson out = ojson::object();
    for (const auto& e : keys) out[e.key] = reorder(v.at(e.key), e.pointer, rank);
    return out;
}

}  // namespace

split_result split_text(std::string_view text) {
    if (!is_valid_utf8(text)) {
        // The columns are utf8mb4: keep what Python's replacement decoding reads.
        split_result r = split_text(utf8_decode_replace(text));
        r.unrepresentable = "the text is not UTF-8";
        return r;
    }
    split_result r;
    text_columns& c = r.columns;
    frontmatter fm = parse_frontmatter(text);
    c.content = std::move(fm.body);
    if (fm.outcome == frontmatter_outcome::no_frontmatter) return r;  // content is the text
    c.frontmatter = true;
    c.blank_lines = static_cast<std::int64_t>(fm.stripped_newlines);
    switch (fm.outcome) {
        case frontmatter_outcome::invalid_yaml:
            c.metadata = "{}";  // what v1 shows
            r.unrepresentable = "the frontmatter is not valid YAML";
            return r;
        case frontmatter_outcome::crash:
            r.unrepresentable = "the frontmatter's YAML cannot be loaded";
            return r;
        case frontmatter_outcome::too_large:
            r.unrepresentable = "the frontmatter is too large to load";
            return r;
        default: break;
    }
    const exact_json_result exact = exact_json(fm.metadata, fm.metadata.root);
    if (!exact.value) {
        // Keep v1's own answer for it, so that only the text differs.
        const json_text_result shown = python_json(fm.metadata, fm.metadata.root);
        if (shown.outcome == yaml_outcome::ok) {
            c.metadata = shown.text;
            nlohmann::json keys = nlohmann::json::array();
            const ojson parsed = ojson::parse(shown.text, nullptr, false);
            if (!parsed.is_discarded()) collect_keys(parsed, "", keys);
            c.metadata_keys = keys.dump();
        }
        r.unrepresentable = "the frontmatter holds " + exact.reason + ", which JSON cannot carry";
        return r;
    }
    c.metadata = exact.value->dump(-1, ' ', false, ojson::error_handler_t::replace);
    nlohmann::json keys = nlohmann::json::array();
    collect_keys(*exact.value, "", keys);
    c.metadata_keys = keys.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (fm.outcome == frontmatter_outcome::not_mapping) {
        r.unrepresentable = "the frontmatter is not a mapping";
        return r;
    }
    const auto back = join_text(c);
    if (!back || *back != text) {
        r.unrepresentable = "the frontmatter is not spelt the way yaml.dump writes it";
    }
    return r;
}

std::optional<std::string> join_text(const text_columns& c) {
    if (!c.frontmatter) return c.content;
    if (!c.metadata || c.blank_lines < 0 || c.blank_lines > max_blank_lines) return std::nullopt;
    const ojson meta = ojson::parse(*c.metadata, nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) return std::nullopt;
    std::unordered_map<std::string, std::size_t> rank;
    const nlohmann::json keys = nlohmann::json::parse(c.metadata_keys, nullptr, false);
    if (keys.is_array()) {
        for (const auto& k : keys)
            if (k.is_string()) rank.emplace(k.get<std::string>(), rank.size());
    }
    const auto dumped = pyyaml_dump(reorder(meta, "", rank));
    if (!dumped) return std::nullopt;
    std::string out = "---\n" + *dumped + "---\n";
    out.append(static_cast<std::size_t>(c.blank_lines), '\n');
    out += c.content;
    return out;
}

}  // namespace sg::v1
