// proxy/control/requests: the bodies of the admin API's plan changes, read strictly (every
// problem named by its JSON path, unknown keys refused). Pure.
//
//   POST /admin/stage     {"stage": "shadow", "cohort": "pilot", "users": ["alice"],
//                          "percent": 10, "remove": false, "force": false,
//                          "reason": "...", "who": "..."}
//   POST /admin/freeze    {"minutes": 15, "cohorts": ["pilot"], "reason": "...", "who": "..."}
//   POST /admin/unfreeze  {"reason": "...", "who": "..."}
#pragma once

#include "proxy/common/result.hpp"
#include "proxy/control/control_plane.hpp"
#include "proxy/control/transition.hpp"

#include <string>
#include <string_view>

namespace sg::control {

struct unfreeze_request {
    std::string reason;
    std::string who;
};

// Failures are refusals (failure::refused), one problem per line.
proxy::result<stage_change> parse_stage_change(std::string_view body);
proxy::result<freeze_request> parse_freeze(std::string_view body);
proxy::result<unfreeze_request> parse_unfreeze(std::string_view body);

}  // namespace sg::control
