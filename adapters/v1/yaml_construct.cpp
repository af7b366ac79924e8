// adapters/v1/yaml_construct: PyYAML's SafeConstructor, from composed nodes to Python objects, and
// the identity Python's dict gives a key.
#include "adapters/v1/yaml_json.hpp"

#include "adapters/v1/yaml_internal.hpp"

#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sg::v1 {

using namespace yaml_detail;

// ------------------------------------------------------------------------------------------------
// Construction: PyYAML's SafeConstructor, including its order of work (collections are created
// empty and filled in later rounds), because which error comes first decides between "invalid"
// and "crash".

namespace {

bool is_unhashable(py_kind k) {
    return k == py_kind::list || k == py_kind::dict || k == py_kind::set;
}

std::string exact_integral(double v) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    std::string s = buf;
    if (s == "-0") s = "0";
    return s;
}

}  // namespace

std::string python_key_identity(const py_graph& g, std::size_t index) {
    const py_object& o = g.at(index);
    switch (o.kind) {
        case py_kind::none: return "N";
        case py_kind::boolean: return o.boolean ? "n:1" : "n:0";
        case py_kind::integer:
            return o.text.empty() ? "big:" + std::to_string(index) : "n:" + o.text;
        case py_kind::floating:
            if (std::isnan(o.number)) return "nan";
            if (std::isinf(o.number)) return o.number < 0 ? "n:-inf" : "n:inf";
            if (std::floor(o.number) == o.number) return "n:" + exact_integral(o.number);
            return "f:" + python_float_repr(o.number);
        case py_kind::string: return "s:" + o.text;
        case py_kind::bytes: return "b:" + o.text;
        case py_kind::date: return "d:" + o.text;
        case py_kind::datetime:
            return o.aware ? "z:" + std::to_string(o.utc_micros) : "t:" + o.text;
        default: return "obj:" + std::to_string(index);  // unhashable; never a key
    }
}

namespace {

int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// binascii.a2b_base64 in its default (non-strict) mode: junk is skipped, padding ends the data.
std::optional<std::string> a2b_base64(std::string_view s) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    int quad_pos = 0, pads = 0;
    unsigned left = 0;
    for (const char c : s) {
        if (c == '=') {
            if (quad_pos >= 2 && quad_pos + ++pads >= 4) return out;
            continue;
        }
        const int v = val(c);
        if (v < 0) continue;
        pads = 0;
        switch (quad_pos) {
            case 0:
                quad_pos = 1;
                left = static_cast<unsigned>(v);
                break;
            case 1:
                quad_pos = 2;
                out += static_cast<char>((left << 2) | (static_cast<unsigned>(v) >> 4));
                left = static_cast<unsigned>(v) & 0x0F;
                break;
            case 2:
                quad_pos = 3;
                out += static_cast<char>((left << 4) | (static_cast<unsigned>(v) >> 2));
                left = static_cast<unsigned>(v) & 0x03;
                break;
            default:
                quad_pos = 0;
                out += static_cast<char>((left << 6) | static_cast<unsigned>(v));
                left = 0;
        }
    }
    if (quad_pos != 0) return std::nullopt;
    return out;
}

class constructor {
public:
    constructor(std::vector<ynode>& nodes, py_graph& out, const yaml_limits& limits)
        : nodes_(nodes), out_(out), limits_(limits), built_(nodes.size(), npos) {}

