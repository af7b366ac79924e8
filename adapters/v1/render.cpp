// adapters/v1/render: v1's read answers from the storage model. See the header for the contract;
// comments here say which line of v1 (youlab_server/server/blocks.py, storage/git.py,
// storage/diffs.py, FastAPI/pydantic) each rule copies.
// This file holds the block and pending-diff answers; history and versions are in
// render_history, and what the two share is in render_internal.hpp.
#include "adapters/v1/render.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/render_internal.hpp"
#include "adapters/v1/yaml_json.hpp"

namespace sg::v1 {

using namespace render_detail;

namespace render_detail {

rendered json_answer(unsigned status, std::string body) {
    return {status, std::string(json_content_type), std::move(body)};
}

rendered detail(unsigned status, std::string_view text_utf8) {
    return json_answer(status, "{\"detail\":" + python_json_string(text_utf8) + "}");
}

std::string as_python_str(std::string_view bytes) { return utf8_decode_replace(bytes); }

const block* find_block(const user_state& state, std::string_view label) {
    for (const auto& b : state.blocks)
        if (b.label == label) return &b;
    return nullptr;
}

}  // namespace render_detail

namespace {

using ojson = nlohmann::ordered_json;

// ------------------------------------------------------------------------------------------------
// Pending diffs as v1's PendingDiffStore sees them.

constexpr std::array<std::string_view, 15> diff_fields = {
    "id",           "user_id",       "agent_id",       "block_label", "field",
    "operation",    "current_value", "proposed_value", "reasoning",   "confidence",
    "source_query", "status",        "created_at",     "reviewed_at", "applied_commit"};

// PendingDiff(**json.loads(text)), or nullopt where that raises (v1 skips such files).
std::optional<ojson> load_diff(const pending_diff& d) {
    if (d.raw_json.empty()) {
        // Built by hand (tests, or a model without the file text): the extracted fields.
        ojson j = ojson::object();
        auto opt = [](const std::optional<std::string>& v) {
            return v ? ojson(*v) : ojson(nullptr);
        };
        j["id"] = d.id;
        j["agent_id"] = d.agent_id;
        j["block_label"] = d.block_label;
        j["field"] = opt(d.field);
        j["operation"] = d.operation;
        j["current_value"] = opt(d.current_value);
        j["proposed_value"] = d.proposed_value;
        j["reasoning"] = d.reasoning;
        j["confidence"] = d.confidence;
        j["source_query"] = opt(d.source_query);
        j["status"] = d.status;
        j["created_at"] = d.created_at;
        j["reviewed_at"] = opt(d.reviewed_at);
        j["applied_commit"] = opt(d.applied_commit);
        return j;
    }
    // json.loads refuses a str starting with a BOM (nlohmann would skip it); read_text() keeps it.
    if (d.raw_json.rfind("\xEF\xBB\xBF", 0) == 0) return std::nullopt;
    // read_text() translates newlines first; outside strings that changes nothing JSON cares about
    // and inside strings a raw control character is an error either way.
    ojson j;
    try {
        j = ojson::parse(d.raw_json);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (!j.is_object()) return std::nullopt;
    for (const auto& [k, v] : j.items())
        if (std::find(diff_fields.begin(), diff_fields.end(), k) == diff_fields.end())
            return std::nullopt;  // unexpected keyword argument
    for (const auto f : diff_fields) {
        if (f == "reviewed_at" || f == "applied_commit") continue;  // have defaults
        if (!j.contains(std::string(f))) return std::nullopt;       // missing argument
    }
    return j;
}

bool is_number(const ojson& v) { return v.is_number() || v.is_boolean(); }

double number_of(const ojson& v) {
    if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
    return v.get<double>();
}

// list_pending(block_label): the pending diffs (optionally of one block), sorted by created_at,
// newest first, stably. Throws python_raised where sorted() would (created_at values that do not
// compare).
std::vector<ojson> list_pending(const user_state& state, std::optional<std::string_view> label) {
    std::vector<ojson> out;
    for (const auto& d : state.diffs) {
        auto j = load_diff(d);
        if (!j) continue;
        const ojson& status = (*j)["status"];
        if (!status.is_string() || status.get_ref<const std::string&>() != "pending") continue;
        if (label) {
            const ojson& bl = (*j)["block_label"];
            if (!bl.is_string() || bl.get_ref<const std::string&>() != *label) continue;
        }
        out.push_back(std::move(*j));
    }
    if (out.size() < 2) return out;
    const bool all_str = std::all_of(out.begin(), out.end(),
                                     [](const ojson& j) { return j["created_at"].is_string(); });
    const bool all_num = std::all_of(out.begin(), out.end(),
                                     [](const ojson& j) { return is_number(j["created_at"]); });
    if (all_str) {
        std::stable_sort(out.begin(), out.end(), [](const ojson& a, const ojson& b) {
            return a["created_at"].get_ref<const std::string&>() >
                   b["created_at"].get_ref<const std::string&>();
        });
    } else if (all_num) {
        std::stable_sort(out.begin(), out.end(), [](const ojson& a, const ojson& b) {
            return number_of(a["created_at"]) > number_of(b["created_at"]);
        });
    } else {
        throw python_raised{};  // '<' not supported between instances of ...
    }
    return out;
}

// The identity of a JSON scalar as a Python dict key (1 == 1.0 == True), for count_pending.
std::string json_key_identity(const ojson& v) {
    if (v.is_string()) return "s:" + v.get<std::string>();
    if (v.is_null()) return "N";
    if (v.is_boolean()) return v.get<bool>() ? "n:1" : "n:0";
    if (v.is_number_integer()) return "n:" + v.dump();
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18)
            return "n:" + std::to_string(static_cast<std::int64_t>(d));
        return "f:" + python_float_repr(d);
    }
    throw python_raised{};  // unhashable type: 'list' / 'dict'
}

struct pending_count {
    ojson key;  // the first block_label value seen for this key
    std::int64_t count = 0;
};

// count_pending(): {block_label: n} in first-seen order of list_pending().
std::vector<pending_count> count_pending(const user_state& state) {
    std::vector<pending_count> out;
    std::unordered_map<std::string, std::size_t> where;
    for (const auto& d : list_pending(state, std::nullopt)) {
        const ojson& bl = d["block_label"];
        const auto id = json_key_identity(bl);
        const auto it = where.find(id);
        if (it == where.end()) {
            where.emplace(id, out.size());
            out.push_back({bl, 1});
        } else {
            ++out[it->second].count;
        }
    }
    return out;
}

std::int64_t pending_for(const std::vector<pending_count>& counts, std::string_view label) {
    for (const auto& c : counts)
        if (c.key.is_string() && c.key.get_ref<const std::string&>() == label) return c.count;
    return 0;
}

// pydantic 1's str_validator on a JSON value (str fields of DiffSummary, dict[str, int] keys).
std::string pydantic_str(const ojson& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
    if (v.is_number_integer()) return v.dump();
    if (v.is_number_float()) return python_float_repr(v.get<double>());
    throw python_raised{};  // none is not an allowed value / str type expected
}

// ------------------------------------------------------------------------------------------------
// Metadata through pydantic: BlockDetail.metadata is Dict[str, Any].

std::optional<std::pair<std::size_t, std::size_t>> as_pair(py_graph& g, std::size_t i) {
    const py_object o = g.at(i);  // copy: g grows below
    switch (o.kind) {
        case py_kind::list:
        case py_kind::tuple:
        case py_kind::set:
        case py_kind::dict: {
            const std::size_t step = o.kind == py_kind::dict ? 2 : 1;  // a dict iterates its keys
            if (o.items.size() != 2 * step) return std::nullopt;
            return std::make_pair(o.items[0], o.items[step]);
        }
        case py_kind::string: {
            if (python_len(o.text) != 2) return std::nullopt;
            std::size_t cut = 1;
            while (cut < o.text.size() && (static_cast<unsigned char>(o.text[cut]) & 0xC0) == 0x80)
                ++cut;
            py_object a, b;
            a.kind = b.kind = py_kind::string;
            a.text = o.text.substr(0, cut);
            b.text = o.text.substr(cut);
            const std::size_t ia = g.add(std::move(a));
            return std::make_pair(ia, g.add(std::move(b)));
        }
        case py_kind::bytes: {
            if (o.text.size() != 2) return std::nullopt;
            py_object a, b;
            a.kind = b.kind = py_kind::integer;
            a.text = std::to_string(static_cast<unsigned char>(o.text[0]));
            b.text = std::to_string(static_cast<unsigned char>(o.text[1]));
            const std::size_t ia = g.add(std::move(a));
            return std::make_pair(ia, g.add(std::move(b)));
        }
        default: return std::nullopt;  // not iterable
    }
}

// dict_validator (dict(v) for a non-dict) then the str key validator: the metadata dict v1's
// BlockDetail holds, as a new root of `g`. nullopt where pydantic fails (v1 answers 500).
std::optional<std::size_t> pydantic_metadata(py_graph& g) {
    std::vector<std::size_t> items;  // key, value, ...
    const py_object root = g.root_object();
    if (root.kind == py_kind::dict) {
        items = root.items;
    } else {
        if (root.kind != py_kind::list && root.kind != py_kind::tuple && root.kind != py_kind::set)
            return std::nullopt;  // dict(42), dict("text") ... raise
        std::unordered_map<std::string, std::size_t> where;
        for (const std::size_t e : root.items) {
            auto p = as_pair(g, e);
            if (!p) return std::nullopt;
            const py_kind kk = g.at(p->first).kind;
            if (kk == py_kind::list || kk == py_kind::dict || kk == py_kind::set)
                return std::nullopt;  // unhashable
            const auto id = python_key_identity(g, p->first);
            const auto it = where.find(id);
            if (it == where.end()) {
                where.emplace(id, items.size());
                items.push_back(p->first);
                items.push_back(p->second);
            } else {
                items[it->second + 1] = p->second;
            }
        }
    }
    py_object out;
    out.kind = py_kind::dict;
    std::unordered_map<std::string, std::size_t> where;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const py_object& k = g.at(items[i]);
        std::string key;
        switch (k.kind) {
            case py_kind::string: key = k.text; break;
            case py_kind::boolean: key = k.boolean ? "True" : "False"; break;
            case py_kind::integer:
                if (k.text.empty()) return std::nullopt;  // str() raises ValueError
                key = k.text;
                break;
            case py_kind::floating:
                key = std::isnan(k.number)   ? "nan"
                      : std::isinf(k.number) ? (k.number < 0 ? "-inf" : "inf")
                                             : python_float_repr(k.number);
                break;
            case py_kind::bytes:
                if (!is_valid_utf8(k.text)) return std::nullopt;
                key = k.text;
                break;
            default: return std::nullopt;  // None, dates: str type expected
        }
        const std::size_t value = items[i + 1];
        const auto it = where.find(key);
        if (it != where.end()) {
            out.items[it->second + 1] = value;
            continue;
        }
        py_object ko;
        ko.kind = py_kind::string;
        ko.text = key;
        const std::size_t ki = g.add(std::move(ko));
        where.emplace(std::move(key), out.items.size());
        out.items.push_back(ki);
        out.items.push_back(value);
    }
    return g.add(std::move(out));
}

