// proxy/net/http_fetch: HTTP/1.1 GETs with a deadline for the shadow comparer (re-reading v1 after
// the mirror settled, asking a v2 service) and the command line (asking the admin API). Each GET
// uses a connection of its own (Connection: close), apart from the proxy's pools. One coroutine
// does the exchange; http_get runs it to the end on the caller's thread, http_client on a thread
// of its own so that the caller need not wait. Beast stays behind this header.
#pragma once

#include "config/config.hpp"
#include "proxy/common/headers.hpp"
#include "proxy/common/result.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sg::proxy {

// A whole response.
struct http_answer {
    unsigned status = 0;
    std::string body;
};
// The answer, or what failed (failure::timed_out: the deadline passed first).
using fetch_result = result<http_answer>;

struct get_request {
    config::endpoint_address address;
    std::string target;
    header_list headers;                       // Host is set when absent; Connection: close always
    std::chrono::milliseconds timeout{5'000};  // the whole exchange, name resolution included
    std::size_t max_body = 1 << 20;            // a longer body fails
};

// GET on the caller's thread. Never throws except std::bad_alloc.
[[nodiscard]] fetch_result http_get(const get_request& req);
// The same exchange as a POST of `json_body` (application/json): the command line's changes.
[[nodiscard]] fetch_result http_post(const get_request& req, std::string json_body);

// GETs on one thread of its own (named `thread_name`, at nice `nice`). done(result) runs on that
// thread exactly once per get(): when the exchange ends, or with the failure "stopping" when stop()
// comes first (then on the thread calling stop(), or at once when get() comes after stop()).
class http_client {
public:
    using done_fn = std::function<void(fetch_result)>;
    http_client(const char* thread_name, int nice);
    ~http_client();  // stop()
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    void get(get_request req, done_fn done);
    void stop();
    std::size_t in_flight() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sg::proxy
