// comparator/mapping: see the header.
#include "comparator/mapping.hpp"

#include "comparator/json_diff.hpp"

#include <optional>

namespace sg::comparator {

namespace {

using json = nlohmann::json;
using segments = std::vector<std::string>;

bool is_index(const std::string& s) {
    if (s.empty() || s.size() > 18) return false;
    if (s.size() > 1 && s[0] == '0') return false;
    for (const char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

// The value at `path` under `doc`, or nullptr.
json* find(json& doc, const segments& path, std::size_t from, std::size_t to) {
    json* at = &doc;
    for (std::size_t i = from; i < to; ++i) {
        const std::string& s = path[i];
        if (at->is_object()) {
            auto it = at->find(s);
            if (it == at->end()) return nullptr;
            at = &*it;
        } else if (at->is_array() && is_index(s) && std::stoull(s) < at->size()) {
            at = &(*at)[std::stoull(s)];
        } else {
            return nullptr;
        }
    }
    return at;
}

// Removes and returns the value at path[from..to) under doc (nullopt when absent). The empty
// path takes the whole document (leaving null).
std::optional<json> take(json& doc, const segments& path, std::size_t from, std::size_t to) {
    if (from == to) {
        json out = std::move(doc);
        doc = nullptr;
        return out;
    }
    json* parent = find(doc, path, from, to - 1);
    if (parent == nullptr) return std::nullopt;
    const std::string& last = path[to - 1];
    if (parent->is_object()) {
        auto it = parent->find(last);
        if (it == parent->end()) return std::nullopt;
        json out = std::move(*it);
        parent->erase(it);
        return out;
    }
    if (parent->is_array() && is_index(last) && std::stoull(last) < parent->size()) {
        const auto i = std::stoull(last);
        json out = std::move((*parent)[i]);
        parent->erase(i);
        return out;
    }
    return std::nullopt;
}

// Puts `value` at path[from..to) under doc, creating absent parents as objects. False when a
// parent is a scalar (or an array index past the end): nothing is changed then.
bool put(json& doc, const segments& path, std::size_t from, std::size_t to, json value) {
    json* at = &doc;
    for (std::size_t i = from; i < to; ++i) {
        const std::string& s = path[i];
        const bool last = i + 1 == to;
        if (at->is_null()) *at = json::object();
        if (at->is_object()) {
            if (last) {
                (*at)[s] = std::move(value);
                return true;
            }
            at = &(*at)[s];
        } else if (at->is_array()) {
            std::size_t n = at->size();
            if (s == "-") {
                if (!last) return false;
                at->push_back(std::move(value));
                return true;
            }
            if (!is_index(s) || std::stoull(s) > n) return false;
            const auto k = std::stoull(s);
            if (last) {
                if (k == n) {
                    at->push_back(std::move(value));
                } else {
                    at->insert(at->begin() + static_cast<std::ptrdiff_t>(k), std::move(value));
                }
                return true;
            }
            if (k == n) return false;
            at = &(*at)[k];
        } else {
            return false;
        }
    }
    *at = std::move(value);
    return true;
}

std::size_t first_star(const segments& p, std::size_t from) {
    for (std::size_t i = from; i < p.size(); ++i) {
        if (p[i] == "*") return i;
    }
    return p.size();
}

std::size_t last_star(const segments& p) {
    for (std::size_t i = p.size(); i-- > 0;) {
        if (p[i] == "*") return i;
    }
    return p.size();
}

// Applies one step to `doc`, whose paths start at segment `depth`: "*" segments fan out over
// every element, the rest of the step applies inside each.
void apply_at(json& doc, const map_step& step, const segments& from, const segments& to,
              std::size_t depth) {
    const std::size_t star = first_star(from, depth);
    if (star < from.size()) {
        json* container = find(doc, from, depth, star);
        if (container == nullptr) return;
        if (container->is_array() || container->is_object()) {
            for (auto& element : *container) apply_at(element, step, from, to, star + 1);
        }
        return;
    }
    if (step.what == map_step::op::drop) {
        (void)take(doc, from, depth, from.size());
        return;
    }
    // A move: take the value out; put it back where it was when the destination cannot hold it.
    auto value = take(doc, from, depth, from.size());
    if (!value) return;
    json copy = *value;
    if (!put(doc, to, depth, to.size(), std::move(*value))) {
        (void)put(doc, from, depth, from.size(), std::move(copy));
    }
}

}  // namespace

std::string check_step(const map_step& step) {
    const auto from = parse_pattern(step.from);
    if (!from) return "\"" + step.from + "\" is not a JSON Pointer (\"\" or starting with \"/\")";
    if (step.what == map_step::op::drop) {
        if (from->segments.empty()) return "cannot drop the whole document";
        return {};
    }
    const auto to = parse_pattern(step.to);
    if (!to) return "\"" + step.to + "\" is not a JSON Pointer (\"\" or starting with \"/\")";
    const auto& f = from->segments;
    const auto& t = to->segments;
    const std::size_t fs = last_star(f);
    const std::size_t ts = last_star(t);
    const std::size_t fprefix = fs == f.size() ? 0 : fs + 1;
    const std::size_t tprefix = ts == t.size() ? 0 : ts + 1;
    if (fprefix != tprefix ||
        !std::equal(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(fprefix), t.begin())) {
        return "\"" + step.from + "\" and \"" + step.to +
               "\" must be the same up to their last \"*\" (elements move within themselves)";
    }
    return {};
}

void apply_mapping(json& doc, const std::vector<map_step>& steps) {
    for (const auto& step : steps) {
        if (!check_step(step).empty()) continue;
        const auto from = parse_pattern(step.from);
        const auto to = step.what == map_step::op::move ? parse_pattern(step.to) : from;
        apply_at(doc, step, from->segments, to->segments, 0);
    }
}

}  // namespace sg::comparator
