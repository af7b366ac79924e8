// proxy/common/time_zone: config::zone -> v1::time_zone.
#include "proxy/common/time_zone.hpp"

namespace sg::proxy {

v1::time_zone to_v1_zone(const config::zone& z) {
    switch (z.k) {
        case config::zone::kind::utc: return v1::time_zone::utc();
        case config::zone::kind::local: return v1::time_zone::local();
        case config::zone::kind::fixed: break;
    }
    return v1::time_zone::fixed(z.offset_minutes);
}

std::optional<v1::time_zone> parse_time_zone(std::string_view s) {
    const auto z = config::parse_time_zone(s);
    if (!z) return std::nullopt;
    return to_v1_zone(*z);
}

}  // namespace sg::proxy