    std::size_t document(std::size_t root) {
        const std::size_t r = object(root);
        while (!pending_.empty()) {
            auto round = std::move(pending_);
            pending_.clear();
            for (const auto& [node, obj] : round) fill(node, obj);
        }
        return r;
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    std::size_t make(py_object o) { return out_.add(std::move(o)); }

    // BaseConstructor.construct_object (deep=False).
    std::size_t object(std::size_t id) {
        if (built_[id] != npos) return built_[id];
        const ynode& n = nodes_[id];
        const std::string_view t = n.tag;
        py_object o;
        if (t == tag_seq || t == tag_omap || t == tag_pairs) {
            o.kind = py_kind::list;
        } else if (t == tag_map) {
            o.kind = py_kind::dict;
        } else if (t == tag_set) {
            o.kind = py_kind::set;
        } else {
            o = scalar(n);
            const std::size_t idx = make(std::move(o));
            built_[id] = idx;
            return idx;
        }
        // Generator constructors: the empty container exists now, its content comes later.
        const std::size_t idx = make(std::move(o));
        built_[id] = idx;
        pending_.emplace_back(id, idx);
        return idx;
    }

    py_object scalar(const ynode& n) {
        const std::string_view t = n.tag;
        const bool known = t == tag_null || t == tag_bool || t == tag_int || t == tag_float ||
                           t == tag_binary || t == tag_timestamp || t == tag_str;
        if (!known) throw constructor_error{};  // construct_undefined (also merge and value tags)
        if (n.k != ynode::kind::scalar) throw constructor_error{};  // construct_scalar
        py_object o;
        const std::string& v = n.value;
        if (t == tag_null) return o;
        if (t == tag_str) {
            o.kind = py_kind::string;
            o.text = v;
            return o;
        }
        if (t == tag_bool) {
            std::string low = v;
            for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            o.kind = py_kind::boolean;
            if (low == "yes" || low == "true" || low == "on") {
                o.boolean = true;
            } else if (low == "no" || low == "false" || low == "off") {
                o.boolean = false;
            } else {
                throw python_error{};  // KeyError
            }
            return o;
        }
        if (t == tag_int) return make_int(v);
        if (t == tag_float) return make_float(v);
        if (t == tag_binary) {
            for (const char c : v)
                if (static_cast<unsigned char>(c) >= 0x80) throw constructor_error{};
            auto bytes = a2b_base64(v);
            if (!bytes) throw constructor_error{};
            o.kind = py_kind::bytes;
            o.text = std::move(*bytes);
            return o;
        }
        return make_timestamp(v);
    }

    static py_object make_int(std::string_view raw) {
        std::string v;
        for (const char c : raw)
            if (c != '_') v += c;
        int sign = 1;
        if (v.empty()) throw python_error{};  // value[0]: IndexError
        if (v[0] == '-') sign = -1;
        if (v[0] == '+' || v[0] == '-') v.erase(0, 1);
        if (v.empty()) throw python_error{};
        py_object o;
        o.kind = py_kind::integer;
        std::optional<parsed_int> p;
        if (v == "0") {
            o.text = "0";
            return o;
        } else if (v.rfind("0b", 0) == 0) {
            p = python_int(std::string_view(v).substr(2), 2);
        } else if (v.rfind("0x", 0) == 0) {
            p = python_int(std::string_view(v).substr(2), 16);
        } else if (v[0] == '0') {
            p = python_int(v, 8);
        } else if (v.find(':') != std::string::npos) {
            parsed_int acc;
            std::size_t start = 0;
            while (true) {
                const std::size_t colon = v.find(':', start);
                auto part = python_int(std::string_view(v).substr(start, colon - start), 10);
                if (!part) throw python_error{};
                if (!part->printable || !acc.printable) {
                    acc.printable = false;
                } else {
                    acc.value.mul_add_small(60, 0);
                    acc.value = bigint::add(acc.value, part->value);
                    if (acc.value.decimal_digits() > python_max_str_digits + 10)
                        acc.printable = false;
                }
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
            p = std::move(acc);
        } else {
            p = python_int(v, 10);
        }
        if (!p) throw python_error{};  // ValueError from int()
        if (!p->printable || p->value.decimal_digits() > python_max_str_digits) {
            o.text.clear();  // str() of it would raise: encoding gives `crash`
            return o;
        }
        if (sign < 0 && !p->value.is_zero()) p->value.neg = !p->value.neg;
        o.text = p->value.to_decimal();
        return o;
    }

    static py_object make_float(std::string_view raw) {
        std::string v;
        for (const char c : raw) {
            if (c != '_') v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (v.empty()) throw python_error{};
        double sign = 1;
        if (v[0] == '-') sign = -1;
        if (v[0] == '+' || v[0] == '-') v.erase(0, 1);
        py_object o;
        o.kind = py_kind::floating;
        if (v == ".inf") {
            o.number = sign * std::numeric_limits<double>::infinity();
        } else if (v == ".nan") {
            o.number = std::numeric_limits<double>::quiet_NaN();
        } else if (v.find(':') != std::string::npos) {
            std::vector<double> parts;
            std::size_t start = 0;
            while (true) {
                const std::size_t colon = v.find(':', start);
                auto d = python_float(std::string_view(v).substr(start, colon - start));
                if (!d) throw python_error{};
                parts.push_back(*d);
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
            double value = 0.0, base = 1;
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
                value += *it * base;
                base *= 60;
            }
            o.number = sign * value;
        } else {
            auto d = python_float(v);
            if (!d) throw python_error{};
            o.number = sign * *d;
        }
        return o;
    }

    static py_object make_timestamp(std::string_view v) {
        auto f = match_timestamp(v, false);
        if (!f) throw python_error{};  // match is None: AttributeError
        if (f->year < 1 || f->month < 1 || f->month > 12 || f->day < 1 ||
            f->day > days_in_month(f->year, f->month))
            throw python_error{};
        py_object o;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", f->year, f->month, f->day);
        o.text = buf;
        if (!f->has_time) {
            o.kind = py_kind::date;
            return o;
        }
        o.kind = py_kind::datetime;
        int micro = 0;
        if (!f->fraction.empty()) {
            std::string fr = f->fraction.substr(0, 6);
            while (fr.size() < 6) fr += '0';
            micro = std::atoi(fr.c_str());
        }
        int offset = 0;
        if (f->has_tz && !f->tz_utc) {
            offset = f->tz_hour * 60 + f->tz_minute;
            if (offset >= 24 * 60) throw python_error{};  // timezone(): offset out of range
            if (f->tz_neg) offset = -offset;
        }
        if (f->hour > 23 || f->minute > 59 || f->second > 59) throw python_error{};
        std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", f->hour, f->minute, f->second);
        o.text += buf;
        if (micro) {
            std::snprintf(buf, sizeof buf, ".%06d", micro);
            o.text += buf;
        }
        if (f->has_tz) {
            const int a = std::abs(offset);
            std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset < 0 ? '-' : '+', a / 60, a % 60);
            o.text += buf;
            o.aware = true;
            const std::int64_t days = days_from_civil(f->year, static_cast<unsigned>(f->month),
                                                      static_cast<unsigned>(f->day));
            const std::int64_t secs =
                ((days * 24 + f->hour) * 60 + f->minute - offset) * 60 + f->second;
            o.utc_micros = secs * 1'000'000 + micro;
        }
        return o;
    }

    // SafeConstructor.flatten_mapping: merge keys become the merged mappings' pairs, in front.
    void flatten(std::size_t id, std::size_t depth) {
        // Each level deletes its merge key before recursing, so "&a {<<: *a}" ends; only a very
        // long chain of merges reaches Python's recursion limit.
        if (depth >= limits_.max_depth) throw python_error{};  // RecursionError
        std::vector<std::size_t> merge;
        auto& pairs = nodes_[id].children;
        std::size_t index = 0;
        while (index + 1 < pairs.size()) {
            const std::size_t key = pairs[index], value = pairs[index + 1];
            if (nodes_[key].tag == tag_merge) {
                pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(index),
                            pairs.begin() + static_cast<std::ptrdiff_t>(index) + 2);
                const ynode& vn = nodes_[value];
                if (vn.k == ynode::kind::mapping) {
                    flatten(value, depth + 1);
                    const auto& vp = nodes_[value].children;
                    merge.insert(merge.end(), vp.begin(), vp.end());
                } else if (vn.k == ynode::kind::sequence) {
                    std::vector<std::vector<std::size_t>> submerge;
                    const std::vector<std::size_t> subs = vn.children;
                    for (const std::size_t sub : subs) {
                        if (nodes_[sub].k != ynode::kind::mapping) throw constructor_error{};
                        flatten(sub, depth + 1);
                        submerge.push_back(nodes_[sub].children);
                    }
                    for (auto it = submerge.rbegin(); it != submerge.rend(); ++it)
                        merge.insert(merge.end(), it->begin(), it->end());
                } else {
                    throw constructor_error{};
                }
            } else if (nodes_[key].tag == tag_value) {
                nodes_[key].tag = tag_str;
                index += 2;
            } else {
                index += 2;
            }
        }
        if (!merge.empty()) {
            auto& p = nodes_[id].children;
            merge.insert(merge.end(), p.begin(), p.end());
            p = std::move(merge);
        }
    }

    // SafeConstructor.construct_mapping: returns key, value, key, value in dict order.
    std::vector<std::size_t> mapping(std::size_t id) {
        if (nodes_[id].k == ynode::kind::mapping) flatten(id, 0);
        if (nodes_[id].k != ynode::kind::mapping) throw constructor_error{};
        const std::vector<std::size_t> pairs = nodes_[id].children;
        std::vector<std::size_t> items;
        std::unordered_map<std::string, std::size_t> where;  // key identity -> slot in items
        for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
            const std::size_t k = object(pairs[i]);
            if (is_unhashable(out_.at(k).kind)) throw constructor_error{};
            const std::size_t v = object(pairs[i + 1]);
            const auto ident = python_key_identity(out_, k);
            const auto it = where.find(ident);
            if (it == where.end()) {
                where.emplace(ident, items.size());
                items.push_back(k);
                items.push_back(v);
            } else {
                items[it->second + 1] = v;  // Python keeps the first key object and position
            }
        }
        return items;
    }

