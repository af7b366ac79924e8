// proxy/jobs/inspect: `shadowgate render`: what v2 (Dolt) answers to v1 read requests, rendered in
// v1's shape. For operators ("what would the shadow read see?") and for the tests that check
// Dolt's rendering against v1's recorded answers.
#pragma once

#include "adapters/v1/render.hpp"
#include "config/config.hpp"

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy {

// For each GET request-target, one JSON line {"target","status","content_type","body"} on
// `out`, rendered from the Dolt database in `cfg`. Returns 0, or 1 when Dolt cannot be reached
// (the reason on stderr).
int run_render(const config::config& cfg, const v1::time_zone& tz,
               const std::vector<std::string>& targets, std::ostream& out);

}  // namespace sg::proxy
