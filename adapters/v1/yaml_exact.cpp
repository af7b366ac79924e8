// adapters/v1/yaml_exact: exact_json, a loaded document's Python objects as a JSON value when
// JSON holds them exactly (so that pyyaml_dump of it is yaml.dump of the objects), or the reason
// it cannot. Split from yaml_emit.cpp: it shares nothing with the emitter but the header.
#include "adapters/v1/yaml_emit.hpp"

#include "adapters/v1/yaml_json.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sg::v1 {

namespace {

using ojson = nlohmann::ordered_json;

class exact_converter {
public:
    explicit exact_converter(const py_graph& g) : g_(g), seen_(g.objects.size(), false) {}

    std::optional<ojson> convert(std::size_t i, std::size_t depth) {
        const py_object& o = g_.at(i);
        if (depth > 1000) return fail("nesting deeper than 1000 levels");
        switch (o.kind) {
            case py_kind::none: return ojson(nullptr);
            case py_kind::boolean: return ojson(o.boolean);
            case py_kind::integer: return integer(o.text);
            case py_kind::floating:
                if (!std::isfinite(o.number)) return fail("a NaN or infinite float");
                return ojson(o.number);
            case py_kind::string:
                if (!is_valid_utf8(o.text)) return fail("a string with a lone surrogate");
                return ojson(o.text);
            case py_kind::bytes: return fail("binary data (!!binary)");
            case py_kind::date: return fail("a date");
            case py_kind::datetime: return fail("a timestamp");
            case py_kind::tuple: return fail("ordered pairs (!!omap or !!pairs)");
            case py_kind::set: return fail("a set (!!set)");
            case py_kind::list: {
                if (!first_visit(i)) return std::nullopt;
                auto a = ojson::array();
                for (const std::size_t c : o.items) {
                    auto v = convert(c, depth + 1);
                    if (!v) return std::nullopt;
                    a.push_back(std::move(*v));
                }
                return a;
            }
            case py_kind::dict: {
                if (!first_visit(i)) return std::nullopt;
                auto m = ojson::object();
                for (std::size_t p = 0; p + 1 < o.items.size(); p += 2) {
                    const py_object& k = g_.at(o.items[p]);
                    if (k.kind != py_kind::string) return fail("a key that is not a string");
                    if (!is_valid_utf8(k.text)) return fail("a key with a lone surrogate");
                    auto v = convert(o.items[p + 1], depth + 1);
                    if (!v) return std::nullopt;
                    m[k.text] = std::move(*v);
                }
                return m;
            }
        }
        return fail("an unknown object");
    }

    std::string reason;

private:
    std::optional<ojson> fail(std::string why) {
        if (reason.empty()) reason = std::move(why);
        return std::nullopt;
    }

    bool first_visit(std::size_t i) {
        if (seen_[i]) {
            fail("a list or mapping used twice (an alias: yaml.dump writes an anchor)");
            return false;
        }
        seen_[i] = true;
        return true;
    }

    std::optional<ojson> integer(const std::string& digits) {
        if (digits.empty()) return fail("an integer too large for Python to print");
        const bool neg = digits[0] == '-';
        const std::string_view mag = std::string_view(digits).substr(neg ? 1 : 0);
        // within 64 bits: int64 for negatives, uint64 otherwise
        constexpr std::string_view max_u = "18446744073709551615";
        constexpr std::string_view min_i = "9223372036854775808";
        const std::string_view lim = neg ? min_i : max_u;
        if (mag.size() > lim.size() || (mag.size() == lim.size() && mag > lim)) {
            return fail("an integer beyond 64 bits");
        }
        auto v = ojson::parse(digits, nullptr, false);
        if (v.is_discarded()) return fail("an integer JSON cannot spell");
        return v;
    }

    const py_graph& g_;
    std::vector<bool> seen_;
};

}  // namespace

exact_json_result exact_json(const py_graph& graph, std::size_t index) {
    exact_converter c(graph);
    exact_json_result r;
    r.value = c.convert(index, 0);
    if (!r.value) r.reason = c.reason.empty() ? "not representable" : c.reason;
    return r;
}

}  // namespace sg::v1