    void fill(std::size_t id, std::size_t obj) {
        const std::string_view t = nodes_[id].tag;
        if (t == tag_seq) {
            if (nodes_[id].k != ynode::kind::sequence) throw constructor_error{};
            std::vector<std::size_t> items;
            const std::vector<std::size_t> children = nodes_[id].children;
            for (const std::size_t c : children) items.push_back(object(c));
            out_.objects[obj].items = std::move(items);
        } else if (t == tag_map) {
            auto items = mapping(id);
            out_.objects[obj].items = std::move(items);
        } else if (t == tag_set) {
            auto items = mapping(id);
            std::vector<std::size_t> keys;
            for (std::size_t i = 0; i < items.size(); i += 2) keys.push_back(items[i]);
            out_.objects[obj].items = std::move(keys);
        } else {  // omap, pairs: a list of (key, value) tuples
            if (nodes_[id].k != ynode::kind::sequence) throw constructor_error{};
            const std::vector<std::size_t> children = nodes_[id].children;
            std::vector<std::size_t> items;
            for (const std::size_t sub : children) {
                if (nodes_[sub].k != ynode::kind::mapping) throw constructor_error{};
                if (nodes_[sub].children.size() != 2) throw constructor_error{};
                const std::size_t kn = nodes_[sub].children[0], vn = nodes_[sub].children[1];
                py_object tup;
                tup.kind = py_kind::tuple;
                tup.items.push_back(object(kn));
                tup.items.push_back(object(vn));
                items.push_back(make(std::move(tup)));
            }
            out_.objects[obj].items = std::move(items);
        }
    }

    std::vector<ynode>& nodes_;
    py_graph& out_;
    const yaml_limits& limits_;
    std::vector<std::size_t> built_;
    std::vector<std::pair<std::size_t, std::size_t>> pending_;
};

}  // namespace

namespace yaml_detail {

std::size_t construct_document(std::vector<ynode>& nodes, py_graph& out, const yaml_limits& limits,
                               std::size_t root) {
    constructor cons(nodes, out, limits);
    return cons.document(root);
}

}  // namespace yaml_detail

}  // namespace sg::v1
