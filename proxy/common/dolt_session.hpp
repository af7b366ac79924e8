// proxy/common/dolt_session: the Dolt connection options a config describes (password from the
// environment, timeouts rounded up to whole seconds as Connector/C takes them).
#pragma once

#include "adapters/dolt/connection.hpp"
#include "config/config.hpp"

namespace sg::proxy {

dolt::options dolt_options(const config::config& cfg);

}  // namespace sg::proxy
