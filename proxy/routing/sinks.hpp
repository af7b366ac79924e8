// proxy/routing/sinks: what a session reports its answers to, after they went out, as the
// decision names: a write's answer to the forward mirror, a read's answer to the shadow
// comparer. The session knows these interfaces only; the composition root (main.cpp) passes the
// mirror and the comparer, which always exist and sit idle when no decision names them.
#pragma once

#include "adapters/v1/routes.hpp"
#include "proxy/common/headers.hpp"

#include <string>
#include <string_view>

namespace sg::routing {

// A read's answer from v1, offered for comparison.
struct read_answer {
    v1::route route;
    std::string target;          // the request-target as the client sent it
    proxy::header_list headers;  // the request's end-to-end headers, for re-reading v1
    std::string request_id;
    unsigned v1_status = 0;
    std::string v1_body;
    double v1_seconds = 0;  // v1's round trip as the proxy measured it
};

class write_sink {
public:
    virtual ~write_sink() = default;
    // A write's answer was sent (or its client left: v1 made the change all the same). Must not
    // block on anything slow: it runs on the network thread.
    virtual void written(const v1::route& route, unsigned status, std::string_view body) = 0;
};

class read_sink {
public:
    virtual ~read_sink() = default;
    // Whether this read's answer is wanted (sampling, load); cheap, from any thread.
    virtual bool wants(const v1::route& route, std::string_view method) const = 0;
    // Takes the answer; never blocks on the comparison.
    virtual void offer(read_answer answer) = 0;
};

struct sinks {
    write_sink& writes;
    read_sink& reads;
};

}  // namespace sg::routing
