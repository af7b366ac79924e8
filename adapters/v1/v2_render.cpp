// adapters/v1/v2_render: route -> render function.
#include "adapters/v1/v2_render.hpp"

#include "adapters/v1/query.hpp"

namespace sg::v1 {

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
        case endpoint::get_version: return v1::render_get_version(*state, route.label, route.sha);
        case endpoint::list_diffs: return v1::render_list_diffs(*state, route.label);
        default: return std::nullopt;
    }
}

}  // namespace sg::v1