// GET block runs a few Python frames deeper than GET versions, so Python's recursion limit ends
// its deep metadata one level earlier (measured on the v1 reference).
yaml_limits get_block_limits() {
    yaml_limits l;
    --l.max_depth;
    --l.max_encode_depth;
    return l;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

rendered render_internal_error() {
    return {500, std::string(plain_text_content_type), "Internal Server Error"};
}

rendered render_unknown_user(std::string_view user_id) {
    return detail(404, "User " + as_python_str(user_id) + " not found");
}

rendered render_exists(bool exists) {
    return json_answer(200, exists ? "{\"exists\":true}" : "{\"exists\":false}");
}

rendered render_list_blocks(const user_state& state) {
    return answer_or_500([&]() -> rendered {
        const auto counts = count_pending(state);
        std::vector<const block*> blocks;
        for (const auto& b : state.blocks) blocks.push_back(&b);
        std::sort(blocks.begin(), blocks.end(),
                  [](const block* a, const block* b) { return a->label < b->label; });
        std::string out = "[";
        for (const block* b : blocks) {
            if (out.size() > 1) out += ',';
            const std::string label = as_python_str(b->label);
            out += "{\"label\":" + python_json_string(label) +
                   ",\"pending_diffs\":" + std::to_string(pending_for(counts, label)) + "}";
        }
        out += ']';
        return json_answer(200, std::move(out));
    });
}

rendered render_diff_counts(const user_state& state) {
    return answer_or_500([&]() -> rendered {
        // The endpoint's return annotation dict[str, int] is its response model: pydantic turns
        // each key into a str (1 -> "1", True -> "True"; None fails) and merges equal results.
        std::vector<std::pair<std::string, std::int64_t>> out;
        for (const auto& c : count_pending(state)) {
            std::string key = pydantic_str(c.key);
            const auto it =
                std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == key; });
            if (it != out.end()) {
                it->second = c.count;
            } else {
                out.emplace_back(std::move(key), c.count);
            }
        }
        std::string body = "{";
        for (const auto& [k, n] : out) {
            if (body.size() > 1) body += ',';
            body += python_json_string(k) + ":" + std::to_string(n);
        }
        body += '}';
        return json_answer(200, std::move(body));
    });
}

