// proxy/common/time_zone: the configured time zone of v1's process (config's reading of it) as
// the zone v1's rendering uses.
#pragma once

#include "adapters/v1/render.hpp"
#include "config/config.hpp"

#include <optional>
#include <string_view>

namespace sg::proxy {

// The zone as the renderer takes it.
v1::time_zone to_v1_zone(const config::zone& z);

// "utc", "local", "+02:00", "-05:30" -> a time zone; nullopt for anything else.
std::optional<v1::time_zone> parse_time_zone(std::string_view s);

}  // namespace sg::proxy
