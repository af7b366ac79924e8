// adapters/v1/v2_render: v1's answer to a read request, rendered from the state Dolt holds (the
// model read back by adapters/dolt) instead of from git. This is what shadow reads compare with
// v1's real answer and what the `live` stage will serve. Pure.
#pragma once

#include "adapters/v1/model.hpp"
#include "adapters/v1/render.hpp"
#include "adapters/v1/routes.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace sg::v1 {

// v1's answer to the read request `route` (from classify) with request-target `target`, given
// what Dolt holds for the route's user (nullopt: Dolt knows no such user). nullopt for routes
// that are not reads of the block API (writes, passthrough, hostile identifiers).
std::optional<v1::rendered> render_read(const std::optional<v1::user_state>& state,
                                        const v1::route& route, std::string_view target,
                                        const v1::time_zone& tz);

}  // namespace sg::v1
