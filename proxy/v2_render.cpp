// proxy/v2_render: route -> render function, and Starlette's query decoding.
#include "proxy/v2_render.hpp"

#include "adapters/v1/yaml_json.hpp"

namespace sg::proxy {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// application/x-www-form-urlencoded decoding as Python's unquote_plus does it: a malformed
// escape stays as it is.
std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() &&
                   hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> query_params(std::string_view target, std::string_view name) {
    std::vector<std::string> found;
    const auto q = target.find('?');
    if (q == std::string_view::npos) return found;
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        std::string key = form_decode(pair.substr(0, eq));
        if (key != name) continue;
        found.push_back(eq == std::string_view::npos ? std::string()
                                                     : form_decode(pair.substr(eq + 1)));
    }
    return found;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    auto all = query_params(target, name);
    if (all.empty()) return std::nullopt;
    return std::move(all.back());
}

std::optional<v1::rendered> render_read(const std::optional<v1::user_state>& state,
                                        const v1::route& route, std::string_view target,
                                        const v1::time_zone& tz) {
    using v1::endpoint;
    if (route.write || route.hostile_reason || route.ep == endpoint::passthrough) {
        return std::nullopt;
    }
    if (route.ep == endpoint::block_history) {
        // FastAPI validates the query before the endpoint looks for the user.
        auto limit = query_param(target, "limit");
        std::optional<std::string_view> raw;
        if (limit) raw = *limit;
        if (auto bad = v1::check_history_limit(raw)) return bad;
        if (!state) return v1::render_unknown_user(route.user_id);
        return v1::render_history(*state, route.label, raw, tz);
    }
    if (route.ep == endpoint::user_exists) return v1::render_exists(state.has_value());
    if (!state) return v1::render_unknown_user(route.user_id);
    switch (route.ep) {
        case endpoint::list_blocks: return v1::render_list_blocks(*state);
        case endpoint::diff_counts: return v1::render_diff_counts(*state);
        case endpoint::get_block: return v1::render_get_block(*state, route.label);
        case endpoint::get_version:
            return v1::render_get_version(*state, route.label, route.sha);
        case endpoint::list_diffs: return v1::render_list_diffs(*state, route.label);
        default: return std::nullopt;
    }
}

dolt::read_parts parts_for(const v1::route& route) {
    using v1::endpoint;
    dolt::read_parts p;
    // v1 reads the label as a str (invalid UTF-8 replaced); the tables hold valid UTF-8.
    const std::string label = v1::utf8_decode_replace(route.label);
    switch (route.ep) {
        case endpoint::list_blocks:
            p.blocks = true;
            p.block_texts = false;
            p.diffs = true;
            break;
        case endpoint::diff_counts:
        case endpoint::list_diffs: p.diffs = true; break;
        case endpoint::get_block:
            p.blocks = true;
            p.diffs = true;
            p.label = label;
            break;
        case endpoint::block_history:
            p.blocks = true;
            p.block_texts = false;
            p.versions = true;
            p.version_texts = false;
            p.label = label;
            break;
        case endpoint::get_version:
            p.commits = true;
            p.versions = true;
            p.label = label;
            break;
        case endpoint::user_exists: break;
        default: p = dolt::read_parts::everything(); break;
    }
    return p;
}

}  // namespace sg::proxy
