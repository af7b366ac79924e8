// proxy/shadow_logic: see the header.
#include "proxy/shadow_logic.hpp"

#include <algorithm>

namespace sg::proxy::shadow_logic {

namespace {

comparator::path_pattern must_pattern(const std::string& text) {
    // The config loader has checked the syntax; a pattern that still fails matches nothing.
    auto p = comparator::parse_pattern(text);
    if (p) return *p;
    comparator::path_pattern never;
    never.segments = {"", "\x01never"};
    return never;
}

}  // namespace

bool compared(v1::endpoint ep) {
    switch (ep) {
        case v1::endpoint::user_exists:
        case v1::endpoint::list_blocks:
        case v1::endpoint::diff_counts:
        case v1::endpoint::get_block:
        case v1::endpoint::block_history:
        case v1::endpoint::get_version:
        case v1::endpoint::list_diffs:
            return true;
        default:
            return false;
    }
}

comparator::endpoint_rules rules_for(const config::shadow_config& cfg, v1::endpoint ep,
                                     int naive_offset_minutes) {
    comparator::endpoint_rules r;
    std::map<std::string, std::string> keys;
    if (ep == v1::endpoint::list_blocks) keys[""] = "label";
    if (ep == v1::endpoint::list_diffs) keys[""] = "id";
    const auto it = cfg.endpoints.find(std::string(v1::name(ep)));
    if (it != cfg.endpoints.end()) {
        const config::shadow_endpoint_config& e = it->second;
        for (const auto& [path, field] : e.array_keys) keys[path] = field;
        for (const auto& p : e.ignore) r.body.ignore.push_back(must_pattern(p));
        for (const auto& p : e.timestamps) {
            r.body.timestamps.push_back(
                {must_pattern(p), e.timestamp_precision_ms, naive_offset_minutes});
        }
        r.body.numeric_tolerance = e.numeric_tolerance;
        r.body.status_only = e.status_only;
    }
    for (const auto& [path, field] : keys) r.body.keyed.push_back({must_pattern(path), field});
    return r;
}

sampler::sampler(const config::shadow_config& cfg)
    : always_(cfg.always_users.begin(), cfg.always_users.end()) {
    for (const auto ep : v1::all_endpoints()) {
        double rate = 0;
        if (compared(ep)) {
            rate = cfg.sample_rate;
            const auto it = cfg.endpoints.find(std::string(v1::name(ep)));
            if (it != cfg.endpoints.end() && it->second.sample_rate) rate = *it->second.sample_rate;
        }
        rates_[static_cast<std::size_t>(ep)] = rate;
    }
}

bool sampler::take(v1::endpoint ep, const std::string& user, double draw) const {
    if (!compared(ep)) return false;
    if (!always_.empty() && always_.count(user) != 0) return true;
    return draw < rates_[static_cast<std::size_t>(ep)];
}

void path_tally::add(v1::endpoint ep, const std::string& general_path) {
    auto& m = counts_[static_cast<std::size_t>(ep)];
    auto it = m.find(general_path);
    if (it == m.end() && m.size() >= max_) it = m.try_emplace("(other)", 0).first;
    if (it == m.end()) it = m.emplace(general_path, 0).first;
    ++it->second;
}

std::vector<path_tally::row> path_tally::rows() const {
    std::vector<row> out;
    for (const auto ep : v1::all_endpoints()) {
        const auto& m = counts_[static_cast<std::size_t>(ep)];
        const std::size_t first = out.size();
        for (const auto& [path, n] : m) out.push_back({ep, path, n});
        std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                  [](const row& a, const row& b) {
                      return a.count != b.count ? a.count > b.count : a.path < b.path;
                  });
    }
    return out;
}

}  // namespace sg::proxy::shadow_logic
