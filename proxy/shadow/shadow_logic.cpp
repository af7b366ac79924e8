// proxy/shadow/shadow_logic: see the header.
#include "proxy/shadow/shadow_logic.hpp"

#include <algorithm>
#include <charconv>

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
        if (v1::is_block_read(ep)) {
            rate = cfg.sample_rate;
            const auto it = cfg.endpoints.find(std::string(v1::name(ep)));
            if (it != cfg.endpoints.end() && it->second.sample_rate) rate = *it->second.sample_rate;
        }
        rates_[static_cast<std::size_t>(ep)] = rate;
    }
}

bool sampler::take(v1::endpoint ep, const std::string& user, double draw) const {
    if (!v1::is_block_read(ep)) return false;
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

std::vector<comparator::map_step> mapping_for(const config::shadow_config& cfg, v1::endpoint ep) {
    std::vector<comparator::map_step> out;
    const auto it = cfg.v2_http.endpoints.find(std::string(v1::name(ep)));
    if (it == cfg.v2_http.endpoints.end()) return out;
    for (const auto& step : it->second) {
        out.push_back({step.drop ? comparator::map_step::op::drop : comparator::map_step::op::move,
                       step.from, step.to});
    }
    return out;
}

std::string map_body(const std::string& body, const std::vector<comparator::map_step>& steps) {
    if (steps.empty()) return body;
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded()) return body;
    comparator::apply_mapping(doc, steps);
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool token_bucket::take(std::chrono::steady_clock::time_point now) {
    if (rate_ <= 0) return true;
    const double burst = rate_ < 1 ? 1 : rate_;
    if (last_) {
        const double seconds = std::chrono::duration<double>(now - *last_).count();
        if (seconds > 0) tokens_ = std::min(burst, tokens_ + seconds * rate_);
    }
    last_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

std::optional<cpu_times> parse_proc_stat(std::string_view text) {
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
    if (text.substr(0, 4) != "cpu ") return std::nullopt;
    text.remove_prefix(4);
    std::array<std::uint64_t, 10> v{};
    std::size_t n = 0;
    while (n < v.size()) {
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        if (text.empty() || text.front() == '\n') break;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v[n]);
        if (ec != std::errc{}) return std::nullopt;
        text.remove_prefix(static_cast<std::size_t>(p - text.data()));
        ++n;
    }
    if (n < 4) return std::nullopt;
    cpu_times t;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 8); ++i) t.total += v[i];
    t.idle = v[3] + (n > 4 ? v[4] : 0);
    return t;
}

std::optional<sched_times> parse_schedstat(std::string_view text) {
    std::array<std::uint64_t, 3> v{};
    for (auto& field : v) {
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), field);
        if (ec != std::errc{}) return std::nullopt;
        text.remove_prefix(static_cast<std::size_t>(p - text.data()));
    }
    return sched_times{v[0], v[1], v[2]};
}

double wait_per_run_us(const sched_times& before, const sched_times& after) {
    if (after.slices <= before.slices || after.delay < before.delay) return 0.0;
    return static_cast<double>(after.delay - before.delay) / 1000.0 /
           static_cast<double>(after.slices - before.slices);
}

double idle_share(const cpu_times& before, const cpu_times& after) {
    if (after.total <= before.total || after.idle < before.idle) return 1.0;
    const double idle = static_cast<double>(after.idle - before.idle);
    return std::min(1.0, idle / static_cast<double>(after.total - before.total));
}

}  // namespace sg::proxy::shadow_logic
