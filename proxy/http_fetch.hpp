// proxy/http_fetch: one blocking HTTP/1.1 GET with a deadline, for the shadow comparer's worker
// threads (re-reading v1 after the mirror settled, asking a v2 service). Each call uses its own
// io_context and connection: shadow re-reads are rare next to the proxy's traffic, and this keeps
// them apart from the proxy's pools. Beast stays behind this header.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace sg::proxy {

struct fetch_result {
    bool ok = false;         // a whole response arrived
    bool timed_out = false;  // the deadline passed first
    unsigned status = 0;
    std::string body;
    std::string error;       // what failed, when !ok
};

using header_list = std::vector<std::pair<std::string, std::string>>;

// GET `target` from `address` with `headers` (Host is set when absent; Connection: close), the
// whole exchange within `timeout`; a body over `max_body` bytes fails. Never throws except
// std::bad_alloc.
fetch_result http_get(const config::endpoint_address& address, const std::string& target,
                      const header_list& headers, std::chrono::milliseconds timeout,
                      std::size_t max_body);

}  // namespace sg::proxy
