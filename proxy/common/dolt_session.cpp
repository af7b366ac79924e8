// proxy/common/dolt_session: config -> Dolt connection options.
#include "proxy/common/dolt_session.hpp"

#include <algorithm>

namespace sg::proxy {

dolt::options dolt_options(const config::config& cfg) {
    dolt::options o;
    o.host = cfg.dolt.host;
    o.port = cfg.dolt.port;
    o.user = cfg.dolt.user;
    o.password = cfg.dolt.password;
    o.database = cfg.dolt.database;
    // Connector/C takes whole seconds; never round a short timeout down to "none".
    auto secs = [](std::chrono::milliseconds ms) {
        return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(ms));
    };
    o.connect_timeout = secs(cfg.dolt.connect_timeout);
    o.read_timeout = secs(cfg.dolt.read_timeout);
    o.write_timeout = secs(cfg.dolt.write_timeout);
    return o;
}

}  // namespace sg::proxy