rendered render_get_block(const user_state& state, std::string_view label_bytes) {
    return answer_or_500([&]() -> rendered {
        const std::string label = as_python_str(label_bytes);
        const block* b = find_block(state, label);
        if (!b) return detail(404, "Block " + label + " not found");
        // Path.read_text(): UTF-8 (a decode error is a 500), universal newlines.
        if (!is_valid_utf8(b->source)) return render_internal_error();
        const std::string content = universal_newlines(b->source);
        const yaml_limits limits = get_block_limits();
        auto fm = parse_frontmatter(content, limits);
        if (fm.outcome == frontmatter_outcome::crash ||
            fm.outcome == frontmatter_outcome::too_large)
            return render_internal_error();
        const auto counts = count_pending(state);
        const auto meta_root = pydantic_metadata(fm.metadata);
        if (!meta_root) return render_internal_error();
        const auto meta = python_json(fm.metadata, *meta_root, limits);
        if (meta.outcome != yaml_outcome::ok) return render_internal_error();
        std::string out = "{\"label\":" + python_json_string(label);
        out += ",\"content\":" + python_json_string(content);
        out += ",\"body\":" + python_json_string(fm.body);
        out += ",\"metadata\":" + meta.text;
        out += ",\"pending_diffs\":" + std::to_string(pending_for(counts, label)) + "}";
        return json_answer(200, std::move(out));
    });
}

rendered render_list_diffs(const user_state& state, std::string_view label_bytes) {
    return answer_or_500([&]() -> rendered {
        const std::string label = as_python_str(label_bytes);
        std::string out = "[";
        for (const auto& d : list_pending(state, label)) {
            if (out.size() > 1) out += ',';
            auto str = [&](const char* name) { return python_json_string(pydantic_str(d[name])); };
            out += "{\"id\":" + str("id");
            out += ",\"block\":" + str("block_label");
            out += ",\"field\":" + (d["field"].is_null() ? std::string("null") : str("field"));
            out += ",\"operation\":" + str("operation");
            out += ",\"reasoning\":" + str("reasoning");
            out += ",\"confidence\":" + str("confidence");
            out += ",\"created_at\":" + str("created_at");
            out += ",\"agent_id\":" + str("agent_id");
            out += ",\"old_value\":null,\"new_value\":null}";
        }
        out += ']';
        return json_answer(200, std::move(out));
    });
}

}  // namespace sg::v1
