// proxy/v2_render: v1's answer to a read request, rendered from the state Dolt holds (the model
// read back by adapters/dolt) instead of from git. This is what shadow reads compare with v1's
// real answer and what the `live` stage will serve. Pure.
#pragma once

#include "adapters/dolt/store.hpp"
#include "adapters/v1/model.hpp"
#include "adapters/v1/render.hpp"
#include "adapters/v1/routes.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy {

// The decoded value of the last `name` parameter in the query of `target` (Starlette's reading:
// "%XX" decoded, "+" is a space); nullopt when absent.
std::optional<std::string> query_param(std::string_view target, std::string_view name);
// Every value of `name` in the query, in order, decoded the same way.
std::vector<std::string> query_params(std::string_view target, std::string_view name);

// v1's answer to the read request `route` (from classify) with request-target `target`, given
// what Dolt holds for the route's user (nullopt: Dolt knows no such user). nullopt for routes
// that are not reads of the block API (writes, passthrough, hostile identifiers).
std::optional<v1::rendered> render_read(const std::optional<v1::user_state>& state,
                                        const v1::route& route, std::string_view target,
                                        const v1::time_zone& tz);

// The parts of the user's state render_read needs for `route` (a read of the block API): the
// user's row always, then only the tables the endpoint renders from, the route's label only
// where the answer is about one block (a superset: render_read still matches labels exactly).
dolt::read_parts parts_for(const v1::route& route);

}  // namespace sg::proxy
